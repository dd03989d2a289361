import { assert, describe, expect, it } from "@effect/vitest"
import { Effect, Result, Schema } from "effect"
import { SchemaBinary } from "effect/encoding"
import * as fc from "fast-check"
import { aliveAnnouncementBound, MAX_UDP_PAYLOAD } from "../../../src/cluster/Config.ts"
import { SerializationError } from "../../../src/cluster/Errors.ts"
import * as Codec from "../../../src/cluster/gossip/Codec.ts"
import {
  Ack,
  MAX_INCARNATION,
  MAX_SEQ_NO,
  type Message,
  Nack,
  NodeStateUpdate,
  type Packet,
  Ping,
  PingReq,
  PushPull,
  packetToWire,
  pushPullToWire,
  WireAddress,
  WireMessage,
  type WireUpdate
} from "../../../src/cluster/gossip/Messages.ts"
import { Address, ClusterNode, NodeId, type NodeState } from "../../../src/cluster/Node.ts"

const LABEL = "shoal"

// ---------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------

const nodeIdArb = fc.uuid({ version: 4 }).map((s) => NodeId.make(s))
const hostArb = fc.oneof(fc.ipV4(), fc.ipV6(), fc.domain())
const addressArb = fc.record({ host: hostArb, port: fc.integer({ min: 0, max: 65535 }) }).map((a) => new Address(a))
const tagsArb = fc.dictionary(
  fc.string({ minLength: 1, maxLength: 16, unit: "grapheme" }),
  fc.string({ maxLength: 24, unit: "grapheme" }),
  { maxKeys: 5 }
)
const stateArb = fc.constantFrom<NodeState>("Alive", "Suspect", "Dead", "Left")
const incarnationArb = fc.oneof(fc.nat(1000), fc.constant(MAX_INCARNATION), fc.nat(MAX_INCARNATION))
const seqArb = fc.integer({ min: 0, max: MAX_SEQ_NO })

const nodeArb = fc
  .record({
    id: nodeIdArb,
    name: fc.string({ maxLength: 40, unit: "grapheme" }),
    gossipAddress: addressArb,
    rpcAddress: fc.option(addressArb, { nil: undefined }),
    tags: tagsArb,
    state: stateArb,
    incarnation: incarnationArb
  })
  .map(({ rpcAddress, ...rest }) => new ClusterNode({ ...rest, ...(rpcAddress === undefined ? {} : { rpcAddress }) }))

const fullUpdateArb = fc
  .tuple(nodeArb, fc.option(nodeIdArb, { nil: undefined }))
  .map(([node, from]) => NodeStateUpdate.fromNode(node, from))
const claimArb = fc
  .record({
    nodeId: nodeIdArb,
    state: stateArb,
    incarnation: incarnationArb,
    from: fc.option(nodeIdArb, { nil: undefined })
  })
  .map(({ from, ...rest }) => new NodeStateUpdate({ ...rest, ...(from === undefined ? {} : { from }) }))
const updateArb = fc.oneof({ arbitrary: fullUpdateArb, weight: 3 }, { arbitrary: claimArb, weight: 1 })

const messageArb: fc.Arbitrary<Message> = fc.oneof(
  fc.record({ seq: seqArb, from: nodeIdArb, target: nodeIdArb }).map((m) => new Ping(m)),
  fc.record({ seq: seqArb, from: nodeIdArb }).map((m) => new Ack(m)),
  fc.record({ seq: seqArb, from: nodeIdArb }).map((m) => new Nack(m)),
  fc
    .record({ seq: seqArb, requestor: nodeIdArb, target: nodeIdArb, targetAddress: addressArb })
    .map((m) => new PingReq(m))
)
const packetArb: fc.Arbitrary<Packet> = fc.record({
  messages: fc.array(messageArb, { maxLength: 3 }),
  updates: fc.array(updateArb, { maxLength: 12 })
})

// ---------------------------------------------------------------------------
// Realistic fixtures
// ---------------------------------------------------------------------------

