/**
 * Frees a failed runner's shard locks in PostgreSQL the moment shoal
 * declares it dead.
 *
 * effect/cluster's `SqlRunnerStorage` holds each shard as a PostgreSQL
 * advisory lock on one long-lived session of the owning runner. A crashed
 * runner's sessions end with its TCP connections, but a paused or cut-off
 * runner's stay open, and the locks with them, until the server's
 * `idle_session_timeout` (set to `shardLockExpiration`, 35 s by default)
 * ends the session. Whatever the health layer says, no other runner can take
 * those shards before then.
 *
 * This layer ends them early: each runner connects with an
 * `application_name` derived from its shoal node id ({@link applicationName}),
 * and when a member advertising a runner address is declared `Dead`, the
 * survivors call `pg_terminate_backend` on that name's sessions. That is the
 * same thing the idle timeout does, only decided by the failure detector: a
 * runner that was merely paused finds its lock session gone when it
 * resumes, and effect/cluster stores no reply without first confirming the
 * shard lock, so it cannot answer for a shard it lost. Node ids are fresh for
 * every process start, so a restarted runner's new sessions never match.
 * A graceful `Left` is not fenced: that runner hands its shards off itself.
 *
 * Needs the roles to allow it: a superuser, a member of
 * `pg_signal_backend`, or (as in the example) the same role the runners use.
 * On dialects other than PostgreSQL the layer does nothing.
 *
 * @module
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import { SqlClient } from "effect/sql/SqlClient"
import { Cluster } from "../cluster/Cluster.ts"
import type { NodeId } from "../cluster/Node.ts"
import { runnerAddressOf } from "./RunnerTag.ts"

/** How long the fencing statement may take before it is given up (and logged). */
export const FENCING_DEADLINE = Duration.seconds(5)

/**
 * The `application_name` a runner's SQL client must connect with, so that
 * its sessions can be fenced (at most 63 bytes; this is 42).
 */
export const applicationName = (nodeId: NodeId): string => `shoal ${nodeId}`

/** Watches the membership for the life of the layer and terminates the sessions of runners declared dead. */
export const layer: Layer.Layer<never, never, Cluster | SqlClient> = Layer.effectDiscard(
  Effect.gen(function* () {
    const cluster = yield* Cluster
    const sql = yield* SqlClient
    const isPostgres = sql.onDialectOrElse({ pg: () => true, orElse: () => false })
    if (!isPostgres) return

    const fence = Effect.fn("PgSessionFencing.fence")(function* (nodeId: NodeId) {
      const name = applicationName(nodeId)
      const rows = yield* sql<{ readonly terminated: boolean }>`
        SELECT pg_terminate_backend(pid) AS terminated
        FROM pg_stat_activity
        WHERE application_name = ${name} AND pid <> pg_backend_pid()
      `.pipe(Effect.timeout(FENCING_DEADLINE))
      if (rows.length > 0) yield* Effect.logInfo(`terminated ${rows.length} session(s) of dead runner ${name}`)
    })

    // built on an open cluster: a ClusterClosed here would be a wiring bug, not an outcome
    const { events } = yield* Effect.orDie(cluster.watch)
    yield* events.pipe(
      Stream.filter((event) => event._tag === "NodeFailed" && runnerAddressOf(event.node) !== undefined),
      Stream.runForEach((event) =>
        fence(event.node.id).pipe(
          Effect.catchCause((cause) => Effect.logWarning("could not fence a dead runner's sessions", cause))
        )
      ),
      Effect.forkScoped
    )
  })
)
