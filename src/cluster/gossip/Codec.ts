/**
 * Bytes on the wire: a small hand-written header in front of a SchemaBinary
 * body, compound packets packed to a byte budget, and the push-pull frame.
 *
 * ```text
 * offset  size  field
 * 0       1     magic 0xD3 ("S" | 0x80): not a shoal packet otherwise
 * 1       1     protocol version (1)
 * 2       1     flags; bit 0 = envelope (reserved), every other bit reserved
 * 3       1     kind: 1 = compound packet (datagram), 2 = push-pull (stream)
 * 4       1     label length L, 0..64
 * 5       L     cluster label, UTF-8
 * 5 + L   …     body: one SchemaBinary frame of `WirePacket` or `WirePushPull`
 * ```
 *
 * **Body.** SchemaBinary writes the body from the plain wire schemas in
 * `Messages` (bytes, numbers, strings, structs: nothing it cannot check by
 * itself), and `Messages` converts between them and the domain classes by
 * hand, checking on the way in what the wire schema cannot say (a UUID v4, a
 * port, an integer incarnation…). That split is what makes the codec fast:
 * with transformations in the schema, SchemaBinary runs the generic schema
 * pass over every value after the bytes, and that pass cost more than the
 * bytes themselves. Measured with `bench/codec.ts` (see bench/README.md)
 * against transformation schemas: encoding 2.5–5× faster (2–3× for updates
 * sent the first time), decoding 2–2.5× (half of what is left is building
 * the domain classes), and every frame smaller: an ack 47 → 45 bytes, a
 * ping with ten Alive updates 883 → 851, a 50-member push-pull 4,076 →
 * 3,912. An update's wire form is memoized per update, because the
 * dissemination queue packs the same update many times.
 *
 * **Body mode.** The body uses SchemaBinary's default mode, not
 * `{ fingerprint: true }`. Measured with `bench/codec.ts` (bodies only): a
 * ping carrying ten realistic Alive updates is 841 bytes vs 829, an ack 35
 * vs 40, a 50-member push-pull 3,902 vs 3,852, at about the same speed. The
 * positional layout saves little because every field already has a one-byte
 * `fieldId` tag, and the fingerprint itself costs 8 bytes a frame. What
 * fingerprints would cost is rolling upgrades: they reject any layout change,
 * so adding one optional field would split a cluster in two while it is being
 * upgraded. In default mode an old node skips fields it does not know, so
 * additive changes keep the protocol version; the header's version byte,
 * bumped only for incompatible changes, is what pins the layout.
 *
 * **Envelope (extension point).** Flags bit 0 is reserved for an
 * authentication/encryption envelope: when set, the bytes after the label
 * are the envelope (nonce, ciphertext, tag — with the header as associated
 * data) and its plaintext is the body. Nothing here produces it yet, so a
 * packet with any flag set is rejected rather than misread; `openBody` is
 * where the envelope will be opened.
 *
 * **Hostile input.** Decoding never throws and never sizes an allocation from
 * a length field it has not checked: datagrams over 65,507 bytes and streams
 * over their cap are refused before anything is read; the label length is
 * checked against 64 and the bytes present; SchemaBinary checks string and
 * byte lengths against the bytes present, but trusts an array's count up to
 * "bytes left + 1 MiB", so the top-level arrays' counts are checked here
 * first (`arrayCountsPlausible`). `CodecFuzz.test.ts` feeds all of it random
 * and mutated frames and lying length prefixes. Every failure is a
 * `SerializationError`; `rejectionReason` tells them apart for metrics
 * (`"body"` for both bytes SchemaBinary refuses and values the checks in
 * `Messages` refuse).
 *
 * Encoders take constructed (checked) values and cannot fail on them; a
 * failure there (a value built with `disableChecks` that does not hold) is a
 * bug, and they throw a `SerializationError`.
 *
 * @module
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as SchemaBinary from "effect/encoding/SchemaBinary"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import { MAX_UDP_PAYLOAD } from "../Config.ts"
import { SerializationError } from "../Errors.ts"
import {
  type Message,
  messageToWire,
  type NodeStateUpdate,
  type Packet,
  type PushPull,
  packetFromWire,
  pushPullFromWire,
  pushPullToWire,
  updateToWire,
  type WireMessage,
  WirePacket,
  WirePushPull,
  type WireUpdate
} from "./Messages.ts"

/** First byte of every shoal packet and stream frame. */
export const MAGIC = 0xd3