const idOf = (i: number) =>
  NodeId.make(`${(0x1f3a5c7e + i * 7919).toString(16).slice(-8)}-1234-4abc-9def-${(0x5e7f9a0b1c2d + i).toString(16)}`)

/** A realistic member: "node-xx", IPv4 gossip and RPC addresses, three tags. */
const realistic = (i: number) =>
  new ClusterNode({
    id: idOf(i),
    name: `node-${String(i).padStart(2, "0")}`,
    gossipAddress: new Address({ host: `10.20.${i >> 8}.${i & 255}`, port: 7946 }),
    rpcAddress: new Address({ host: `10.20.${i >> 8}.${i & 255}`, port: 9000 }),
    tags: { role: i % 4 === 0 ? "director" : "worker", zone: `eu-west-${(i % 3) + 1}`, version: "1.4.2" },
    state: "Alive",
    incarnation: 40 + i
  })

const decodeOk = (bytes: Uint8Array, label = LABEL): Packet => {
  const result = Codec.decodePacketResult(label, bytes)
  if (Result.isFailure(result)) throw new Error(`expected a packet, got: ${result.failure.message}`)
  return result.success
}

const decodeErr = (bytes: Uint8Array, label = LABEL): SerializationError => {
  const result = Codec.decodePacketResult(label, bytes)
  if (Result.isSuccess(result)) throw new Error("expected a rejection, got a packet")
  assert.instanceOf(result.failure, SerializationError)
  return result.failure
}

const ack: Packet = { messages: [new Ack({ seq: 42, from: idOf(1) })], updates: [] }

// ---------------------------------------------------------------------------

describe("Codec round trips", () => {
  it("decodes every message kind and update shape back to equal values", () => {
    const packet: Packet = {
      messages: [
        new Ping({ seq: 0, from: idOf(1), target: idOf(2) }),
        new Ack({ seq: MAX_SEQ_NO, from: idOf(2) }),
        new Nack({ seq: 7, from: idOf(3) }),
        new PingReq({
          seq: 99,
          requestor: idOf(1),
          target: idOf(4),
          targetAddress: new Address({ host: "fd00::4", port: 7946 })
        })
      ],
      updates: [
        NodeStateUpdate.fromNode(realistic(1)),
        NodeStateUpdate.fromNode(realistic(2).with({ state: "Suspect" }), idOf(3)),
        new NodeStateUpdate({ nodeId: idOf(5), state: "Dead", incarnation: 9, from: idOf(1) }),
        new NodeStateUpdate({ nodeId: idOf(6), state: "Left", incarnation: 0 })
      ]
    }
    const back = decodeOk(Codec.encodePacket({ label: LABEL }, packet))
    assert.deepStrictEqual(back, packet)
    assert.instanceOf(back.messages[0], Ping)
    assert.instanceOf(back.messages[3], PingReq)
    assert.instanceOf(back.updates[0], NodeStateUpdate)
  })

  it("round-trips random packets (property)", () => {
    fc.assert(
      fc.property(packetArb, (packet) => {
        assert.deepStrictEqual(decodeOk(Codec.encodePacket({ label: LABEL }, packet)), packet)
      }),
      { seed: 1, numRuns: 300 }
    )
  })

  it.effect("round-trips push-pull state, joins and empty ones included", () =>
    Effect.gen(function* () {
      for (const message of [
        new PushPull({ from: idOf(1), join: true, nodes: [] }),
        new PushPull({
          from: idOf(1),
          join: false,
          nodes: Array.from({ length: 50 }, (_, i) =>
            NodeStateUpdate.fromNode(realistic(i).with({ state: i % 7 === 0 ? "Dead" : "Alive" }))
          )
        })
      ]) {
        const bytes = yield* Codec.encodePushPull(LABEL, message)
        assert.deepStrictEqual(yield* Codec.decodePushPull(LABEL, bytes), message)
      }
    })
  )

  it.effect("round-trips random push-pull states (property)", () =>
    Effect.sync(() =>
      fc.assert(
        fc.property(nodeIdArb, fc.boolean(), fc.array(fullUpdateArb, { maxLength: 40 }), (from, join, nodes) => {
          const message = new PushPull({ from, join, nodes })
          const bytes = Effect.runSync(Codec.encodePushPull(LABEL, message))
          assert.deepStrictEqual(Effect.runSync(Codec.decodePushPull(LABEL, bytes)), message)
        }),
        { seed: 2, numRuns: 60 }
      )
    )
  )

  it("returns bytes the caller owns, not a view into the encoder's arena", () => {
    const first = Codec.encodePacket({ label: LABEL }, ack)
    const copy = first.slice()
    for (let i = 0; i < 50; i++)
      Codec.encodePacket({ label: LABEL }, { ...ack, updates: [NodeStateUpdate.fromNode(realistic(i))] })
    expect(first).toEqual(copy)
    expect(first.byteOffset).toBe(0)
    expect(first.buffer.byteLength).toBe(first.length)
  })

  it("writes the documented header", () => {
    const bytes = Codec.encodePacket({ label: "prod-eu" }, ack)
    expect(Array.from(bytes.subarray(0, 5))).toEqual([Codec.MAGIC, Codec.PROTOCOL_VERSION, 0, Codec.KIND_PACKET, 7])
    expect(new TextDecoder().decode(bytes.subarray(5, 12))).toBe("prod-eu")
  })

  it.effect("decodePacket fails in the error channel", () =>
    Effect.gen(function* () {
      const packet = yield* Codec.decodePacket(LABEL, Codec.encodePacket({ label: LABEL }, ack))
      assert.deepStrictEqual(packet, ack)
      const error = yield* Effect.flip(Codec.decodePacket(LABEL, new Uint8Array([1, 2, 3])))
      assert.instanceOf(error, SerializationError)
    })
  )
})

