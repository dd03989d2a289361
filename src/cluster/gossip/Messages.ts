/**
 * What gossip puts on the wire: the SWIM protocol messages (ping, ack, nack,
 * ping-req), the member state updates they carry piggyback, the compound
 * packet that holds both, and the push-pull state exchange.
 *
 * Each of them exists twice. The **domain classes** (`NodeStateUpdate`,
 * `Ping`, …, `Packet`, `PushPull`) speak the engine's vocabulary (`NodeId`,
 * `NodeState`, `Address`) and are what the engine builds and reads. The
 * **wire schemas** (`WireUpdate`, `WireMessage`, `WirePacket`,
 * `WirePushPull`) are what `Codec` hands to SchemaBinary: plain bytes,
 * numbers, strings and structs, with no transformation and no check, chosen
 * for size, because at most ~1400 bytes fit a packet and each byte saved is
 * room for another piggybacked update:
 *
 * - a `NodeId` travels as its 16 raw bytes, not as 36 characters of text;
 * - a `NodeState` as a one-byte number (0 Alive, 1 Suspect, 2 Dead, 3 Left);
 * - an IPv4 address as 6 bytes (4 address bytes, the port big-endian), any
 *   other address as the pair `[host, port]`;
 * - a message as a struct with exactly one of `ping`, `ack`, `nack`,
 *   `pingReq` set: 2 bytes less than a tagged union, whose member selector
 *   is a 5-byte hash. (A new kind of message is a new field; an old reader
 *   sees a message with none of its kinds and refuses the packet, as it would
 *   an unknown union member.);
 * - every struct field carries an explicit small `SchemaBinary.fieldId`, so a
 *   field tag costs one byte instead of a five-byte name hash, and the numbers
 *   stay stable across renames. Never reuse or renumber an id: add new
 *   optional fields under new ids, and old readers skip them.
 *
 * Why two forms: a wire schema without transformations or checks is one that
 * SchemaBinary validates entirely by itself, so it skips the generic schema
 * pass around the bytes; that pass (and building the domain classes through
 * it) was most of the cost of a decode. The domain rules the wire schema
 * cannot state — a 16-byte UUID v4, a port, an integer incarnation, exactly
 * one message kind — are checked here by hand, once, in
 * {@link packetFromWire} / {@link pushPullFromWire}, which then build the
 * domain classes with `disableChecks`. The other direction
 * ({@link packetToWire}, {@link pushPullToWire}) checks the values it
 * packs, so a value that skipped its constructor's checks is caught as a bug
 * at the sender instead of being refused by every receiver.
 *
 * `Codec` turns the wire values into bytes with `effect/encoding`'s SchemaBinary.
 *
 * @module
 * @since 0.1.0
 */

import * as SchemaBinary from "effect/encoding/SchemaBinary"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as SchemaTransformation from "effect/SchemaTransformation"
import { SerializationError } from "../Errors.ts"
import { Address, ClusterNode, NodeId, NodeState, Tags } from "../Node.ts"

// ---------------------------------------------------------------------------
// Wire forms of the domain's scalars
// ---------------------------------------------------------------------------

/** Hex digit values by character code (upper and lower case); -1 for anything else. */
const HEX_VALUE = new Int8Array(128).fill(-1)
for (let i = 0; i < 16; i++) {
  HEX_VALUE["0123456789abcdef".charCodeAt(i)] = i
  HEX_VALUE["0123456789ABCDEF".charCodeAt(i)] = i
}
const hexValue = (code: number): number => (code < 128 ? HEX_VALUE[code]! : -1)

/** The two lower-case hex digits of every byte value. */
const BYTE_HEX: ReadonlyArray<string> = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, "0"))

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
 * `NodeId` (it must be a version-4 UUID); see {@link isNodeIdBytes}.
 */
