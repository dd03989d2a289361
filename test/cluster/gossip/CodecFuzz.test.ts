/**
 * Hostile input for the packet and push-pull decoders: random bytes, random
 * bodies behind a valid header, and valid frames with bits flipped, cut,
 * extended, or with length fields replaced by lies. Each input must either
 * decode to a valid value or fail with `SerializationError` — never throw.
 * Seeded, so a failure replays exactly.
 */
import { assert, describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Result, Schema } from "effect"
import { SchemaBinary } from "effect/encoding"
import * as fc from "fast-check"
import { SerializationError } from "../../../src/cluster/Errors.ts"
import * as Codec from "../../../src/cluster/gossip/Codec.ts"
import {
  Ack,
  MAX_INCARNATION,
  MAX_SEQ_NO,
  type Message,
  Nack,
  NodeStateUpdate,
  Packet,
  Ping,
  PingReq,
  PushPull,
  WirePacket
} from "../../../src/cluster/gossip/Messages.ts"
import { Address, ClusterNode, NodeId, type NodeState } from "../../../src/cluster/Node.ts"

const LABEL = "shoal"
const HEADER_LENGTH = 5 + LABEL.length

/** mulberry32: a tiny seeded PRNG, so every run feeds the same bytes. */
const prng = (seed: number) => {
  let a = seed >>> 0
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const int = (n: number) => Math.floor(next() * n)
  const bytes = (n: number) => {
    const out = new Uint8Array(n)
    for (let i = 0; i < n; i++) out[i] = int(256)
    return out
  }
  return { int, bytes }
}
type Prng = ReturnType<typeof prng>

const uvarint = (n: number): Array<number> => {
  const out: Array<number> = []
  while (n >= 0x80) {
    out.push((n % 128) | 0x80)
    n = Math.floor(n / 128)
  }
  out.push(n)
  return out
}

const concat = (...parts: ReadonlyArray<ArrayLike<number>>): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const part of parts) {
    out.set(part, at)
    at += part.length
  }
  return out
}

const header = (kind: number, label = LABEL) =>
  concat([Codec.MAGIC, Codec.PROTOCOL_VERSION, 0, kind, label.length], new TextEncoder().encode(label))

// ---------------------------------------------------------------------------
// Valid seeds for mutation
// ---------------------------------------------------------------------------

const nodeIdArb = fc.uuid({ version: 4 }).map((s) => NodeId.make(s))
const addressArb = fc
  .record({ host: fc.oneof(fc.ipV4(), fc.ipV6(), fc.domain()), port: fc.integer({ min: 0, max: 65535 }) })
  .map((a) => new Address(a))
const stateArb = fc.constantFrom<NodeState>("Alive", "Suspect", "Dead", "Left")
const updateArb = fc.oneof(
  fc
    .record({
      id: nodeIdArb,
      name: fc.string({ maxLength: 20, unit: "grapheme" }),
      gossipAddress: addressArb,
      rpcAddress: addressArb,
      tags: fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }), fc.string({ maxLength: 12 }), { maxKeys: 4 }),
      state: stateArb,
      incarnation: fc.oneof(fc.nat(100), fc.nat(MAX_INCARNATION))
    })
    .map((n) => NodeStateUpdate.fromNode(new ClusterNode(n))),
  fc
    .record({ nodeId: nodeIdArb, state: stateArb, incarnation: fc.nat(), from: nodeIdArb })
    .map((u) => new NodeStateUpdate(u))
)
const seqArb = fc.integer({ min: 0, max: MAX_SEQ_NO })
const messageArb: fc.Arbitrary<Message> = fc.oneof(
  fc.record({ seq: seqArb, from: nodeIdArb, target: nodeIdArb }).map((m) => new Ping(m)),
  fc.record({ seq: seqArb, from: nodeIdArb }).map((m) => new Ack(m)),
  fc.record({ seq: seqArb, from: nodeIdArb }).map((m) => new Nack(m)),
  fc
    .record({ seq: seqArb, requestor: nodeIdArb, target: nodeIdArb, targetAddress: addressArb })
    .map((m) => new PingReq(m))
)
const packetArb = fc.record({
  messages: fc.array(messageArb, { minLength: 1, maxLength: 3 }),
  updates: fc.array(updateArb, { maxLength: 10 })
})