describe("Codec header checks", () => {
  const valid = () => Codec.encodePacket({ label: LABEL }, ack)

  it("refuses another cluster's packets, naming both labels", () => {
    const error = decodeErr(Codec.encodePacket({ label: "staging" }, ack))
    expect(Codec.rejectionReason(error)).toBe("cluster")
    expect(error.message).toContain('"staging"')
    expect(error.message).toContain('"shoal"')
    // same length, different bytes; and a label that is a prefix of ours
    expect(Codec.rejectionReason(decodeErr(Codec.encodePacket({ label: "shoaL" }, ack)))).toBe("cluster")
    expect(Codec.rejectionReason(decodeErr(Codec.encodePacket({ label: "sho" }, ack)))).toBe("cluster")
    expect(Codec.rejectionReason(decodeErr(Codec.encodePacket({ label: "" }, ack)))).toBe("cluster")
  })

  it("refuses other protocol versions, saying which", () => {
    const bytes = valid()
    bytes[1] = 2
    const error = decodeErr(bytes)
    expect(Codec.rejectionReason(error)).toBe("version")
    expect(error.message).toContain("version 2")
  })

  it("refuses bytes without the magic byte", () => {
    const bytes = valid()
    bytes[0] = 0x00
    expect(Codec.rejectionReason(decodeErr(bytes))).toBe("magic")
  })

  it("refuses an envelope it cannot open and any reserved flag", () => {
    for (const flags of [Codec.FLAG_ENVELOPE, 0x02, 0x80, 0xff]) {
      const bytes = valid()
      bytes[2] = flags
      const error = decodeErr(bytes)
      expect(Codec.rejectionReason(error)).toBe("flags")
      if (flags & Codec.FLAG_ENVELOPE) expect(error.message).toContain("envelope")
    }
  })

  it("refuses a push-pull frame where a datagram is expected, and the reverse", () => {
    const pushPull = Effect.runSync(Codec.encodePushPull(LABEL, new PushPull({ from: idOf(1), join: true, nodes: [] })))
    expect(Codec.rejectionReason(decodeErr(pushPull))).toBe("kind")
    const error = Effect.runSync(Effect.flip(Codec.decodePushPull(LABEL, valid())))
    expect(Codec.rejectionReason(error)).toBe("kind")
  })

  it("refuses packets shorter than the header, at every length", () => {
    const bytes = valid()
    for (let n = 0; n < 5; n++) expect(Codec.rejectionReason(decodeErr(bytes.subarray(0, n)))).toBe("too-short")
    // header complete, label cut short
    expect(Codec.rejectionReason(decodeErr(bytes.subarray(0, 7)))).toBe("label")
    // header and label complete, no body
    expect(Codec.rejectionReason(decodeErr(bytes.subarray(0, 10)))).toBe("body")
  })

  it("refuses a label length over 64 bytes even when the bytes are there", () => {
    const bytes = new Uint8Array(200).fill(0x61)
    bytes.set([Codec.MAGIC, Codec.PROTOCOL_VERSION, 0, Codec.KIND_PACKET, 65])
    expect(Codec.rejectionReason(decodeErr(bytes))).toBe("label")
  })

  it("refuses datagrams larger than any UDP payload before reading them", () => {
    const bytes = new Uint8Array(MAX_UDP_PAYLOAD + 1)
    bytes.set(valid())
    expect(Codec.rejectionReason(decodeErr(bytes))).toBe("too-large")
  })

  it("refuses trailing bytes after the body", () => {
    const bytes = valid()
    const longer = new Uint8Array(bytes.length + 1)
    longer.set(bytes)
    expect(Codec.rejectionReason(decodeErr(longer))).toBe("body")
  })

  it.effect("caps push-pull frames in both directions", () =>
    Effect.gen(function* () {
      const message = new PushPull({
        from: idOf(1),
        join: false,
        nodes: Array.from({ length: 20 }, (_, i) => NodeStateUpdate.fromNode(realistic(i)))
      })
      const bytes = yield* Codec.encodePushPull(LABEL, message)
      const tooBig = yield* Effect.flip(Codec.encodePushPull(LABEL, message, bytes.length - 1))
      expect(Codec.rejectionReason(tooBig)).toBe("too-large")
      const refused = yield* Effect.flip(Codec.decodePushPull(LABEL, bytes, bytes.length - 1))
      expect(Codec.rejectionReason(refused)).toBe("too-large")
      assert.deepStrictEqual(yield* Codec.decodePushPull(LABEL, bytes, bytes.length), message)
    })
  )
})