/** The wire protocol version this build speaks; bumped only for incompatible changes. */
export const PROTOCOL_VERSION = 1

/** Flags bit 0: the body is wrapped in an authentication/encryption envelope (reserved). */
export const FLAG_ENVELOPE = 0x01

/** Flags this build understands; a packet with any other bit set is rejected. */
const SUPPORTED_FLAGS = 0x00

/** Header `kind` byte of a compound (datagram) packet. */
export const KIND_PACKET = 1

/** Header `kind` byte of a push-pull (stream) message. */
export const KIND_PUSH_PULL = 2

/** Header `kind` byte of a keyring command and its answer (stream messages; see `KeyringCommand`). */
export const KIND_KEYRING = 3

/** Longest cluster label, in UTF-8 bytes (`ClusterConfig` enforces the same). */
export const MAX_LABEL_BYTES = 64

/** Largest datagram accepted: the largest UDP payload over IPv4. */
export const MAX_PACKET_SIZE = MAX_UDP_PAYLOAD

/**
 * Default cap on a push-pull frame. A full-state entry is about 90 bytes, so
 * 8 MiB holds ~90,000 members; anything larger is refused before it is read.
 */
export const MAX_PUSH_PULL_SIZE = 8 * 1024 * 1024

/** Most updates piggybacked on one packet (SWIM/memberlist practice). */
export const DEFAULT_MAX_UPDATES = 10

/** Why a packet was refused; the `cause` of a header rejection, for metrics. */
export type RejectionReason =
  | "too-short"
  | "too-large"
  | "magic"
  | "version"
  | "flags"
  | "kind"
  | "label"
  | "cluster"
  | "body"

/** The `cause` of a `SerializationError` raised by this module for a header problem. */
export interface Rejection {
  readonly _tag: "CodecRejection"
  readonly reason: RejectionReason
}

/**
 * Why this module refused some bytes: a header check (`"cluster"` for
 * another cluster's label, `"version"`, …) or `"body"` when the header was
 * fine and the SchemaBinary body was not.
 */
export const rejectionReason = (error: SerializationError): RejectionReason => {
  const cause = error.cause as Partial<Rejection> | undefined
  return typeof cause === "object" && cause !== null && cause._tag === "CodecRejection" && cause.reason !== undefined
    ? cause.reason
    : "body"
}

const reject = (reason: RejectionReason, message: string): SerializationError =>
  new SerializationError({ message, cause: { _tag: "CodecRejection", reason } satisfies Rejection })

const bodyError = (what: string, cause: unknown): SerializationError =>
  new SerializationError({
    message: `undecodable ${what} body: ${cause instanceof Error ? cause.message : String(cause)}`,
    cause
  })

// ---------------------------------------------------------------------------
// Header
// ---------------------------------------------------------------------------

const HEADER_FIXED = 5
const textEncoder = new TextEncoder()
const labelDecoder = new TextDecoder("utf-8", { fatal: false })

/**
 * Encoded labels, by label. A node uses one label for its lifetime, so the
 * cache stays tiny; it is reset if something feeds it many.
 */
const labelCache = new Map<string, Uint8Array>()

const labelBytes = (label: string): Uint8Array => {
  let bytes = labelCache.get(label)
  if (bytes === undefined) {
    bytes = textEncoder.encode(label)
    if (bytes.length > MAX_LABEL_BYTES) {
      throw new SerializationError({
        message: `cluster label "${label}" is ${bytes.length} bytes; at most ${MAX_LABEL_BYTES} fit the header`
      })
    }
    if (labelCache.size >= 16) labelCache.clear()
    labelCache.set(label, bytes)
  }
  return bytes
}

/** Header plus body in one buffer the caller owns (SchemaBinary's output is a view into a shared arena). */
const frame = (kind: number, label: Uint8Array, body: Uint8Array): Uint8Array<ArrayBuffer> => {
  const out = new Uint8Array(HEADER_FIXED + label.length + body.length)
  out[0] = MAGIC
  out[1] = PROTOCOL_VERSION
  out[2] = 0
  out[3] = kind
  out[4] = label.length
  out.set(label, HEADER_FIXED)
  out.set(body, HEADER_FIXED + label.length)
  return out
}

