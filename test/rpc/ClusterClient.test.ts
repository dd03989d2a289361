/**
 * The cluster client over real TLS and a real cluster on 127.0.0.1: a
 * director (a server that is a member) calls three workers. Handlers say
 * which worker answered; `Hold` calls stay open until the test releases the
 * worker's gate, so "slow" is decided by the test, not by a clock.
 */
import { assert, describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Option, Stream } from "effect"
import { Cluster } from "../../src/cluster/Cluster.ts"
import { ClusterNode, formatAddress } from "../../src/cluster/Node.ts"
import type { Strategy } from "../../src/rpc/Balancer.ts"
import * as ClusterClient from "../../src/rpc/ClusterClient.ts"
import * as RpcClient from "../../src/rpc/RpcClient.ts"
import { certs, type TestCerts } from "../fixtures/certs.ts"
import { clientConfig, type RunningServer, startMember, stop, TestRpcs, waitFor, within } from "./helpers.ts"

interface Fleet {
  readonly director: RunningServer
  readonly workers: ReadonlyArray<RunningServer>
  readonly cluster: Cluster["Service"]
}

/** A director and three workers, all seeing each other. */
const fleet = (tls: TestCerts) =>
  Effect.gen(function* () {
    const director = yield* startMember(tls, "director", { tags: { role: "director" } })
    const cluster = Option.getOrThrow(director.server.cluster)
    const seed = formatAddress((yield* cluster.localNode).gossipAddress)
    const workers: Array<RunningServer> = []
    for (const name of ["w1", "w2", "w3"]) {
      workers.push(
        yield* startMember(tls, name, { seedNodes: [seed], tags: { role: "worker" } }, { leaveOnClose: false })
      )
    }
    yield* waitFor(
      "the director sees three healthy workers",
      Effect.map(cluster.nodesByTags({ role: "worker", healthy: "true" }), (nodes) => nodes.length === 3)
    )
    return { director, workers, cluster } satisfies Fleet
  })

const clientOf = (tls: TestCerts, f: Fleet, strategy: Strategy) =>
  Effect.gen(function* () {
    return yield* ClusterClient.make(TestRpcs, yield* clientConfig(tls), {
      tags: { role: "worker", healthy: "true" },
      strategy
    }).pipe(Effect.provideService(Cluster, f.cluster))
  })

const count = (worker: RunningServer, tag: string) => worker.probe.calls.filter((t) => t === tag).length