describe("Codec sizes", () => {
  it("keeps a ping with 10 realistic Alive updates under 1 KB", () => {
    const packet: Packet = {
      messages: [new Ping({ seq: MAX_SEQ_NO, from: idOf(1), target: idOf(2) })],
      updates: Array.from({ length: 10 }, (_, i) => NodeStateUpdate.fromNode(realistic(i + 10)))
    }
    const bytes = Codec.encodePacket({ label: LABEL }, packet)
    expect(bytes.length).toBeLessThan(1024)
    // measured: 852 bytes with the "shoal" label (884 before the plain wire
    // schema, which packs an IPv4 address with its port and drops the message
    // union's 5-byte selector; JSON of the same values: ~2.7 KB)
    expect(bytes.length).toBeLessThanOrEqual(860)
  })

  it("keeps an ack tiny", () => {
    // 10 header bytes ("shoal") + 36 body bytes, with the widest sequence number
    const bytes = Codec.encodePacket(
      { label: LABEL },
      { messages: [new Ack({ seq: MAX_SEQ_NO, from: idOf(1) })], updates: [] }
    )
    expect(bytes.length).toBeLessThanOrEqual(46)
  })

  it("updateSize bounds what each update adds to a packet (property)", () => {
    fc.assert(
      fc.property(
        fc.array(messageArb, { maxLength: 2 }),
        fc.array(updateArb, { maxLength: 30 }),
        (messages, updates) => {
          const base = Codec.encodePacket({ label: LABEL }, { messages, updates: [] }).length
          const actual = Codec.encodePacket({ label: LABEL }, { messages, updates }).length
          const planned = updates.reduce((sum, u) => sum + Codec.updateSize(u), base + Codec.PACKET_GROWTH_SLACK)
          expect(actual).toBeLessThanOrEqual(planned)
        }
      ),
      { seed: 3, numRuns: 300 }
    )
  })

  it("updateSize is within a few bytes of the real cost of a realistic update", () => {
    const update = NodeStateUpdate.fromNode(realistic(3))
    const size = Codec.updateSize(update)
    const alone = Codec.encodePacket({ label: LABEL }, { ...ack, updates: [update] }).length
    // the same, give or take the packet's own length varint widening
    expect(Math.abs(size - (alone - Codec.encodePacket({ label: LABEL }, ack).length))).toBeLessThanOrEqual(2)
    expect(size).toBeGreaterThan(70)
    expect(size).toBeLessThan(110)
  })

  it("aliveAnnouncementBound (Config) bounds the encoded size of this node's Alive (property)", () => {
    fc.assert(
      fc.property(
        nodeIdArb,
        fc
          .string({ minLength: 1, maxLength: 128, unit: "grapheme" })
          .filter((s) => new TextEncoder().encode(s).length <= 128),
        tagsArb,
        addressArb,
        fc.option(addressArb, { nil: undefined }),
        fc.option(addressArb, { nil: undefined }),
        (id, nodeName, tags, bindAddress, advertiseAddress, rpcAddress) => {
          const bound = aliveAnnouncementBound({ nodeName, tags, bindAddress, advertiseAddress, rpcAddress })
          const alive = NodeStateUpdate.fromNode(
            new ClusterNode({
              id,
              name: nodeName,
              gossipAddress: advertiseAddress ?? bindAddress,
              ...(rpcAddress === undefined ? {} : { rpcAddress }),
              tags,
              state: "Alive",
              incarnation: MAX_INCARNATION
            })
          )
          expect(Codec.updateSize(alive)).toBeLessThanOrEqual(bound)
        }
      ),
      { seed: 4, numRuns: 500 }
    )
  })

  it("aliveAnnouncementBound holds at the extremes: long DNS names, many tags, maximal incarnation", () => {
    const longHost = `${"a".repeat(63)}.${"b".repeat(63)}.${"c".repeat(63)}.${"d".repeat(61)}`
    const tags: Record<string, string> = {}
    for (let i = 0; i < 40; i++) tags[`k${i}`] = i % 2 === 0 ? "" : "v".repeat(i * 3)
    for (const [nodeName, host, t] of [
      ["n", longHost, {}],
      ["é".repeat(64), longHost, tags],
      ["x".repeat(128), "1.2.3.4", tags],
      ["y", "::1", { a: "" }]
    ] as const) {
      const bindAddress = new Address({ host, port: 65535 })
      const bound = aliveAnnouncementBound({ nodeName, tags: t, bindAddress, rpcAddress: bindAddress })
      const alive = NodeStateUpdate.fromNode(
        new ClusterNode({
          id: idOf(1),
          name: nodeName,
          gossipAddress: bindAddress,
          rpcAddress: bindAddress,
          tags: t,
          state: "Alive",
          incarnation: MAX_INCARNATION
        })
      )
      expect(Codec.updateSize(alive), `${nodeName.slice(0, 5)} ${host.slice(0, 5)}`).toBeLessThanOrEqual(bound)
    }
  })
})