export const nodeIdTextFromBytes = (bytes: Uint8Array): string => {
  const h = BYTE_HEX
  const b = bytes
  return (
    h[b[0]!]! +
    h[b[1]!]! +
    h[b[2]!]! +
    h[b[3]!]! +
    "-" +
    h[b[4]!]! +
    h[b[5]!]! +
    "-" +
    h[b[6]!]! +
    h[b[7]!]! +
    "-" +
    h[b[8]!]! +
    h[b[9]!]! +
    "-" +
    h[b[10]!]! +
    h[b[11]!]! +
    h[b[12]!]! +
    h[b[13]!]! +
    h[b[14]!]! +
    h[b[15]!]!
  )
}

/**
 * Whether `bytes` are the 16 bytes of a `NodeId`: a UUID with version nibble
 * 4 and the RFC 4122 variant bits `10`. Their {@link nodeIdTextFromBytes} is
 * then exactly a `NodeId` (lower-case hex, the `4` and `[89ab]` in place).
 */
export const isNodeIdBytes = (bytes: Uint8Array): boolean =>
  bytes.length === 16 && (bytes[6]! & 0xf0) === 0x40 && (bytes[8]! & 0xc0) === 0x80

const bytesOfLength = (n: number) =>
  Schema.Uint8Array.check(
    Schema.makeFilter((bytes: Uint8Array) => bytes.length === n || `expected exactly ${n} bytes, got ${bytes.length}`)
  )

/**
 * A `NodeId` as 16 raw bytes, as a Schema: any other length, or 16 bytes that
 * are not a UUID v4, fail to decode. `Codec` does the same conversion by hand
 * on the wire values (tested to agree).
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

/** A `NodeState` as one small number (0 Alive, 1 Suspect, 2 Dead, 3 Left), as a Schema. */
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
 * Parses canonical dotted-quad text (no leading zeros) into `out[0..3]`;
 * false for anything else.
 */
const parseIpv4Into = (host: string, out: Uint8Array): boolean => {
  if (host.length < 7 || host.length > 15) return false
  let part = 0
  let value = 0
  let digits = 0
  for (let i = 0; i <= host.length; i++) {
    const c = i === host.length ? 46 : host.charCodeAt(i)
    if (c === 46) {
      if (digits === 0 || part > 3) return false
      out[part++] = value
      value = 0
      digits = 0
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && value === 0) return false // leading zero
      value = value * 10 + (c - 48)
      if (++digits > 3 || value > 255) return false
    } else {
      return false
    }
  }
  return part === 4
}

/**
 * The dotted-quad text of an IPv4 address in canonical form (no leading
 * zeros), as 4 bytes; `undefined` for anything else, which then travels as
 * text. Only canonical text is packed, so decoding gives back the same string.
 */
export const ipv4ToBytes = (host: string): Uint8Array<ArrayBuffer> | undefined => {
  const out = new Uint8Array(4)
  return parseIpv4Into(host, out) ? out : undefined
}

const Ipv4Bytes = bytesOfLength(4)

/** A host as 4 bytes for an IPv4 address, otherwise its text, as a Schema. */
export const HostFromWire = Schema.Union([Ipv4Bytes, Schema.NonEmptyString]).pipe(
  Schema.decodeTo(
    Schema.NonEmptyString,
    SchemaTransformation.transform<string, Uint8Array | string>({
      decode: (wire) => (typeof wire === "string" ? wire : `${wire[0]}.${wire[1]}.${wire[2]}.${wire[3]}`),
      encode: (host) => ipv4ToBytes(host) ?? host
    })
  )
)

/**
 * An `Address` as the pair `[host, port]`, as a Schema. (On the wire, `Codec`
 * packs an IPv4 address and its port further, into 6 bytes: see {@link WireAddress}.)
 */
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
  nodeId: NodeId,
  state: NodeState,
  incarnation: Incarnation,
  name: Schema.optionalKey(Schema.String),
  gossipAddress: Schema.optionalKey(Address),
  rpcAddress: Schema.optionalKey(Address),
  tags: Schema.optionalKey(Tags),
  from: Schema.optionalKey(NodeId),
  /**
   * The member's own signature over the claim (see `engine/Claims.ts`):
   * only an `Alive` or `Left` about the signer carries one, and only in a
   * cluster with identities. Without it the update encodes as it always did.
   */
  signature: Schema.optionalKey(Schema.Uint8Array),
  /** The member's identity certificate (DER), carried by push-pull entries only: too large for a datagram. */
  certificate: Schema.optionalKey(Schema.Uint8Array)
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
  seq: SeqNo,
  from: NodeId,
  target: NodeId
}) {}

