/**
 * What gossip puts on the wire: the SWIM protocol messages (ping, ack, nack,
 * ping-req), the member state updates they carry piggyback, the compound
 * packet that holds both, and the push-pull state exchange.
 *
 * Every schema here has two sides. The type side is the domain's own
 * vocabulary (`NodeId`, `NodeState`, `Address`), so the engine never sees wire
 * details; the encoded side is chosen for size, because at most ~1400 bytes
 * fit a packet and each byte saved is room for another piggybacked update:
 *
 * - a `NodeId` travels as its 16 raw bytes, not as 36 characters of text;
 * - a `NodeState` as a one-byte number, not its name;
 * - an IPv4 host as its 4 address bytes (any other host as text);
 * - every struct field carries an explicit small `SchemaBinary.fieldId`, so a
 *   field tag costs one byte instead of a five-byte name hash, and the numbers
 *   stay stable across renames. Never reuse or renumber an id: add new
 *   optional fields under new ids, and old readers skip them.
 *
 * `Codec` turns these values into bytes with `effect/encoding`'s SchemaBinary.
 *
 * @since 0.1.0
 */
import { Option, Schema, SchemaTransformation } from "effect"
import { SchemaBinary } from "effect/encoding"
import { Address, ClusterNode, NodeId, NodeState, Tags } from "../Node.ts"

// ---------------------------------------------------------------------------
// Wire forms of the domain's scalars
// ---------------------------------------------------------------------------

const HEX = "0123456789abcdef"

const hexValue = (code: number): number => {
  if (code >= 48 && code <= 57) return code - 48 // 0-9
  if (code >= 97 && code <= 102) return code - 87 // a-f
  if (code >= 65 && code <= 70) return code - 55 // A-F
  return -1
}

/**
 * The 16 bytes of a `NodeId` (a UUID in its canonical 8-4-4-4-12 form).
 * The caller passes a checked `NodeId`; a malformed string yields zero nibbles
 * where it is not hex, which the `NodeId` check rejects on the way back.
 */
export const nodeIdToBytes = (id: NodeId): Uint8Array<ArrayBuffer> => {
  const out = new Uint8Array(16)
  let j = 0
  for (let i = 0; i < id.length && j < 32; i++) {
    const v = hexValue(id.charCodeAt(i))
    if (v < 0) continue
    out[j >> 1] = (out[j >> 1]! | ((j & 1) === 0 ? v << 4 : v)) & 0xff
    j++
  }
  return out
}

/**
 * The canonical lower-case UUID text of 16 bytes. Not every 16 bytes are a
 * `NodeId` (it must be a version-4 UUID); the schema checks that afterwards.
 */
export const nodeIdTextFromBytes = (bytes: Uint8Array): string => {
  let s = ""
  for (let i = 0; i < 16; i++) {
    if (i === 4 || i === 6 || i === 8 || i === 10) s += "-"
    const b = bytes[i]!
    s += HEX[b >> 4]! + HEX[b & 15]!
  }
  return s
}

const bytesOfLength = (n: number) =>
  Schema.Uint8Array.check(
    Schema.makeFilter((bytes: Uint8Array) => bytes.length === n || `expected exactly ${n} bytes, got ${bytes.length}`)
  )

/**
 * A `NodeId` on the wire: 16 raw bytes instead of 36 characters. Any other
 * length, or 16 bytes that are not a UUID v4, fail to decode.
 */
export const NodeIdFromBytes = bytesOfLength(16).pipe(
  Schema.decodeTo(
    NodeId,
    SchemaTransformation.transform<string, Uint8Array>({
      decode: nodeIdTextFromBytes,
      encode: (id) => nodeIdToBytes(id as NodeId)
    })
  )
)

const STATES: ReadonlyArray<NodeState> = ["Alive", "Suspect", "Dead", "Left"]
const STATE_CODE: Readonly<Record<NodeState, 0 | 1 | 2 | 3>> = { Alive: 0, Suspect: 1, Dead: 2, Left: 3 }

