/**
 * The client side of each bench/rpc contender, behind one interface. Every
 * measurement loop runs natively in its own world (an Effect loop for the
 * effect/rpc clients, an async loop for gRPC and the floor), so no adapter
 * pays for the other's glue per call.
 */
import { readFileSync } from "node:fs"
import * as Tls from "node:tls"
import { NodeSocket } from "@effect/platform-node"
import * as Grpc from "@grpc/grpc-js"
import { Context, Effect, Exit, Layer, Scope, Stream } from "effect"
import { RpcClient as EffectRpcClient } from "effect/rpc"
import { Cluster } from "../../src/cluster/Cluster.ts"
import * as ClusterClient from "../../src/rpc/ClusterClient.ts"
import * as RpcClient from "../../src/rpc/RpcClient.ts"
import * as RpcConfig from "../../src/rpc/RpcConfig.ts"
import {
  BenchRpcs,
  FRAME_ECHO,
  FRAME_END,
  FRAME_ITEM,
  FRAME_STREAM,
  frame,
  framer,
  grpcService,
  grpcStreamRequest,
  type ServerSettings,
  SMALL,
  serializationLayer
} from "./protocol.ts"

export type StreamMode = "chunked" | "single"

export interface StreamOptions {
  /** Producer-side setting of the bare effect/rpc server (`none`, `buffer:N`). */
  readonly buffer?: string
  /** The client's queue per stream (effect/rpc's `streamBufferSize`). */
  readonly streamBufferSize?: number
}

export interface Contender {
  readonly name: string
  /** Milliseconds of each of `calls` sequential 16-byte echoes. */
  readonly latency: (calls: number) => Promise<Array<number>>
  /** Echoes of `size` bytes completed in `millis` with `inFlight` callers. */
  readonly throughput: (millis: number, inFlight: number, size: number) => Promise<number>
  /** Receives a server stream of `n` messages; resolves with the number received. */
  readonly stream: (n: number, mode: StreamMode, options?: StreamOptions) => Promise<number>
  readonly close: () => Promise<void>
}

export interface Certs {
  readonly ca: string
  readonly cert: string
  readonly key: string
}

// --- effect/rpc clients (bare, shoal direct, shoal cluster client) ---

type BenchClient = RpcClient.Client<
  typeof BenchRpcs extends { requests: ReadonlyMap<string, infer R> } ? R : never,
  any
>

const effectContender = async (
  name: string,
  make: Effect.Effect<BenchClient, unknown, Scope.Scope>
): Promise<Contender> => {
  const scope = Effect.runSync(Scope.make())
  const client = await Effect.runPromise(Scope.provide(make, scope))
  const run = <A>(effect: Effect.Effect<A, unknown>) => Effect.runPromise(effect)
  return {
    name,
    latency: (calls) =>
      run(
        Effect.gen(function* () {
          const out: Array<number> = []
          for (let id = 0; id < calls; id++) {
            const started = performance.now()
            yield* client.Echo({ id, data: SMALL })
            out.push(performance.now() - started)
          }
          return out
        })
      ),
    throughput: (millis, inFlight, size) =>
      run(
        Effect.gen(function* () {
          const data = new Uint8Array(size).fill(1)
          const deadline = performance.now() + millis
          let done = 0
          const caller = Effect.whileLoop({
            while: () => performance.now() < deadline,
            body: () => client.Echo({ id: done, data }),
            step: () => void done++
          })
          yield* Effect.forEach(Array.from({ length: inFlight }), () => caller, {
            concurrency: "unbounded",
            discard: true
          })
          return done
        })
      ),
    stream: (n, mode, options = {}) =>
      run(
        Stream.runCount(
          client.Count(
            { n, mode, buffer: options.buffer ?? "none" },
            options.streamBufferSize === undefined ? undefined : { streamBufferSize: options.streamBufferSize }
          )
        )
      ),
    close: () => Effect.runPromise(Scope.close(scope, Exit.void))
  }
}

/** effect/rpc as its documentation shows it: RpcClient over NodeSocket.layerTls, no shoal code. */
export const bareEffect = (
  name: string,
  port: number,
  certs: Certs,
  options: { readonly serialization?: ServerSettings["serialization"]; readonly acks?: boolean } = {}
) => {
  const protocol =
    options.acks === false
      ? Layer.effect(
          EffectRpcClient.Protocol,
          Effect.map(EffectRpcClient.makeProtocolSocket(), (p) => ({ ...p, supportsAck: false }))
        )
      : EffectRpcClient.layerProtocolSocket()
  const layer = protocol.pipe(
    Layer.provide(serializationLayer(options.serialization)),
    Layer.provide(NodeSocket.layerTls({ host: "127.0.0.1", port, ca: readFileSync(certs.ca), servername: "localhost" }))
  )
  return effectContender(
    name,
    Effect.gen(function* () {
      const context = yield* Layer.build(layer)
      return yield* EffectRpcClient.make(BenchRpcs).pipe(Effect.provideContext(context))
    }) as Effect.Effect<BenchClient, unknown, Scope.Scope>
  )
}

/** shoal's RpcClient.connect to one address. */
export const shoalDirect = (name: string, port: number, certs: Certs) =>
  effectContender(
    name,
    RpcClient.connect(BenchRpcs, `127.0.0.1:${port}`, { ca: certs.ca, serverName: "localhost" }) as Effect.Effect<
      BenchClient,
      unknown,
      Scope.Scope
    >
  )