/** The answer to a `Ping` (or, relayed, to a `PingReq`) with the same `seq`. */
export class Ack extends Schema.TaggedClass<Ack>()("Ack", {
  seq: SeqNo,
  from: NodeId
}) {}

/**
 * Sent by a ping-req relay that got no ack from the target in time: it tells
 * the requestor its relay is alive, so the missing ack counts against the
 * target, not against the requestor's own network (Lifeguard).
 */
export class Nack extends Schema.TaggedClass<Nack>()("Nack", {
  seq: SeqNo,
  from: NodeId
}) {}

/**
 * The indirect probe ("IndirectPing"): `requestor` asks the receiver to ping
 * `target` at `targetAddress` and to relay the ack back under `seq`.
 */
export class PingReq extends Schema.TaggedClass<PingReq>()("PingReq", {
  seq: SeqNo,
  requestor: NodeId,
  target: NodeId,
  targetAddress: Address
}) {}

/** A protocol message that travels in a datagram. */
export const Message = Schema.Union([Ping, Ack, Nack, PingReq])
export type Message = typeof Message.Type

/**
 * One datagram: the protocol messages (usually one) plus the state updates
 * riding piggyback on them (at most 10, within the packet's byte budget).
 */
export const Packet = Schema.Struct({
  messages: Schema.Array(Message),
  updates: Schema.Array(NodeStateUpdate)
})
export type Packet = typeof Packet.Type

/**
 * The anti-entropy exchange over a stream: `from`'s full view of the
 * membership (every entry in full form, tombstones included). The joiner sends
 * one with `join: true`; the responder answers with its own.
 */
export class PushPull extends Schema.TaggedClass<PushPull>()("PushPull", {
  from: NodeId,
  join: Schema.Boolean,
  nodes: Schema.Array(NodeStateUpdate)
}) {}

// ---------------------------------------------------------------------------
// Wire schemas
// ---------------------------------------------------------------------------

const id = SchemaBinary.fieldId

/** A `NodeId`'s 16 bytes (checked by hand: see {@link isNodeIdBytes}). */
const WireId = Schema.Uint8Array

/**
 * An `Address` on the wire: an IPv4 address as 6 bytes (address, then port
 * big-endian), anything else as `[host, port]`. 8 bytes for a typical IPv4
 * address with its port, one less than a `[bytes, port]` pair.
 */
export const WireAddress = Schema.Union([Schema.Uint8Array, Schema.Tuple([Schema.String, Schema.Number])])
export type WireAddress = typeof WireAddress.Type

/** A `NodeStateUpdate` on the wire. */
export const WireUpdate = Schema.Struct({
  nodeId: WireId.pipe(id(1)),
  state: Schema.Literals([0, 1, 2, 3]).pipe(id(2)),
  incarnation: Schema.Number.pipe(id(3)),
  name: Schema.optionalKey(Schema.String).pipe(id(4)),
  gossipAddress: Schema.optionalKey(WireAddress).pipe(id(5)),
  rpcAddress: Schema.optionalKey(WireAddress).pipe(id(6)),
  tags: Schema.optionalKey(Schema.Record(Schema.String, Schema.String)).pipe(id(7)),
  from: Schema.optionalKey(WireId).pipe(id(8)),
  signature: Schema.optionalKey(Schema.Uint8Array).pipe(id(9)),
  certificate: Schema.optionalKey(Schema.Uint8Array).pipe(id(10))
})
export type WireUpdate = typeof WireUpdate.Type

