/**
 * The Cluster service's user-facing behaviour on the simulated network:
 * the event stream, reaping with tombstones, and health published as the
 * `healthy` tag.
 */
import { assert, describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Random, Ref, type Scope, Stream } from "effect"
import { TestClock } from "effect/testing"
import type { ClusterEvent } from "../../../src/cluster/Events.ts"
import { SimNetwork } from "../../../src/cluster/gossip/SimNetwork.ts"
import { HealthCheck, HealthStatus } from "../../../src/cluster/health/HealthCheck.ts"
import { advanceUntil, allSee, crash, leave, startCluster, startNode, stopAll, viewOf } from "./harness.ts"

const sim = <A, E>(seed: number, effect: Effect.Effect<A, E, SimNetwork | Scope.Scope>) =>
  effect.pipe(Effect.scoped, Effect.provide(SimNetwork.layer), Random.withSeed(seed))

describe("Cluster service", () => {
  it.effect(
    "events: joined, updated, suspected, recovered, failed, reaped and left, in order per member",
    () =>
      sim(
        11,
        Effect.gen(function* () {
          const network = yield* SimNetwork
          const nodes = yield* startCluster(4, { reapAfter: "30 seconds" })
          yield* advanceUntil(allSee(nodes, nodes, "Alive"), 10_000)
          const observer = nodes[0]!
          const seen = yield* Ref.make<Array<ClusterEvent>>([])
          const { events } = yield* observer.cluster.watch
          const fiber = yield* events.pipe(
            Stream.runForEach((event) => Ref.update(seen, (all) => [...all, event])),
            Effect.forkScoped
          )
          const nameOf = (event: ClusterEvent) => event.node.name
          const eventsOf = (name: string) =>
            Effect.map(Ref.get(seen), (all) => all.filter((e) => nameOf(e) === name).map((e) => e._tag))

          // A newcomer joins; then changes its tags.
          const late = yield* startNode(4, { reapAfter: "30 seconds" })
          yield* advanceUntil(
            Effect.map(eventsOf("n4"), (e) => e.includes("NodeJoined")),
            5_000
          )
          yield* late.cluster.setTags({ version: "2" })
          yield* advanceUntil(
            Effect.map(eventsOf("n4"), (e) => e.includes("NodeUpdated")),
            5_000
          )

          // n1 becomes slow (suspected), then fast again (recovered by its refutation).
          yield* network.setNode(nodes[1]!.address, { sendDelay: "1500 millis" })
          yield* advanceUntil(
            Effect.map(eventsOf("n1"), (e) => e.includes("NodeSuspected")),
            30_000
          )
          yield* network.clearNode(nodes[1]!.address)
          yield* advanceUntil(
            Effect.map(eventsOf("n1"), (e) => e.includes("NodeRecovered")),
            30_000
          )

          // n2 crashes: failed, then reaped after reapAfter. (While n1 was slow its probes may have
          // accused n2 too, which refuted: only the events from the crash on are the crash's.)
          const beforeCrash = (yield* eventsOf("n2")).length
          yield* crash(nodes[2]!)
          yield* advanceUntil(
            Effect.map(eventsOf("n2"), (e) => e.includes("NodeReaped")),
            90_000
          )
          // n3 leaves.
          yield* leave(nodes[3]!)
          yield* advanceUntil(
            Effect.map(eventsOf("n3"), (e) => e.includes("NodeLeft")),
            5_000
          )

          expect(yield* eventsOf("n4")).toEqual(["NodeJoined", "NodeUpdated"])
          const n1 = yield* eventsOf("n1")
          expect(n1.slice(0, 2)).toEqual(["NodeSuspected", "NodeRecovered"])
          expect(n1).not.toContain("NodeFailed")
          expect((yield* eventsOf("n2")).slice(beforeCrash)).toEqual(["NodeSuspected", "NodeFailed", "NodeReaped"])
          expect((yield* eventsOf("n2")).slice(0, beforeCrash)).not.toContain("NodeFailed")
          expect(yield* eventsOf("n3")).toEqual(["NodeLeft"])
          // Reaped members are gone from the member list.
          expect((yield* observer.cluster.members).some((m) => m.name === "n2")).toBe(false)
          yield* Fiber.interrupt(fiber)
          yield* stopAll([nodes[0]!, nodes[1]!, late])
        })
      ),
    60_000
  )

  it.effect(
    "health checks become the healthy tag, and discovery by healthy=true follows it",
    () =>
      sim(
        12,
        Effect.gen(function* () {
          const nodes = yield* startCluster(3, { tags: { role: "worker" }, healthCheckInterval: "1 second" })
          yield* advanceUntil(allSee(nodes, nodes, "Alive"), 10_000)
          const healthyWorkers = Effect.map(
            nodes[0]!.cluster.nodesByTags({ role: "worker", healthy: "true" }),
            (members) => members.map((m) => m.name).sort()
          )
          expect(yield* healthyWorkers).toEqual(["n0", "n1", "n2"])
          const available = yield* Ref.make(true)
          const remove = yield* nodes[2]!.cluster.addHealthCheck(
            HealthCheck.make(
              "availability",
              Effect.map(Ref.get(available), (ok) => (ok ? HealthStatus.healthy() : HealthStatus.unhealthy("busy")))
            )
          )
          yield* Ref.set(available, false)
          // The check runs every healthCheckInterval (1 s); the tag change then spreads by gossip.
          const off = yield* advanceUntil(
            Effect.map(healthyWorkers, (w) => !w.includes("n2")),
            3_000
          )
          assert.isDefined(off)
          const everywhere = yield* advanceUntil(
            Effect.map(viewOf(nodes[1]!, nodes[2]!), (view) => view?.tags.healthy === "false"),
            2_000
          )
          assert.isDefined(everywhere)
          expect((yield* viewOf(nodes[1]!, nodes[2]!))?.state).toBe("Alive")
          expect((yield* nodes[2]!.cluster.health).failing).toEqual(["availability"])
          yield* Ref.set(available, true)
          const on = yield* advanceUntil(
            Effect.map(healthyWorkers, (w) => w.includes("n2")),
            3_000
          )
          assert.isDefined(on)
          yield* remove
          yield* TestClock.adjust("2 seconds")
          yield* stopAll(nodes)
        })
      ),
    30_000
  )

  it.effect("setTags rejects the reserved healthy tag and keeps it cluster-owned", () =>
    sim(
      13,
      Effect.gen(function* () {
        const [node] = yield* startCluster(1, { tags: { role: "a" } })
        const error = yield* node!.cluster.setTags({ healthy: "true" }).pipe(Effect.flip)
        expect(error._tag).toBe("InvalidConfiguration")
        const updated = yield* node!.cluster.setTags({ role: "b" })
        expect(updated.tags).toEqual({ role: "b", healthy: "true" })
        yield* stopAll([node!])
      })
    )
  )
})
