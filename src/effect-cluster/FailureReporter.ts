/**
 * Pushes a runner's failure into effect/cluster as soon as shoal sees it,
 * instead of waiting for the next health poll.
 *
 * effect/cluster has no "this runner is gone" call: its health singleton
 * polls `RunnerHealth.isAlive` every `runnerHealthCheckInterval` and records
 * the answer with `RunnerStorage.setRunnerHealth`, which every runner reads
 * back on its next `refreshAssignmentsInterval`. `RunnerStorage` is a public
 * service, though, so this layer writes the same record the singleton would,
 * the moment a membership event makes `RunnerHealth.isAlive` false (a member
 * failed or left, turned unhealthy, or became suspect with a refusing port).
 * It keeps the singleton's one rule — never mark the last healthy runner
 * unhealthy — and leaves recoveries to the poll. What it cannot do is make
 * the runners re-read their assignments earlier: that still waits for each
 * runner's own refresh.
 *
 * @module
 * @since 0.1.0
 */
import * as RunnerHealth from "effect/cluster/RunnerHealth"
import { RunnerStorage } from "effect/cluster/RunnerStorage"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Equal from "effect/Equal"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import { Cluster } from "../cluster/Cluster.ts"
import type { ClusterEvent } from "../cluster/Events.ts"
import { runnerAddressOf } from "./RunnerTag.ts"

/** The deadline for each storage call the reporter makes (the database may be the thing that is down). */
export const STORAGE_DEADLINE = Duration.seconds(5)

/** Events after which a runner may no longer be alive. */
const mayHaveFailed = (event: ClusterEvent): boolean =>
  event._tag === "NodeFailed" ||
  event._tag === "NodeLeft" ||
  event._tag === "NodeSuspected" ||
  event._tag === "NodeUpdated"

/** Watches the membership for the life of the layer and reports runners that stop being alive. */
export const layer: Layer.Layer<never, never, Cluster | RunnerHealth.RunnerHealth | RunnerStorage> =
  Layer.effectDiscard(
    Effect.gen(function* () {
      const cluster = yield* Cluster
      const health = yield* RunnerHealth.RunnerHealth
      const storage = yield* RunnerStorage

      const report = Effect.fn("FailureReporter.report")(function* (event: ClusterEvent) {
        const address = runnerAddressOf(event.node)
        if (address === undefined || !mayHaveFailed(event)) return
        if (yield* health.isAlive(address)) return
        const runners = yield* storage.getRunners.pipe(Effect.timeout(STORAGE_DEADLINE))
        const entry = runners.find(([runner]) => Equal.equals(runner.address, address))
        if (entry === undefined || !entry[1]) return
        const othersHealthy = runners.some(([runner, healthy]) => healthy && !Equal.equals(runner.address, address))
        if (!othersHealthy) return
        yield* storage.setRunnerHealth(address, false).pipe(Effect.timeout(STORAGE_DEADLINE))
        yield* Effect.logInfo(`runner ${address.host}:${address.port} reported unhealthy after ${event._tag}`)
      })

      // built on an open cluster: a ClusterClosed here would be a wiring bug, not an outcome
      const { events } = yield* Effect.orDie(cluster.watch)
      yield* events.pipe(
        Stream.runForEach((event) =>
          report(event).pipe(Effect.catchCause((cause) => Effect.logWarning("could not report a failed runner", cause)))
        ),
        Effect.forkScoped
      )
    })
  )
