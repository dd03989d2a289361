/**
 * The cluster's state as effect `Metric`s, for the Prometheus endpoint and
 * OpenTelemetry: `sample(cluster)` reads the public `Cluster` API (`stats`,
 * `members`, `phiReadings`, `health`) and brings gauges and counters up to
 * date — counters advance by what `Cluster.stats` gained since the last
 * sample, so they only ever increase. Exporters call it right before they
 * read the registry, so nothing runs between scrapes and an idle agent pays
 * nothing for having metrics on.
 *
 * The live counters that the engine, transport, keyring and RPC layers update
 * themselves (`shoal_transport_*`, `shoal_gossip_suspicions`, …) are in the
 * same registry; `src/cluster/README.md` documents every one.
 *
 * @module
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import type { Cluster, ClusterStats } from "../cluster/Cluster.ts"
import type { NodeState } from "../cluster/Node.ts"

const counter = (name: string, description: string) => Metric.counter(name, { description, incremental: true })

/** Counters sampled from `Cluster.stats`, by the stats field they follow. */
const sampledCounters = {
  probes: counter("shoal_gossip_probes", "probes this node started (one per probe round with a target)"),
  indirectProbes: counter(
    "shoal_gossip_probes_indirect",
    "probes that needed ping-req helpers (no direct ack in time)"
  ),
  failedProbes: counter("shoal_gossip_probes_failed", "probes that got no ack at all, direct, indirect or over TCP"),
  streamPingAcks: counter("shoal_gossip_probes_tcp_acked", "probes that failed over UDP but were answered over TCP"),
  deathsDeclared: counter("shoal_gossip_deaths_declared", "members this node declared dead (suspicion timed out)"),
  replacements: counter(
    "shoal_gossip_replacements",
    "members declared dead because their address answered as another id"
  ),
  revivals: counter("shoal_gossip_revivals", "exchanges started with a member held dead because it was heard from"),
  exchangesDeferred: counter("shoal_gossip_exchanges_deferred", "background exchanges not started: enough in flight"),
  pushPulls: counter("shoal_gossip_push_pulls", "full-state exchanges (push-pull) completed"),
  pushPullFailures: counter("shoal_gossip_push_pull_failures", "full-state exchanges that failed or timed out"),
  updatesApplied: counter("shoal_gossip_updates_applied", "membership updates this node applied (news, not repeats)")
} as const satisfies Partial<Record<keyof ClusterStats, Metric.Counter<number>>>

const rejected = Metric.counter("shoal_gossip_rejected", {
  description:
    "received datagrams and frames refused, by reason: undecodable (bad bytes, another cluster's label, too large) or the keyring's (plaintext, unauthentic, replayed, too_old, from_the_future, not_shoal)",
  incremental: true
})

const members = Metric.gauge("shoal_members", { description: "members this node holds, by state (itself included)" })
const awareness = Metric.gauge("shoal_awareness", {
  description: "Lifeguard local health score: 0 is healthy; each point stretches this node's probe timeouts"
})
const healthy = Metric.gauge("shoal_healthy", { description: "1 when this node's health checks pass, else 0" })
const phi = Metric.gauge("shoal_member_phi", {
  description: "phi accrual suspicion level of each live member, by name (0 once it is no longer alive or suspect)"
})
const phiMax = Metric.gauge("shoal_member_phi_max", { description: "the highest phi among live members" })

const STATES: ReadonlyArray<NodeState> = ["Alive", "Suspect", "Dead", "Left"]

/** What the previous sample of each cluster read, so counters advance by the difference. */
const previous = new WeakMap<object, { readonly stats: ClusterStats; readonly phiMembers: ReadonlySet<string> }>()

const reasonLabel = (reason: string) => reason.replace(/\s+/g, "_")

/**
 * Brings every sampled metric up to date with `cluster` now. A closed
 * cluster is skipped (its last values stay).
 */
export const sample = Effect.fn("ClusterMetrics.sample")(function* (cluster: Cluster["Service"]) {
  const stats = yield* cluster.stats.pipe(Effect.option)
  if (stats._tag === "None") return
  const now = stats.value
  const last = previous.get(cluster)
  const delta = (read: (s: ClusterStats) => number) =>
    Math.max(0, read(now) - (last === undefined ? 0 : read(last.stats)))

  // On the first sample every counter is registered at 0, so a scrape lists each series from the start.
  for (const [field, metric] of Object.entries(sampledCounters) as Array<
    [keyof typeof sampledCounters, Metric.Counter<number>]
  >) {
    const d = delta((s) => s[field])
    if (d > 0 || last === undefined) yield* Metric.update(metric, d)
  }
  const undecodable = delta((s) => s.packetsRejected)
  if (undecodable > 0 || last === undefined)
    yield* Metric.update(Metric.withAttributes(rejected, { reason: "undecodable" }), undecodable)
  for (const reason of Object.keys(now.envelopeRejected) as Array<keyof ClusterStats["envelopeRejected"]>) {
    const d = delta((s) => s.envelopeRejected[reason])
    if (d > 0 || last === undefined)
      yield* Metric.update(Metric.withAttributes(rejected, { reason: reasonLabel(reason) }), d)
  }

  const all = yield* cluster.members
  for (const state of STATES) {
    yield* Metric.update(
      Metric.withAttributes(members, { state: state.toLowerCase() }),
      all.filter((m) => m.state === state).length
    )
  }
  yield* Metric.update(awareness, now.awareness)
  const health = yield* cluster.health.pipe(Effect.option)
  if (health._tag === "Some") yield* Metric.update(healthy, health.value.healthy ? 1 : 0)

  const self = yield* cluster.localNode
  const names = new Map<string, (typeof all)[number]>(all.map((m) => [m.id, m]))
  const readings = yield* cluster.phiReadings.pipe(Effect.orElseSucceed(() => []))
  const live = new Set<string>()
  let max = 0
  for (const reading of readings) {
    const member = names.get(reading.id)
    if (member === undefined || member.id === self.id || (member.state !== "Alive" && member.state !== "Suspect"))
      continue
    live.add(member.name)
    max = Math.max(max, reading.phi)
    yield* Metric.update(Metric.withAttributes(phi, { member: member.name }), reading.phi)
  }
  for (const name of last?.phiMembers ?? []) {
    if (!live.has(name)) yield* Metric.update(Metric.withAttributes(phi, { member: name }), 0)
  }
  yield* Metric.update(phiMax, max)
  previous.set(cluster, { stats: now, phiMembers: live })
})
