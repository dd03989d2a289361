import { assert, describe, expect, it } from "@effect/vitest"
import { Effect, Option, Random, Result, Schema } from "effect"
import * as fc from "fast-check"
import { SerializationError } from "../../../src/cluster/Errors.ts"
import {
  Ack,
  AddressFromWire,
  HostFromWire,
  ipv4ToBytes,
  isNodeIdBytes,
  MAX_INCARNATION,
  MAX_SEQ_NO,
  messageToWire,
  Nack,
  NodeIdFromBytes,
  NodeStateFromCode,
  NodeStateUpdate,
  nodeIdTextFromBytes,
  nodeIdToBytes,
  type Packet,
  Ping,
  PingReq,
  PushPull,
  packetFromWire,
  packetToWire,
  pushPullFromWire,
  pushPullToWire,
  updateToWire,
  type WireMessage,
  type WirePacket,
  type WireUpdate
} from "../../../src/cluster/gossip/Messages.ts"
import { Address, ClusterNode, makeNodeId, NodeId } from "../../../src/cluster/Node.ts"

const ID_A = NodeId.make("3b241101-e2bb-4255-8caf-4136c566a962")
const ID_B = NodeId.make("9f1c2e3d-4b5a-4c6d-8e7f-0a1b2c3d4e5f")

const encode = <S extends Schema.Codec<any, any>>(schema: S) =>
  Schema.encodeSync(schema as any) as (a: S["Type"]) => S["Encoded"]

describe("NodeId on the wire", () => {
  it.effect("round-trips every generated id through 16 bytes", () =>
    Effect.gen(function* () {
      for (let i = 0; i < 300; i++) {
        const id = yield* makeNodeId
        const bytes = nodeIdToBytes(id)
        expect(bytes.length).toBe(16)
        expect(nodeIdTextFromBytes(bytes)).toBe(id)
        expect(Schema.decodeUnknownSync(NodeIdFromBytes)(encode(NodeIdFromBytes)(id))).toBe(id)
      }
    }).pipe(Random.withSeed("wire-ids"))
  )

  it("packs the hex digits in order, high nibble first", () => {
    expect(Array.from(nodeIdToBytes(ID_A))).toEqual([
      0x3b, 0x24, 0x11, 0x01, 0xe2, 0xbb, 0x42, 0x55, 0x8c, 0xaf, 0x41, 0x36, 0xc5, 0x66, 0xa9, 0x62
    ])
  })

  it("rejects byte strings of the wrong length", () => {
    for (const n of [0, 1, 15, 17, 32]) {
      const result = Schema.decodeUnknownExit(NodeIdFromBytes)(new Uint8Array(n).fill(0x44))
      expect(result._tag, `length ${n}`).toBe("Failure")
    }
  })

  it("rejects 16 bytes that are not a UUID v4", () => {
    const v1 = nodeIdToBytes(ID_A)
    v1[6] = (v1[6]! & 0x0f) | 0x10 // version nibble 1
    expect(Schema.decodeUnknownExit(NodeIdFromBytes)(v1)._tag).toBe("Failure")
    const badVariant = nodeIdToBytes(ID_A)
    badVariant[8] = badVariant[8]! & 0x3f // variant bits 00
    expect(Schema.decodeUnknownExit(NodeIdFromBytes)(badVariant)._tag).toBe("Failure")
  })

  it("is canonical lower case: the wire cannot keep case, so NodeId refuses upper case", () => {
    // Ids keep their identity across the network only in one canonical form
    // (ClusterConfig.make lower-cases a configured id before checking it).
    expect(Schema.is(NodeId)(ID_A.toUpperCase())).toBe(false)
    expect(Schema.decodeUnknownSync(NodeIdFromBytes)(encode(NodeIdFromBytes)(NodeId.make(ID_A)))).toBe(ID_A)
  })
})

describe("NodeState on the wire", () => {
  it("is one small number per state, and back", () => {
    const states = ["Alive", "Suspect", "Dead", "Left"] as const
    states.forEach((state, code) => {
      expect(encode(NodeStateFromCode)(state)).toBe(code)
      expect(Schema.decodeUnknownSync(NodeStateFromCode)(code)).toBe(state)
    })
    for (const bad of [4, -1, 1.5, "Alive"]) {
      expect(Schema.decodeUnknownExit(NodeStateFromCode)(bad)._tag, String(bad)).toBe("Failure")
    }
  })
})

