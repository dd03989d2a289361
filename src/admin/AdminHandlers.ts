/**
 * The admin procedures answered from the public `Cluster` API, so that an
 * application embedding a cluster serves exactly what an agent serves.
 *
 * @module
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import { Cluster, type ClusterStats } from "../cluster/Cluster.ts"
import type { ClusterConfig } from "../cluster/Config.ts"
import type { KeyringReport } from "../cluster/gossip/GossipKeys.ts"
import { type ClusterNode, formatAddress } from "../cluster/Node.ts"
import {
  AdminRpcs,
  AgentInfo,
  type KeyringReportView,
  type MemberCounts,
  MemberEntry,
  MonitorEvent,
  type MonitorItem,
  type MonitorLevel,
  MonitorStarted
} from "./AdminRpcs.ts"
import { LogTap } from "./LogTap.ts"

/** What the handlers need besides the cluster. */
export interface HandlerOptions {
  /** Reported by `info` (the agent passes its package version). */
  readonly version: string
  /**
   * Run after `leave` has announced the leave: the agent stops its process
   * here, as Serf's does. Default: nothing (the application decides).
   */
  readonly onLeave?: Effect.Effect<void> | undefined
}

/** Members by state, this node included. */
export const countByState = (members: ReadonlyArray<ClusterNode>): MemberCounts => {
  const counts = { total: members.length, alive: 0, suspect: 0, dead: 0, left: 0 }
  for (const member of members) {
    if (member.state === "Alive") counts.alive++
    else if (member.state === "Suspect") counts.suspect++
    else if (member.state === "Dead") counts.dead++
    else counts.left++
  }
  return counts
}

/** `Cluster.stats` as a flat map of numbers: `probes`, `transport.packetsSent`, `envelopeRejected.replayed`, … */
export const flattenCounters = (stats: ClusterStats): Record<string, number> => {
  const out: Record<string, number> = {}
  const walk = (prefix: string, value: unknown) => {
    if (typeof value === "number") out[prefix] = value
    else if (typeof value === "object" && value !== null) {
      for (const [key, inner] of Object.entries(value)) walk(prefix === "" ? key : `${prefix}.${key}`, inner)
    }
  }
  walk("", stats)
  return out
}

/** Fields whose values are key material: reported only as redacted. */
const SECRET_FIELDS: ReadonlySet<string> = new Set(["keyring"])

/** The configuration as text, key material redacted (it never leaves the process). */
export const describeConfig = (config: ClusterConfig): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const [field, value] of Object.entries(config)) {
    if (value === undefined) continue
    if (SECRET_FIELDS.has(field) || Redacted.isRedacted(value)) {
      out[field] = Array.isArray(value) ? `<redacted: ${value.length} keys>` : "<redacted>"
    } else if (Duration.isDuration(value)) out[field] = Duration.format(value)
    else if (typeof value === "object" && value !== null && "host" in value && "port" in value) {
      out[field] = formatAddress(value as { host: string; port: number })
    } else if (Array.isArray(value)) out[field] = value.join(",")
    else if (typeof value === "object" && value !== null) {
      out[field] = Object.entries(value)
        .map(([k, v]) => `${k}=${String(v)}`)
        .join(",")
    } else out[field] = String(value)
  }
  return out
}

const reportView = (report: KeyringReport): KeyringReportView => ({
  local: report.local,
  ...(report.refused === undefined ? {} : { refused: report.refused }),
  members: report.members.map((member) => ({
    id: member.id,
    name: member.name,
    ...(member.keys === undefined ? {} : { keys: member.keys }),
    ...(member.error === undefined ? {} : { error: member.error })
  })),
  acknowledged: report.acknowledged,
  failed: report.failed
})

const levelOf = (level: MonitorLevel): LogLevel.LogLevel => level