const kindName = (kind: number) =>
  kind === KIND_PACKET
    ? "packet"
    : kind === KIND_PUSH_PULL
      ? "push-pull"
      : kind === KIND_KEYRING
        ? "keyring"
        : "unknown"

/** A frame of `kind` for cluster `label` around `body` (for message kinds beyond packets and push-pulls). */
export const encodeFrame = (kind: number, label: string, body: Uint8Array): Uint8Array<ArrayBuffer> =>
  frame(kind, labelBytes(label), body)

/** The body of a frame of `kind` for cluster `label`, after the same header checks as every other frame. */
export const frameBody = (
  kind: number,
  label: string,
  bytes: Uint8Array
): Result.Result<Uint8Array, SerializationError> =>
  Result.map(readHeader(bytes, kind, label), (offset) => openBody(bytes, offset))

/**
 * Checks the header against this node's expectations and returns where the
 * body starts. Everything is bounded by `bytes.length`, which the caller has
 * already checked against a hard cap.
 */
const readHeader = (
  bytes: Uint8Array,
  expectedKind: number,
  label: string
): Result.Result<number, SerializationError> => {
  if (bytes.length < HEADER_FIXED) {
    return Result.fail(
      reject("too-short", `packet of ${bytes.length} bytes is shorter than the ${HEADER_FIXED}-byte header`)
    )
  }
  if (bytes[0] !== MAGIC) {
    return Result.fail(reject("magic", `not a shoal packet (first byte 0x${bytes[0]!.toString(16).padStart(2, "0")})`))
  }
  const version = bytes[1]!
  if (version !== PROTOCOL_VERSION) {
    return Result.fail(
      reject("version", `unsupported protocol version ${version}; this node speaks version ${PROTOCOL_VERSION}`)
    )
  }
  const flags = bytes[2]!
  if ((flags & ~SUPPORTED_FLAGS) !== 0) {
    return Result.fail(
      reject(
        "flags",
        (flags & FLAG_ENVELOPE) !== 0
          ? `packet is wrapped in an envelope (flags 0x${flags.toString(16)}), which this node cannot open`
          : `unsupported header flags 0x${flags.toString(16)}`
      )
    )
  }
  const kind = bytes[3]!
  if (kind !== expectedKind) {
    return Result.fail(reject("kind", `expected a ${kindName(expectedKind)} frame, got a ${kindName(kind)} (${kind})`))
  }
  const length = bytes[4]!
  if (length > MAX_LABEL_BYTES || HEADER_FIXED + length > bytes.length) {
    return Result.fail(reject("label", `cluster label length ${length} exceeds the limit or the packet`))
  }
  const expected = labelBytes(label)
  let same = expected.length === length
  for (let i = 0; same && i < length; i++) same = expected[i] === bytes[HEADER_FIXED + i]
  if (!same) {
    const got = labelDecoder.decode(bytes.subarray(HEADER_FIXED, HEADER_FIXED + length))
    return Result.fail(
      reject("cluster", `cluster label mismatch: the peer is in cluster "${got}", this node in cluster "${label}"`)
    )
  }
  return Result.succeed(HEADER_FIXED + length)
}

/**
 * The kind and cluster label of a well-formed shoal header, without looking
 * at the body; `undefined` for anything else (too short, another magic or
 * version, a label longer than the bytes). Never throws.
 */
export const peekHeader = (bytes: Uint8Array): { readonly kind: number; readonly label: string } | undefined => {
  if (bytes.length < HEADER_FIXED || bytes[0] !== MAGIC || bytes[1] !== PROTOCOL_VERSION) return undefined
  const length = bytes[4]!
  if (length > MAX_LABEL_BYTES || HEADER_FIXED + length > bytes.length) return undefined
  return { kind: bytes[3]!, label: labelDecoder.decode(bytes.subarray(HEADER_FIXED, HEADER_FIXED + length)) }
}

/**
 * A push-pull frame with this node's label and no body: the answer to a
 * push-pull request from another cluster. The requester's decoder refuses
 * it on the label, so its join fails saying both labels instead of "stream
 * closed"; no member state is given away (the label travels in every
 * datagram anyway).
 */
