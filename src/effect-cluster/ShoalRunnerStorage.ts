/**
 * effect/cluster's `RunnerStorage`, with the runner list seen through shoal's
 * membership.
 *
 * Every runner (and client) rebuilds its shard assignments from
 * `RunnerStorage.getRunners` once per `refreshAssignmentsInterval` (3 s by
 * default): whatever decides that a runner is gone, its shards move only
 * when each process next reads the list. This wrapper keeps SQL the source of
 * truth for *who is registered* (registration also hands out the machine ids
 * that keep snowflake ids unique, which gossip cannot do safely) and for the
 * shard locks, which it passes through untouched; but it
 *
 * - overlays each registered runner's `healthy` flag with the membership's
 *   verdict (`RunnerHealth.isAlive`), so a runner shoal declares gone drops
 *   out of this process's assignments at its very next refresh, without a
 *   round trip through the health singleton and the database; and
 * - reads SQL at most once per `sqlReadInterval` (the stock refresh cadence),
 *   and at once after this process registers, unregisters or reports a
 *   runner, or when the membership changes about a runner (so a failure
 *   another process reported is read back, and a runner that refutes right
 *   away waits for the health check to clear it, as with stock) — so that
 *   the refresh interval itself can be a fraction of a second without adding
 *   database load.
 *
 * Two guards keep it from doing harm: it never overlays this process's own
 * runner (that is its own health checks' business, through the `healthy`
 * tag, and effect/cluster's), and when the overlay would leave no healthy
 * runner at all it returns SQL's flags as they are, as effect/cluster
 * refuses to mark the last runner unhealthy.
 *
 * Different processes may briefly disagree about a runner (each judges by
 * its own membership view); the shard locks, which stay in SQL, decide who
 * really holds a shard, as they do whenever two processes' polls are out of
 * phase.
 *
 * @module
 * @since 0.1.0
 */

import * as Clock from "effect/Clock"
import * as RunnerHealth from "effect/cluster/RunnerHealth"
import { RunnerStorage } from "effect/cluster/RunnerStorage"
import { ShardingConfig } from "effect/cluster/ShardingConfig"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Equal from "effect/Equal"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { Cluster } from "../cluster/Cluster.ts"
import { runnerAddressOf } from "./RunnerTag.ts"

/** How often SQL's runner list is read when nothing happens: effect/cluster's default refresh interval. */
export const DEFAULT_SQL_READ_INTERVAL = Duration.seconds(3)

type Runners = Effect.Success<RunnerStorage["Service"]["getRunners"]>

/** Wraps the `RunnerStorage` below it (e.g. `SqlRunnerStorage.layer`). */
export const layer = (
  options: { readonly sqlReadInterval?: Duration.Input | undefined } = {}
): Layer.Layer<RunnerStorage, never, RunnerStorage | Cluster | RunnerHealth.RunnerHealth | ShardingConfig> =>
  Layer.effect(
    RunnerStorage,
    Effect.gen(function* () {
      const inner = yield* RunnerStorage
      const cluster = yield* Cluster
      const health = yield* RunnerHealth.RunnerHealth
      const self = Option.getOrUndefined((yield* ShardingConfig).runnerAddress)
      const interval = Duration.toMillis(Duration.fromInputUnsafe(options.sqlReadInterval ?? DEFAULT_SQL_READ_INTERVAL))

      let cached: { readonly at: number; readonly runners: Runners } | undefined
      const invalidate = Effect.sync(() => {
        cached = undefined
      })
      // built on an open cluster: a ClusterClosed here would be a wiring bug, not an outcome
      const { events } = yield* Effect.orDie(cluster.watch)
      yield* events.pipe(
        Stream.filter((event) => runnerAddressOf(event.node) !== undefined),
        Stream.runForEach(() => invalidate),
        Effect.forkScoped
      )

      const readSql = Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        if (cached !== undefined && now - cached.at < interval) return cached.runners
        const runners = yield* inner.getRunners
        cached = { at: now, runners }
        return runners
      })

      const getRunners = Effect.gen(function* () {
        const registered = yield* readSql
        const overlaid: Array<readonly [Runners[number][0], boolean]> = []
        let healthy = 0
        for (const [runner, sqlHealthy] of registered) {
          const isSelf = self !== undefined && Equal.equals(runner.address, self)
          const alive = sqlHealthy && (isSelf || (yield* health.isAlive(runner.address)))
          if (alive) healthy++
          overlaid.push([runner, alive])
        }
        return healthy === 0 ? registered : overlaid
      }).pipe(Effect.withSpan("ShoalRunnerStorage.getRunners"))

      return RunnerStorage.of({
        ...inner,
        getRunners,
        register: (runner, healthy) => inner.register(runner, healthy).pipe(Effect.ensuring(invalidate)),
        unregister: (address) => inner.unregister(address).pipe(Effect.ensuring(invalidate)),
        setRunnerHealth: (address, healthy) => inner.setRunnerHealth(address, healthy).pipe(Effect.ensuring(invalidate))
      })
    })
  )
