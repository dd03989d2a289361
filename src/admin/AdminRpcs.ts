/**
 * The agent's local admin interface as an effect/rpc group: what `shoal
 * members`, `monitor`, `join`, `leave`, `force-leave`, `tags`, `info`,
 * `reachability` and `keys` ask a running agent. Every procedure fails with the library's own
 * `ClusterError`s, so a caller matches on the same tags as an application
 * embedding `Cluster` would; the `AdminAuth` middleware adds
 * `AdminUnauthorized` when a loopback caller does not present the token.
 *
 * @module
 * @since 0.1.0
 */
import * as Rpc from "effect/rpc/Rpc"
import * as RpcGroup from "effect/rpc/RpcGroup"
import * as RpcMiddleware from "effect/rpc/RpcMiddleware"
import * as Schema from "effect/Schema"
import { ClusterError } from "../cluster/Errors.ts"
import { ClusterEvent } from "../cluster/Events.ts"
import { ClusterNode, NodeState, Tags } from "../cluster/Node.ts"
import { MemberReachability } from "../cluster/Reachability.ts"

/** A caller on a loopback port that did not present the agent's admin token. */
export class AdminUnauthorized extends Schema.TaggedError<AdminUnauthorized>()("AdminUnauthorized", {
  reason: Schema.String
}) {
  override get message(): string {
    return `the agent refused the admin call: ${this.reason}`
  }
}

/**
 * Checks every admin call: on a loopback port the caller must present the
 * token the agent wrote to its 0600 token file; on a Unix socket the socket's
 * file mode already limits callers to the local user.
 */
export class AdminAuth extends RpcMiddleware.Service<AdminAuth>()("shoal/admin/AdminAuth", {
  error: AdminUnauthorized,
  requiredForClient: true
}) {}

/** Largest admin frame either side reads, in bytes. */
export const MAX_ADMIN_FRAME_BYTES = 1024 * 1024

/** The header that carries the admin token. */
export const TOKEN_HEADER = "x-shoal-admin-token"

/** One member as `members` reports it: the library's `ClusterNode`, plus the failure detector's view. */
export class MemberEntry extends Schema.Class<MemberEntry>("shoal/admin/MemberEntry")({
  node: ClusterNode,
  /** phi now (`detailed` only; absent for this node and for members never heard from). */
  phi: Schema.optionalKey(Schema.Number),
  /** When the last packet from it arrived, milliseconds since the epoch (`detailed` only). */
  lastHeard: Schema.optionalKey(Schema.Number)
}) {}

/** Which members `members` returns: all by default; `states` and `tags` narrow it (a member must match both). */
export const MembersQuery = {
  states: Schema.optionalKey(Schema.Array(NodeState)),
  tags: Schema.optionalKey(Tags),
  detailed: Schema.optionalKey(Schema.Boolean)
}

/** Members by state, this node included. */
export const MemberCounts = Schema.Struct({
  total: Schema.Number,
  alive: Schema.Number,
  suspect: Schema.Number,
  dead: Schema.Number,
  left: Schema.Number
})
export type MemberCounts = typeof MemberCounts.Type

/** What `info` reports about the agent. */
export class AgentInfo extends Schema.Class<AgentInfo>("shoal/admin/AgentInfo")({
  version: Schema.String,
  node: ClusterNode,
  status: Schema.Literals(["open", "left", "closed"]),
  /** The configuration, each value as text; key material only as `<redacted>`. */
  config: Schema.Record(Schema.String, Schema.String),
  /** Every counter of `Cluster.stats`, flattened (`transport.packetsSent`, `envelopeRejected.replayed`, …). */
  counters: Schema.Record(Schema.String, Schema.Number),
  awareness: Schema.Number,
  members: MemberCounts,
  healthy: Schema.Boolean,
  /** The keyring's fingerprints, primary first (empty without a keyring). Never the keys. */
  keyFingerprints: Schema.Array(Schema.String)
}) {}

