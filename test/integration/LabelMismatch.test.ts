/** A node that joins a seed of another cluster (a different label) on 127.0.0.1 is told both labels. */
import { assert, describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import { Cluster } from "../../src/cluster/Cluster.ts"
import { formatAddress } from "../../src/cluster/Node.ts"
import { fastCluster } from "../fixtures/live.ts"

describe("cluster label mismatch", () => {
  it.live("JoinFailed names the seed's label and this node's", () =>
    Effect.gen(function* () {
      const seed = Context.get(
        yield* Layer.build(Cluster.layer({ ...fastCluster, nodeName: "seed", clusterLabel: "alpha" })),
        Cluster
      )
      const address = formatAddress((yield* seed.localNode).gossipAddress)
      const error = yield* Effect.flip(
        Layer.build(
          Cluster.layer({
            ...fastCluster,
            nodeName: "stranger",
            clusterLabel: "beta",
            seedNodes: [address],
            // every attempt meets the mismatch; the deadline only has to outlast one exchange on
            // a loaded machine (300 ms did not, once, with the whole suite running beside it)
            joinTimeout: "3 seconds"
          })
        )
      )
      assert.strictEqual(error._tag, "JoinFailed")
      expect(error.message).toContain(`the peer is in cluster "alpha", this node in cluster "beta"`)
      // the seed learnt nothing about the stranger
      assert.lengthOf(yield* seed.members, 1)
    }).pipe(Effect.scoped)
  )
})