/** An independent oracle for "canonical dotted quad": each octet 0..255 without leading zeros. */
const OCTET = "(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)"
const CANONICAL_IPV4 = new RegExp(`^${OCTET}(\\.${OCTET}){3}$`)

describe("hosts and addresses on the wire", () => {
  it("packs canonical dotted quads into 4 bytes", () => {
    expect(Array.from(ipv4ToBytes("10.0.12.255")!)).toEqual([10, 0, 12, 255])
    expect(Array.from(ipv4ToBytes("0.0.0.0")!)).toEqual([0, 0, 0, 0])
    expect(Array.from(ipv4ToBytes("255.255.255.255")!)).toEqual([255, 255, 255, 255])
  })

  it("leaves everything else as text, so decoding gives back the same string", () => {
    for (const host of [
      "010.0.0.1",
      "1.2.3",
      "1.2.3.4.5",
      "256.0.0.1",
      "1.2.3.",
      ".1.2.3",
      "1..2.3",
      "1.2.3.4 ",
      "a.b.c.d",
      "::1",
      "::ffff:1.2.3.4",
      "localhost",
      "db-1.internal",
      "1234.1.1.1"
    ]) {
      expect(ipv4ToBytes(host), host).toBeUndefined()
    }
  })

  it("round-trips any host through HostFromWire, as bytes exactly when it is canonical IPv4", () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.ipV4(), fc.ipV4Extended(), fc.ipV6(), fc.domain(), fc.string({ minLength: 1, maxLength: 40 })),
        (host) => {
          const wire = encode(HostFromWire)(host)
          expect(Schema.decodeUnknownSync(HostFromWire)(wire)).toBe(host)
          expect(wire instanceof Uint8Array).toBe(CANONICAL_IPV4.test(host))
        }
      ),
      { seed: 7, numRuns: 500 }
    )
  })

  it("rejects packed hosts that are not 4 bytes, and empty text", () => {
    for (const bad of [new Uint8Array(3), new Uint8Array(5), new Uint8Array(16), ""]) {
      expect(Schema.decodeUnknownExit(HostFromWire)(bad)._tag).toBe("Failure")
    }
  })

  it("carries an Address as [host, port]", () => {
    const address = new Address({ host: "192.168.1.20", port: 7946 })
    const wire = encode(AddressFromWire)(address) as readonly [unknown, number]
    expect(wire[1]).toBe(7946)
    expect(Array.from(wire[0] as Uint8Array)).toEqual([192, 168, 1, 20])
    const back = Schema.decodeUnknownSync(AddressFromWire)(wire)
    assert.instanceOf(back, Address)
    expect(back).toEqual(address)
    expect(Schema.decodeUnknownExit(AddressFromWire)(["h", 70000])._tag).toBe("Failure")
  })
})

describe("messages", () => {
  it("take sequence numbers as uint32 only", () => {
    expect(new Ack({ seq: 0, from: ID_A }).seq).toBe(0)
    expect(new Ack({ seq: MAX_SEQ_NO, from: ID_A }).seq).toBe(MAX_SEQ_NO)
    for (const bad of [-1, MAX_SEQ_NO + 1, 1.5, Number.NaN]) {
      expect(() => new Ping({ seq: bad, from: ID_A, target: ID_B }), String(bad)).toThrow()
    }
  })

  it("validate their ids and addresses at construction", () => {
    expect(
      () =>
        new PingReq({
          seq: 1,
          requestor: "nope" as NodeId,
          target: ID_B,
          targetAddress: new Address({ host: "h", port: 1 })
        })
    ).toThrow()
  })
})

