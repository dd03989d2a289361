/**
 * What `Cluster.reachability` reports about one member: how it answered a
 * probe sent to it just now — its own ack (`direct`), an ack relayed by a
 * ping-req helper (`indirect`: our link to it fails, another member's
 * works), the ping over TCP (`tcp`: datagrams are lost, a stream gets
 * through) — or `unreachable` within the probe's budget. Serf's
 * `reachability`, answered by the failure detector's own probe machinery.
 *
 * A schema class, so the admin interface carries it as the library returns it.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"
import { ClusterNode } from "./Node.ts"

/** How a member answered, first. */
export const ReachabilityOutcome = Schema.Literals(["direct", "indirect", "tcp", "unreachable"])
export type ReachabilityOutcome = typeof ReachabilityOutcome.Type

/** One member's reachability, as {@link ReachabilityOutcome} says. */
export class MemberReachability extends Schema.Class<MemberReachability>("shoal/cluster/MemberReachability")({
  /** The member as this node held it when the check began. */
  node: ClusterNode,
  outcome: ReachabilityOutcome,
  /** From the first ping to the answer, in milliseconds (absent when unreachable). */
  rtt: Schema.optionalKey(Schema.Number),
  /** Members asked to ping it for us (after the direct ping's timeout). */
  helpers: Schema.Number,
  /** Helpers that answered that they could not reach it either. */
  nacks: Schema.Number
}) {}
