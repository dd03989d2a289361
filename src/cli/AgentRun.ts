/**
 * `shoal agent`: one cluster member in the foreground. It joins, prints every
 * membership change it observes on stdout (logs go to stderr), and on
 * SIGINT/SIGTERM leaves gracefully before exiting — the `Cluster` layer's
 * finalizer announces the leave, so closing the scope is all it takes.
 *
 * Nothing is missed between startup and the first event: `Cluster.watch`
 * takes the member snapshot and subscribes in one step, the snapshot is
 * printed as `Member` lines, and events follow.
 *
 * This module is the agent's body; `Agent.ts` defines the command and imports
 * it on first use, so the other commands never load the cluster engine.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Console from "effect/Console"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import pkg from "../../package.json" with { type: "json" }
import { formatAdminAddress } from "../admin/AdminAddress.ts"
import { AdminServer } from "../admin/AdminServer.ts"
import { LogTap } from "../admin/LogTap.ts"
import { Cluster } from "../cluster/Cluster.ts"
import type { ClusterError } from "../cluster/Errors.ts"
import { formatAddress } from "../cluster/Node.ts"
import { type TelemetrySettings, telemetrySettings } from "../ops/TelemetrySettings.ts"
import { type AgentFlags, resolveConfig, toConfigInput } from "./AgentFlags.ts"
import { eventLine, formatter, nodeLine, type OutputLine, statsLine } from "./EventFormat.ts"

/** One stats sample: the cluster's counters, members by state, phi of every live peer. */
const sampleStats = (cluster: Cluster["Service"]) =>
  Effect.gen(function* () {
    const [stats, members, self] = yield* Effect.all([cluster.stats, cluster.members, cluster.localNode])
    const phi: Record<string, number> = {}
    for (const member of members) {
      if (member.id === self.id || (member.state !== "Alive" && member.state !== "Suspect")) continue
      phi[member.id] = yield* cluster.phi(member.id)
    }
    return statsLine(stats, members, phi, yield* Clock.currentTimeMillis)
  })

/**
 * Runs one node until interrupted: resolves the configuration (flags, then
 * `SHOAL_*`, then defaults), builds the cluster, prints `Started`, the
 * snapshot and then every event. Fails with the `ClusterError` that stopped
 * startup (`InvalidConfiguration`, `NetworkError` for a port in use,
 * `JoinFailed`).
 */
export const runAgent = (flags: AgentFlags): Effect.Effect<void, ClusterError> => {
  const format = formatter(flags.format)
  const write = (line: OutputLine) => Console.log(format(line))
  const logFormat = Option.getOrElse(flags.logFormat, () => flags.format)
  const program = (tap: LogTap["Service"], telemetry: Option.Option<TelemetrySettings>) =>
    Effect.gen(function* () {
      const config = yield* resolveConfig(toConfigInput(flags))
      const cluster = Context.get(yield* Layer.build(Cluster.layer(config)), Cluster)
      // Registered after the cluster, so it runs before the cluster's own leave.
      yield* Effect.addFinalizer(() => Effect.logInfo("stopping: leaving the cluster"))

      // `shoal leave` leaves through the admin interface; the agent then stops as after a signal.
      const leaveRequested = yield* Deferred.make<void>()
      if (flags.admin !== "off") {
        const admin = yield* Layer.build(
          AdminServer.layer({
            address: flags.admin,
            version: pkg.version,
            // a moment for the answer to reach the caller before the admin socket closes
            onLeave: Deferred.succeed(leaveRequested, undefined).pipe(Effect.delay("100 millis"), Effect.asVoid)
          })
        ).pipe(
          Effect.provideService(Cluster, cluster),
          Effect.provideService(LogTap, tap),
          Effect.map((context) => Context.get(context, AdminServer))
        )
        yield* Effect.logInfo(`admin interface on ${formatAdminAddress(admin.address)}`)
      }
      if (Option.isSome(flags.metrics)) {
        const { serveMetrics } = yield* Effect.promise(() => import("../ops/MetricsServer.ts"))
        yield* serveMetrics(cluster, flags.metrics.value)
      }
      if (Option.isSome(flags.ui)) {
        const { serveUi } = yield* Effect.promise(() => import("../ops/UiServer.ts"))
        yield* serveUi(cluster, flags.ui.value)
      }
      if (Option.isSome(telemetry)) {
        const { sampleForExport } = yield* Effect.promise(() => import("../ops/Telemetry.ts"))
        yield* sampleForExport(cluster, telemetry.value)
      }

      const { members, events } = yield* cluster.watch
      const self = yield* cluster.localNode
      const now = yield* Clock.currentTimeMillis
      yield* Effect.logInfo(`started ${self.name} (${self.id}) at ${formatAddress(self.gossipAddress)}`)
      yield* write(nodeLine("Started", self, now))
      for (const member of members) {
        if (member.id !== self.id) yield* write(nodeLine("Member", member, now))
      }

      if (Option.isSome(flags.statsInterval)) {
        yield* sampleStats(cluster).pipe(
          Effect.flatMap(write),
          Effect.delay(flags.statsInterval.value),
          Effect.repeat(Schedule.forever),
          Effect.forkScoped
        )
      }

      yield* events.pipe(
        Stream.runForEach((event) => Effect.flatMap(Clock.currentTimeMillis, (ts) => write(eventLine(event, ts)))),
        Effect.raceFirst(Deferred.await(leaveRequested))
      )
    }).pipe(Effect.scoped)
  return Effect.gen(function* () {
    const tap = yield* LogTap.make
    const loggers =
      logFormat === "json"
        ? Logger.layer([Logger.withConsoleError(Logger.formatJson), tap.logger])
        : Logger.layer([tap.logger], { mergeWithExisting: true })
    const telemetry = yield* telemetrySettings
    if (Option.isNone(telemetry)) return yield* program(tap, telemetry).pipe(Effect.provide(loggers))
    // OpenTelemetry wraps the whole run, so the cluster's own spans go out too; loaded only when asked for.
    const { layer } = yield* Effect.promise(() => import("../ops/Telemetry.ts"))
    yield* Effect.logInfo(
      `OpenTelemetry on: traces ${telemetry.value.traces}, metrics ${telemetry.value.metrics} (service ${telemetry.value.serviceName})`
    ).pipe(Effect.provide(loggers))
    return yield* program(tap, telemetry).pipe(
      Effect.provide(layer(telemetry.value, pkg.version)),
      Effect.provide(loggers)
    )
  }).pipe(Effect.scoped)
}