const WireProbe = Schema.Struct({
  seq: Schema.Number.pipe(id(1)),
  from: WireId.pipe(id(2)),
  target: WireId.pipe(id(3))
})

/** An `Ack` or a `Nack`: the same fields, told apart by the field that holds them. */
const WireReply = Schema.Struct({
  seq: Schema.Number.pipe(id(1)),
  from: WireId.pipe(id(2))
})

const WirePingReq = Schema.Struct({
  seq: Schema.Number.pipe(id(1)),
  requestor: WireId.pipe(id(2)),
  target: WireId.pipe(id(3)),
  targetAddress: WireAddress.pipe(id(4))
})

/** A `Message` on the wire: exactly one of the four fields is set. */
export const WireMessage = Schema.Struct({
  ping: Schema.optionalKey(WireProbe).pipe(id(1)),
  ack: Schema.optionalKey(WireReply).pipe(id(2)),
  nack: Schema.optionalKey(WireReply).pipe(id(3)),
  pingReq: Schema.optionalKey(WirePingReq).pipe(id(4))
})
export type WireMessage = typeof WireMessage.Type

/** A `Packet` on the wire. `Codec`'s array-count guard knows its array fields (1 and 2). */
export const WirePacket = Schema.Struct({
  messages: Schema.Array(WireMessage).pipe(id(1)),
  updates: Schema.Array(WireUpdate).pipe(id(2))
})
export type WirePacket = typeof WirePacket.Type

/** A `PushPull` on the wire. `Codec`'s array-count guard knows its array field (3). */
export const WirePushPull = Schema.Struct({
  from: WireId.pipe(id(1)),
  join: Schema.Boolean.pipe(id(2)),
  nodes: Schema.Array(WireUpdate).pipe(id(3))
})
export type WirePushPull = typeof WirePushPull.Type

// ---------------------------------------------------------------------------
// Domain → wire
// ---------------------------------------------------------------------------

const notEncodable = (message: string): never => {
  throw new SerializationError({ message: `cannot encode: ${message}` })
}

const isSeqNo = (n: number): boolean => Number.isInteger(n) && n >= 0 && n <= MAX_SEQ_NO
/**
 * The highest incarnation on the wire. A member raises its incarnation by one
 * per refutation, so four billion is out of reach of any real life; a claim
 * above it is refused on decode, and since the engine also refuses claims
 * that jump far above what it knows, a member's own refutation always stays
 * below it and always encodes. (Without a ceiling a forged `Left` at 2⁵³ − 1
 * evicted a member for good: its refutation at 2⁵³ could not be encoded.)
 */
export const MAX_INCARNATION = 0xffff_ffff

/** An ECDSA P-256 signature in IEEE P1363 form (r ‖ s), as members sign their claims. */
export const SIGNATURE_BYTES = 64

/**
 * The largest identity certificate a push-pull entry may carry: a P-256 node
 * certificate is 500–800 bytes; the cap keeps a hostile push-pull from
 * parking large blobs in every entry.
 */
export const MAX_CERTIFICATE_BYTES = 4096

const isIncarnation = (n: number): boolean => Number.isSafeInteger(n) && n >= 0 && n <= MAX_INCARNATION
const isPort = (n: number): boolean => Number.isInteger(n) && n >= 0 && n <= 65535

/**
 * The 16 bytes of a well-formed `NodeId`: exactly the canonical lower-case
 * UUID v4 text, each digit in place, or a thrown `SerializationError` (a
 * value that skipped its checks is a bug at the sender).
 */