/** The members `query` selects, with the failure detector's view when `detailed`. */
export const selectMembers = Effect.fn("Admin.members")(function* (
  cluster: Cluster["Service"],
  query: {
    readonly states?: ReadonlyArray<string>
    readonly tags?: Readonly<Record<string, string>>
    readonly detailed?: boolean
  }
) {
  const members = yield* cluster.members
  const selected = members.filter(
    (node) =>
      (query.states === undefined || query.states.length === 0 || query.states.includes(node.state)) &&
      (query.tags === undefined || node.hasTags(query.tags))
  )
  if (query.detailed !== true) return selected.map((node) => new MemberEntry({ node }))
  const readings = new Map((yield* cluster.phiReadings.pipe(Effect.orElseSucceed(() => []))).map((r) => [r.id, r]))
  return selected.map((node) => {
    const reading = readings.get(node.id)
    return new MemberEntry({
      node,
      ...(reading === undefined ? {} : { phi: reading.phi }),
      ...(reading?.lastHeartbeat === undefined ? {} : { lastHeard: reading.lastHeartbeat })
    })
  })
})

/** `info`: version, this node, configuration (no secrets), counters, awareness, members by state, keyring fingerprints. */
export const agentInfo = Effect.fn("Admin.info")(function* (cluster: Cluster["Service"], version: string) {
  const stats = yield* cluster.stats
  const health = yield* cluster.health
  const keys = yield* cluster.keys.fingerprints
  return new AgentInfo({
    version,
    node: yield* cluster.localNode,
    status: yield* cluster.status,
    config: describeConfig(cluster.config),
    counters: flattenCounters(stats),
    awareness: stats.awareness,
    members: countByState(yield* cluster.members),
    healthy: health.healthy,
    keyFingerprints: keys
  })
})

/** The admin handlers over the `Cluster` in context (and a `LogTap`, when provided, for `monitor`'s log lines). */
export const layer = (options: HandlerOptions) =>
  AdminRpcs.toLayer(
    Effect.gen(function* () {
      const cluster = yield* Cluster
      const tap = yield* Effect.serviceOption(LogTap)
      return AdminRpcs.of({
        Members: (query) => selectMembers(cluster, query),
        Monitor: ({ logLevel }) => {
          const events: Stream.Stream<MonitorItem, never> = Stream.unwrap(
            cluster.watch.pipe(
              Effect.flatMap(({ events, members }) =>
                Effect.map(Clock.currentTimeMillis, (ts) =>
                  Stream.concat(
                    Stream.succeed(new MonitorStarted({ ts, members })),
                    events.pipe(
                      Stream.mapEffect((event) =>
                        Effect.map(Clock.currentTimeMillis, (ts) => new MonitorEvent({ ts, event }))
                      )
                    )
                  )
                )
              ),
              Effect.orElseSucceed(() => Stream.empty)
            )
          )
          if (logLevel === undefined || Option.isNone(tap)) return events
          const minimum = levelOf(logLevel)
          const logs: Stream.Stream<MonitorItem> = Stream.unwrap(
            Effect.map(tap.value.subscribe, (subscription) =>
              Stream.fromSubscription(subscription).pipe(
                Stream.filter((line) => LogLevel.isGreaterThanOrEqualTo(line.level as LogLevel.LogLevel, minimum))
              )
            )
          )
          return Stream.merge(events, logs)
        },
        Join: ({ addresses }) => cluster.join(addresses),
        Leave: () =>
          cluster.leave.pipe(
            Effect.andThen(options.onLeave === undefined ? Effect.void : Effect.forkDetach(options.onLeave)),
            Effect.asVoid
          ),
        ForceLeave: ({ member }) => cluster.forceLeave(member),
        UpdateTags: ({ set, remove }) => cluster.updateTags({ set, remove }),
        Info: () => agentInfo(cluster, options.version),
        Reachability: ({ timeoutMillis }) =>
          cluster.reachability(timeoutMillis === undefined ? {} : { timeout: Duration.millis(timeoutMillis) }),
        KeysList: () => Effect.map(cluster.keys.list, reportView),
        KeysInstall: ({ key }) => Effect.map(cluster.keys.install(Redacted.make(key)), reportView),
        KeysUse: ({ fingerprint }) => Effect.map(cluster.keys.use(fingerprint), reportView),
        KeysRemove: ({ fingerprint }) => Effect.map(cluster.keys.remove(fingerprint), reportView)
      })
    })
  )
