/**
 * One bench/rpc server, in a process of its own so that server and client
 * each have a core:
 *
 *   node bench/rpc/server.ts '<json settings>'
 *
 * Prints one JSON line (`{ "port": … }`, plus `"gossip"` for shoal) once it
 * listens, and runs until its parent kills it.
 */
import { EventEmitter } from "node:events"
import { readFileSync } from "node:fs"
import * as Tls from "node:tls"
import { NodeSocketServer } from "@effect/platform-node"
import * as Grpc from "@grpc/grpc-js"
import { Context, Effect, Layer, Option } from "effect"
import { RpcServer as EffectRpcServer } from "effect/rpc"
import { SocketServer } from "effect/socket"
import { formatAddress } from "../../src/cluster/Node.ts"
import { RpcServer } from "../../src/rpc/RpcServer.ts"
import {
  BenchRpcs,
  FRAME_ECHO,
  FRAME_END,
  FRAME_ITEM,
  FRAME_STREAM,
  frame,
  framer,
  grpcService,
  handlers,
  item,
  plainHandlers,
  type ServerSettings,
  serializationLayer,
  tokens
} from "./protocol.ts"

// effect's socket writer adds a `drain` listener per waiting write; 64 calls in flight exceed Node's default of 10
EventEmitter.defaultMaxListeners = 0

const settings = JSON.parse(process.argv[2] ?? "{}") as ServerSettings
const cert = readFileSync(settings.cert)
const key = readFileSync(settings.key)
const ca = readFileSync(settings.ca)
const ready = (info: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(info)}\n`)

/** A pre-chunked stream for the floor: all frames in one buffer (the id patched in). */
const chunkedFrames = (id: number, n: number): Buffer => {
  const one = frame(FRAME_ITEM, 0, item(0))
  const out = Buffer.allocUnsafe(one.length * n)
  for (let i = 0; i < n; i++) {
    const offset = i * one.length
    one.copy(out, offset)
    out.writeUInt32BE(id, offset + 5)
    out.writeUInt32BE(i, offset + 9)
  }
  return out
}

const floor = () => {
  const server = Tls.createServer({ cert, key }, (socket) => {
    socket.setNoDelay(true)
    const write = (buffer: Buffer) =>
      socket.write(buffer) ? undefined : new Promise<void>((r) => socket.once("drain", r))
    socket.on(
      "data",
      framer((type, id, payload) => {
        if (type === FRAME_ECHO) {
          socket.write(frame(FRAME_ECHO, id, payload))
          return
        }
        if (type !== FRAME_STREAM) return
        const n = payload.readUInt32BE(0)
        const single = payload.readUInt8(4) === 1
        void (async () => {
          if (single) {
            for await (const message of tokens(n)) {
              const waiting = write(frame(FRAME_ITEM, id, item(message.id)))
              if (waiting) await waiting
            }
          } else {
            const waiting = write(chunkedFrames(id, n))
            if (waiting) await waiting
          }
          socket.write(frame(FRAME_END, id, Buffer.alloc(0)))
        })()
      })
    )
    socket.on("error", () => {})
  })
  server.listen(0, "127.0.0.1", () => ready({ port: (server.address() as { port: number }).port }))
}

const grpc = () => {
  const server = new Grpc.Server()
  server.addService(grpcService as unknown as Grpc.ServiceDefinition, {
    echo: (call: Grpc.ServerUnaryCall<Buffer, Buffer>, callback: Grpc.sendUnaryData<Buffer>) =>
      callback(null, call.request),
    count: async (call: Grpc.ServerWritableStream<Buffer, Buffer>) => {
      const n = call.request.readUInt32BE(0)
      const single = call.request.readUInt8(4) === 1
      const write = (buffer: Buffer) =>
        call.write(buffer) ? undefined : new Promise<void>((r) => call.once("drain", () => r()))
      if (single) {
        for await (const message of tokens(n)) {
          const waiting = write(item(message.id))
          if (waiting) await waiting
        }
      } else {
        for (let i = 0; i < n; i++) {
          const waiting = write(item(i))
          if (waiting) await waiting
        }
      }
      call.end()
    }
  })
  server.bindAsync(
    "127.0.0.1:0",
    Grpc.ServerCredentials.createSsl(ca, [{ cert_chain: cert, private_key: key }], false),
    (error, port) => {
      if (error) throw error
      ready({ port })
    }
  )
}

const effect = () => {
  const protocol =
    settings.acks === false
      ? Layer.effect(
          EffectRpcServer.Protocol,
          Effect.map(EffectRpcServer.makeProtocolSocketServer, (p) => ({ ...p, supportsAck: false }))
        )
      : EffectRpcServer.layerProtocolSocketServer
  const layer = EffectRpcServer.layer(BenchRpcs).pipe(
    Layer.provide(handlers),
    Layer.provide(protocol),
    Layer.provide(serializationLayer(settings.serialization)),
    Layer.provideMerge(NodeSocketServer.layerTls({ cert, key, host: "127.0.0.1", port: 0 }))
  )
  return Effect.gen(function* () {
    const server = Context.get(yield* Layer.build(layer), SocketServer.SocketServer)
    ready({ port: (server.address as { port: number }).port })
    return yield* Effect.never
  })
}

const shoal = () =>
  Effect.gen(function* () {
    const layer = RpcServer.layer(BenchRpcs, {
      certificate: settings.cert,
      key: settings.key,
      ca: settings.ca,
      bindAddress: "127.0.0.1:0",
      ...(settings.streamBufferSize === undefined ? {} : { streamBufferSize: settings.streamBufferSize }),
      cluster: { bindAddress: "127.0.0.1:0", nodeName: "bench-server", tags: { role: "bench" } }
    }).pipe(Layer.provide(plainHandlers))
    const server = Context.get(yield* Layer.build(layer), RpcServer)
    const local = yield* Option.getOrThrow(server.cluster).localNode
    ready({ port: server.address.port, gossip: formatAddress(local.gossipAddress) })
    return yield* Effect.never
  })

switch (settings.kind) {
  case "floor":
    floor()
    break
  case "grpc":
    grpc()
    break
  case "effect":
    Effect.runFork(Effect.scoped(effect()))
    break
  case "shoal":
    Effect.runFork(Effect.scoped(shoal()))
    break
}