describe("packCompound", () => {
  it("packs candidates in order and never exceeds the packet size (property)", () => {
    fc.assert(
      fc.property(
        fc.array(messageArb, { minLength: 1, maxLength: 2 }),
        fc.array(updateArb, { maxLength: 25 }),
        fc.integer({ min: 512, max: 2000 }),
        fc.option(fc.integer({ min: 0, max: 14 }), { nil: undefined }),
        (messages, candidates, maxPacketSize, maxUpdates) => {
          const { bytes, included } = Codec.packCompound(LABEL, messages, candidates, maxPacketSize, maxUpdates)
          const limit = maxUpdates ?? 10
          expect(bytes.length).toBeLessThanOrEqual(maxPacketSize)
          expect(included).toBeLessThanOrEqual(Math.min(limit, candidates.length))
          const packet = decodeOk(bytes)
          assert.deepStrictEqual(packet.messages, messages)
          assert.deepStrictEqual(packet.updates, candidates.slice(0, included))
          // as many as fit: one more would be over the limit or over the size
          if (included < Math.min(limit, candidates.length)) {
            const more = Codec.encodePacket({ label: LABEL }, { messages, updates: candidates.slice(0, included + 1) })
            expect(more.length).toBeGreaterThan(maxPacketSize)
          }
        }
      ),
      { seed: 5, numRuns: 300 }
    )
  })

  it("takes all ten realistic updates into a 1400-byte ping", () => {
    const candidates = Array.from({ length: 14 }, (_, i) => NodeStateUpdate.fromNode(realistic(i)))
    const { bytes, included } = Codec.packCompound(
      LABEL,
      [new Ping({ seq: 1, from: idOf(1), target: idOf(2) })],
      candidates,
      1400
    )
    expect(included).toBe(10)
    expect(decodeOk(bytes).updates).toHaveLength(10)
  })

  it("stops at the first candidate that does not fit, even if a later one would", () => {
    const big = NodeStateUpdate.fromNode(realistic(1).with({ name: "n".repeat(600) }))
    const small = new NodeStateUpdate({ nodeId: idOf(2), state: "Dead", incarnation: 1 })
    const messages = [new Ack({ seq: 1, from: idOf(1) })]
    const { included } = Codec.packCompound(LABEL, messages, [small, big, small], 512)
    expect(included).toBe(1)
  })

  it("respects maxUpdates of zero", () => {
    const { bytes, included } = Codec.packCompound(
      LABEL,
      ack.messages,
      [NodeStateUpdate.fromNode(realistic(1))],
      1400,
      0
    )
    expect(included).toBe(0)
    assert.deepStrictEqual(decodeOk(bytes), ack)
  })

  it("includes everything the dissemination queue budgeted with updateBudget", () => {
    fc.assert(
      fc.property(fc.array(updateArb, { maxLength: 20 }), fc.integer({ min: 512, max: 1400 }), (updates, size) => {
        const messages = [new Ping({ seq: 3, from: idOf(1), target: idOf(2) })]
        let budget = Codec.updateBudget(LABEL, messages, size)
        const chosen: Array<NodeStateUpdate> = []
        for (const update of updates) {
          if (chosen.length === 10 || Codec.updateSize(update) > budget) break
          budget -= Codec.updateSize(update)
          chosen.push(update)
        }
        expect(Codec.packCompound(LABEL, messages, chosen, size).included).toBe(chosen.length)
      }),
      { seed: 6, numRuns: 200 }
    )
  })

  it("throws (a bug, not bad input) when the messages alone cannot fit", () => {
    const messages = Array.from({ length: 20 }, (_, i) => new Ping({ seq: i, from: idOf(1), target: idOf(2) }))
    expect(() => Codec.packCompound(LABEL, messages, [], 512)).toThrow(/over the 512-byte packet size/)
  })
})