describe("NodeStateUpdate", () => {
  const member = (rpc: boolean, tags: Record<string, string>) =>
    new ClusterNode({
      id: ID_A,
      name: "node-07",
      gossipAddress: new Address({ host: "10.0.0.7", port: 7946 }),
      ...(rpc ? { rpcAddress: new Address({ host: "10.0.0.7", port: 9000 }) } : {}),
      tags,
      state: "Suspect",
      incarnation: 12
    })

  it("carries a member's full state and gives it back", () => {
    for (const node of [member(true, { role: "worker", zone: "a" }), member(false, {})]) {
      const update = NodeStateUpdate.fromNode(node)
      expect(update.isFull).toBe(true)
      expect(update.from).toBeUndefined()
      const back = Option.getOrThrow(update.toNode())
      expect(back).toEqual(node)
      assert.instanceOf(back, ClusterNode)
    }
  })

  it("leaves empty tags off the wire and reads a full update without tags as no tags", () => {
    const update = NodeStateUpdate.fromNode(member(false, {}))
    expect("tags" in update).toBe(false)
    expect(Option.getOrThrow(update.toNode()).tags).toEqual({})
  })

  it("names the accuser of a suspicion", () => {
    expect(NodeStateUpdate.fromNode(member(false, {}), ID_B).from).toBe(ID_B)
  })

  it("is not a member when it is a bare claim", () => {
    const claim = new NodeStateUpdate({ nodeId: ID_A, state: "Dead", incarnation: 3, from: ID_B })
    expect(claim.isFull).toBe(false)
    expect(Option.isNone(claim.toNode())).toBe(true)
    const nameOnly = new NodeStateUpdate({ nodeId: ID_A, state: "Alive", incarnation: 3, name: "x" })
    expect(Option.isNone(nameOnly.toNode())).toBe(true)
  })

  it("rejects a negative or fractional incarnation", () => {
    expect(() => new NodeStateUpdate({ nodeId: ID_A, state: "Alive", incarnation: -1 })).toThrow()
    expect(() => new NodeStateUpdate({ nodeId: ID_A, state: "Alive", incarnation: 0.5 })).toThrow()
  })
})

// ---------------------------------------------------------------------------
// Wire form: the conversion and its hand-written checks
// ---------------------------------------------------------------------------

const member = (id: NodeId, host: string, tags: Record<string, string> = { role: "worker" }) =>
  new ClusterNode({
    id,
    name: "node-07",
    gossipAddress: new Address({ host, port: 7946 }),
    rpcAddress: new Address({ host, port: 9000 }),
    tags,
    state: "Alive",
    incarnation: 12
  })

const samplePacket: Packet = {
  messages: [
    new Ping({ seq: 1, from: ID_A, target: ID_B }),
    new Ack({ seq: 2, from: ID_B }),
    new Nack({ seq: 3, from: ID_B }),
    new PingReq({ seq: 4, requestor: ID_A, target: ID_B, targetAddress: new Address({ host: "fd00::2", port: 7946 }) })
  ],
  updates: [
    NodeStateUpdate.fromNode(member(ID_A, "10.0.0.7")),
    new NodeStateUpdate({ nodeId: ID_B, state: "Suspect", incarnation: 3, from: ID_A })
  ]
}

const validWire = (): WirePacket => packetToWire(samplePacket)

/** The wire packet with its first update replaced by `patch` applied to it. */
const withUpdate = (patch: Record<string, unknown>): WirePacket => {
  const wire = validWire()
  return { ...wire, updates: [{ ...wire.updates[0]!, ...patch } as WireUpdate, ...wire.updates.slice(1)] }
}

/** The wire packet with only the message `message`. */
const withMessage = (message: unknown): WirePacket => ({ ...validWire(), messages: [message as WireMessage] })

const failure = (result: Result.Result<unknown, string>): string => {
  if (Result.isSuccess(result)) throw new Error("expected the conversion to fail")
  return result.failure
}

const idWith = (index: number, value: number) => {
  const bytes = nodeIdToBytes(ID_A)
  bytes[index] = value
  return bytes
}

