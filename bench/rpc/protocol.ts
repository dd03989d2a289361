/**
 * What every contender of bench/rpc serves: an echo (unary) and a counted
 * server stream, over TLS on loopback. The effect/rpc contenders share one
 * RpcGroup; gRPC gets the same bytes through a hand-written service with
 * identity serializers (its best case: no protobuf work at all); the floor is
 * a length-prefixed echo on `node:tls`.
 */
import { Effect, Schema, Stream } from "effect"
import { Rpc, RpcGroup, RpcSerialization } from "effect/rpc"

/** One message: an id and opaque bytes (16 bytes in most rows, 4 KiB in the payload row). */
export const Message = Schema.Struct({ id: Schema.Int, data: Schema.Uint8Array })
export type Message = typeof Message.Type

/**
 * How the server produces a stream: `chunked` hands over one prebuilt array,
 * `single` emits one element per async step (an async generator, as a token
 * generator would). `buffer` is a producer-side setting of the bare server,
 * for the search for streaming defaults.
 */
export const StreamRequest = {
  n: Schema.Int,
  mode: Schema.Literals(["chunked", "single"]),
  buffer: Schema.String
}

export class BenchRpcs extends RpcGroup.make(
  Rpc.make("Echo", { payload: Message.fields, success: Message }),
  Rpc.make("Count", { payload: StreamRequest, success: Message, stream: true })
) {}

export const SMALL = new Uint8Array(16).fill(7)

/** The messages a stream of `n` carries. */
export const messages = (n: number): Array<Message> => Array.from({ length: n }, (_, id) => ({ id, data: SMALL }))

/** One element per async step. */
export async function* tokens(n: number): AsyncGenerator<Message> {
  for (let id = 0; id < n; id++) yield { id, data: SMALL }
}

/**
 * The bare server's stream, shaped by `buffer`: `none` (effect/rpc as is) or
 * `buffer:N` (`Stream.buffer` of N elements, which is what shoal's server does
 * to every stream with its `streamBufferSize`).
 */
export const countStream = (n: number, mode: "chunked" | "single", buffer: string): Stream.Stream<Message> => {
  const source =
    mode === "chunked"
      ? Stream.fromArray(messages(n))
      : Stream.fromAsyncIterable(tokens(n), (error) => error).pipe(Stream.orDie)
  const [kind, size] = buffer.split(":")
  const capacity = Number(size)
  return kind === "buffer" ? Stream.buffer(source, { capacity }) : source
}

export const handlers = BenchRpcs.toLayer(
  Effect.succeed(
    BenchRpcs.of({
      Echo: (message) => Effect.succeed(message),
      Count: ({ n, mode, buffer }) => countStream(n, mode, buffer)
    })
  )
)

/** Shoal's server buffers streams by itself; its handler is the plain producer. */
export const plainHandlers = BenchRpcs.toLayer(
  Effect.succeed(
    BenchRpcs.of({
      Echo: (message) => Effect.succeed(message),
      Count: ({ n, mode }) => countStream(n, mode, "none")
    })
  )
)

// --- the node:tls floor: frames are [u32 length][u8 type][u32 id][payload] ---

export const FRAME_ECHO = 1
export const FRAME_STREAM = 2
export const FRAME_ITEM = 3
export const FRAME_END = 4

export const frame = (type: number, id: number, payload: Uint8Array): Buffer => {
  const out = Buffer.allocUnsafe(9 + payload.length)
  out.writeUInt32BE(5 + payload.length, 0)
  out.writeUInt8(type, 4)
  out.writeUInt32BE(id, 5)
  out.set(payload, 9)
  return out
}

/** Splits a byte stream into frames; calls `onFrame(type, id, payload)` for each complete one. */
export const framer = (onFrame: (type: number, id: number, payload: Buffer) => void) => {
  let pending: Buffer = Buffer.alloc(0)
  return (chunk: Buffer) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk])
    let offset = 0
    while (pending.length - offset >= 4) {
      const length = pending.readUInt32BE(offset)
      if (pending.length - offset - 4 < length) break
      const type = pending.readUInt8(offset + 4)
      const id = pending.readUInt32BE(offset + 5)
      onFrame(type, id, pending.subarray(offset + 9, offset + 4 + length))
      offset += 4 + length
    }
    pending = offset === pending.length ? Buffer.alloc(0) : pending.subarray(offset)
  }
}

// --- gRPC: the same bytes, no protobuf ---

const identity = (buffer: Buffer) => buffer

export const grpcService = {
  echo: {
    path: "/bench.Bench/Echo",
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity
  },
  count: {
    path: "/bench.Bench/Count",
    requestStream: false,
    responseStream: true,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity
  }
} as const

/** A gRPC stream request: n (u32) and the mode (0 chunked, 1 single). */
export const grpcStreamRequest = (n: number, mode: "chunked" | "single"): Buffer => {
  const out = Buffer.alloc(5)
  out.writeUInt32BE(n, 0)
  out.writeUInt8(mode === "chunked" ? 0 : 1, 4)
  return out
}

/** An item on the wire for gRPC and the floor: the id, then the 16 bytes. */
export const item = (id: number): Buffer => {
  const out = Buffer.allocUnsafe(4 + SMALL.length)
  out.writeUInt32BE(id, 0)
  out.set(SMALL, 4)
  return out
}

// --- server settings (shared by server.ts and the client side) ---

export interface ServerSettings {
  readonly kind: "floor" | "grpc" | "effect" | "shoal"
  readonly cert: string
  readonly key: string
  readonly ca: string
  /** effect: the serialization (default binary). */
  readonly serialization?: "binary" | "binary-fingerprint" | "ndjson" | "ndjson-rpc"
  /** effect: acknowledge stream chunks (default true). */
  readonly acks?: boolean
  /** shoal: the coalescing buffer (default: shoal's). */
  readonly streamBufferSize?: number
}

export const serializationLayer = (name: ServerSettings["serialization"]) => {
  switch (name) {
    case "binary-fingerprint":
      return RpcSerialization.layerSchemaBinary({ fingerprintPayloads: true })
    case "ndjson":
      return RpcSerialization.layerNdjson
    case "ndjson-rpc":
      return RpcSerialization.layerNdJsonRpc()
    default:
      return RpcSerialization.layerSchemaBinary()
  }
}