// ---------------------------------------------------------------------------
// Values the wire schema carries but the domain refuses
// ---------------------------------------------------------------------------

/**
 * The wire schema with every field loosened to what its bytes can hold (a
 * state is any number), under the same field ids: it writes bytes the codec's
 * SchemaBinary layer reads, so the checks behind it are what must refuse them.
 */
const fid = SchemaBinary.fieldId
const LaxUpdate = Schema.Struct({
  nodeId: Schema.Uint8Array.pipe(fid(1)),
  state: Schema.Number.pipe(fid(2)),
  incarnation: Schema.Number.pipe(fid(3)),
  name: Schema.optionalKey(Schema.String).pipe(fid(4)),
  gossipAddress: Schema.optionalKey(WireAddress).pipe(fid(5)),
  rpcAddress: Schema.optionalKey(WireAddress).pipe(fid(6)),
  tags: Schema.optionalKey(Schema.Record(Schema.String, Schema.String)).pipe(fid(7)),
  from: Schema.optionalKey(Schema.Uint8Array).pipe(fid(8))
})
const LaxPacket = Schema.Struct({
  messages: Schema.Array(WireMessage).pipe(fid(1)),
  updates: Schema.Array(LaxUpdate).pipe(fid(2))
})
const LaxPushPull = Schema.Struct({
  from: Schema.Uint8Array.pipe(fid(1)),
  join: Schema.Boolean.pipe(fid(2)),
  nodes: Schema.Array(LaxUpdate).pipe(fid(3))
})
const encodeLaxPacket = Schema.encodeSync(SchemaBinary.toCodec(LaxPacket))
const encodeLaxPushPull = Schema.encodeSync(SchemaBinary.toCodec(LaxPushPull))

