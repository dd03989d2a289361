/**
 * What `shoal agent` writes on stdout, one line per item. The JSON form is
 * a contract: benchmarks and scripts parse it, so fields are only ever added
 * (never renamed or removed) and `docs/CLI.md` documents every one. The
 * human form is for eyes and may change.
 *
 * Every line has `ts` (ISO-8601, from `Clock`) and `event`. Lines about a
 * member (`Started`, `Member`, and the `ClusterEvent` tags) carry the member
 * as it stands after the change; `Stats` lines carry counters.
 *
 * @since 0.1.0
 */
import type { ClusterStats } from "../cluster/Cluster.ts"
import type { ClusterEvent } from "../cluster/Events.ts"
import { type ClusterNode, formatAddress } from "../cluster/Node.ts"
import type { OutputFormat } from "./AgentFlags.ts"

/**
 * `Started`: this node, once, when it has bound and joined.
 * `Member`: a member already known at that moment (the initial snapshot).
 * The rest: a membership event, named after its `ClusterEvent` tag.
 */
export type NodeLineKind = "Started" | "Member" | ClusterEvent["_tag"]

/** A line about one member. */
export interface NodeLine {
  readonly ts: string
  readonly event: NodeLineKind
  readonly name: string
  readonly id: string
  readonly state: ClusterNode["state"]
  readonly incarnation: number
  /** The member's gossip address, `host:port`. */
  readonly address: string
  /** The RPC address it advertises, or `null`. */
  readonly rpcAddress: string | null
  /** Its tags, keys sorted. */
  readonly tags: Readonly<Record<string, string>>
}

/** A periodic counters line (`--stats-interval`). */
export interface StatsLine extends ClusterStats {
  readonly ts: string
  readonly event: "Stats"
  /** Members by state, this node included. */
  readonly members: number
  readonly alive: number
  readonly suspect: number
  readonly dead: number
  readonly left: number
  /** phi of every other Alive or Suspect member, by id. */
  readonly phi: Readonly<Record<string, number>>
}

export type OutputLine = NodeLine | StatsLine

/** ISO-8601 text of a `Clock` reading (milliseconds since the epoch). */
export const isoTimestamp = (millis: number): string => new Date(Math.round(millis)).toISOString()

const sortedTags = (tags: Readonly<Record<string, string>>): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const key of Object.keys(tags).sort()) out[key] = tags[key]!
  return out
}

/** The line for a member, with a fixed key order so the JSON reads the same every time. */
export const nodeLine = (event: NodeLineKind, node: ClusterNode, millis: number): NodeLine => ({
  ts: isoTimestamp(millis),
  event,
  name: node.name,
  id: node.id,
  state: node.state,
  incarnation: node.incarnation,
  address: formatAddress(node.gossipAddress),
  rpcAddress: node.rpcAddress === undefined ? null : formatAddress(node.rpcAddress),
  tags: sortedTags(node.tags)
})

/** The line for a membership event. */
export const eventLine = (event: ClusterEvent, millis: number): NodeLine => nodeLine(event._tag, event.node, millis)

/** The line for a stats sample: counters, member counts by state, phi per live peer. */
export const statsLine = (
  stats: ClusterStats,
  members: ReadonlyArray<ClusterNode>,
  phi: Readonly<Record<string, number>>,
  millis: number
): StatsLine => {
  const count = (state: ClusterNode["state"]) => members.filter((m) => m.state === state).length
  return {
    ts: isoTimestamp(millis),
    event: "Stats",
    members: members.length,
    alive: count("Alive"),
    suspect: count("Suspect"),
    dead: count("Dead"),
    left: count("Left"),
    ...stats,
    phi
  }
}

/** One JSON object, no trailing newline. */
export const toJson = (line: OutputLine): string => JSON.stringify(line)

const formatTags = (tags: Readonly<Record<string, string>>): string =>
  Object.entries(tags)
    .map(([k, v]) => `${k}=${v}`)
    .join(",")

const bytes = (n: number): string =>
  n < 1024 ? `${n}B` : n < 1024 * 1024 ? `${(n / 1024).toFixed(1)}KiB` : `${(n / 1024 / 1024).toFixed(1)}MiB`

/**
 * Aligned text: time, event, name, state, address, incarnation, id (in full
 * on `Started`, its first 8 digits otherwise), tags.
 */
export const toHuman = (line: OutputLine): string => {
  if (line.event === "Stats") {
    const s = line
    const phis = Object.values(s.phi)
    const maxPhi = phis.length === 0 ? 0 : Math.max(...phis)
    return [
      s.ts,
      "Stats".padEnd(13),
      `members=${s.members} alive=${s.alive} suspect=${s.suspect} dead=${s.dead} left=${s.left}`,
      `probes=${s.probes} failed=${s.failedProbes} indirect=${s.indirectProbes}`,
      `suspicions=${s.suspicionsRaised} refutations=${s.refutations} pushPulls=${s.pushPulls}`,
      `sent=${s.transport.packetsSent}/${bytes(s.transport.bytesSent)}`,
      `received=${s.transport.packetsReceived}/${bytes(s.transport.bytesReceived)}`,
      `dropped=${s.transport.dropped} awareness=${s.awareness} maxPhi=${maxPhi.toFixed(2)}`
    ].join("  ")
  }
  const n = line
  return [
    n.ts,
    n.event.padEnd(13),
    n.name.padEnd(16),
    n.state.padEnd(7),
    n.address.padEnd(21),
    `inc=${n.incarnation}`.padEnd(8),
    n.event === "Started" ? n.id : n.id.slice(0, 8),
    formatTags(n.tags)
  ]
    .join("  ")
    .trimEnd()
}

/** The formatter for `--format`. */
export const formatter = (format: OutputFormat): ((line: OutputLine) => string) =>
  format === "json" ? toJson : toHuman