const idToWire = (nodeId: string): Uint8Array => {
  if (nodeId.length !== 36) return notEncodable(`"${nodeId}" is not a NodeId`)
  const out = new Uint8Array(16)
  let j = 0
  for (let i = 0; i < 36; i++) {
    const c = nodeId.charCodeAt(i)
    if (i === 8 || i === 13 || i === 18 || i === 23) {
      if (c !== 45) return notEncodable(`"${nodeId}" is not a NodeId`)
      continue
    }
    // lower case only: the wire cannot keep case
    const v = c >= 65 && c <= 70 ? -1 : hexValue(c)
    if (v < 0) return notEncodable(`"${nodeId}" is not a NodeId`)
    out[j >> 1] = (j & 1) === 0 ? v << 4 : out[j >> 1]! | v
    j++
  }
  if (!isNodeIdBytes(out)) notEncodable(`"${nodeId}" is not a UUID v4`)
  return out
}

const addressToWire = (address: Address): WireAddress => {
  const { host, port } = address
  if (!isPort(port)) notEncodable(`port ${port} of ${host}`)
  if (host.length === 0) notEncodable("an empty host")
  const out = new Uint8Array(6)
  if (!parseIpv4Into(host, out)) return [host, port]
  out[4] = port >> 8
  out[5] = port & 0xff
  return out
}

/**
 * The wire form of an update. Throws `SerializationError` on a value that
 * skipped its checks. (`Codec` memoizes it per update: one update is packed
 * many times, for its size, every retransmission, every trial fit.)
 */
export const updateToWire = (update: NodeStateUpdate): WireUpdate => {
  const state = STATE_CODE[update.state]
  if (typeof state !== "number") notEncodable(`state ${String(update.state)}`)
  if (!isIncarnation(update.incarnation)) notEncodable(`incarnation ${update.incarnation}`)
  const wire: { -readonly [K in keyof WireUpdate]: WireUpdate[K] } = {
    nodeId: idToWire(update.nodeId),
    state,
    incarnation: update.incarnation
  }
  if (update.name !== undefined) wire.name = update.name
  if (update.gossipAddress !== undefined) wire.gossipAddress = addressToWire(update.gossipAddress)
  if (update.rpcAddress !== undefined) wire.rpcAddress = addressToWire(update.rpcAddress)
  if (update.tags !== undefined) wire.tags = update.tags
  if (update.from !== undefined) wire.from = idToWire(update.from)
  if (update.signature !== undefined) {
    if (update.signature.length !== SIGNATURE_BYTES) notEncodable(`a ${update.signature.length}-byte signature`)
    wire.signature = update.signature
  }
  if (update.certificate !== undefined) {
    if (update.certificate.length > MAX_CERTIFICATE_BYTES)
      notEncodable(`a ${update.certificate.length}-byte certificate`)
    wire.certificate = update.certificate
  }
  return wire
}

/** The wire form of one protocol message. Throws `SerializationError` on a value that skipped its checks. */
export const messageToWire = (message: Message): WireMessage => {
  if (!isSeqNo(message.seq)) notEncodable(`sequence number ${message.seq}`)
  switch (message._tag) {
    case "Ping":
      return { ping: { seq: message.seq, from: idToWire(message.from), target: idToWire(message.target) } }
    case "Ack":
      return { ack: { seq: message.seq, from: idToWire(message.from) } }
    case "Nack":
      return { nack: { seq: message.seq, from: idToWire(message.from) } }
    case "PingReq":
      return {
        pingReq: {
          seq: message.seq,
          requestor: idToWire(message.requestor),
          target: idToWire(message.target),
          targetAddress: addressToWire(message.targetAddress)
        }
      }
  }
}

/** The wire form of a packet. */
export const packetToWire = (packet: Packet): WirePacket => ({
  messages: packet.messages.map(messageToWire),
  updates: packet.updates.map(updateToWire)
})

/** The wire form of a push-pull message. */
export const pushPullToWire = (message: PushPull): WirePushPull => ({
  from: idToWire(message.from),
  join: message.join,
  nodes: message.nodes.map(updateToWire)
})

// ---------------------------------------------------------------------------
// Wire → domain
// ---------------------------------------------------------------------------

/** Thrown inside the conversion and caught at its entry points; never escapes this module. */
class Invalid {
  readonly message: string
  constructor(message: string) {
    this.message = message
  }
}

const invalid = (message: string): never => {
  throw new Invalid(message)
}

