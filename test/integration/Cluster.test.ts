/**
 * The cluster on real UDP/TCP sockets on 127.0.0.1, with short protocol
 * timings so failure detection takes well under a second. Every wait is a
 * poll with a deadline, never a fixed sleep standing in for an assertion.
 */
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Exit, Layer, Scope } from "effect"
import { Cluster, type LayerOptions } from "../../src/cluster/Cluster.ts"
import type * as ClusterConfig from "../../src/cluster/Config.ts"
import { type ClusterNode, formatAddress, type NodeState } from "../../src/cluster/Node.ts"
import { fastCluster, waitFor } from "../fixtures/live.ts"

const fast = fastCluster

interface RealNode {
  readonly cluster: Cluster["Service"]
  readonly scope: Scope.Closeable
  readonly self: ClusterNode
}

const start = (input: ClusterConfig.Input, options: LayerOptions = {}) =>
  Effect.gen(function* () {
    const scope = yield* Scope.make()
    const context = yield* Layer.buildWithScope(Cluster.layer({ ...fast, ...input }, options), scope).pipe(
      Effect.onError(() => Scope.close(scope, Exit.void))
    )
    const cluster = Context.get(context, Cluster)
    return { cluster, scope, self: yield* cluster.localNode } satisfies RealNode
  })

const stop = (node: RealNode) => Scope.close(node.scope, Exit.void)

const stateOf = (observer: RealNode, subject: RealNode) =>
  Effect.map(observer.cluster.members, (members) => members.find((m) => m.id === subject.self.id)?.state)

const allSee = (observers: ReadonlyArray<RealNode>, subjects: ReadonlyArray<RealNode>, state: NodeState) =>
  Effect.gen(function* () {
    for (const o of observers) for (const s of subjects) if ((yield* stateOf(o, s)) !== state) return false
    return true
  })

const seedOf = (node: RealNode) => formatAddress(node.self.gossipAddress)

const startThree = Effect.gen(function* () {
  const a = yield* start({ nodeName: "a", tags: { role: "director" } })
  const b = yield* start({ nodeName: "b", seedNodes: [seedOf(a)], tags: { role: "worker" } })
  const c = yield* start({ nodeName: "c", seedNodes: [seedOf(a)], tags: { role: "worker" } })
  return [a, b, c] as const
})

/** Sockets and timers of this process; a running fiber that sleeps holds a Timeout. */
const handles = () =>
  process
    .getActiveResourcesInfo()
    .filter((r) => r === "UDPWrap" || r === "TCPServerWrap" || r === "TCPSocketWrap" || r === "Timeout").length

describe("Cluster on 127.0.0.1", () => {
  it.live("3 nodes form a cluster and discover each other by tag", () =>
    Effect.gen(function* () {
      const nodes = yield* startThree
      yield* waitFor("all see all alive", allSee(nodes, nodes, "Alive"))
      const workers = yield* nodes[0].cluster.nodesByTags({ role: "worker", healthy: "true" })
      expect(workers.map((w) => w.name).sort()).toEqual(["b", "c"])
      expect(workers.every((w) => w.gossipAddress.host === "127.0.0.1" && w.gossipAddress.port > 0)).toBe(true)
      yield* Effect.forEach(nodes, stop, { discard: true })
    })
  )

  it.live("a killed node (no leave) is detected as Failed by the other two", () =>
    Effect.gen(function* () {
      const a = yield* start({ nodeName: "a" })
      const b = yield* start({ nodeName: "b", seedNodes: [seedOf(a)] })
      const victim = yield* start({ nodeName: "victim", seedNodes: [seedOf(a)] }, { leaveOnClose: false })
      yield* waitFor("formed", allSee([a, b, victim], [a, b, victim], "Alive"))
      yield* stop(victim)
      // The deadline is a bound on a correct run, not a speed check: a pass (2·200 ms) + a probe
      // (200 ms) + suspicion (400 ms…2.4 s) + gossip is far below it.
      yield* waitFor("victim Failed at a and b", allSee([a, b], [victim], "Dead"), 10_000)
      yield* Effect.forEach([a, b], stop, { discard: true })
    })
  )

  it.live("graceful leave: the others see Left", () =>
    Effect.gen(function* () {
      const nodes = yield* startThree
      yield* waitFor("formed", allSee(nodes, nodes, "Alive"))
      yield* stop(nodes[2])
      yield* waitFor("c Left at a and b", allSee([nodes[0], nodes[1]], [nodes[2]], "Left"))
      yield* Effect.forEach([nodes[0], nodes[1]], stop, { discard: true })
    })
  )

  it.live("a node restarted on the same port with a new id replaces the old member", () =>
    Effect.gen(function* () {
      const a = yield* start({ nodeName: "a" })
      const b = yield* start({ nodeName: "b", seedNodes: [seedOf(a)] })
      const first = yield* start({ nodeName: "c", seedNodes: [seedOf(a)] }, { leaveOnClose: false })
      yield* waitFor("formed", allSee([a, b, first], [a, b, first], "Alive"))
      const port = first.self.gossipAddress.port
      yield* stop(first)
      const second = yield* start({ nodeName: "c", bindAddress: `127.0.0.1:${port}`, seedNodes: [seedOf(a)] })
      expect(second.self.id).not.toBe(first.self.id)
      yield* waitFor("new c alive everywhere", allSee([a, b], [second], "Alive"))
      yield* waitFor("old c gone", allSee([a, b], [first], "Dead"))
      const aliveAtPort = (yield* a.cluster.aliveMembers).filter((m) => m.gossipAddress.port === port)
      expect(aliveAtPort.map((m) => m.id)).toEqual([second.self.id])
      yield* Effect.forEach([a, b, second], stop, { discard: true })
    })
  )

  it.live("a join with no seed answering fails with JoinFailed, unless retryJoin", () =>
    Effect.gen(function* () {
      const error = yield* start({ seedNodes: ["127.0.0.1:1"], joinTimeout: "300 millis" }).pipe(Effect.flip)
      expect(error._tag).toBe("JoinFailed")
      const alone = yield* start({ seedNodes: ["127.0.0.1:1"], joinTimeout: "300 millis", retryJoin: true })
      expect((yield* alone.cluster.members).length).toBe(1)
      yield* stop(alone)
    })
  )

  it.live(
    "20 start/stop cycles leave no open sockets or running fibers",
    () =>
      Effect.gen(function* () {
        const anchor = yield* start({ nodeName: "anchor" })
        const baseline = handles()
        for (let i = 0; i < 20; i++) {
          const node = yield* start({ nodeName: `cycle-${i}`, seedNodes: [seedOf(anchor)] })
          yield* waitFor(
            "joined",
            Effect.map(anchor.cluster.aliveMembers, (m) => m.some((x) => x.id === node.self.id))
          )
          yield* stop(node)
        }
        // Sockets close synchronously with the scope; allow the event loop a moment for timers.
        yield* waitFor(
          "handles back to baseline",
          Effect.sync(() => handles() <= baseline),
          5_000
        )
        yield* stop(anchor)
      }),
    60_000
  )
})
