/**
 * RpcServer over real TLS on 127.0.0.1: plain serving, typed start errors,
 * the order of listener and cluster at start and stop, and repeated
 * start/stop in one process. Ports are the system's (port 0); every wait is
 * bounded.
 */
import * as Net from "node:net"
import { assert, describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Layer, Logger, Option, References, Scope, Stream } from "effect"
import { Cluster } from "../../src/cluster/Cluster.ts"
import { formatAddress } from "../../src/cluster/Node.ts"
import * as RpcClient from "../../src/rpc/RpcClient.ts"
import type * as RpcConfig from "../../src/rpc/RpcConfig.ts"
import { RpcServer } from "../../src/rpc/RpcServer.ts"
import { certs } from "../fixtures/certs.ts"
import {
  clientConfig,
  fastCluster,
  handlers,
  makeProbe,
  nodeConfig,
  startMember,
  startServer,
  stop,
  TestRpcs,
  waitFor,
  within
} from "./helpers.ts"

/** Log lines of the current test, with their annotations, in order. */
const captureLogs = () => {
  const lines: Array<{ readonly message: string; readonly annotations: Readonly<Record<string, unknown>> }> = []
  const logger = Logger.make((options) => {
    const message = Array.isArray(options.message) ? options.message.join(" ") : String(options.message)
    lines.push({ message, annotations: options.fiber.getRef(References.CurrentLogAnnotations) })
  })
  return { lines, logger, layer: Logger.layer([logger]) }
}

/** Whether something accepts TCP connections at `port` on 127.0.0.1. */
const accepts = (port: number) =>
  Effect.callback<boolean>((resume) => {
    const socket = Net.createConnection({ host: "127.0.0.1", port })
    socket.once("connect", () => {
      socket.destroy()
      resume(Effect.succeed(true))
    })
    socket.once("error", () => resume(Effect.succeed(false)))
    return Effect.sync(() => socket.destroy())
  })

/** A port nothing listens on (the system gave it to a socket that is closed again). */
const freePort = Effect.callback<number>((resume) => {
  const server = Net.createServer()
  server.listen(0, "127.0.0.1", () => {
    const port = (server.address() as Net.AddressInfo).port
    server.close(() => resume(Effect.succeed(port)))
  })
})

const sockets = () =>
  process
    .getActiveResourcesInfo()
    .filter((r) => r === "UDPWrap" || r === "TCPServerWrap" || r === "TCPSocketWrap" || r === "TLSWrap").length