const idFromWire = (bytes: Uint8Array, field: string): NodeId => {
  if (bytes.length !== 16) invalid(`${field}: a node id is 16 bytes, got ${bytes.length}`)
  if ((bytes[6]! & 0xf0) !== 0x40) invalid(`${field}: not a UUID v4 (version nibble ${bytes[6]! >> 4})`)
  if ((bytes[8]! & 0xc0) !== 0x80) invalid(`${field}: not a UUID v4 (variant bits ${(bytes[8]! >> 6).toString(2)})`)
  return nodeIdTextFromBytes(bytes) as NodeId
}

/** `-0` (which the wire can carry) as `0`. */
const unsigned = (n: number): number => (n === 0 ? 0 : n)

const seqFromWire = (seq: number): number => {
  if (!isSeqNo(seq)) invalid(`seq: ${seq} is not an unsigned 32-bit integer`)
  return unsigned(seq)
}

/**
 * Decoded addresses, by their packed value or `port/host`. A cluster has few
 * addresses and every update repeats two of them, so sharing the (immutable)
 * instances saves building one per update; the cache is simply emptied when
 * it fills, so hostile traffic can only make it useless, not large.
 */
const addressCache = new Map<number | string, Address>()
const ADDRESS_CACHE_SIZE = 4096

const cachedAddress = (key: number | string, host: string, port: number): Address => {
  let address = addressCache.get(key)
  if (address === undefined) {
    address = new Address({ host, port }, { disableChecks: true })
    if (addressCache.size >= ADDRESS_CACHE_SIZE) addressCache.clear()
    addressCache.set(key, address)
  }
  return address
}

const addressFromWire = (wire: WireAddress, field: string): Address => {
  if (wire instanceof Uint8Array) {
    if (wire.length !== 6) invalid(`${field}: a packed IPv4 address is 6 bytes, got ${wire.length}`)
    // 48 bits, exact in a double: address bytes, then the port
    const key =
      ((wire[0]! << 8) | wire[1]!) * 0x1_0000_0000 +
      (((wire[2]! << 24) | (wire[3]! << 16) | (wire[4]! << 8) | wire[5]!) >>> 0)
    const address = addressCache.get(key)
    return address !== undefined
      ? address
      : cachedAddress(key, `${wire[0]}.${wire[1]}.${wire[2]}.${wire[3]}`, (wire[4]! << 8) | wire[5]!)
  }
  const [host, port] = wire
  if (host.length === 0) invalid(`${field}: empty host`)
  if (!isPort(port)) invalid(`${field}: port ${port} is not in 0..65535`)
  return cachedAddress(`${port}/${host}`, host, unsigned(port))
}

type UpdateFields = { -readonly [K in keyof NodeStateUpdate]?: NodeStateUpdate[K] } & {
  nodeId: NodeId
  state: NodeState
  incarnation: number
}

const updateFromWire = (wire: WireUpdate): NodeStateUpdate => {
  const state = STATES[wire.state]
  if (state === undefined) invalid(`state: unknown code ${wire.state}`)
  if (!isIncarnation(wire.incarnation))
    invalid(`incarnation: ${wire.incarnation} is not an integer in 0..${MAX_INCARNATION}`)
  const fields: UpdateFields = {
    nodeId: idFromWire(wire.nodeId, "nodeId"),
    state: state!,
    incarnation: unsigned(wire.incarnation)
  }
  if (wire.name !== undefined) fields.name = wire.name
  if (wire.gossipAddress !== undefined) fields.gossipAddress = addressFromWire(wire.gossipAddress, "gossipAddress")
  if (wire.rpcAddress !== undefined) fields.rpcAddress = addressFromWire(wire.rpcAddress, "rpcAddress")
  if (wire.tags !== undefined) fields.tags = wire.tags
  if (wire.from !== undefined) fields.from = idFromWire(wire.from, "from")
  if (wire.signature !== undefined) {
    if (wire.signature.length !== SIGNATURE_BYTES)
      invalid(`signature: a signature is ${SIGNATURE_BYTES} bytes, got ${wire.signature.length}`)
    fields.signature = wire.signature
  }
  if (wire.certificate !== undefined) {
    if (wire.certificate.length > MAX_CERTIFICATE_BYTES)
      invalid(`certificate: ${wire.certificate.length} bytes, at most ${MAX_CERTIFICATE_BYTES}`)
    fields.certificate = wire.certificate
  }
  return new NodeStateUpdate(fields, { disableChecks: true })
}

