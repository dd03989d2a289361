import { assert, describe, it } from "@effect/vitest"
import { eventLine, isoTimestamp, nodeLine, statsLine, toHuman, toJson } from "../../src/cli/EventFormat.ts"
import type { ClusterStats } from "../../src/cluster/Cluster.ts"
import {
  NodeFailed,
  NodeJoined,
  NodeLeft,
  NodeReaped,
  NodeRecovered,
  NodeSuspected,
  NodeUpdated
} from "../../src/cluster/Events.ts"
import { noRejections } from "../../src/cluster/gossip/SecureTransport.ts"
import { Address, ClusterNode, type NodeId } from "../../src/cluster/Node.ts"

const id = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, "0")}` as NodeId

const node = (overrides: Partial<ConstructorParameters<typeof ClusterNode>[0]> = {}) =>
  new ClusterNode({
    id: id(1),
    name: "node-1",
    gossipAddress: new Address({ host: "127.0.0.1", port: 7946 }),
    tags: { zone: "a", role: "web" },
    state: "Alive",
    incarnation: 3,
    ...overrides
  })

const T = Date.UTC(2025, 0, 2, 3, 4, 5, 678)

describe("JSON event lines", () => {
  it("have a fixed schema and key order, tags sorted, rpcAddress null when absent", () => {
    assert.strictEqual(
      toJson(eventLine(new NodeJoined({ node: node() }), T)),
      '{"ts":"2025-01-02T03:04:05.678Z","event":"NodeJoined","name":"node-1",' +
        '"id":"00000000-0000-4000-8000-000000000001","state":"Alive","incarnation":3,' +
        '"address":"127.0.0.1:7946","rpcAddress":null,"tags":{"role":"web","zone":"a"}}'
    )
  })

  it("name the event after the ClusterEvent tag and carry the state after the change", () => {
    const cases = [
      [new NodeJoined({ node: node() }), "NodeJoined", "Alive"],
      [new NodeUpdated({ node: node({ incarnation: 4 }) }), "NodeUpdated", "Alive"],
      [new NodeSuspected({ node: node({ state: "Suspect" }) }), "NodeSuspected", "Suspect"],
      [new NodeRecovered({ node: node({ incarnation: 5 }) }), "NodeRecovered", "Alive"],
      [new NodeFailed({ node: node({ state: "Dead" }) }), "NodeFailed", "Dead"],
      [new NodeLeft({ node: node({ state: "Left" }) }), "NodeLeft", "Left"],
      [new NodeReaped({ node: node({ state: "Dead" }) }), "NodeReaped", "Dead"]
    ] as const
    for (const [event, name, state] of cases) {
      const parsed = JSON.parse(toJson(eventLine(event, T)))
      assert.strictEqual(parsed.event, name)
      assert.strictEqual(parsed.state, state)
      assert.strictEqual(parsed.incarnation, event.node.incarnation)
    }
  })

  it("format IPv6 and RPC addresses as host:port", () => {
    const line = nodeLine(
      "Member",
      node({
        gossipAddress: new Address({ host: "::1", port: 7946 }),
        rpcAddress: new Address({ host: "10.0.0.1", port: 9000 })
      }),
      T
    )
    assert.strictEqual(line.address, "[::1]:7946")
    assert.strictEqual(line.rpcAddress, "10.0.0.1:9000")
    assert.deepStrictEqual(Object.keys(JSON.parse(toJson(line))), [
      "ts",
      "event",
      "name",
      "id",
      "state",
      "incarnation",
      "address",
      "rpcAddress",
      "tags"
    ])
  })

  it("timestamps are ISO-8601 UTC, rounded to the millisecond", () => {
    assert.strictEqual(isoTimestamp(0), "1970-01-01T00:00:00.000Z")
    assert.strictEqual(isoTimestamp(T + 0.6), "2025-01-02T03:04:05.679Z")
  })
})

describe("stats lines", () => {
  const stats: ClusterStats = {
    probes: 10,
    indirectProbes: 2,
    failedProbes: 1,
    streamPingAcks: 0,
    replacements: 0,
    revivals: 0,
    exchangesDeferred: 0,
    suspicionsRaised: 1,
    deathsDeclared: 1,
    refutations: 0,
    pushPulls: 3,
    pushPullFailures: 0,
    packetsRejected: 0,
    updatesApplied: 7,
    updatesRefused: 0,
    claimsRefused: 0,
    claimsUnverifiable: 0,
    deathsDowngraded: 0,
    transport: { packetsSent: 40, bytesSent: 4096, packetsReceived: 38, bytesReceived: 3000, dropped: 0 },
    awareness: 1,
    envelopeRejected: noRejections
  }
  const members = [
    node(),
    node({ id: id(2), state: "Suspect" }),
    node({ id: id(3), state: "Dead" }),
    node({ id: id(4), state: "Left" }),
    node({ id: id(5) })
  ]

  it("count members by state and keep every counter", () => {
    const line = statsLine(stats, members, { [id(2)]: 3.25 }, T)
    const parsed = JSON.parse(toJson(line))
    assert.strictEqual(parsed.event, "Stats")
    assert.strictEqual(parsed.ts, "2025-01-02T03:04:05.678Z")
    assert.deepStrictEqual([parsed.members, parsed.alive, parsed.suspect, parsed.dead, parsed.left], [5, 2, 1, 1, 1])
    assert.strictEqual(parsed.probes, 10)
    assert.strictEqual(parsed.transport.bytesSent, 4096)
    assert.deepStrictEqual(parsed.phi, { [id(2)]: 3.25 })
  })

  it("read as one line in human form", () => {
    const text = toHuman(statsLine(stats, members, { [id(2)]: 3.25 }, T))
    assert.notInclude(text, "\n")
    assert.include(text, "members=5 alive=2 suspect=1 dead=1 left=1")
    assert.include(text, "sent=40/4.0KiB")
    assert.include(text, "maxPhi=3.25")
  })
})

describe("human event lines", () => {
  it("align their columns whatever the name's length", () => {
    const a = toHuman(eventLine(new NodeJoined({ node: node({ name: "a" }) }), T))
    const b = toHuman(eventLine(new NodeSuspected({ node: node({ name: "node-with-long", state: "Suspect" }) }), T))
    assert.strictEqual(a.indexOf(" Alive "), b.indexOf(" Suspect "))
    assert.strictEqual(a.indexOf("127.0.0.1:7946"), b.indexOf("127.0.0.1:7946"))
    assert.include(a, "inc=3")
    assert.include(a, "role=web,zone=a")
  })

  it("show the full id on Started and its first 8 digits elsewhere", () => {
    const started = toHuman(nodeLine("Started", node(), T))
    const member = toHuman(nodeLine("Member", node(), T))
    assert.include(started, id(1))
    assert.notInclude(member, id(1))
    assert.include(member, " 00000000 ")
  })
})