export const labelRefusal = (label: string): Uint8Array<ArrayBuffer> =>
  frame(KIND_PUSH_PULL, labelBytes(label), new Uint8Array(0))

/**
 * The body's plaintext. Today bodies are sent in the clear (the header check
 * refuses flagged packets); the envelope, when added, is opened here.
 */
const openBody = (bytes: Uint8Array, offset: number): Uint8Array => bytes.subarray(offset)

// ---------------------------------------------------------------------------
// Array-count guard
// ---------------------------------------------------------------------------

/**
 * Reads a uvarint as SchemaBinary writes it (up to 10 bytes, overlong forms
 * included) without passing `end`, moving `cursor`; `-1` when truncated.
 */
const readUvarint = (bytes: Uint8Array, cursor: { pos: number }, end: number): number => {
  let value = 0
  let scale = 1
  for (let i = 0; i < 10 && cursor.pos < end; i++) {
    const b = bytes[cursor.pos++]!
    value += (b & 0x7f) * scale
    if (b < 0x80) return value
    scale *= 128
  }
  return -1
}

/**
 * SchemaBinary allocates an array before reading its elements, trusting a
 * claimed count up to "bytes left + 1 MiB": a 7-byte body claiming a million
 * elements costs ~8 MB and ~3.5 ms to refuse (measured), an amplification a
 * flood of tiny datagrams turns into a denial of service. Every array of
 * variable length in our bodies is a top-level field (`messages`, `updates`,
 * `nodes`; an address's `[host, port]` is a tuple, whose count SchemaBinary
 * checks against its fixed length before allocating) and each valid element
 * takes at least one byte, so this walks the top-level fields (frame
 * length, envelope byte, then `tag = id·8 + wire kind` and payload, as
 * SchemaBinary writes them) and refuses an array whose count exceeds its own
 * payload's length, and anything it cannot follow (which SchemaBinary would
 * refuse as truncated too).
 *
 * This couples to SchemaBinary's wire format: the round-trip and fuzz tests
 * fail loudly if an effect upgrade changes it.
 */
const arrayCountsPlausible = (
  body: Uint8Array,
  arrayFieldIds: ReadonlyArray<number>,
  maxCount: number = Number.POSITIVE_INFINITY
): boolean => {
  const cursor = { pos: 0 }
  const frameLength = readUvarint(body, cursor, body.length)
  if (frameLength < 0 || cursor.pos + frameLength > body.length) return false
  const end = cursor.pos + frameLength
  cursor.pos++ // envelope byte
  while (cursor.pos < end) {
    const tag = readUvarint(body, cursor, end)
    if (tag < 0) return false
    const kind = tag % 8
    if (kind === 0) {
      const length = readUvarint(body, cursor, end)
      if (length < 0 || cursor.pos + length > end) return false
      if (arrayFieldIds.includes((tag - kind) / 8)) {
        const count = readUvarint(body, { pos: cursor.pos }, cursor.pos + length)
        if (count < 0 || count > length || count > maxCount) return false
      }
      cursor.pos += length
    } else if (kind === 1 || kind === 5) {
      // a varint, or a decimal's two varints
      for (let n = kind === 1 ? 1 : 2; n > 0; n--) if (readUvarint(body, cursor, end) < 0) return false
    } else if (kind === 2) {
      cursor.pos += 8
    } else if (kind === 6) {
      cursor.pos += 4
    }
    // 3, 4 and 7 (false, true, empty) carry no payload
  }
  return cursor.pos === end
}

const PACKET_ARRAY_FIELDS = [1, 2]
const PUSH_PULL_ARRAY_FIELDS = [3]

/** A body refused by one of our own checks (rather than by SchemaBinary). */
const invalidBody = (what: string, reason: string) =>
  new SerializationError({
    message: `undecodable ${what} body: ${reason}`,
    cause: { _tag: "CodecRejection", reason: "body" } satisfies Rejection
  })

const implausibleCounts = (what: string) =>
  invalidBody(what, "an array claims more elements than it has bytes (or than the receiver would hold)")

// ---------------------------------------------------------------------------
// Compound packets
// ---------------------------------------------------------------------------

const PacketBinary = SchemaBinary.toCodec(WirePacket)
const encodeWirePacket = Schema.encodeSync(PacketBinary)
const decodeWirePacket = Schema.decodeUnknownResult(PacketBinary)