const messageFromWire = (wire: WireMessage): Message => {
  const { ack, nack, ping, pingReq } = wire
  const kinds = (ping === undefined ? 0 : 1) + (ack === undefined ? 0 : 1) + (nack === undefined ? 0 : 1)
  if (kinds + (pingReq === undefined ? 0 : 1) !== 1) {
    invalid(`kind: exactly one of ping, ack, nack, pingReq must be set, got ${kinds + (pingReq === undefined ? 0 : 1)}`)
  }
  if (ping !== undefined) {
    return new Ping(
      { seq: seqFromWire(ping.seq), from: idFromWire(ping.from, "from"), target: idFromWire(ping.target, "target") },
      { disableChecks: true }
    )
  }
  if (ack !== undefined) {
    return new Ack({ seq: seqFromWire(ack.seq), from: idFromWire(ack.from, "from") }, { disableChecks: true })
  }
  if (nack !== undefined) {
    return new Nack({ seq: seqFromWire(nack.seq), from: idFromWire(nack.from, "from") }, { disableChecks: true })
  }
  const req = pingReq!
  return new PingReq(
    {
      seq: seqFromWire(req.seq),
      requestor: idFromWire(req.requestor, "requestor"),
      target: idFromWire(req.target, "target"),
      targetAddress: addressFromWire(req.targetAddress, "targetAddress")
    },
    { disableChecks: true }
  )
}

const updatesFromWire = (wire: ReadonlyArray<WireUpdate>, field: string): Array<NodeStateUpdate> => {
  const out = new Array<NodeStateUpdate>(wire.length)
  let i = 0
  try {
    for (; i < wire.length; i++) out[i] = updateFromWire(wire[i]!)
  } catch (e) {
    if (e instanceof Invalid) invalid(`${field}[${i}].${e.message}`)
    throw e
  }
  return out
}

/** Runs a conversion, turning its `Invalid` into a failure that says what was wrong and where. */
const convert = <A>(f: () => A): Result.Result<A, string> => {
  try {
    return Result.succeed(f())
  } catch (e) {
    if (e instanceof Invalid) return Result.fail(e.message)
    throw e
  }
}

/**
 * The packet a decoded wire packet stands for, after the checks the wire
 * schema cannot state: 16-byte UUID v4 ids, known state codes, unsigned 32-bit
 * sequence numbers, non-negative integer incarnations, ports in 0..65535,
 * non-empty hosts, exactly one kind per message. Fails with a description of
 * the first problem; never throws on any value of the wire schema's type.
 */
export const packetFromWire = (wire: WirePacket): Result.Result<Packet, string> =>
  convert(() => {
    const messages = new Array<Message>(wire.messages.length)
    let i = 0
    try {
      for (; i < messages.length; i++) messages[i] = messageFromWire(wire.messages[i]!)
    } catch (e) {
      if (e instanceof Invalid) invalid(`messages[${i}].${e.message}`)
      throw e
    }
    return { messages, updates: updatesFromWire(wire.updates, "updates") }
  })

/** The push-pull message a decoded wire value stands for, with the same checks as {@link packetFromWire}. */
export const pushPullFromWire = (wire: WirePushPull): Result.Result<PushPull, string> =>
  convert(
    () =>
      new PushPull(
        { from: idFromWire(wire.from, "from"), join: wire.join, nodes: updatesFromWire(wire.nodes, "nodes") },
        { disableChecks: true }
      )
  )