describe("RpcServer over TLS (127.0.0.1)", () => {
  it.live("serves a unary call, a streaming call and a typed error; no cluster, nothing discovered", () =>
    Effect.gen(function* () {
      const tls = yield* certs
      const running = yield* startServer(yield* nodeConfig(tls), makeProbe("solo"))
      assert.notStrictEqual(running.server.address.port, 0)
      assert.strictEqual(running.server.address.host, "127.0.0.1")
      assert.isTrue(Option.isNone(running.server.cluster))
      assert.deepStrictEqual(yield* running.server.discoverNodes({ role: "worker" }), [])

      const client = yield* RpcClient.connect(TestRpcs, running.server.address, yield* clientConfig(tls))
      const reply = yield* client.Echo({ text: "hello" }).pipe(within(5_000, "echo"))
      assert.strictEqual(reply.text, "hello")
      assert.strictEqual(reply.node, "solo")

      const counted = yield* Stream.runCollect(client.Count({ n: 1000 })).pipe(within(5_000, "count"))
      assert.deepStrictEqual(
        counted,
        Array.from({ length: 1000 }, (_, i) => i + 1)
      )

      const error = yield* Effect.flip(client.Fail({ reason: "on purpose" })).pipe(within(5_000, "fail"))
      assert.strictEqual(error._tag, "Boom")
      assert.deepStrictEqual(running.probe.calls, ["Echo", "Count", "Fail"])
    })
  )

  it.live("a port in use fails the start with NetworkError", () =>
    Effect.gen(function* () {
      const tls = yield* certs
      const first = yield* startServer(yield* nodeConfig(tls), makeProbe("first"))
      const taken = formatAddress(first.server.address)
      const error = yield* Effect.flip(startServer(yield* nodeConfig(tls, { bindAddress: taken }), makeProbe("second")))
      assert.strictEqual(error._tag, "NetworkError")
      expect(error.message).toContain("EADDRINUSE")
      expect(error.message).toContain(taken)
      // the first server is untouched
      const client = yield* RpcClient.connect(TestRpcs, first.server.address, yield* clientConfig(tls))
      assert.strictEqual((yield* client.Echo({ text: "still here" })).node, "first")
    })
  )

  it.live("bad TLS files fail the start with InvalidConfiguration naming the field and file", () =>
    Effect.gen(function* () {
      const tls = yield* certs
      const missing = `${tls.dir}/missing.pem`
      const start = (input: RpcConfig.Input) =>
        Effect.flip(
          Layer.build(RpcServer.layerStandalone(TestRpcs, input).pipe(Layer.provide(handlers(makeProbe("x"))))).pipe(
            Effect.scoped
          )
        )
      const unreadable = yield* start({ certificate: missing, key: tls.node.key, bindAddress: "127.0.0.1:0" })
      assert.strictEqual(unreadable._tag, "InvalidConfiguration")
      if (unreadable._tag === "InvalidConfiguration") {
        assert.strictEqual(unreadable.field, "certificate")
        expect(unreadable.reason).toContain(missing)
      }
      const wrongKey = yield* start({ certificate: tls.node.cert, key: tls.client.key, bindAddress: "127.0.0.1:0" })
      assert.strictEqual(wrongKey._tag, "InvalidConfiguration")
      if (wrongKey._tag === "InvalidConfiguration") assert.strictEqual(wrongKey.field, "key")
      const noCertificate = yield* start({ ca: tls.ca, bindAddress: "127.0.0.1:0" })
      assert.strictEqual(noCertificate._tag, "InvalidConfiguration")
      if (noCertificate._tag === "InvalidConfiguration") assert.strictEqual(noCertificate.field, "certificate")
    })
  )

  it.live("with a cluster: joined before it serves, listener closed before it leaves", () =>
    Effect.gen(function* () {
      const tls = yield* certs
      const logs = captureLogs()
      const observer = yield* startMember(tls, "observer", {})
      const observerCluster = Option.getOrThrow(observer.server.cluster)
      const seed = formatAddress((yield* observerCluster.localNode).gossipAddress)
      const watch = yield* observerCluster.watch

      // The member's first seed takes the push-pull connection and holds it until
      // released, so the join cannot finish before the test says so. Meanwhile, as
      // soon as the listener is bound, a client connects and calls: the call must
      // be answered only after the join.
      const held: Array<Net.Socket> = []
      const blackHole = Net.createServer((socket) => void held.push(socket))
      yield* Effect.acquireRelease(
        Effect.callback<void>((resume) => void blackHole.listen(0, "127.0.0.1", () => resume(Effect.void))),
        () => Effect.sync(() => blackHole.close())
      )
      const holdSeed = `127.0.0.1:${(blackHole.address() as Net.AddressInfo).port}`
      const release = Effect.sync(() => {
        for (const socket of held) socket.destroy()
        blackHole.close()
      })

      const bound = yield* Deferred.make<string>()
      const logger = Logger.make((options) => {
        const message = Array.isArray(options.message) ? options.message.join(" ") : String(options.message)
        if (message === "rpc: listener bound") {
          const address = options.fiber.getRef(References.CurrentLogAnnotations).address
          Deferred.doneUnsafe(bound, Exit.succeed(String(address)))
        }
      })
      const scope = yield* Scope.make()
      const starting = yield* startMember(tls, "member", {
        seedNodes: [holdSeed, seed],
        tags: { role: "worker" }
      }).pipe(
        Scope.provide(scope),
        Effect.provide(Logger.layer([logs.logger, logger])),
        Effect.provideService(References.MinimumLogLevel, "Debug"),
        Effect.forkChild
      )
      const early = yield* Deferred.await(bound).pipe(within(10_000, "listener bound"))
      const client = yield* RpcClient.connect(TestRpcs, early, yield* clientConfig(tls))
      const call = yield* client.Echo({ text: "early" }).pipe(
        Effect.tap(() => Effect.sync(() => logs.lines.push({ message: "test: early call answered", annotations: {} }))),
        Effect.forkChild({ startImmediately: true })
      )
      logs.lines.push({ message: "test: early call sent", annotations: {} })
      yield* waitFor(
        "the member contacts the holding seed",
        Effect.sync(() => held.length > 0)
      )
      yield* release
      const member = yield* Fiber.join(starting).pipe(within(10_000, "member start"))
      assert.strictEqual((yield* Fiber.join(call).pipe(within(10_000, "early call"))).node, "member")

      const order = (message: string) => logs.lines.findIndex((line) => line.message === message)
      assert.isAbove(order("rpc: listener bound"), -1)
      assert.isAbove(order("test: early call sent"), order("rpc: listener bound"))
      assert.isAbove(order("rpc: cluster joined"), order("test: early call sent"))
      assert.isAbove(order("rpc: serving"), order("rpc: cluster joined"))
      assert.isAbove(order("test: early call answered"), order("rpc: serving"))

      // The member advertises its RPC address, not its gossip address.
      const memberCluster = Option.getOrThrow(member.server.cluster)
      const self = yield* memberCluster.localNode
      assert.strictEqual(formatAddress(self.rpcAddress!), formatAddress(member.server.address))
      assert.notStrictEqual(self.rpcAddress!.port, self.gossipAddress.port)
      yield* waitFor(
        "the observer sees the member's RPC address",
        Effect.map(observer.server.discoverNodes({ role: "worker" }), (nodes) =>
          nodes.some((n) => n.rpcAddress !== undefined && n.rpcAddress.port === member.server.address.port)
        )
      )

      // Stop: when the observer hears that the member left, its RPC port is already closed.
      const port = member.server.address.port
      const heardLeave = yield* watch.events.pipe(
        Stream.filter((event) => event._tag === "NodeLeft" && event.node.id === self.id),
        Stream.take(1),
        Stream.mapEffect(() => accepts(port)),
        Stream.runHead,
        Effect.forkChild({ startImmediately: true })
      )
      yield* Scope.close(scope, Exit.void).pipe(
        Effect.provide(logs.layer),
        Effect.provideService(References.MinimumLogLevel, "Debug")
      )
      const acceptedAtLeave = yield* Fiber.join(heardLeave).pipe(within(10_000, "leave heard"))
      assert.deepStrictEqual(acceptedAtLeave, Option.some(false))
      assert.isAbove(order("rpc: cluster released"), order("rpc: listener closed"))
    })
  )

  it.live("a failed join fails the start with JoinFailed and leaves nothing listening", () =>
    Effect.gen(function* () {
      const tls = yield* certs
      const nobody = yield* freePort
      const bound = yield* Deferred.make<number>()
      const logger = Logger.make((options) => {
        const message = Array.isArray(options.message) ? options.message.join(" ") : String(options.message)
        if (message === "rpc: listener bound") {
          const address = String(options.fiber.getRef(References.CurrentLogAnnotations).address)
          Deferred.doneUnsafe(bound, Exit.succeed(Number(address.split(":")[1])))
        }
      })
      const error = yield* Effect.flip(
        startMember(tls, "lonely", { seedNodes: [`127.0.0.1:${nobody}`], joinTimeout: "500 millis" })
      ).pipe(
        Effect.provide(Logger.layer([logger])),
        Effect.provideService(References.MinimumLogLevel, "Debug"),
        within(10_000, "failed start")
      )
      assert.strictEqual(error._tag, "JoinFailed")
      const port = yield* Deferred.await(bound)
      assert.isFalse(yield* accepts(port))
    })
  )

  it.live("starts and stops 10 times in one process, with a cluster, leaving no socket behind", () =>
    Effect.gen(function* () {
      const tls = yield* certs
      const client = yield* clientConfig(tls)
      const before = sockets()
      for (let i = 0; i < 10; i++) {
        const member = yield* startMember(tls, `cycle-${i}`, {})
        assert.isTrue(Option.isSome(member.server.cluster))
        yield* Effect.scoped(
          Effect.gen(function* () {
            const connection = yield* RpcClient.connect(TestRpcs, member.server.address, client)
            assert.strictEqual((yield* connection.Echo({ text: `round ${i}` })).text, `round ${i}`)
          })
        )
        yield* stop(member)
      }
      yield* waitFor(
        "sockets closed",
        Effect.sync(() => sockets() <= before),
        5_000
      )
    })
  )

  it.live("discoverNodes finds members by tag across 3 nodes", () =>
    Effect.gen(function* () {
      const tls = yield* certs
      const a = yield* startMember(tls, "a", { tags: { role: "director" } })
      const seed = formatAddress((yield* Option.getOrThrow(a.server.cluster).localNode).gossipAddress)
      const b = yield* startMember(tls, "b", { seedNodes: [seed], tags: { role: "worker", zone: "1" } })
      const c = yield* startMember(tls, "c", { seedNodes: [seed], tags: { role: "worker", zone: "2" } })
      const names = (tags: Record<string, string>) =>
        Effect.map(a.server.discoverNodes(tags), (nodes) => nodes.map((n) => n.name).sort())
      yield* waitFor(
        "a sees both workers",
        Effect.map(names({ role: "worker" }), (found) => found.join() === "b,c")
      )
      assert.deepStrictEqual(yield* names({ role: "worker", zone: "2" }), ["c"])
      assert.deepStrictEqual(yield* names({ role: "director" }), ["a"])
      assert.deepStrictEqual(yield* names({ role: "nobody" }), [])
      // every discovered member carries the RPC address its server listens on
      const found = yield* a.server.discoverNodes({ role: "worker" })
      const ports = found.map((n) => n.rpcAddress?.port).sort()
      assert.deepStrictEqual(ports, [b.server.address.port, c.server.address.port].sort())
      // and the cluster is the server's
      const cluster = Option.getOrThrow(c.server.cluster)
      yield* waitFor(
        "c sees a",
        Effect.map(cluster.nodesByTags({ role: "director" }), (nodes) => nodes.length === 1)
      )
      void Cluster
      void fastCluster
    })
  )
})