/** A `NodeState` on the wire: one byte (0 Alive, 1 Suspect, 2 Dead, 3 Left). */
export const NodeStateFromCode = Schema.Literals([0, 1, 2, 3]).pipe(
  Schema.decodeTo(
    NodeState,
    SchemaTransformation.transform<NodeState, 0 | 1 | 2 | 3>({
      decode: (code) => STATES[code]!,
      encode: (state) => STATE_CODE[state]
    })
  )
)

/**
 * The dotted-quad text of an IPv4 address in canonical form (no leading
 * zeros), as 4 bytes; `undefined` for anything else, which then travels as
 * text. Only canonical text is packed, so decoding gives back the same string.
 */
export const ipv4ToBytes = (host: string): Uint8Array<ArrayBuffer> | undefined => {
  if (host.length < 7 || host.length > 15) return undefined
  const out = new Uint8Array(4)
  let part = 0
  let value = 0
  let digits = 0
  for (let i = 0; i <= host.length; i++) {
    const c = i === host.length ? 46 : host.charCodeAt(i)
    if (c === 46) {
      if (digits === 0 || part > 3) return undefined
      out[part++] = value
      value = 0
      digits = 0
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && value === 0) return undefined // leading zero
      value = value * 10 + (c - 48)
      if (++digits > 3 || value > 255) return undefined
    } else {
      return undefined
    }
  }
  return part === 4 ? out : undefined
}

const Ipv4Bytes = bytesOfLength(4)

/** A host on the wire: 4 bytes for an IPv4 address, otherwise its text. */
export const HostFromWire = Schema.Union([Ipv4Bytes, Schema.NonEmptyString]).pipe(
  Schema.decodeTo(
    Schema.NonEmptyString,
    SchemaTransformation.transform<string, Uint8Array | string>({
      decode: (wire) => (typeof wire === "string" ? wire : `${wire[0]}.${wire[1]}.${wire[2]}.${wire[3]}`),
      encode: (host) => ipv4ToBytes(host) ?? host
    })
  )
)

/** An `Address` on the wire: the pair `[host, port]`, positional, without field tags. */
export const AddressFromWire = Schema.Tuple([HostFromWire, Schema.Port]).pipe(
  Schema.decodeTo(
    Address,
    SchemaTransformation.transform<{ readonly host: string; readonly port: number }, readonly [string, number]>({
      decode: ([host, port]) => ({ host, port }),
      encode: (address) => [address.host, address.port]
    })
  )
)

/** A probe's sequence number: an unsigned 32-bit integer that wraps around. */
export const SeqNo = Schema.Int.check(Schema.isUint32())
export type SeqNo = typeof SeqNo.Type

/** The largest sequence number; the next one is 0. */
export const MAX_SEQ_NO = 0xffff_ffff

const Incarnation = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))

const id = SchemaBinary.fieldId

const isEmpty = (tags: Tags): boolean => {
  for (const _ in tags) return false
  return true
}

// ---------------------------------------------------------------------------
// Member state updates
// ---------------------------------------------------------------------------

/**
 * One claim about one member: "`nodeId` is in `state` at `incarnation`".
 *
 * An `Alive` update is a member's announcement of itself and carries its name,
 * addresses and tags (only the member raises its incarnation, so only it says
 * what they are). Push-pull entries carry them for every state, so a full
 * exchange can introduce members it does not know. `Suspect` and `Dead`
 * carry `from`, the accuser: Lifeguard counts independent confirmations of a
 * suspicion by distinct accusers.
 */