const headerBytes = (kind: number) => {
  const label = new TextEncoder().encode(LABEL)
  return [Codec.MAGIC, Codec.PROTOCOL_VERSION, 0, kind, label.length, ...label]
}
const laxDatagram = (wire: typeof LaxPacket.Type) =>
  Uint8Array.from([...headerBytes(Codec.KIND_PACKET), ...encodeLaxPacket(wire)])
const laxStream = (wire: typeof LaxPushPull.Type) =>
  Uint8Array.from([...headerBytes(Codec.KIND_PUSH_PULL), ...encodeLaxPushPull(wire)])

describe("Codec checks what the wire schema cannot", () => {
  const packet: Packet = {
    messages: [
      new PingReq({ seq: 7, requestor: idOf(1), target: idOf(2), targetAddress: new Address({ host: "db", port: 1 }) })
    ],
    updates: [NodeStateUpdate.fromNode(realistic(4), idOf(5))]
  }
  const wire = packetToWire(packet)
  const update = (patch: Partial<Record<keyof WireUpdate, unknown>>) =>
    laxDatagram({ ...wire, updates: [{ ...wire.updates[0]!, ...patch } as typeof LaxUpdate.Type] })
  const message = (m: unknown) => laxDatagram({ ...wire, messages: [m as typeof WireMessage.Type] })
  const idBytes = (index: number, value: number) => {
    const bytes = Uint8Array.from(wire.updates[0]!.nodeId)
    bytes[index] = value
    return bytes
  }
  const reply = { seq: 1, from: wire.updates[0]!.nodeId }

  it("the loosened schema writes what the codec reads (so the cases below test the checks, not the layout)", () => {
    assert.deepStrictEqual(decodeOk(laxDatagram(wire)), packet)
  })

  it("refuses each invalid value with a body SerializationError naming the problem", () => {
    const cases: ReadonlyArray<readonly [string, Uint8Array, string]> = [
      ["id of 15 bytes", update({ nodeId: new Uint8Array(15) }), "updates[0].nodeId: a node id is 16 bytes, got 15"],
      ["id of 17 bytes", update({ nodeId: new Uint8Array(17) }), "updates[0].nodeId: a node id is 16 bytes, got 17"],
      ["empty id", update({ from: new Uint8Array(0) }), "updates[0].from: a node id is 16 bytes, got 0"],
      ["version nibble 1", update({ nodeId: idBytes(6, 0x1f) }), "updates[0].nodeId: not a UUID v4 (version nibble 1)"],
      ["variant bits 11", update({ nodeId: idBytes(8, 0xc3) }), "not a UUID v4 (variant bits 11)"],
      ["state code 4", update({ state: 4 }), "undecodable packet body"],
      ["state code 255", update({ state: 255 }), "undecodable packet body"],
      ["port 70000", update({ gossipAddress: ["db.internal", 70000] }), "gossipAddress: port 70000 is not in 0..65535"],
      ["port -1", update({ rpcAddress: ["db.internal", -1] }), "rpcAddress: port -1 is not in 0..65535"],
      ["fractional port", update({ rpcAddress: ["db.internal", 80.5] }), "port 80.5 is not in 0..65535"],
      ["empty host", update({ gossipAddress: ["", 7946] }), "updates[0].gossipAddress: empty host"],
      ["packed address of 5 bytes", update({ gossipAddress: new Uint8Array(5) }), "is 6 bytes, got 5"],
      ["negative incarnation", update({ incarnation: -1 }), "updates[0].incarnation: -1 is not"],
      ["fractional incarnation", update({ incarnation: 2.5 }), "updates[0].incarnation: 2.5 is not"],
      ["unsafe incarnation", update({ incarnation: 2 ** 60 }), "updates[0].incarnation"],
      [
        "negative seq",
        message({ ack: { ...reply, seq: -1 } }),
        "messages[0].seq: -1 is not an unsigned 32-bit integer"
      ],
      ["seq 2^32", message({ nack: { ...reply, seq: 2 ** 32 } }), "messages[0].seq: 4294967296 is not"],
      ["fractional seq", message({ ack: { ...reply, seq: 0.25 } }), "messages[0].seq: 0.25 is not"],
      ["message of no kind", message({}), "messages[0].kind: exactly one of ping, ack, nack, pingReq"],
      ["message of two kinds", message({ ack: reply, nack: reply }), "must be set, got 2"]
    ]
    for (const [name, bytes, expected] of cases) {
      const error = decodeErr(bytes)
      expect(Codec.rejectionReason(error), name).toBe("body")
      expect(error.message, name).toContain(expected)
    }
  })

  it.effect("refuses the same in push-pull frames", () =>
    Effect.gen(function* () {
      const pushPull = pushPullToWire(
        new PushPull({ from: idOf(1), join: true, nodes: [NodeStateUpdate.fromNode(realistic(2))] })
      )
      const node = pushPull.nodes[0]! as typeof LaxUpdate.Type
      assert.deepStrictEqual(
        yield* Codec.decodePushPull(LABEL, laxStream(pushPull)),
        new PushPull({ from: idOf(1), join: true, nodes: [NodeStateUpdate.fromNode(realistic(2))] })
      )
      for (const [bytes, expected] of [
        [laxStream({ ...pushPull, from: new Uint8Array(16) }), "from: not a UUID v4 (version nibble 0)"],
        [laxStream({ ...pushPull, nodes: [{ ...node, state: 4 }] }), "undecodable push-pull body"],
        [laxStream({ ...pushPull, nodes: [{ ...node, gossipAddress: ["h", 70000] }] }), "nodes[0].gossipAddress: port"],
        [laxStream({ ...pushPull, nodes: [node, { ...node, incarnation: -3 }] }), "nodes[1].incarnation: -3 is not"]
      ] as const) {
        const error = yield* Effect.flip(Codec.decodePushPull(LABEL, bytes))
        assert.instanceOf(error, SerializationError)
        expect(Codec.rejectionReason(error)).toBe("body")
        expect(error.message).toContain(expected)
      }
    })
  )

  it("throws (a bug, not bad input) when asked to encode a value that skipped its checks", () => {
    const bad = new Ack({ seq: -5, from: idOf(1) }, { disableChecks: true })
    expect(() => Codec.encodePacket({ label: LABEL }, { messages: [bad], updates: [] })).toThrow(SerializationError)
    const badUpdate = new NodeStateUpdate(
      { nodeId: "x" as NodeId, state: "Alive", incarnation: 1 },
      { disableChecks: true }
    )
    expect(() => Codec.updateSize(badUpdate)).toThrow(SerializationError)
    expect(() => Codec.packCompound(LABEL, ack.messages, [badUpdate], 1400)).toThrow(SerializationError)
  })
})
