import { describe, expect, it } from "@effect/vitest"
import { Effect, Random } from "effect"
import { SimNetwork } from "../../../src/cluster/gossip/SimNetwork.ts"
import { advanceUntil, allSee, startCluster, stopAll } from "./harness.ts"

describe("cluster formation (SimNetwork, TestClock)", () => {
  it.effect("3 nodes form a cluster", () =>
    Effect.gen(function* () {
      const nodes = yield* startCluster(3)
      const took = yield* advanceUntil(allSee(nodes, nodes, "Alive"), 10_000)
      expect(took).toBeDefined()
      console.log("3-node convergence ms", took)
      yield* stopAll(nodes)
    }).pipe(Effect.provide(SimNetwork.layer), Random.withSeed(1))
  )
})