const NO_MESSAGES: ReadonlyArray<WireMessage> = []
const NO_UPDATES: ReadonlyArray<WireUpdate> = []

const encodePacketBody = (messages: ReadonlyArray<WireMessage>, updates: ReadonlyArray<WireUpdate>) =>
  encodeWirePacket({ messages, updates })

/** An update's wire form and, once asked, its {@link updateSize} (-1 until then). */
interface Prepared {
  readonly wire: WireUpdate
  size: number
}

const prepared = new WeakMap<NodeStateUpdate, Prepared>()

/**
 * An update's wire form, memoized per update (updates are immutable): the
 * dissemination queue packs one update many times — its size, every
 * retransmission, every trial fit — and converting it costs about as much as
 * encoding it. Push-pull entries, built fresh for every exchange, skip this.
 */
const prepare = (update: NodeStateUpdate): Prepared => {
  let entry = prepared.get(update)
  if (entry === undefined) {
    entry = { wire: updateToWire(update), size: -1 }
    prepared.set(update, entry)
  }
  return entry
}

const wireOf = (update: NodeStateUpdate): WireUpdate => prepare(update).wire

/** What the header carries besides the constants: the cluster's label. */
export interface PacketHeader {
  readonly label: string
}

/**
 * Encodes a packet with its header into bytes the caller owns. Throws only
 * on a bug (a label over 64 bytes, a value that skipped its checks).
 */
export const encodePacket = (header: PacketHeader, packet: Packet): Uint8Array<ArrayBuffer> =>
  frame(
    KIND_PACKET,
    labelBytes(header.label),
    encodePacketBody(packet.messages.map(messageToWire), packet.updates.map(wireOf))
  )

/**
 * Decodes one datagram of cluster `label`; the hot path's variant, with no
 * Effect around it. Never throws.
 */
export const decodePacketResult = (label: string, bytes: Uint8Array): Result.Result<Packet, SerializationError> => {
  if (bytes.length > MAX_PACKET_SIZE) {
    return Result.fail(reject("too-large", `packet of ${bytes.length} bytes exceeds ${MAX_PACKET_SIZE}`))
  }
  return decodeFramed(bytes, label, KIND_PACKET, "packet", PACKET_ARRAY_FIELDS, decodeWirePacket, packetFromWire)
}

/**
 * The steps every framed message goes through after its size check: header
 * (version, kind, label), the array-count guard, SchemaBinary, then the
 * domain checks of `fromWire`. Never throws.
 */
const decodeFramed = <W, A>(
  bytes: Uint8Array,
  label: string,
  kind: number,
  what: string,
  arrayFields: ReadonlyArray<number>,
  decodeWire: (body: Uint8Array) => Result.Result<W, unknown>,
  fromWire: (wire: W) => Result.Result<A, string>,
  maxCount: number = Number.POSITIVE_INFINITY
): Result.Result<A, SerializationError> => {
  try {
    const offset = readHeader(bytes, kind, label)
    if (Result.isFailure(offset)) return Result.fail(offset.failure)
    const body = openBody(bytes, offset.success)
    if (!arrayCountsPlausible(body, arrayFields, maxCount)) return Result.fail(implausibleCounts(what))
    const decoded = decodeWire(body)
    if (Result.isFailure(decoded)) return Result.fail(bodyError(what, decoded.failure))
    const value = fromWire(decoded.success)
    return Result.isFailure(value) ? Result.fail(invalidBody(what, value.failure)) : Result.succeed(value.success)
  } catch (cause) {
    // SchemaBinary reports malformed input as a SchemaError; anything else it
    // throws (a defect) must still not escape into the receive loop.
    return Result.fail(bodyError(what, cause))
  }
}

/** Decodes one datagram of cluster `label`. */
export const decodePacket = (label: string, bytes: Uint8Array): Effect.Effect<Packet, SerializationError> =>
  Effect.suspend(() => Effect.fromResult(decodePacketResult(label, bytes)))

const EMPTY_PACKET_BODY_SIZE = encodePacketBody(NO_MESSAGES, NO_UPDATES).length

/**
 * Bytes an enclosing packet can grow by beyond the updates' own sizes: the
 * frame length, the updates field's length and the updates count are varints
 * that widen (by at most 2 bytes each for anything under 64 KiB).
 */
