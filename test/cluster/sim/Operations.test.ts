/**
 * The library calls behind the operator commands, on the simulated network:
 * `updateTags` merges, `join` joins through more members, `forceLeave` turns a
 * failed member into a departed one everywhere and refuses a live one, and
 * `phiReadings` reports phi and last heartbeat.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Random, type Scope } from "effect"
import { SimNetwork } from "../../../src/cluster/gossip/SimNetwork.ts"
import { addressOf, advanceUntil, allSee, crash, runWithClock, startCluster, startNode, stopAll } from "./harness.ts"

const sim = <A, E>(seed: number, effect: Effect.Effect<A, E, SimNetwork | Scope.Scope>) =>
  effect.pipe(Effect.scoped, Effect.provide(SimNetwork.layer), Random.withSeed(seed))

describe("operator calls on Cluster", () => {
  it.effect("updateTags merges into the tags instead of replacing them, and the others see the result", () =>
    sim(
      21,
      Effect.gen(function* () {
        const nodes = yield* startCluster(2, { tags: { role: "web", zone: "a" } })
        yield* advanceUntil(allSee(nodes, nodes, "Alive"), 10_000)
        const updated = yield* nodes[1]!.cluster.updateTags({ set: { version: "2", zone: "b" }, remove: ["role"] })
        expect(updated.tags).toEqual({ zone: "b", version: "2", healthy: "true" })
        const id = updated.id
        const seen = yield* advanceUntil(
          Effect.map(nodes[0]!.cluster.members, (members) => members.find((m) => m.id === id)?.tags.version === "2"),
          10_000
        )
        expect(seen).toBeDefined()
        // the reserved tag stays the cluster's
        const refused = yield* Effect.flip(nodes[1]!.cluster.updateTags({ set: { healthy: "false" } }))
        expect(refused._tag).toBe("InvalidConfiguration")
        yield* stopAll(nodes)
      })
    )
  )

  it.effect("join reaches a member the node did not know, and fails with JoinFailed when nobody answers", () =>
    sim(
      22,
      Effect.gen(function* () {
        const a = yield* startNode(0)
        const b = yield* startNode(1, {}, [])
        expect((yield* a.cluster.members).length).toBe(1)
        const answered = yield* runWithClock(a.cluster.join([String(addressOf(1))]))
        expect(answered).toBe(1)
        expect(yield* advanceUntil(allSee([a, b], [a, b], "Alive"), 10_000)).toBeDefined()
        const failed = yield* runWithClock(Effect.flip(a.cluster.join([String(addressOf(9))])))
        expect(failed._tag).toBe("JoinFailed")
        yield* stopAll([a, b])
      })
    )
  )

  it.effect("forceLeave marks a failed member Left on every member and refuses a live one", () =>
    sim(
      23,
      Effect.gen(function* () {
        const nodes = yield* startCluster(4, { reapAfter: "10 minutes" })
        yield* advanceUntil(allSee(nodes, nodes, "Alive"), 10_000)
        const [a, b, c, d] = nodes as [(typeof nodes)[0], (typeof nodes)[0], (typeof nodes)[0], (typeof nodes)[0]]
        const alive = yield* Effect.flip(a.cluster.forceLeave("n1"))
        expect(alive._tag).toBe("NotFailed")
        const unknown = yield* Effect.flip(a.cluster.forceLeave("nobody"))
        expect(unknown._tag).toBe("NodeNotFound")

        yield* crash(d)
        expect(yield* advanceUntil(allSee([a, b, c], [d], "Dead"), 60_000)).toBeDefined()
        const forced = yield* a.cluster.forceLeave("n3")
        expect(forced.state).toBe("Left")
        // gossiped: the other survivors hold it Left too
        expect(yield* advanceUntil(allSee([a, b, c], [d], "Left"), 10_000)).toBeDefined()
        yield* stopAll([a, b, c])
      })
    )
  )

  it.effect("phiReadings reports phi and the last heartbeat of every member heard from", () =>
    sim(
      24,
      Effect.gen(function* () {
        const nodes = yield* startCluster(3)
        yield* advanceUntil(allSee(nodes, nodes, "Alive"), 10_000)
        yield* advanceUntil(Effect.succeed(false), 5_000)
        const readings = yield* nodes[0]!.cluster.phiReadings
        const ids = new Set<string>()
        for (const node of nodes.slice(1)) ids.add((yield* node.cluster.localNode).id)
        expect(new Set(readings.map((r) => r.id))).toEqual(ids)
        for (const reading of readings) {
          expect(reading.phi).toBeGreaterThanOrEqual(0)
          expect(reading.lastHeartbeat).toBeTypeOf("number")
        }
        yield* stopAll(nodes)
      })
    )
  )
})
