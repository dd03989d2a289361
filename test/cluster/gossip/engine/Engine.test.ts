/**
 * Single transitions of the engine, as plain function calls: an input and
 * the time in, outputs out — no runtime, no clock, no socket.
 */
import { describe, expect, it } from "@effect/vitest"
import type { Output } from "../../../../src/cluster/gossip/engine/Output.ts"
import { Ack, Nack, NodeStateUpdate, Ping, PingReq, PushPull } from "../../../../src/cluster/gossip/Messages.ts"
import { Driver, peerAddress, peerId, SELF_ID } from "./harness.ts"

const alive = (i: number, incarnation = 1) =>
  new NodeStateUpdate(
    { nodeId: peerId(i), state: "Alive", incarnation, name: `p${i}`, gossipAddress: peerAddress(i), tags: {} },
    { disableChecks: true }
  )

const sends = (outputs: ReadonlyArray<Output>) => outputs.flatMap((o) => (o._tag === "Send" ? [o] : []))

/** A driver that knows peers 0…`peers − 1` (announced alive by peer 0) and runs its rounds. */
const knowing = (peers: number) => {
  const driver = new Driver({ seed: 3 })
  driver.handle({
    _tag: "Datagram",
    from: peerAddress(0),
    payload: { messages: [], updates: Array.from({ length: peers }, (_, i) => alive(i)) }
  })
  driver.handle({ _tag: "Start" })
  return driver
}

describe("Engine transitions", () => {
  it("answers a ping in its own name, whoever it was for, with what it has to say piggybacked", () => {
    const driver = new Driver({ seed: 1 })
    const outputs = driver.handle({
      _tag: "Datagram",
      from: peerAddress(0),
      payload: { messages: [new Ping({ seq: 9, from: peerId(0), target: peerId(5) })], updates: [] }
    })
    const [reply] = sends(outputs)
    expect(reply?.to).toEqual(peerAddress(0))
    expect(reply?.packet.messages).toEqual([new Ack({ seq: 9, from: SELF_ID })])
    // its own announcement rides along (queued at construction)
    expect(reply?.packet.updates.map((u) => u.nodeId)).toContain(SELF_ID)
  })

  it("a probe without an ack goes indirect at the ping timeout: ping-reqs to alive helpers and a TCP ping with the rest of the budget", () => {
    const driver = knowing(5)
    // run until a probe starts
    while (!driver.outputs.some((o) => o._tag === "SetTimer" && o.timer._tag === "ProbeIndirect")) driver.fireNext()
    const started = driver.now
    const indirect = [...driver.timers.values()].find((t) => t.timer._tag === "ProbeIndirect")!
    expect(indirect.at - started).toBeCloseTo(500, 6)
    const before = driver.outputs.length
    driver.runUntil(indirect.at)
    const after = driver.outputs.slice(before)
    const pingReqs = sends(after).filter((s) => s.packet.messages.some((m) => m instanceof PingReq))
    expect(pingReqs.length).toBe(3)
    const tcp = after.find((o) => o._tag === "OpenExchange")
    expect(tcp?._tag === "OpenExchange" ? tcp.deadline - driver.now : undefined).toBeCloseTo(500, 6)
  })

  it("a helper sends its nack at 0.8 × the unscaled ping timeout", () => {
    const driver = new Driver({ seed: 2 })
    driver.handle({
      _tag: "Datagram",
      from: peerAddress(0),
      payload: {
        messages: [new PingReq({ seq: 77, requestor: peerId(0), target: peerId(1), targetAddress: peerAddress(1) })],
        updates: []
      }
    })
    const relay = [...driver.timers.values()].find((t) => t.timer._tag === "Relay")!
    expect(relay.at).toBe(400)
    driver.fireNext()
    const nack = sends(driver.outputs).find((s) => s.packet.messages.some((m) => m instanceof Nack))
    expect(nack?.to).toEqual(peerAddress(0))
    expect(nack?.packet.messages).toEqual([new Nack({ seq: 77, from: SELF_ID })])
  })

  it("refutes a suspicion of itself at a higher incarnation, and counts it against its health", () => {
    const driver = new Driver({ seed: 4 })
    const incarnation = driver.engine.localNode.incarnation
    const outputs = driver.handle({
      _tag: "Datagram",
      from: peerAddress(0),
      payload: {
        messages: [],
        updates: [
          new NodeStateUpdate(
            { nodeId: SELF_ID, state: "Suspect", incarnation, from: peerId(0) },
            { disableChecks: true }
          )
        ]
      }
    })
    expect(driver.engine.localNode.incarnation).toBe(incarnation + 1)
    expect(driver.engine.awareness).toBe(1)
    expect(driver.engine.stats().refutations).toBe(1)
    expect(outputs.some((o) => o._tag === "MembershipChanged" && o.change._tag === "Applied")).toBe(true)
  })

  it("serves a push-pull in the same step: merges the peer's state and answers with its own", () => {
    const driver = new Driver({ seed: 5 })
    const outputs = driver.handle({
      _tag: "StreamRequest",
      request: 12,
      from: peerAddress(0),
      payload: new PushPull({ from: peerId(0), join: true, nodes: [alive(0), alive(1)] })
    })
    const reply = outputs.find((o) => o._tag === "Reply")
    expect(reply?._tag === "Reply" && reply.request).toBe(12)
    expect(reply?._tag === "Reply" && reply.response instanceof PushPull && reply.response.nodes.length).toBe(3)
    expect(driver.engine.table.count("Alive")).toBe(3)
  })

  it("a probe that outlived its budget by more than a ping timeout (the node was frozen) gives no verdict", () => {
    const driver = knowing(3)
    while (!driver.outputs.some((o) => o._tag === "SetTimer" && o.timer._tag === "ProbeIndirect")) driver.fireNext()
    const indirect = [...driver.timers.entries()].find(([, t]) => t.timer._tag === "ProbeIndirect")!
    // frozen for 5 s: the timer fires late
    driver.timers.delete(indirect[0])
    driver.advanceTo(indirect[1].at + 5000)
    driver.handle({ _tag: "TimerFired", timer: indirect[1].timer })
    const end = [...driver.timers.entries()].find(([, t]) => t.timer._tag === "ProbeEnd")!
    driver.timers.delete(end[0])
    driver.handle({ _tag: "TimerFired", timer: end[1].timer })
    expect(driver.engine.stats().suspicionsRaised).toBe(0)
    expect(driver.engine.stats().failedProbes).toBe(0)
    expect(driver.engine.awareness).toBe(1)
  })
})