describe("wire conversion", () => {
  it("round-trips every message kind and update shape", () => {
    const back = Result.getOrThrow(packetFromWire(validWire()))
    assert.deepStrictEqual(back, samplePacket)
    assert.instanceOf(back.messages[3], PingReq)
    assert.instanceOf((back.messages[3] as PingReq).targetAddress, Address)
    assert.instanceOf(back.updates[0], NodeStateUpdate)
    assert.instanceOf(back.updates[0]!.gossipAddress, Address)
    const pushPull = new PushPull({ from: ID_A, join: true, nodes: samplePacket.updates })
    assert.deepStrictEqual(Result.getOrThrow(pushPullFromWire(pushPullToWire(pushPull))), pushPull)
  })

  it("agrees with the Schema forms on ids and states", () => {
    const wire = updateToWire(new NodeStateUpdate({ nodeId: ID_A, state: "Dead", incarnation: 1, from: ID_B }))
    expect(Array.from(wire.nodeId)).toEqual(Array.from(encode(NodeIdFromBytes)(ID_A) as Uint8Array))
    expect(Array.from(wire.from!)).toEqual(Array.from(nodeIdToBytes(ID_B)))
    expect(wire.state).toBe(encode(NodeStateFromCode)("Dead"))
    expect(isNodeIdBytes(wire.nodeId)).toBe(true)
  })

  it("packs an address into 6 bytes exactly when its host is a canonical dotted quad (property)", () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.ipV4(), fc.ipV4Extended(), fc.ipV6(), fc.domain()),
        fc.integer({ min: 0, max: 65535 }),
        (host, port) => {
          const address = new Address({ host, port })
          const wire = messageToWire(new PingReq({ seq: 1, requestor: ID_A, target: ID_B, targetAddress: address }))
          const packed = wire.pingReq!.targetAddress
          expect(packed instanceof Uint8Array).toBe(CANONICAL_IPV4.test(host))
          if (packed instanceof Uint8Array) {
            expect(packed.length).toBe(6)
            expect((packed[4]! << 8) | packed[5]!).toBe(port)
          }
          const back = Result.getOrThrow(packetFromWire({ messages: [wire], updates: [] }))
          expect((back.messages[0] as PingReq).targetAddress).toEqual(address)
        }
      ),
      { seed: 8, numRuns: 300 }
    )
  })

  it("reads -0 (which the wire can carry) as 0", () => {
    const back = Result.getOrThrow(
      packetFromWire({
        messages: [{ ack: { seq: -0, from: nodeIdToBytes(ID_A) } }],
        updates: [{ ...validWire().updates[1]!, incarnation: -0 }]
      })
    )
    expect(Object.is(back.messages[0]!.seq, 0)).toBe(true)
    expect(Object.is(back.updates[0]!.incarnation, 0)).toBe(true)
  })

  it("refuses node ids that are not 16 bytes, naming the field", () => {
    for (const n of [0, 1, 15, 17, 32]) {
      const bytes = new Uint8Array(n).fill(0x44)
      expect(failure(packetFromWire(withUpdate({ nodeId: bytes }))), `length ${n}`).toBe(
        `updates[0].nodeId: a node id is 16 bytes, got ${n}`
      )
    }
  })

  it("refuses 16 bytes that are not a UUID v4: version nibble and variant bits", () => {
    for (const version of [0x0, 0x1, 0x3, 0x5, 0xf]) {
      const message = failure(packetFromWire(withUpdate({ nodeId: idWith(6, (version << 4) | 0x02) })))
      expect(message).toBe(`updates[0].nodeId: not a UUID v4 (version nibble ${version})`)
    }
    for (const variant of [0x00, 0x4f, 0xc0, 0xff]) {
      expect(failure(packetFromWire(withUpdate({ nodeId: idWith(8, variant) })))).toContain(
        "updates[0].nodeId: not a UUID v4 (variant bits"
      )
    }
    expect(failure(packetFromWire(withUpdate({ from: idWith(6, 0x12) })))).toContain("updates[0].from: not a UUID v4")
  })

  it("refuses unknown state codes", () => {
    for (const code of [4, 5, -1, 255, 1.5]) {
      expect(failure(packetFromWire(withUpdate({ state: code })))).toBe(`updates[0].state: unknown code ${code}`)
    }
  })

  it("refuses incarnations that are not integers in 0..MAX_INCARNATION (2^32 - 1)", () => {
    for (const bad of [-1, 0.5, MAX_INCARNATION + 1, 2 ** 53, Number.POSITIVE_INFINITY, Number.NaN]) {
      expect(failure(packetFromWire(withUpdate({ incarnation: bad }))), String(bad)).toContain("updates[0].incarnation")
    }
    expect(Result.isSuccess(packetFromWire(withUpdate({ incarnation: MAX_INCARNATION })))).toBe(true)
  })

  it("refuses ports outside 0..65535, empty hosts and packed addresses of the wrong length", () => {
    for (const port of [70000, 65536, -1, 1.5, Number.NaN]) {
      expect(failure(packetFromWire(withUpdate({ gossipAddress: ["db.internal", port] })))).toBe(
        `updates[0].gossipAddress: port ${port} is not in 0..65535`
      )
    }
    expect(failure(packetFromWire(withUpdate({ rpcAddress: ["", 7946] })))).toBe("updates[0].rpcAddress: empty host")
    for (const n of [0, 4, 5, 7, 18]) {
      expect(failure(packetFromWire(withUpdate({ rpcAddress: new Uint8Array(n) })))).toBe(
        `updates[0].rpcAddress: a packed IPv4 address is 6 bytes, got ${n}`
      )
    }
    const pingReq = validWire().messages[3]!.pingReq!
    expect(failure(packetFromWire(withMessage({ pingReq: { ...pingReq, targetAddress: ["fd00::2", 70000] } })))).toBe(
      "messages[0].targetAddress: port 70000 is not in 0..65535"
    )
  })

  it("refuses sequence numbers that are not unsigned 32-bit integers", () => {
    for (const seq of [-1, MAX_SEQ_NO + 1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      const message = failure(packetFromWire(withMessage({ ack: { seq, from: nodeIdToBytes(ID_A) } })))
      expect(message).toBe(`messages[0].seq: ${seq} is not an unsigned 32-bit integer`)
    }
    expect(
      Result.isSuccess(packetFromWire(withMessage({ nack: { seq: MAX_SEQ_NO, from: nodeIdToBytes(ID_A) } })))
    ).toBe(true)
  })

  it("refuses a message that is not exactly one kind", () => {
    const reply = { seq: 1, from: nodeIdToBytes(ID_A) }
    expect(failure(packetFromWire(withMessage({})))).toContain("messages[0].kind: exactly one")
    expect(failure(packetFromWire(withMessage({ ack: reply, nack: reply })))).toContain("got 2")
  })

  it("names the element that failed", () => {
    const wire = validWire()
    const bad = { ...wire, updates: [wire.updates[0]!, { ...wire.updates[1]!, from: new Uint8Array(3) }] }
    expect(failure(packetFromWire(bad))).toBe("updates[1].from: a node id is 16 bytes, got 3")
    const pushPull = pushPullToWire(new PushPull({ from: ID_A, join: false, nodes: samplePacket.updates }))
    expect(failure(pushPullFromWire({ ...pushPull, from: idWith(8, 0) }))).toContain("from: not a UUID v4")
    expect(
      failure(pushPullFromWire({ ...pushPull, nodes: [pushPull.nodes[0]!, { ...pushPull.nodes[1]!, state: 7 as 0 }] }))
    ).toBe("nodes[1].state: unknown code 7")
  })

  it("refuses to encode values that skipped their checks (a bug at the sender)", () => {
    const unchecked = [
      () => messageToWire(new Ping({ seq: -1, from: ID_A, target: ID_B }, { disableChecks: true })),
      () => messageToWire(new Ack({ seq: 2 ** 32, from: ID_A }, { disableChecks: true })),
      () => messageToWire(new Ack({ seq: 1, from: ID_A.toUpperCase() as NodeId }, { disableChecks: true })),
      () => messageToWire(new Ack({ seq: 1, from: "not-an-id" as NodeId }, { disableChecks: true })),
      () => messageToWire(new Ack({ seq: 1, from: ID_A.replace("-4", "-1") as NodeId }, { disableChecks: true })),
      () =>
        messageToWire(
          new PingReq(
            {
              seq: 1,
              requestor: ID_A,
              target: ID_B,
              targetAddress: new Address({ host: "10.0.0.1", port: 70000 }, { disableChecks: true })
            },
            { disableChecks: true }
          )
        ),
      () =>
        updateToWire(new NodeStateUpdate({ nodeId: ID_A, state: "Alive", incarnation: 0.5 }, { disableChecks: true })),
      () =>
        updateToWire(new NodeStateUpdate({ nodeId: ID_A, state: "Alive", incarnation: -1 }, { disableChecks: true }))
    ]
    for (const [i, f] of unchecked.entries()) {
      expect(f, String(i)).toThrow(SerializationError)
    }
  })
})