const validPackets = fc.sample(packetArb, { seed: 11, numRuns: 60 }).map((p) => Codec.encodePacket({ label: LABEL }, p))
const validPushPulls = fc
  .sample(fc.tuple(nodeIdArb, fc.boolean(), fc.array(updateArb, { maxLength: 30 })), { seed: 12, numRuns: 20 })
  .map(([from, join, nodes]) => Effect.runSync(Codec.encodePushPull(LABEL, new PushPull({ from, join, nodes }))))

// ---------------------------------------------------------------------------
// Mutations
// ---------------------------------------------------------------------------

/** Lies a length field might tell: huge, just over, zero, overlong varints. */
const lies = (r: Prng): Array<number> => {
  switch (r.int(6)) {
    case 0:
      return uvarint(2 ** 31 + r.int(1000))
    case 1:
      return uvarint(1_000_000 + r.int(48_000)) // inside SchemaBinary's own allocation slack
    case 2:
      return uvarint(r.int(70_000))
    case 3:
      return [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01] // 10-byte varint beyond 2^53
    case 4:
      return [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00] // overlong zero
    default:
      return [r.int(256)]
  }
}

const mutate = (r: Prng, original: Uint8Array): Uint8Array => {
  const bytes = original.slice()
  // mostly the body: header rejections are covered one by one in Codec.test.ts
  const at = (from = r.int(4) === 0 ? 0 : HEADER_LENGTH) => from + r.int(Math.max(1, bytes.length - from))
  switch (r.int(7)) {
    case 0: {
      for (let n = 1 + r.int(4); n > 0; n--) {
        const i = at()
        bytes[i] = bytes[i]! ^ (1 << r.int(8))
      }
      return bytes
    }
    case 1:
      return bytes.subarray(0, r.int(bytes.length))
    case 2:
      return concat(bytes, r.bytes(1 + r.int(32)))
    case 3: {
      const i = at()
      bytes[i] = [0x00, 0x7f, 0x80, 0xff][r.int(4)]!
      return bytes
    }
    case 4: {
      // replace one byte (often a length or count) with a lying varint
      const i = at()
      return concat(bytes.subarray(0, i), lies(r), bytes.subarray(i + 1))
    }
    case 5: {
      // insert a lie without removing anything
      const i = at()
      return concat(bytes.subarray(0, i), lies(r), bytes.subarray(i))
    }
    default: {
      // duplicate a slice, as a confused sender might
      const i = at()
      const j = i + r.int(bytes.length - i + 1)
      return concat(bytes.subarray(0, j), bytes.subarray(i, j), bytes.subarray(j))
    }
  }
}

// ---------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------

interface Tally {
  decoded: number
  rejected: number
  threw: Array<string>
}

const isPacket = Schema.is(Packet)

/**
 * Every field of a decoded value passes its constructor's checks. (`Schema.is`
 * on a class only asks whether the value is an instance; the codec builds the
 * instances with `disableChecks` after checking the fields itself, so this is
 * where a gap in those checks would show.)
 */
const assertValidAddress = (address: Address | undefined) => {
  if (address !== undefined) new Address({ host: address.host, port: address.port })
}
const assertValidUpdate = (update: NodeStateUpdate) => {
  new NodeStateUpdate({ ...update })
  assertValidAddress(update.gossipAddress)
  assertValidAddress(update.rpcAddress)
}
const assertValidMessage = (message: Message) => {
  switch (message._tag) {
    case "Ping":
      return new Ping({ seq: message.seq, from: message.from, target: message.target })
    case "Ack":
      return new Ack({ seq: message.seq, from: message.from })
    case "Nack":
      return new Nack({ seq: message.seq, from: message.from })
    case "PingReq":
      assertValidAddress(message.targetAddress)
      return new PingReq({ ...message })
  }
}