/** One member's answer to a keyring command (`Cluster.keys`'s `MemberKeys`). */
export const MemberKeysView = Schema.Struct({
  id: Schema.String,
  name: Schema.String,
  keys: Schema.optionalKey(Schema.Array(Schema.String)),
  error: Schema.optionalKey(Schema.String)
})

/** `Cluster.keys`'s `KeyringReport`, as it crosses the admin socket. */
export const KeyringReportView = Schema.Struct({
  local: Schema.Array(Schema.String),
  refused: Schema.optionalKey(Schema.String),
  members: Schema.Array(MemberKeysView),
  acknowledged: Schema.Number,
  failed: Schema.Number
})
export type KeyringReportView = typeof KeyringReportView.Type

/** A membership event on the `monitor` stream. */
export class MonitorEvent extends Schema.TaggedClass<MonitorEvent>()("MonitorEvent", {
  /** When the agent saw it, milliseconds since the epoch. */
  ts: Schema.Number,
  event: ClusterEvent
}) {}

/** A log line on the `monitor` stream (only with `logLevel`). */
export class MonitorLog extends Schema.TaggedClass<MonitorLog>()("MonitorLog", {
  ts: Schema.Number,
  level: Schema.String,
  message: Schema.String,
  annotations: Schema.Record(Schema.String, Schema.String)
}) {}

/**
 * The first item of every `monitor` stream: the members at the moment the
 * subscription went live (every later change follows as a `MonitorEvent`).
 */
export class MonitorStarted extends Schema.TaggedClass<MonitorStarted>()("MonitorStarted", {
  ts: Schema.Number,
  members: Schema.Array(ClusterNode)
}) {}

/** What `monitor` streams. */
export const MonitorItem = Schema.Union([MonitorStarted, MonitorEvent, MonitorLog])
export type MonitorItem = typeof MonitorItem.Type

/** Effect's log levels, as `monitor --log-level` names them. */
export const MonitorLevel = Schema.Literals(["Trace", "Debug", "Info", "Warn", "Error", "Fatal"])
export type MonitorLevel = typeof MonitorLevel.Type

/** Every admin procedure. */
export class AdminRpcs extends RpcGroup.make(
  Rpc.make("Members", { payload: MembersQuery, success: Schema.Array(MemberEntry), error: ClusterError }),
  Rpc.make("Monitor", {
    payload: { logLevel: Schema.optionalKey(MonitorLevel) },
    success: MonitorItem,
    error: ClusterError,
    stream: true
  }),
  Rpc.make("Join", {
    payload: { addresses: Schema.Array(Schema.String) },
    success: Schema.Number,
    error: ClusterError
  }),
  Rpc.make("Leave", { success: Schema.Void, error: ClusterError }),
  Rpc.make("ForceLeave", { payload: { member: Schema.String }, success: ClusterNode, error: ClusterError }),
  Rpc.make("UpdateTags", {
    payload: { set: Tags, remove: Schema.Array(Schema.String) },
    success: ClusterNode,
    error: ClusterError
  }),
  Rpc.make("Info", { success: AgentInfo, error: ClusterError }),
  Rpc.make("Reachability", {
    /** At most this long (ms) per check; the agent's probe budget otherwise. */
    payload: { timeoutMillis: Schema.optionalKey(Schema.Number) },
    success: Schema.Array(MemberReachability),
    error: ClusterError
  }),
  Rpc.make("KeysList", { success: KeyringReportView, error: ClusterError }),
  Rpc.make("KeysInstall", { payload: { key: Schema.String }, success: KeyringReportView, error: ClusterError }),
  Rpc.make("KeysUse", { payload: { fingerprint: Schema.String }, success: KeyringReportView, error: ClusterError }),
  Rpc.make("KeysRemove", { payload: { fingerprint: Schema.String }, success: KeyringReportView, error: ClusterError })
).middleware(AdminAuth) {}
