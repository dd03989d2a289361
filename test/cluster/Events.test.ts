import { describe, expect, it } from "@effect/vitest"
import { Schema } from "effect"
import {
  ClusterEvent,
  classify,
  NodeFailed,
  NodeJoined,
  NodeLeft,
  NodeReaped,
  NodeRecovered,
  NodeSuspected,
  NodeUpdated
} from "../../src/cluster/Events.ts"
import { Address, ClusterNode, NodeId, type NodeState } from "../../src/cluster/Node.ts"

const id = NodeId.make("3b241101-e2bb-4255-8caf-4136c566a962")

const base = new ClusterNode({
  id,
  name: "worker-1",
  gossipAddress: new Address({ host: "10.0.0.1", port: 7946 }),
  rpcAddress: new Address({ host: "10.0.0.1", port: 9000 }),
  tags: { role: "worker", zone: "a" },
  state: "Alive",
  incarnation: 3
})

const at = (state: NodeState, incarnation = 3) => base.with({ state, incarnation })
const states: ReadonlyArray<NodeState> = ["Alive", "Suspect", "Dead", "Left"]
type Tag = ClusterEvent["_tag"] | undefined

describe("classify", () => {
  it("follows the whole table (previous state x new state)", () => {
    // rows: previous (undefined = not a member); columns: new state. Alive -> Alive here is an incarnation bump.
    const table: ReadonlyArray<readonly [NodeState | undefined, Record<NodeState, Tag>]> = [
      [undefined, { Alive: "NodeJoined", Suspect: "NodeSuspected", Dead: "NodeFailed", Left: "NodeLeft" }],
      ["Alive", { Alive: "NodeUpdated", Suspect: "NodeSuspected", Dead: "NodeFailed", Left: "NodeLeft" }],
      ["Suspect", { Alive: "NodeRecovered", Suspect: undefined, Dead: "NodeFailed", Left: "NodeLeft" }],
      ["Dead", { Alive: "NodeJoined", Suspect: "NodeSuspected", Dead: undefined, Left: "NodeLeft" }],
      ["Left", { Alive: "NodeJoined", Suspect: "NodeSuspected", Dead: "NodeFailed", Left: undefined }]
    ]
    for (const [from, row] of table) {
      for (const to of states) {
        const previous = from === undefined ? undefined : at(from, 3)
        const current = at(to, 4)
        const event = classify(previous, current)
        expect(event?._tag, `${from ?? "unknown"} -> ${to}`).toBe(row[to])
        // every event carries the member as it is after the change
        if (event !== undefined) expect(event.node).toBe(current)
      }
    }
  })

  it("an identical Alive announcement is not news", () => {
    expect(classify(base, base)).toBeUndefined()
    // equal by value, distinct objects (as decoded from two packets)
    const copy = new ClusterNode({
      ...base,
      tags: { zone: "a", role: "worker" },
      gossipAddress: new Address({ host: "10.0.0.1", port: 7946 })
    })
    expect(classify(base, copy)).toBeUndefined()
  })

  it("Alive -> Alive is NodeUpdated when anything observable changed", () => {
    const changes: Record<string, ClusterNode> = {
      "incarnation only": base.with({ incarnation: 4 }),
      "tag value": base.with({ tags: { role: "worker", zone: "b" } }),
      "tag added": base.with({ tags: { role: "worker", zone: "a", gpu: "1" } }),
      "tag removed": base.with({ tags: { role: "worker" } }),
      "tag renamed": base.with({ tags: { role: "worker", region: "a" } }),
      name: base.with({ name: "worker-2" }),
      "gossip port": base.with({ gossipAddress: new Address({ host: "10.0.0.1", port: 7947 }) }),
      "gossip host": base.with({ gossipAddress: new Address({ host: "10.0.0.2", port: 7946 }) }),
      "rpc port": base.with({ rpcAddress: new Address({ host: "10.0.0.1", port: 9001 }) })
    }
    for (const [what, current] of Object.entries(changes)) {
      expect(classify(base, current)?._tag, what).toBe("NodeUpdated")
    }
    // rpc address appearing or disappearing (an optional key)
    const { rpcAddress: _, ...withoutRpc } = base
    const noRpc = new ClusterNode(withoutRpc)
    expect(classify(noRpc, base)?._tag).toBe("NodeUpdated")
    expect(classify(base, noRpc)?._tag).toBe("NodeUpdated")
  })

  it("a suspicion refuted with new tags is still a recovery, a return with old tags still a join", () => {
    expect(classify(at("Suspect"), base.with({ incarnation: 4, tags: {} }))?._tag).toBe("NodeRecovered")
    expect(classify(at("Dead"), base.with({ incarnation: 4 }))?._tag).toBe("NodeJoined")
  })
})

describe("ClusterEvent schema", () => {
  it("every event round-trips through JSON", () => {
    const events: ReadonlyArray<ClusterEvent> = [
      new NodeJoined({ node: base }),
      new NodeUpdated({ node: base }),
      new NodeSuspected({ node: at("Suspect") }),
      new NodeRecovered({ node: base }),
      new NodeFailed({ node: at("Dead") }),
      new NodeLeft({ node: at("Left") }),
      new NodeReaped({ node: at("Dead") })
    ]
    const encode = Schema.encodeSync(Schema.toCodecJson(ClusterEvent))
    const decode = Schema.decodeUnknownSync(Schema.toCodecJson(ClusterEvent))
    for (const event of events) {
      const wire = JSON.parse(JSON.stringify(encode(event)))
      expect(wire._tag).toBe(event._tag)
      const back = decode(wire)
      expect(back).toBeInstanceOf(event.constructor)
      expect(back._tag).toBe(event._tag)
      expect(back.node).toBeInstanceOf(ClusterNode)
      expect(back.node).toEqual(event.node)
    }
  })

  it("rejects an unknown tag or a malformed node", () => {
    const decode = Schema.decodeUnknownExit(Schema.toCodecJson(ClusterEvent))
    expect(decode({ _tag: "NodeExploded", node: {} })._tag).toBe("Failure")
    expect(decode({ _tag: "NodeJoined", node: { id: "nope" } })._tag).toBe("Failure")
  })
})