const checkPacket = (tally: Tally, bytes: Uint8Array) => {
  let result: Result.Result<Packet, SerializationError>
  try {
    result = Codec.decodePacketResult(LABEL, bytes)
  } catch (e) {
    tally.threw.push(`${String(e)} on ${Buffer.from(bytes).toString("hex")}`)
    return
  }
  if (Result.isSuccess(result)) {
    // a valid packet: well-typed, and it survives its own round trip
    assert.isTrue(isPacket(result.success))
    result.success.messages.forEach(assertValidMessage)
    result.success.updates.forEach(assertValidUpdate)
    const again = Codec.decodePacketResult(LABEL, Codec.encodePacket({ label: LABEL }, result.success))
    assert.deepStrictEqual(Result.getOrThrow(again), result.success)
    tally.decoded++
  } else {
    assert.instanceOf(result.failure, SerializationError)
    tally.rejected++
  }
}

const checkPushPull = (tally: Tally, bytes: Uint8Array) => {
  let exit: Exit.Exit<PushPull, SerializationError>
  try {
    exit = Effect.runSyncExit(Codec.decodePushPull(LABEL, bytes))
  } catch (e) {
    tally.threw.push(`${String(e)} on ${Buffer.from(bytes).toString("hex")}`)
    return
  }
  if (Exit.isSuccess(exit)) {
    assert.instanceOf(exit.value, PushPull)
    new PushPull({ ...exit.value })
    exit.value.nodes.forEach(assertValidUpdate)
    tally.decoded++
  } else {
    const error = Exit.findErrorOption(exit)
    if (error._tag === "None") {
      tally.threw.push(`defect on ${Buffer.from(bytes).toString("hex")}`)
      return
    }
    assert.instanceOf(error.value, SerializationError)
    tally.rejected++
  }
}

const rejection = (label: string, bytes: Uint8Array): SerializationError => {
  const result = Codec.decodePacketResult(label, bytes)
  if (Result.isSuccess(result)) throw new Error("expected a rejection, got a packet")
  return result.failure
}

const newTally = (): Tally => ({ decoded: 0, rejected: 0, threw: [] })

describe("Codec fuzz", () => {
  it("random byte arrays are refused, never thrown on", () => {
    const r = prng(1)
    const tally = newTally()
    for (let i = 0; i < 3000; i++) checkPacket(tally, r.bytes(r.int(1500)))
    // a valid header in front of random bodies, so the body decoder sees them
    for (let i = 0; i < 3000; i++) checkPacket(tally, concat(header(Codec.KIND_PACKET), r.bytes(r.int(600))))
    // …and a plausible frame start (length, default-mode envelope), to get past the first byte
    for (let i = 0; i < 3000; i++) {
      const body = r.bytes(r.int(300))
      checkPacket(tally, concat(header(Codec.KIND_PACKET), uvarint(body.length + 1), [0x20], body))
    }
    expect(tally.threw).toEqual([])
    expect(tally.rejected + tally.decoded).toBe(9000)
  })

  it("mutated valid packets decode to valid packets or are refused, never thrown on", () => {
    const r = prng(2)
    const tally = newTally()
    for (let i = 0; i < 8000; i++) checkPacket(tally, mutate(r, validPackets[r.int(validPackets.length)]!))
    expect(tally.threw).toEqual([])
    // the mutations reach past the header: some still decode (a flipped bit in a name), most do not
    expect(tally.decoded).toBeGreaterThan(100)
    expect(tally.rejected).toBeGreaterThan(4000)
  })

  it("mutated push-pull frames decode or are refused, never thrown on", () => {
    const r = prng(3)
    const tally = newTally()
    for (let i = 0; i < 1500; i++) checkPushPull(tally, mutate(r, validPushPulls[r.int(validPushPulls.length)]!))
    for (let i = 0; i < 1000; i++) {
      const body = r.bytes(r.int(400))
      checkPushPull(tally, concat(header(Codec.KIND_PUSH_PULL), uvarint(body.length + 1), [0x20], body))
    }
    expect(tally.threw).toEqual([])
    expect(tally.decoded).toBeGreaterThan(10)
  })
})

