/**
 * Restarts and address clashes on the simulated network: a process that
 * comes back with the same id (fast, or after it was reaped), with a new id on
 * the same address (again and again), and a newcomer that advertises a live
 * member's address by mistake. The first three cases come from the review
 * reproductions (R1, R2, R5); each keeps the assertion that failed before.
 */
import { assert, describe, expect, it } from "@effect/vitest"
import { Effect, Random } from "effect"
import { TestClock } from "effect/testing"
import { SimNetwork } from "../../../src/cluster/gossip/SimNetwork.ts"
import { makeNodeId } from "../../../src/cluster/Node.ts"
import { addressOf, advanceUntil, allSee, crash, type SimNode, startNode, stopAll, viewOf } from "./harness.ts"

const P = 1000

const sim = <A, E>(seed: number, effect: Effect.Effect<A, E, SimNetwork>) =>
  effect.pipe(Effect.provide(SimNetwork.layer), Random.withSeed(seed))

const FIXED_ID = "7b3f5a0e-2c4d-4e8f-9a1b-3c5d7e9f1a2b"

const knows = (observer: SimNode, id: string) =>
  Effect.map(observer.cluster.members, (ms) => ms.some((m) => m.id === id))

describe("restart with the same node id", () => {
  it.effect(
    "R1: a fast restart (same id, same address, new tags) is re-announced: the cluster takes the new tags",
    () =>
      sim(
        101,
        Effect.gen(function* () {
          const network = yield* SimNetwork
          const n0 = yield* startNode(0)
          const n1 = yield* startNode(1)
          const n2 = yield* startNode(2, { nodeId: FIXED_ID, tags: { version: "1" } })
          const nodes = [n0, n1, n2]
          yield* advanceUntil(allSee(nodes, nodes, "Alive"), 10_000)
          yield* TestClock.adjust(5_000)
          const before = yield* n2.cluster.localNode
          // Process restart (e.g. systemd / StatefulSet) with new configuration, before anyone noticed.
          yield* crash(n2)
          yield* network.heal
          const n2b = yield* startNode(2, { nodeId: FIXED_ID, tags: { version: "2" } })
          // Both lives start at the same incarnation; the seed's answer to the join carried the
          // previous life's Alive at it, with other tags, and the new life refuted it.
          const after = yield* n2b.cluster.localNode
          expect(after.incarnation).toBeGreaterThan(before.incarnation)
          yield* TestClock.adjust(120_000)
          // memberlist (state.go aliveNode, "Restart with configuration C'") refutes an Alive about
          // itself at the same incarnation whose meta differs.
          const seen = yield* viewOf(n0, n2b)
          expect(seen?.state).toBe("Alive")
          expect(seen?.tags.version).toBe("2")
          expect((yield* viewOf(n1, n2b))?.tags.version).toBe("2")
          yield* stopAll([n0, n1, n2b])
        })
      ),
    60_000
  )

  it.effect(
    "R2: a node restarted with the same id after it was reaped is told of its tombstone, refutes, and is seen",
    () =>
      sim(
        102,
        Effect.gen(function* () {
          const network = yield* SimNetwork
          const cfg = { reapAfter: "10 seconds" } as const
          const n0 = yield* startNode(0, cfg)
          const n1 = yield* startNode(1, cfg)
          const n2 = yield* startNode(2, { ...cfg, nodeId: FIXED_ID })
          const nodes = [n0, n1, n2]
          yield* advanceUntil(allSee(nodes, nodes, "Alive"), 10_000)
          yield* crash(n2)
          const reaped = yield* advanceUntil(
            Effect.zipWith(knows(n0, FIXED_ID), knows(n1, FIXED_ID), (a, b) => !a && !b),
            120_000
          )
          assert.isDefined(reaped, "never reaped")
          yield* network.heal
          const n2b = yield* startNode(2, { ...cfg, nodeId: FIXED_ID })
          const ppBefore = (yield* n0.cluster.stats).pushPulls
          yield* TestClock.adjust(120_000)
          expect((yield* viewOf(n2b, n0))?.state).toBe("Alive")
          // The tombstone (Dead at its last incarnation) outranks the new life's first Alive; the
          // seed's answer to its join carries the tombstone, so it refutes above it.
          expect((yield* viewOf(n0, n2b))?.state).toBe("Alive")
          expect((yield* viewOf(n1, n2b))?.state).toBe("Alive")
          // ...and its pings do not each start an exchange: 120 s of push-pulls at the 30 s interval
          // (the join's and the periodic ones), not one per ping (64 before).
          const pushPulls = (yield* n0.cluster.stats).pushPulls - ppBefore
          expect(pushPulls).toBeLessThanOrEqual(8)
          yield* stopAll([n0, n1, n2b])
        })
      ),
    60_000
  )
})