describe("ClusterClient over a real cluster (127.0.0.1)", () => {
  it.live("discover → connect → call", () =>
    Effect.gen(function* () {
      const tls = yield* certs
      const f = yield* fleet(tls)
      const workers = yield* f.director.server.discoverNodes({ role: "worker" })
      assert.strictEqual(workers.length, 3)
      const config = yield* clientConfig(tls)
      const answers: Array<string> = []
      for (const node of workers) {
        const client = yield* RpcClient.connect(TestRpcs, node, config)
        answers.push((yield* client.Echo({ text: node.name }).pipe(within(5_000, "echo"))).node)
      }
      assert.deepStrictEqual(
        answers,
        workers.map((n) => n.name)
      )
      // a member that advertises no RPC address cannot be dialed
      const { id, gossipAddress, tags, state, incarnation } = workers[0]!
      const bare = new ClusterNode({ id, name: "bare", gossipAddress, tags, state, incarnation })
      const error = yield* Effect.flip(RpcClient.connect(TestRpcs, bare, config))
      assert.strictEqual(error._tag, "NoRpcAddress")
      expect(error.message).toContain("bare")
    })
  )

  it.live("round-robin spreads calls exactly evenly", () =>
    Effect.gen(function* () {
      const tls = yield* certs
      const f = yield* fleet(tls)
      const { client } = yield* clientOf(tls, f, "round-robin")
      for (let i = 0; i < 30; i++) yield* client.Echo({ text: `${i}` }).pipe(within(5_000, "echo"))
      assert.deepStrictEqual(
        f.workers.map((w) => count(w, "Echo")),
        [10, 10, 10]
      )
      assert.strictEqual(count(f.director, "Echo"), 0)
      // concurrent calls too
      yield* Effect.forEach(Array.from({ length: 30 }), (_, i) => client.Echo({ text: `${i}` }), {
        concurrency: 30,
        discard: true
      }).pipe(within(5_000, "concurrent echoes"))
      assert.deepStrictEqual(
        f.workers.map((w) => count(w, "Echo")),
        [20, 20, 20]
      )
      // a stream goes to one member, in turn
      assert.deepStrictEqual(yield* Stream.runCollect(client.Count({ n: 5 })), [1, 2, 3, 4, 5])
    })
  )

  it.live("least-in-flight sends new calls away from a member holding a slow call", () =>
    Effect.gen(function* () {
      const tls = yield* certs
      const f = yield* fleet(tls)
      const { client, inFlight } = yield* clientOf(tls, f, "least-in-flight")
      const slow = yield* client.Hold({ text: "slow" }).pipe(Effect.forkChild)
      const busy = yield* Effect.raceAll(f.workers.map((w) => Effect.as(Deferred.await(w.probe.holding), w))).pipe(
        within(5_000, "the slow call starts")
      )
      assert.strictEqual((yield* inFlight).get(yield* nodeIdOf(busy)), 1)

      for (let i = 0; i < 20; i++) yield* client.Echo({ text: `${i}` }).pipe(within(5_000, "echo"))
      const others = f.workers.filter((w) => w !== busy)
      assert.strictEqual(count(busy, "Echo"), 0)
      assert.deepStrictEqual(
        others.map((w) => count(w, "Echo")),
        [10, 10]
      )

      yield* Deferred.succeed(busy.probe.gate, undefined)
      assert.strictEqual((yield* Fiber.join(slow).pipe(within(5_000, "slow call"))).node, busy.probe.name)
      // once it is idle again it takes its share
      for (let i = 0; i < 3; i++) yield* client.Echo({ text: `${i}` })
      assert.strictEqual(count(busy, "Echo"), 1)
    })
  )

  it.live("a failed member stops receiving calls and its connection is dropped", () =>
    Effect.gen(function* () {
      const tls = yield* certs
      const f = yield* fleet(tls)
      const { client, members, connected } = yield* clientOf(tls, f, "round-robin")
      for (let i = 0; i < 6; i++) yield* client.Echo({ text: `${i}` })
      assert.strictEqual((yield* connected).length, 3)

      const [w1, w2, w3] = f.workers as [RunningServer, RunningServer, RunningServer]
      const failedId = yield* nodeIdOf(w3)
      yield* stop(w3) // no leave: the others have to detect the failure
      yield* waitFor(
        "the cluster marks w3 as failed",
        Effect.map(f.cluster.members, (all) => all.some((n) => n.id === failedId && n.state === "Dead")),
        15_000
      )
      yield* waitFor(
        "the client no longer considers w3",
        Effect.map(
          members,
          (nodes) =>
            nodes
              .map((n) => n.name)
              .sort()
              .join() === "w1,w2"
        )
      )
      yield* waitFor(
        "the connection to w3 is dropped",
        Effect.map(connected, (ids) => !ids.includes(failedId))
      )

      const before = count(w3, "Echo")
      for (let i = 0; i < 20; i++) yield* client.Echo({ text: `${i}` }).pipe(within(5_000, "echo"))
      assert.strictEqual(count(w3, "Echo"), before)
      assert.strictEqual(count(w1, "Echo") + count(w2, "Echo"), 4 + 20)
      assert.strictEqual(count(w1, "Echo") - 2, 10)
    })
  )

  it.live("an idempotent call is retried on another member when its connection breaks mid-call", () =>
    Effect.gen(function* () {
      const tls = yield* certs
      const f = yield* fleet(tls)
      const { client } = yield* clientOf(tls, f, "round-robin")
      const call = yield* client.Hold({ text: "again" }).pipe(Effect.forkChild)
      const first = yield* Effect.raceAll(f.workers.map((w) => Effect.as(Deferred.await(w.probe.holding), w))).pipe(
        within(5_000, "the call starts")
      )
      yield* stop(first) // the member goes away with the call in flight
      const second = yield* Effect.raceAll(
        f.workers.filter((w) => w !== first).map((w) => Effect.as(Deferred.await(w.probe.holding), w))
      ).pipe(within(5_000, "the call is retried elsewhere"))
      yield* Deferred.succeed(second.probe.gate, undefined)
      const reply = yield* Fiber.join(call).pipe(within(5_000, "the retried call"))
      assert.strictEqual(reply.node, second.probe.name)
      assert.strictEqual(count(first, "Hold"), 1)
      assert.strictEqual(count(second, "Hold"), 1)
    })
  )

  it.live("a call not declared idempotent fails with a typed error instead of running twice", () =>
    Effect.gen(function* () {
      const tls = yield* certs
      const f = yield* fleet(tls)
      const { client } = yield* clientOf(tls, f, "round-robin")
      const call = yield* client.HoldOnce({ text: "once" }).pipe(Effect.flip, Effect.forkChild)
      const first = yield* Effect.raceAll(f.workers.map((w) => Effect.as(Deferred.await(w.probe.holding), w))).pipe(
        within(5_000, "the call starts")
      )
      yield* stop(first)
      const error = yield* Fiber.join(call).pipe(within(5_000, "the failed call"))
      assert.strictEqual(error._tag, "RpcClientError")
      assert.strictEqual(
        f.workers.reduce((n, w) => n + count(w, "HoldOnce"), 0),
        1
      )
    })
  )

  it.live("no member with the tags: NoMemberAvailable", () =>
    Effect.gen(function* () {
      const tls = yield* certs
      const director = yield* startMember(tls, "director", { tags: { role: "director" } })
      const { client } = yield* ClusterClient.make(TestRpcs, yield* clientConfig(tls), {
        tags: { role: "worker" }
      }).pipe(Effect.provideService(Cluster, Option.getOrThrow(director.server.cluster)))
      const error = yield* Effect.flip(client.Echo({ text: "anyone?" }))
      assert.strictEqual(error._tag, "NoMemberAvailable")
      expect(error.message).toContain("role=worker")
    })
  )
})

const nodeIdOf = (running: RunningServer) =>
  Effect.map(Option.getOrThrow(running.server.cluster).localNode, (n) => n.id)