/** shoal's cluster client, from a cluster node of its own that joined the server's cluster. */
export const shoalCluster = (name: string, gossip: string, certs: Certs) =>
  effectContender(
    name,
    Effect.gen(function* () {
      const context = yield* Layer.build(
        Cluster.layer({ bindAddress: "127.0.0.1:0", nodeName: "bench-client", seedNodes: [gossip] })
      )
      const cluster = Context.get(context, Cluster)
      while ((yield* cluster.nodesByTags({ role: "bench" })).length === 0) yield* Effect.sleep("10 millis")
      const config = yield* RpcConfig.make({ ca: certs.ca, serverName: "localhost" })
      const { client } = yield* ClusterClient.make(BenchRpcs, config, { tags: { role: "bench" } }).pipe(
        Effect.provideService(Cluster, cluster)
      )
      return client
    }) as Effect.Effect<BenchClient, unknown, Scope.Scope>
  )

// --- gRPC ---

export const grpc = async (name: string, port: number, certs: Certs): Promise<Contender> => {
  const Client = Grpc.makeGenericClientConstructor(grpcService as unknown as Grpc.ServiceDefinition, "Bench")
  const client = new Client(`127.0.0.1:${port}`, Grpc.credentials.createSsl(readFileSync(certs.ca)), {
    "grpc.ssl_target_name_override": "localhost",
    "grpc.default_authority": "localhost"
  }) as unknown as Grpc.Client & {
    echo: (request: Buffer, callback: (error: Grpc.ServiceError | null, reply: Buffer) => void) => void
    count: (request: Buffer) => Grpc.ClientReadableStream<Buffer>
  }
  const echo = (request: Buffer) =>
    new Promise<Buffer>((resolve, reject) =>
      client.echo(request, (error, reply) => (error ? reject(error) : resolve(reply)))
    )
  const small = Buffer.concat([Buffer.alloc(4), SMALL])
  return {
    name,
    latency: async (calls) => {
      const out: Array<number> = []
      for (let i = 0; i < calls; i++) {
        const started = performance.now()
        await echo(small)
        out.push(performance.now() - started)
      }
      return out
    },
    throughput: async (millis, inFlight, size) => {
      const data = Buffer.alloc(size + 4, 1)
      const deadline = performance.now() + millis
      let done = 0
      await Promise.all(
        Array.from({ length: inFlight }, async () => {
          while (performance.now() < deadline) {
            await echo(data)
            done++
          }
        })
      )
      return done
    },
    stream: (n, mode) =>
      new Promise<number>((resolve, reject) => {
        let received = 0
        const call = client.count(grpcStreamRequest(n, mode))
        call.on("data", () => void received++)
        call.on("end", () => resolve(received))
        call.on("error", reject)
      }),
    close: async () => client.close()
  }
}

// --- the node:tls floor ---

export const floor = async (name: string, port: number, certs: Certs): Promise<Contender> => {
  const socket = await new Promise<Tls.TLSSocket>((resolve, reject) => {
    const s = Tls.connect({ host: "127.0.0.1", port, ca: readFileSync(certs.ca), servername: "localhost" }, () =>
      resolve(s)
    )
    s.once("error", reject)
  })
  socket.setNoDelay(true)
  let nextId = 0
  const unary = new Map<number, () => void>()
  const streams = new Map<number, { count: number; resolve: (n: number) => void }>()
  socket.on(
    "data",
    framer((type, id) => {
      if (type === FRAME_ECHO) {
        const done = unary.get(id)
        unary.delete(id)
        done?.()
      } else if (type === FRAME_ITEM) {
        const stream = streams.get(id)
        if (stream) stream.count++
      } else if (type === FRAME_END) {
        const stream = streams.get(id)
        streams.delete(id)
        stream?.resolve(stream.count)
      }
    })
  )
  const echo = (payload: Uint8Array) =>
    new Promise<void>((resolve) => {
      const id = nextId++ >>> 0
      unary.set(id, resolve)
      socket.write(frame(FRAME_ECHO, id, payload))
    })
  return {
    name,
    latency: async (calls) => {
      const out: Array<number> = []
      const payload = Buffer.concat([Buffer.alloc(4), SMALL])
      for (let i = 0; i < calls; i++) {
        const started = performance.now()
        await echo(payload)
        out.push(performance.now() - started)
      }
      return out
    },
    throughput: async (millis, inFlight, size) => {
      const payload = Buffer.alloc(size + 4, 1)
      const deadline = performance.now() + millis
      let done = 0
      await Promise.all(
        Array.from({ length: inFlight }, async () => {
          while (performance.now() < deadline) {
            await echo(payload)
            done++
          }
        })
      )
      return done
    },
    stream: (n, mode) =>
      new Promise<number>((resolve) => {
        const id = nextId++ >>> 0
        streams.set(id, { count: 0, resolve })
        const request = Buffer.alloc(5)
        request.writeUInt32BE(n, 0)
        request.writeUInt8(mode === "chunked" ? 0 : 1, 4)
        socket.write(frame(FRAME_STREAM, id, request))
      }),
    close: async () => void socket.destroy()
  }
}