describe("Codec against lying length fields", () => {
  /** The body of a packet whose field `fieldTag` claims an array of `count` elements and carries none. */
  const lyingArrayBody = (fieldTag: number, count: number) => {
    const payload = uvarint(count)
    const fields = [fieldTag, ...uvarint(payload.length), ...payload]
    return concat(uvarint(fields.length + 1), [0x20], fields)
  }

  // If an effect upgrade makes SchemaBinary refuse this before allocating, this
  // test fails: good news, and the guard in Codec can go.
  it("SchemaBinary alone trusts a tiny body's claim of a million elements (why the guard exists)", () => {
    const body = lyingArrayBody(0x08, 1_000_000) // 7 bytes: messages = [ ×1,000,000 ]
    expect(body.length).toBe(7)
    const exit = Schema.decodeUnknownExit(SchemaBinary.toCodec(WirePacket))(body)
    assert.isTrue(Exit.isFailure(exit))
    // it got as far as element 0: the million-slot array was already allocated
    expect(String(Exit.findErrorOption(exit).pipe((o) => (o._tag === "Some" ? o.value.message : "")))).toContain(
      '["messages"][0]'
    )
  })

  it("refuses a 9-byte datagram claiming a huge array before SchemaBinary allocates it", () => {
    for (const [fieldTag, count] of [
      [0x08, 1_000_000],
      [0x10, 1_000_000],
      [0x08, 2 ** 31],
      [0x10, 1_048_000],
      [0x10, 5]
    ] as const) {
      const datagram = concat(header(Codec.KIND_PACKET, ""), lyingArrayBody(fieldTag, count))
      expect(datagram.length).toBeLessThanOrEqual(14) // 5 header bytes, a 7–9 byte body
      expect(rejection("", datagram).message).toContain("claims more elements than it has bytes")
    }
    const nine = concat(header(Codec.KIND_PACKET, ""), [0x04, 0x20, 0x08, 0x01, 0x7f])
    expect(nine.length).toBe(10) // 5 header bytes, then a 5-byte body claiming 127 messages in 1 byte
    expect(rejection("", nine).message).toContain("claims more elements than it has bytes")
  })

  it("refuses a push-pull frame claiming more members than it has bytes", () => {
    const frame = concat(header(Codec.KIND_PUSH_PULL), lyingArrayBody(0x18, 4_000_000))
    const error = Effect.runSync(Effect.flip(Codec.decodePushPull(LABEL, frame)))
    expect(error.message).toContain("claims more elements than it has bytes")
  })

  it("refuses lying string and byte lengths (SchemaBinary checks them against the bytes present)", () => {
    const valid = Codec.encodePacket(
      { label: LABEL },
      {
        messages: [new Ack({ seq: 1, from: NodeId.make("3b241101-e2bb-4255-8caf-4136c566a962") })],
        updates: [
          NodeStateUpdate.fromNode(
            new ClusterNode({
              id: NodeId.make("9f1c2e3d-4b5a-4c6d-8e7f-0a1b2c3d4e5f"),
              name: "node-01",
              gossipAddress: new Address({ host: "db.internal", port: 7946 }),
              tags: { role: "worker" },
              state: "Alive",
              incarnation: 1
            })
          )
        ]
      }
    )
    // every byte position in turn replaced by a huge length
    for (let i = HEADER_LENGTH; i < valid.length; i++) {
      for (const lie of [uvarint(2 ** 31), uvarint(0xffff), [0x7f]]) {
        const bytes = concat(valid.subarray(0, i), lie, valid.subarray(i + 1))
        const result = Codec.decodePacketResult(LABEL, bytes)
        if (Result.isFailure(result)) assert.instanceOf(result.failure, SerializationError)
        else assert.isTrue(isPacket(result.success))
      }
    }
  })
})