describe("timers that fire early", () => {
  const suspected = () => {
    const driver = new Driver({ seed: 6 })
    driver.handle({ _tag: "Datagram", from: peerAddress(0), payload: { messages: [], updates: [alive(0), alive(1)] } })
    driver.handle({
      _tag: "Datagram",
      from: peerAddress(1),
      payload: {
        messages: [],
        updates: [
          new NodeStateUpdate(
            { nodeId: peerId(0), state: "Suspect", incarnation: 1, from: peerId(1) },
            { disableChecks: true }
          )
        ]
      }
    })
    const [key, armed] = [...driver.timers.entries()].find(([, t]) => t.timer._tag === "Suspicion")!
    driver.timers.delete(key)
    return { driver, armed }
  }

  it("a suspicion timer a hair early (clock rounding of fractional times) still declares the suspect dead", () => {
    const { driver, armed } = suspected()
    driver.advanceTo(armed.at - 1e-9)
    driver.handle({ _tag: "TimerFired", timer: armed.timer })
    expect(driver.engine.table.get(peerId(0))?.state).toBe("Dead")
  })

  it("a suspicion timer well before its deadline is armed again for the rest (the suspect is not left Suspect for ever)", () => {
    const { driver, armed } = suspected()
    driver.advanceTo(armed.at - 100)
    const outputs = driver.handle({ _tag: "TimerFired", timer: armed.timer })
    expect(driver.engine.table.get(peerId(0))?.state).toBe("Suspect")
    expect(outputs.some((o) => o._tag === "SetTimer" && o.timer._tag === "Suspicion" && o.at === armed.at)).toBe(true)
  })
})

describe("a peer's verdict about a member held alive", () => {
  const merged = () => {
    const driver = new Driver({ seed: 8 })
    driver.handle({ _tag: "Datagram", from: peerAddress(0), payload: { messages: [], updates: [alive(0), alive(1)] } })
    const dead = new NodeStateUpdate(
      { nodeId: peerId(1), state: "Dead", incarnation: 1, from: peerId(0) },
      { disableChecks: true }
    )
    const outputs = driver.handle({
      _tag: "StreamRequest",
      request: 1,
      from: peerAddress(0),
      payload: new PushPull({ from: peerId(0), join: false, nodes: [alive(0), dead] })
    })
    return { driver, outputs }
  }

  it("is put to the member with a ping first, not taken on the peer's word", () => {
    const { driver, outputs } = merged()
    expect(driver.engine.table.get(peerId(1))?.state).toBe("Alive")
    const ping = sends(outputs).find((s) => s.to.host === peerAddress(1).host)
    expect(ping?.packet.messages[0]?._tag).toBe("Ping")
    expect(ping?.packet.updates.map((u) => `${u.state}@${u.incarnation}`)).toEqual(["Suspect@1"])
  })

  it("becomes our suspicion only when no ack comes within the ping timeout", () => {
    const { driver, outputs } = merged()
    const ping = sends(outputs).find((s) => s.to.host === peerAddress(1).host)!.packet.messages[0] as Ping
    // answered: nothing happens
    driver.handle({
      _tag: "Datagram",
      from: peerAddress(1),
      payload: { messages: [new Ack({ seq: ping.seq, from: peerId(1) })], updates: [] }
    })
    driver.runUntil(driver.now + 600)
    expect(driver.engine.table.get(peerId(1))?.state).toBe("Alive")
    // unanswered: the verdict is ours
    const second = merged()
    second.driver.runUntil(second.driver.now + 600)
    expect(second.driver.engine.table.get(peerId(1))?.state).toBe("Suspect")
  })
})