export class NodeStateUpdate extends Schema.Class<NodeStateUpdate>("shoal/NodeStateUpdate")({
  nodeId: NodeIdFromBytes.pipe(id(1)),
  state: NodeStateFromCode.pipe(id(2)),
  incarnation: Incarnation.pipe(id(3)),
  name: Schema.optionalKey(Schema.String).pipe(id(4)),
  gossipAddress: Schema.optionalKey(AddressFromWire).pipe(id(5)),
  rpcAddress: Schema.optionalKey(AddressFromWire).pipe(id(6)),
  tags: Schema.optionalKey(Tags).pipe(id(7)),
  from: Schema.optionalKey(NodeIdFromBytes).pipe(id(8))
}) {
  /**
   * The full form of a member's state: identity, addresses and tags, as an
   * `Alive` announcement or a push-pull entry carries it (empty tags are left
   * out; a full update without tags means "no tags"). `from` names the
   * accuser when the state is an accusation.
   */
  static fromNode(node: ClusterNode, from?: NodeId): NodeStateUpdate {
    return new NodeStateUpdate(
      {
        nodeId: node.id,
        state: node.state,
        incarnation: node.incarnation,
        name: node.name,
        gossipAddress: node.gossipAddress,
        ...(node.rpcAddress === undefined ? {} : { rpcAddress: node.rpcAddress }),
        ...(isEmpty(node.tags) ? {} : { tags: node.tags }),
        ...(from === undefined ? {} : { from })
      },
      { disableChecks: true }
    )
  }

  /** Whether this update carries a member's full state (its name and gossip address). */
  get isFull(): boolean {
    return this.name !== undefined && this.gossipAddress !== undefined
  }

  /**
   * The member this update describes, when it carries the full state;
   * `None` for a bare claim (`Suspect`/`Dead` by id only), which can only
   * change a member the receiver already knows.
   */
  toNode(): Option.Option<ClusterNode> {
    if (this.name === undefined || this.gossipAddress === undefined) return Option.none()
    return Option.some(
      new ClusterNode(
        {
          id: this.nodeId,
          name: this.name,
          gossipAddress: this.gossipAddress,
          ...(this.rpcAddress === undefined ? {} : { rpcAddress: this.rpcAddress }),
          tags: this.tags ?? {},
          state: this.state,
          incarnation: this.incarnation
        },
        { disableChecks: true }
      )
    )
  }
}

// ---------------------------------------------------------------------------
// Protocol messages
// ---------------------------------------------------------------------------

/**
 * "Are you alive?" — `from` probes `target`. Naming the target lets a node
 * that restarted on the same address under a new id refuse to answer for its
 * previous self, which would otherwise look alive forever.
 */
export class Ping extends Schema.TaggedClass<Ping>()("Ping", {
  seq: SeqNo.pipe(id(1)),
  from: NodeIdFromBytes.pipe(id(2)),
  target: NodeIdFromBytes.pipe(id(3))
}) {}

/** The answer to a `Ping` (or, relayed, to a `PingReq`) with the same `seq`. */
export class Ack extends Schema.TaggedClass<Ack>()("Ack", {
  seq: SeqNo.pipe(id(1)),
  from: NodeIdFromBytes.pipe(id(2))
}) {}

/**
 * Sent by a ping-req relay that got no ack from the target in time: it tells
 * the requestor its relay is alive, so the missing ack counts against the
 * target, not against the requestor's own network (Lifeguard).
 */
export class Nack extends Schema.TaggedClass<Nack>()("Nack", {
  seq: SeqNo.pipe(id(1)),
  from: NodeIdFromBytes.pipe(id(2))
}) {}

/**
 * The indirect probe ("IndirectPing"): `requestor` asks the receiver to ping
 * `target` at `targetAddress` and to relay the ack back under `seq`.
 */
export class PingReq extends Schema.TaggedClass<PingReq>()("PingReq", {
  seq: SeqNo.pipe(id(1)),
  requestor: NodeIdFromBytes.pipe(id(2)),
  target: NodeIdFromBytes.pipe(id(3)),
  targetAddress: AddressFromWire.pipe(id(4))
}) {}

/** A protocol message that travels in a datagram. */
export const Message = Schema.Union([Ping, Ack, Nack, PingReq])
export type Message = typeof Message.Type

/**
 * One datagram: the protocol messages (usually one) plus the state updates
 * riding piggyback on them (at most 10, within the packet's byte budget).
 */
export const Packet = Schema.Struct({
  messages: Schema.Array(Message).pipe(id(1)),
  updates: Schema.Array(NodeStateUpdate).pipe(id(2))
})
export type Packet = typeof Packet.Type

/**
 * The anti-entropy exchange over a stream: `from`'s full view of the
 * membership (every entry in full form, tombstones included). The joiner sends
 * one with `join: true`; the responder answers with its own.
 */
export class PushPull extends Schema.TaggedClass<PushPull>()("PushPull", {
  from: NodeIdFromBytes.pipe(id(1)),
  join: Schema.Boolean.pipe(id(2)),
  nodes: Schema.Array(NodeStateUpdate).pipe(id(3))
}) {}
