/**
 * `Cluster.reachability` on the simulated network: one member cut off is
 * reported unreachable within a probe's budget, the others by the route that
 * reaches them — directly, through a helper when our own link to it is cut,
 * over TCP when its datagrams are all lost.
 */
import { describe, expect, it } from "@effect/vitest"
import { Clock, Effect, Random, type Scope } from "effect"
import { SimNetwork } from "../../../src/cluster/gossip/SimNetwork.ts"
import { advanceUntil, allSee, runWithClock, startCluster, stopAll } from "./harness.ts"

const sim = <A, E>(seed: number, effect: Effect.Effect<A, E, SimNetwork | Scope.Scope>) =>
  effect.pipe(Effect.scoped, Effect.provide(SimNetwork.layer), Random.withSeed(seed))

describe("Cluster.reachability", () => {
  it.effect("reports a member cut off as unreachable within a probe's budget, the others direct", () =>
    sim(
      31,
      Effect.gen(function* () {
        const network = yield* SimNetwork
        const nodes = yield* startCluster(4)
        expect(yield* advanceUntil(allSee(nodes, nodes, "Alive"), 10_000)).toBeDefined()
        yield* network.isolate(nodes[3]!.address)
        const started = yield* Clock.currentTimeMillis
        const report = yield* runWithClock(nodes[0]!.cluster.reachability())
        const took = (yield* Clock.currentTimeMillis) - started
        expect(report.map((r) => [r.node.name, r.outcome])).toEqual([
          ["n1", "direct"],
          ["n2", "direct"],
          ["n3", "unreachable"]
        ])
        // 1 ms each way on the simulated links
        for (const r of report.slice(0, 2)) expect(r.rtt).toBe(2)
        expect(report[2]!.rtt).toBeUndefined()
        expect(report[2]!.helpers).toBe(2)
        // the probe interval (1 s, health score 0), plus the clock's step
        expect(took).toBeLessThanOrEqual(1005)
        yield* stopAll(nodes)
      })
    )
  )

  it.effect("a cut link is answered through a helper, lost datagrams over TCP", () =>
    sim(
      32,
      Effect.gen(function* () {
        const network = yield* SimNetwork
        const nodes = yield* startCluster(4)
        expect(yield* advanceUntil(allSee(nodes, nodes, "Alive"), 10_000)).toBeDefined()
        const [a, , c, d] = nodes as [(typeof nodes)[0], (typeof nodes)[0], (typeof nodes)[0], (typeof nodes)[0]]
        yield* network.cut(a.address, c.address)
        yield* network.cut(c.address, a.address)
        // every datagram to and from d is lost; streams are reliable
        yield* network.setNode(d.address, { loss: 1 })
        const report = yield* runWithClock(a.cluster.reachability({ timeout: "2 seconds" }))
        expect(report.map((r) => [r.node.name, r.outcome])).toEqual([
          ["n1", "direct"],
          ["n2", "indirect"],
          ["n3", "tcp"]
        ])
        const [, indirect, tcp] = report
        expect(indirect!.helpers).toBeGreaterThan(0)
        // the ping timeout (500 ms) passed before either went on
        expect(indirect!.rtt).toBeGreaterThan(500)
        expect(tcp!.rtt).toBeGreaterThan(500)
        yield* network.heal
        yield* network.clearNode(d.address)
        yield* stopAll(nodes)
      })
    )
  )
})