describe("address clashes", () => {
  it.effect(
    "R5: a newcomer advertising a live member's address does not get that live member declared Dead",
    () =>
      sim(
        105,
        Effect.gen(function* () {
          const nodes: Array<SimNode> = []
          for (let i = 0; i < 3; i++) nodes.push(yield* startNode(i))
          yield* advanceUntil(allSee(nodes, nodes, "Alive"), 10_000)
          yield* TestClock.adjust(10_000)
          const owner = nodes[2]!
          const inc0 = (yield* owner.cluster.localNode).incarnation
          // Misconfigured: binds 10.0.0.4 but advertises 10.0.0.3 (the owner's address).
          const intruder = yield* startNode(3, { advertiseAddress: addressOf(2) })
          let ownerDeadViews = 0
          for (let t = 0; t < 60; t++) {
            yield* TestClock.adjust(1000)
            for (const n of nodes.slice(0, 2)) if ((yield* viewOf(n, owner))?.state !== "Alive") ownerDeadViews++
          }
          // The owner answers every probe — including the one its new "neighbour" triggers, which
          // asks its address who lives there — so nothing ever accuses it.
          expect(ownerDeadViews).toBe(0)
          expect((yield* owner.cluster.stats).refutations).toBe(0)
          expect((yield* owner.cluster.localNode).incarnation).toBe(inc0)
          yield* stopAll([...nodes, intruder])
        })
      ),
    60_000
  )

  it.effect(
    "restarts on one address under a new id each time, 4 s apart: no old id stays Alive a probe interval after its successor is seen",
    () =>
      sim(
        106,
        Effect.gen(function* () {
          const network = yield* SimNetwork
          const n0 = yield* startNode(0)
          const n1 = yield* startNode(1)
          let current = yield* startNode(2)
          yield* advanceUntil(allSee([n0, n1, current], [n0, n1, current], "Alive"), 10_000)
          const ids = [(yield* current.cluster.localNode).id]
          let worstGhostMillis = 0
          for (let restart = 0; restart < 5; restart++) {
            yield* TestClock.adjust(4_000)
            yield* crash(current)
            yield* network.heal
            current = yield* startNode(2, { nodeId: yield* makeNodeId })
            const fresh = (yield* current.cluster.localNode).id
            // from the moment each observer sees the new id, how long any older id stays Alive there
            const seenAt = new Map<SimNode, number>()
            const goneAt = new Map<SimNode, number>()
            for (let t = 0; goneAt.size < 2 && t <= 30_000; t += 10) {
              for (const observer of [n0, n1]) {
                if (goneAt.has(observer)) continue
                const members = yield* observer.cluster.members
                if (!seenAt.has(observer) && members.some((m) => m.id === fresh && m.state === "Alive")) {
                  seenAt.set(observer, t)
                }
                if (seenAt.has(observer) && !members.some((m) => ids.includes(m.id) && m.state === "Alive")) {
                  goneAt.set(observer, t)
                }
              }
              yield* TestClock.adjust(10)
            }
            for (const observer of [n0, n1]) {
              assert.isTrue(seenAt.has(observer), "the new identity was never seen")
              assert.isTrue(goneAt.has(observer), "an old identity stayed Alive")
              worstGhostMillis = Math.max(worstGhostMillis, goneAt.get(observer)! - seenAt.get(observer)!)
            }
            ids.push(fresh)
          }
          console.log("longest a previous identity stayed Alive after its successor was seen:", worstGhostMillis, "ms")
          // the new process answers a ping for its predecessor in its own name: one round trip
          expect(worstGhostMillis).toBeLessThanOrEqual(P)
          yield* stopAll([n0, n1, current])
        })
      ),
    60_000
  )
})
