/**
 * effect/cluster's `RunnerHealth`, answered from shoal's membership.
 *
 * effect/cluster asks `isAlive(runnerAddress)` for every registered runner
 * each `runnerHealthCheckInterval` (from one runner, a cluster singleton) and
 * moves the shards of a runner that is not alive. Its stock `layerPing` asks
 * the runner itself (a 10 s timeout, retried five times 500 ms apart), so a
 * paused or cut-off runner takes a minute to be declared gone; this layer
 * answers from what SWIM already knows, in microseconds and without a network
 * call, so the check interval can be a second:
 *
 * - `Alive` and `healthy=true`: alive;
 * - `Suspect` and healthy: alive, unless its runner port refuses connections
 *   (the process is gone; see {@link RunnerPortProbe}) — the only probe, and
 *   only of a suspect;
 * - `Dead`, `Left`, failing its health checks, or no member advertising the
 *   address: not alive.
 *
 * @module
 * @since 0.1.0
 */

import type { RunnerAddress } from "effect/cluster/RunnerAddress"
import * as RunnerHealth from "effect/cluster/RunnerHealth"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { Cluster } from "../cluster/Cluster.ts"
import { livenessOf } from "./RunnerLiveness.ts"
import { RunnerPortProbe } from "./RunnerPortProbe.ts"

/** The `RunnerHealth` service over the cluster's membership and a port probe. */
export const make: Effect.Effect<RunnerHealth.RunnerHealth["Service"], never, Cluster | RunnerPortProbe> = Effect.gen(
  function* () {
    const cluster = yield* Cluster
    const probe = yield* RunnerPortProbe
    const isAlive = Effect.fn("ShoalRunnerHealth.isAlive")(function* (address: RunnerAddress) {
      const liveness = livenessOf(yield* cluster.members, address)
      if (liveness === "suspect") return !(yield* probe.refusesConnections(address))
      return liveness === "alive"
    })
    return RunnerHealth.RunnerHealth.of({ isAlive })
  }
)

/** `RunnerHealth` from membership, probing a suspect's port over TCP. Needs the `Cluster`. */
export const layer: Layer.Layer<RunnerHealth.RunnerHealth, never, Cluster> = Layer.effect(
  RunnerHealth.RunnerHealth,
  make
).pipe(Layer.provide(RunnerPortProbe.layerTcp()))

/** `RunnerHealth` from membership with the port probe left to the caller (tests provide a fixed one). */
export const layerWithProbe: Layer.Layer<RunnerHealth.RunnerHealth, never, Cluster | RunnerPortProbe> = Layer.effect(
  RunnerHealth.RunnerHealth,
  make
)