export const PACKET_GROWTH_SLACK = 6

/**
 * What one update adds to a packet, at most: its cost as the only element of
 * the updates array (including the row's shape declaration and every string
 * in full). In a longer array it costs the same or less — a repeated shape is
 * referenced by number and a repeated string (a tag key, a zone) by index.
 * Memoized per update (updates are immutable).
 */
export const updateSize = (update: NodeStateUpdate): number => sizeOf(prepare(update))

const sizeOf = (entry: Prepared): number => {
  if (entry.size < 0) entry.size = encodePacketBody(NO_MESSAGES, [entry.wire]).length - EMPTY_PACKET_BODY_SIZE
  return entry.size
}

/** The packed datagram and how many candidates (a prefix) it carries. */
export interface Packed {
  readonly bytes: Uint8Array<ArrayBuffer>
  readonly included: number
}

const fixedSize = (label: string, bare: Uint8Array) => HEADER_FIXED + labelBytes(label).length + bare.length

/**
 * What a packet of `messages` takes before any update: header, label and the
 * encoded messages. With the {@link updateSize}s of its updates added, an
 * upper bound of the whole packet (the simulator counts bytes this way).
 */
export const packetOverhead = (label: string, messages: ReadonlyArray<Message>): number => {
  const key = overheadKey(label, messages)
  if (key === undefined) return fixedSize(label, encodePacketBody(messages.map(messageToWire), NO_UPDATES))
  let size = overheads.get(key)
  if (size === undefined) {
    size = fixedSize(label, encodePacketBody(messages.map(messageToWire), NO_UPDATES))
    if (overheads.size >= 1024) overheads.clear()
    overheads.set(key, size)
  }
  return size
}

/**
 * Every packet a node sends carries nothing, or one ping, ack or nack, and
 * what those take depends only on the kind and on how many bits the sequence
 * number has (ids are 16 bytes each): so their overhead is computed once per
 * label, kind and bit length instead of encoding the message at every send.
 */
const overheads = new Map<string, number>()
const overheadKey = (label: string, messages: ReadonlyArray<Message>): string | undefined => {
  if (messages.length === 0) return label
  if (messages.length > 1) return undefined
  const message = messages[0]!
  if (message._tag === "PingReq") return undefined
  return `${label}\u0000${message._tag}\u0000${message.seq === 0 ? 0 : Math.floor(Math.log2(message.seq)) + 1}`
}

/**
 * Bytes left for piggybacked updates in a packet of `messages`, for the
 * dissemination queue's budget: updates whose {@link updateSize}s sum to at
 * most this always fit, so {@link packCompound} takes all of them.
 */
export const updateBudget = (label: string, messages: ReadonlyArray<Message>, maxPacketSize: number): number =>
  Math.max(0, maxPacketSize - packetOverhead(label, messages) - PACKET_GROWTH_SLACK)

/**
 * Builds the compound packet `messages` + the longest prefix of `candidates`
 * that fits both `maxUpdates` and `maxPacketSize` (candidates keep their
 * order; the queue puts the most urgent first). Sizes are planned with
 * {@link updateSize} — a guaranteed fit — and the rest is settled on the real
 * encoding, which grows with every added update, so the first one that does
 * not fit ends the search. `bytes.length` never exceeds `maxPacketSize`.
 *
 * Throws (a bug) when the messages alone do not fit: `ClusterConfig` keeps
 * `maxPacketSize` ≥ 512 bytes and the largest message takes under 100.
 */
