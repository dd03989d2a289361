/**
 * The cluster's data model: who a member is, where it can be reached, what it
 * advertises, and what the cluster currently believes about it.
 *
 * @module
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Random from "effect/Random"
import * as Schema from "effect/Schema"

/**
 * A member's identity: a UUID v4, fresh for every process start, so a node
 * restarted on the same address is a new member and never inherits the old
 * one's incarnation. Always lower-case: the wire carries the 16 raw bytes, so
 * the text form must be canonical for a node to recognise claims about
 * itself. Branded strings compare by value, so a `NodeId` works as
 * a key in `HashMap`, `Map` and `Equal`.
 */
export const NodeId = Schema.String.check(
  Schema.isPattern(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, {
    expected: "a lower-case UUID v4"
  })
).pipe(Schema.brand("shoal/NodeId"))
export type NodeId = typeof NodeId.Type

const hex = (n: number, width: number) => n.toString(16).padStart(width, "0")

/**
 * Draws a UUID v4 from the `Random` service, so a seeded test replays the same
 * identities.
 */
export const makeNodeId: Effect.Effect<NodeId> = Effect.gen(function* () {
  const words: Array<number> = []
  for (let i = 0; i < 8; i++) words.push(yield* Random.nextIntBetween(0, 0xffff))
  const w = (i: number) => words[i]!
  const uuid = `${hex(w(0), 4)}${hex(w(1), 4)}-${hex(w(2), 4)}-4${hex(w(3) & 0x0fff, 3)}-${hex(
    (w(4) & 0x3fff) | 0x8000,
    4
  )}-${hex(w(5), 4)}${hex(w(6), 4)}${hex(w(7), 4)}`
  return NodeId.make(uuid, { disableChecks: true })
})

/** Parses a `NodeId`, failing with the schema's message on anything that is not a UUID v4. */
export const decodeNodeId = Schema.decodeUnknownEffect(NodeId)

/**
 * The states SWIM moves a member through. `Left` is a graceful departure and
 * `Dead` a detected failure; the difference matters to users (a deploy vs. an
 * incident), so they stay distinct all the way to the event stream.
 */
export const NodeState = Schema.Literals(["Alive", "Suspect", "Dead", "Left"])
export type NodeState = typeof NodeState.Type

/** A host (IP literal or DNS name) and a port. */
export class Address extends Schema.Class<Address>("shoal/Address")({
  host: Schema.NonEmptyString,
  port: Schema.Port
}) {
  /** `host:port`, with IPv6 literals in brackets. */
  override toString(): string {
    return formatAddress(this)
  }
}

/** `host:port`, with IPv6 literals in brackets. */
export const formatAddress = (address: { readonly host: string; readonly port: number }): string =>
  address.host.includes(":") ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`

/**
 * Parses `host:port` or `[v6]:port`; `undefined` when the text is not one.
 * Kept total (no throw) because it runs on configuration and user input.
 */
export const parseAddress = (text: string): Address | undefined => {
  const trimmed = text.trim()
  const match = /^\[([^\]]+)\]:(\d+)$/.exec(trimmed) ?? /^([^:[\]\s]+):(\d+)$/.exec(trimmed)
  if (match === null) return undefined
  const port = Number(match[2])
  if (!Number.isInteger(port) || port < 0 || port > 65535) return undefined
  return new Address({ host: match[1]!, port }, { disableChecks: true })
}

/** Tags a member advertises (`role=worker`, `healthy=true`, …). */
export const Tags = Schema.Record(Schema.String, Schema.String)
export type Tags = typeof Tags.Type

/**
 * What the cluster believes about one member. `incarnation` is the member's
 * own counter: only it raises it, to refute a suspicion or to publish new tags,
 * and a higher incarnation always wins (see `Rules`).
 */
export class ClusterNode extends Schema.Class<ClusterNode>("shoal/ClusterNode")({
  id: NodeId,
  name: Schema.String,
  gossipAddress: Address,
  rpcAddress: Schema.optionalKey(Address),
  tags: Tags,
  state: NodeState,
  incarnation: Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))
}) {
  /** Whether the member carries every one of the given tags. */
  hasTags(tags: Tags): boolean {
    for (const key in tags) {
      if (this.tags[key] !== tags[key]) return false
    }
    return true
  }

  /** A copy with some fields replaced (no re-validation: callers pass checked values). */
  with(patch: Partial<Omit<ClusterNode, "id" | "hasTags" | "with">>): ClusterNode {
    return new ClusterNode({ ...this, ...patch }, { disableChecks: true })
  }
}
