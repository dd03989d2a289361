import { assert, describe, expect, it } from "@effect/vitest"
import { Effect, Option, Random, Schema } from "effect"
import * as fc from "fast-check"
import {
  Ack,
  AddressFromWire,
  HostFromWire,
  ipv4ToBytes,
  MAX_SEQ_NO,
  NodeIdFromBytes,
  NodeStateFromCode,
  NodeStateUpdate,
  nodeIdTextFromBytes,
  nodeIdToBytes,
  Ping,
  PingReq
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
