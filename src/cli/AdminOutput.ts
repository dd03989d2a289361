/**
 * How the admin commands print their answers: JSON for scripts (one
 * document per command, or one object per line for `monitor`; keys only
 * ever added, as `docs/CLI.md` promises) and aligned text for people.
 *
 * `members --format json` prints each member exactly as the library's
 * `ClusterNode` encodes (`Schema.encode(ClusterNode)`), plus `phi` and
 * `lastHeard` with `--detailed`, so it is the library's `members` answer.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"
import type { AgentInfo, KeyringReportView, MemberEntry, MonitorLog } from "../admin/AdminRpcs.ts"
import { ClusterNode, formatAddress } from "../cluster/Node.ts"
import type { MemberReachability } from "../cluster/Reachability.ts"
import { isoTimestamp } from "./EventFormat.ts"

const encodeNode = Schema.encodeSync(ClusterNode)

/** A member as `members --format json` prints it. */
export const memberJson = (entry: MemberEntry, detailed: boolean): Record<string, unknown> => {
  const out: Record<string, unknown> = { ...encodeNode(entry.node) }
  if (detailed) {
    out.phi = entry.phi ?? null
    out.lastHeard = entry.lastHeard === undefined ? null : isoTimestamp(entry.lastHeard)
  }
  return out
}

const tagText = (tags: Readonly<Record<string, string>>): string =>
  Object.keys(tags)
    .sort()
    .map((key) => `${key}=${tags[key]}`)
    .join(",")

/** Left-aligned columns, two spaces apart, the last one unpadded. */
export const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]?.length ?? 0)))
  const line = (cells: ReadonlyArray<string>) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd()
  return [line(header), ...rows.map(line)].join("\n")
}

/** How long ago `millis` was, as `850ms` or `12.3s`. */
export const ago = (millis: number | undefined, now: number): string => {
  if (millis === undefined) return "-"
  const elapsed = Math.max(0, now - millis)
  return elapsed < 1000 ? `${Math.round(elapsed)}ms` : `${(elapsed / 1000).toFixed(1)}s`
}

/** The `members` table: name, address, state, tags; with `detailed`, id, incarnation, RPC address, phi, last heard. */
export const membersTable = (entries: ReadonlyArray<MemberEntry>, detailed: boolean, now: number): string => {
  if (!detailed) {
    return table(
      ["Name", "Address", "State", "Tags"],
      entries.map(({ node }) => [node.name, formatAddress(node.gossipAddress), node.state, tagText(node.tags)])
    )
  }
  return table(
    ["Name", "Address", "State", "Incarnation", "RPC", "Phi", "Last heard", "ID", "Tags"],
    entries.map(({ node, phi, lastHeard }) => [
      node.name,
      formatAddress(node.gossipAddress),
      node.state,
      String(node.incarnation),
      node.rpcAddress === undefined ? "-" : formatAddress(node.rpcAddress),
      phi === undefined ? "-" : phi.toFixed(2),
      ago(lastHeard, now),
      node.id,
      tagText(node.tags)
    ])
  )
}

/** A log line on `monitor`, as text. */
export const logLine = (line: MonitorLog): string => {
  const annotations = Object.entries(line.annotations)
    .map(([k, v]) => `${k}=${v}`)
    .join(" ")
  return [isoTimestamp(line.ts), "Log".padEnd(13), line.level.toUpperCase().padEnd(5), line.message, annotations]
    .join("  ")
    .trimEnd()
}

/** A log line on `monitor --format json`. */
export const logJson = (line: MonitorLog): Record<string, unknown> => ({
  ts: isoTimestamp(line.ts),
  event: "Log",
  level: line.level,
  message: line.message,
  annotations: line.annotations
})

/** `info` as sections of `key = value`. */
export const infoText = (info: AgentInfo): string => {
  const section = (title: string, entries: ReadonlyArray<readonly [string, string]>) =>
    [`${title}:`, ...entries.map(([k, v]) => `  ${k} = ${v}`)].join("\n")
  return [
    section("agent", [
      ["version", info.version],
      ["name", info.node.name],
      ["id", info.node.id],
      ["address", formatAddress(info.node.gossipAddress)],
      ["state", info.node.state],
      ["incarnation", String(info.node.incarnation)],
      ["status", info.status],
      ["healthy", String(info.healthy)],
      ["tags", tagText(info.node.tags)]
    ]),
    section("members", [
      ["total", String(info.members.total)],
      ["alive", String(info.members.alive)],
      ["suspect", String(info.members.suspect)],
      ["dead", String(info.members.dead)],
      ["left", String(info.members.left)]
    ]),
    section("health", [["awareness", String(info.awareness)]]),
    section(
      "counters",
      Object.entries(info.counters).map(([k, v]) => [k, String(v)] as const)
    ),
    section("keyring", [
      ["fingerprints", info.keyFingerprints.length === 0 ? "(no keyring)" : info.keyFingerprints.join(", ")]
    ]),
    section(
      "config",
      Object.entries(info.config).map(([k, v]) => [k, v] as const)
    )
  ].join("\n\n")
}

/** A keyring command's report: this node's keys, then each member's answer. */
export const keyringText = (report: KeyringReportView): string => {
  const lines = [`local keys (primary first): ${report.local.join(", ") || "(none)"}`]
  if (report.refused !== undefined) lines.push(`refused here: ${report.refused}`)
  lines.push(`acknowledged by ${report.acknowledged}, failed on ${report.failed}`)
  if (report.members.length > 0) {
    lines.push(
      table(
        ["Member", "Keys", "Error"],
        report.members.map((m) => [m.name, m.keys?.join(", ") ?? "-", m.error ?? ""])
      )
    )
  }
  return lines.join("\n")
}

/** A member's line of `reachability --format json`: who, how it answered, the round trip in ms (null without one). */
export const reachabilityJson = (result: MemberReachability): Record<string, unknown> => ({
  id: result.node.id,
  name: result.node.name,
  address: formatAddress(result.node.gossipAddress),
  state: result.node.state,
  outcome: result.outcome,
  rtt: result.rtt ?? null,
  helpers: result.helpers,
  nacks: result.nacks
})

const routeText: Record<MemberReachability["outcome"], string> = {
  direct: "direct",
  indirect: "indirect (via a helper)",
  tcp: "tcp (datagrams lost)",
  unreachable: "unreachable"
}

/** The `reachability` table, then a summary line naming the members nobody reached. */
export const reachabilityText = (results: ReadonlyArray<MemberReachability>): string => {
  if (results.length === 0) return "no other members to probe"
  const count = (outcome: MemberReachability["outcome"]) => results.filter((r) => r.outcome === outcome).length
  const missing = results.filter((r) => r.outcome === "unreachable").map((r) => r.node.name)
  const rows = table(
    ["Name", "Address", "State", "Answered", "RTT", "Helpers", "Nacks"],
    results.map((r) => [
      r.node.name,
      formatAddress(r.node.gossipAddress),
      r.node.state,
      routeText[r.outcome],
      r.rtt === undefined ? "-" : `${r.rtt}ms`,
      String(r.helpers),
      String(r.nacks)
    ])
  )
  const summary =
    `${results.length - missing.length} of ${results.length} answered: ${count("direct")} directly, ` +
    `${count("indirect")} indirectly, ${count("tcp")} over TCP` +
    (missing.length === 0 ? "" : `; unreachable: ${missing.join(", ")}`)
  return `${rows}\n\n${summary}`
}