export const packCompound = (
  label: string,
  messages: ReadonlyArray<Message>,
  candidates: ReadonlyArray<NodeStateUpdate>,
  maxPacketSize: number,
  maxUpdates: number = DEFAULT_MAX_UPDATES
): Packed => {
  const labelBytesOf = labelBytes(label)
  const wireMessages = messages.map(messageToWire)
  const bare = encodePacketBody(wireMessages, NO_UPDATES)
  const fixed = HEADER_FIXED + labelBytesOf.length
  if (fixed + bare.length > maxPacketSize) {
    throw new SerializationError({
      message: `${messages.length} message(s) take ${fixed + bare.length} bytes, over the ${maxPacketSize}-byte packet size`
    })
  }
  const limit = Math.min(candidates.length, Math.max(0, Math.floor(maxUpdates)))
  // `estimate` is an upper bound of the packet with `count` updates, short of
  // the varint growth that PACKET_GROWTH_SLACK covers once.
  let count = 0
  let estimate = fixed + bare.length
  let body: Uint8Array = bare
  let bodyCount = 0
  const wireUpdates: Array<WireUpdate> = []
  while (count < limit) {
    const entry = prepare(candidates[count]!)
    const size = sizeOf(entry)
    wireUpdates.push(entry.wire)
    if (estimate + size + PACKET_GROWTH_SLACK <= maxPacketSize) {
      estimate += size
      count++
      continue
    }
    // Not guaranteed: ask the encoder. Runs share row shapes and strings, so
    // the real packet is usually smaller than the estimate.
    const trial = encodePacketBody(wireMessages, wireUpdates)
    if (fixed + trial.length > maxPacketSize) break
    body = trial
    bodyCount = ++count
    estimate = fixed + trial.length
  }
  wireUpdates.length = count
  if (bodyCount !== count) body = encodePacketBody(wireMessages, wireUpdates)
  // The bound above holds by construction; this guards the guarantee itself.
  while (fixed + body.length > maxPacketSize && count > 0) {
    count--
    wireUpdates.length = count
    body = encodePacketBody(wireMessages, wireUpdates)
  }
  return { bytes: frame(KIND_PACKET, labelBytesOf, body), included: count }
}

// ---------------------------------------------------------------------------
// Push-pull
// ---------------------------------------------------------------------------

const PushPullBinary = SchemaBinary.toCodec(WirePushPull)
const encodeWirePushPull = Schema.encodeSync(PushPullBinary)
const decodeWirePushPull = Schema.decodeUnknownResult(PushPullBinary)

/**
 * Encodes a push-pull message for the stream exchange, with the same header
 * as a packet; a failure when the state does not fit `maxBytes` (the peer
 * would refuse it anyway). The protocol engine's variant, with no Effect
 * around it.
 */
export const encodePushPullResult = (
  label: string,
  message: PushPull,
  maxBytes: number = MAX_PUSH_PULL_SIZE
): Result.Result<Uint8Array<ArrayBuffer>, SerializationError> => {
  const bytes = frame(KIND_PUSH_PULL, labelBytes(label), encodeWirePushPull(pushPullToWire(message)))
  return bytes.length > maxBytes
    ? Result.fail(
        reject(
          "too-large",
          `push-pull state of ${message.nodes.length} members takes ${bytes.length} bytes, over the ${maxBytes}-byte cap`
        )
      )
    : Result.succeed(bytes)
}

/** {@link encodePushPullResult} as an Effect. */
export const encodePushPull = (
  label: string,
  message: PushPull,
  maxBytes: number = MAX_PUSH_PULL_SIZE
): Effect.Effect<Uint8Array<ArrayBuffer>, SerializationError> =>
  Effect.suspend(() => Effect.fromResult(encodePushPullResult(label, message, maxBytes)))

/**
 * Decodes a push-pull message of cluster `label`, refusing anything over
 * `maxBytes`, or listing more than `maxEntries` members (a receiver passes
 * its `maxMembers`: it would refuse the rest anyway), before decoding a
 * single entry. Never throws.
 */
export const decodePushPullResult = (
  label: string,
  bytes: Uint8Array,
  maxBytes: number = MAX_PUSH_PULL_SIZE,
  maxEntries: number = Number.POSITIVE_INFINITY
): Result.Result<PushPull, SerializationError> =>
  bytes.length > maxBytes
    ? Result.fail(reject("too-large", `push-pull frame of ${bytes.length} bytes exceeds the ${maxBytes}-byte cap`))
    : decodeFramed(
        bytes,
        label,
        KIND_PUSH_PULL,
        "push-pull",
        PUSH_PULL_ARRAY_FIELDS,
        decodeWirePushPull,
        pushPullFromWire,
        maxEntries
      )

/** {@link decodePushPullResult} as an Effect. */
export const decodePushPull = (
  label: string,
  bytes: Uint8Array,
  maxBytes: number = MAX_PUSH_PULL_SIZE
): Effect.Effect<PushPull, SerializationError> =>
  Effect.suspend(() => Effect.fromResult(decodePushPullResult(label, bytes, maxBytes)))
