/**
 * What the cluster does after `leave` and after its scope closed, and the
 * checks on tags: on the simulated network under TestClock, through the
 * public `shoal/testing` simulation helpers.
 */
import { assert, describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Random, Schema, Scope, Stream } from "effect"
import { Rpc, RpcGroup } from "effect/rpc"
import { Cluster } from "../../src/cluster/Cluster.ts"
import * as ClusterConfig from "../../src/cluster/Config.ts"
import { SimNetwork } from "../../src/cluster/gossip/SimNetwork.ts"
import { HealthCheck } from "../../src/cluster/health/HealthCheck.ts"
import * as ClusterClient from "../../src/rpc/ClusterClient.ts"
import * as Simulation from "../../src/testing/Simulation.ts"

const sim = <A, E>(effect: Effect.Effect<A, E, SimNetwork | Scope.Scope>) =>
  effect.pipe(Effect.scoped, Effect.provide(SimNetwork.layer), Random.withSeed(5))

class Echo extends RpcGroup.make(Rpc.make("Echo", { payload: { text: Schema.String }, success: Schema.String })) {}

const closedReason = <A, E>(effect: Effect.Effect<A, E, Scope.Scope>) =>
  Effect.map(Effect.flip(Effect.scoped(effect)), (error) =>
    (error as { _tag?: string })._tag === "ClusterClosed" ? (error as unknown as { reason: string }).reason : error
  )

describe("ClusterClosed", () => {
  it.effect(
    "after leave: new tags, health checks and cluster clients fail with reason left; a second leave does nothing",
    () =>
      sim(
        Effect.gen(function* () {
          const [a, b] = yield* Simulation.startCluster(2)
          yield* Simulation.advanceUntil(Simulation.allSee([a!, b!], [a!, b!], "Alive"), 5_000)
          const cluster = a!.cluster
          yield* Simulation.runWithClock(cluster.leave)
          assert.strictEqual(yield* closedReason(cluster.setTags({ role: "x" })), "left")
          assert.strictEqual(yield* closedReason(cluster.addHealthCheck(HealthCheck.alwaysHealthy)), "left")
          assert.strictEqual(
            yield* closedReason(
              ClusterClient.make(Echo, {}, { tags: {} }).pipe(Effect.provideService(Cluster, cluster))
            ),
            "left"
          )
          // leaving twice is no error; the last view and the counters stay readable
          yield* cluster.leave
          assert.strictEqual(yield* cluster.status, "left")
          assert.strictEqual((yield* cluster.localNode).state, "Left")
          assert.isAtLeast((yield* cluster.stats).updatesApplied, 1)
          const error = yield* Effect.flip(cluster.setTags({}))
          expect(error.message).toContain("Cluster.setTags")
          yield* Simulation.stopAll([a!, b!])
        })
      )
  )

  it.effect("after the scope closed: every operation but the snapshot reads fails with reason closed", () =>
    sim(
      Effect.gen(function* () {
        const node = yield* Simulation.startNode(0)
        const cluster = node.cluster
        yield* Scope.close(node.scope, Exit.void)
        const operations: ReadonlyArray<readonly [string, Effect.Effect<unknown, unknown, Scope.Scope>]> = [
          ["setTags", cluster.setTags({ role: "x" })],
          ["addHealthCheck", cluster.addHealthCheck(HealthCheck.alwaysHealthy)],
          ["leave", cluster.leave],
          ["stats", cluster.stats],
          ["health", cluster.health],
          ["phi", cluster.phi(cluster.config.nodeId)],
          ["watch", cluster.watch],
          ["events", Stream.runDrain(cluster.events)],
          [
            "ClusterClient.make",
            ClusterClient.make(Echo, {}, { tags: {} }).pipe(Effect.provideService(Cluster, cluster))
          ]
        ]
        for (const [name, operation] of operations) {
          assert.strictEqual(yield* closedReason(operation), "closed", name)
        }
        assert.strictEqual(yield* cluster.status, "closed")
        // the last view is still there
        assert.strictEqual((yield* cluster.localNode).id, cluster.config.nodeId)
        assert.lengthOf(yield* cluster.members, 1)
      })
    )
  )
})

describe("tags", () => {
  it.effect("a tag value that is not a string, or a key that is empty or holds = or , is InvalidConfiguration", () =>
    Effect.gen(function* () {
      const bad = (tags: unknown) => Effect.flip(ClusterConfig.make({ tags: tags as Record<string, string> }))
      const numeric = yield* bad({ weight: 3 })
      assert.strictEqual(numeric.field, "tags")
      expect(numeric.reason).toContain(`"weight" must be a string, got number`)
      expect((yield* bad({ "a=b": "c" })).reason).toContain(`"a=b"`)
      expect((yield* bad({ "a,b": "c" })).reason).toContain(`"a,b"`)
      expect((yield* bad({ "": "c" })).reason).toContain("must not be empty")
      expect((yield* bad(["x"])).reason).toContain("expected an object")
    })
  )

  it.effect("setTags applies the same checks", () =>
    sim(
      Effect.gen(function* () {
        const node = yield* Simulation.startNode(0)
        const error = yield* Effect.flip(node.cluster.setTags({ zone: 7 } as unknown as Record<string, string>))
        assert.strictEqual(error._tag, "InvalidConfiguration")
        assert.deepStrictEqual((yield* node.cluster.setTags({ zone: "a" })).tags.zone, "a")
        yield* Simulation.stopAll([node])
      })
    )
  )
})
