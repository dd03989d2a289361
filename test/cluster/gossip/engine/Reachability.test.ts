/**
 * An operator's reachability check as engine transitions: `Reach` in, the
 * probe's pings out, `Reached` back with the route that answered first and
 * its round trip — and a check that nobody answers is reported, never turned
 * into a suspicion, a failed probe or a worse health score.
 */
import { describe, expect, it } from "@effect/vitest"
import type { Output, Reached } from "../../../../src/cluster/gossip/engine/Output.ts"
import { Ack, Nack, NodeStateUpdate, Ping, PingReq, PushPull } from "../../../../src/cluster/gossip/Messages.ts"
import { Driver, defaultSettings, peerAddress, peerId } from "./harness.ts"

const alive = (i: number) =>
  new NodeStateUpdate(
    { nodeId: peerId(i), state: "Alive", incarnation: 1, name: `p${i}`, gossipAddress: peerAddress(i), tags: {} },
    { disableChecks: true }
  )

/** A driver that knows peers 0…`peers − 1`, with its rounds not started: only the check runs. */
const knowing = (peers: number, tcpPings = true) => {
  const driver = new Driver({ seed: 7, settings: defaultSettings({ tcpPings }) })
  driver.handle({
    _tag: "Datagram",
    from: peerAddress(0),
    payload: { messages: [], updates: Array.from({ length: peers }, (_, i) => alive(i)) }
  })
  return driver
}

const sends = (outputs: ReadonlyArray<Output>) => outputs.flatMap((o) => (o._tag === "Send" ? [o] : []))
const reached = (outputs: ReadonlyArray<Output>) => outputs.filter((o): o is Reached => o._tag === "Reached")

/** Starts check 1 of peer `target` with a 1 s budget; the direct ping's sequence number. */
const check = (driver: Driver, target: number) => {
  const outputs = driver.handle({ _tag: "Reach", request: 1, target: peerId(target), deadline: driver.now + 1000 })
  const [ping] = sends(outputs)
  expect(ping?.to).toEqual(peerAddress(target))
  // a measurement: nothing from the broadcast queue rides on it
  expect(ping?.packet.updates).toEqual([])
  const message = ping?.packet.messages[0]
  expect(message).toBeInstanceOf(Ping)
  return (message as Ping).seq
}

describe("reachability checks in the engine", () => {
  it("an ack to the direct ping is 'direct', with the round trip", () => {
    const driver = knowing(4)
    const seq = check(driver, 2)
    driver.advanceTo(driver.now + 3)
    const outputs = driver.handle({
      _tag: "Datagram",
      from: peerAddress(2),
      payload: { messages: [new Ack({ seq, from: peerId(2) })], updates: [] }
    })
    expect(reached(outputs)).toEqual([
      { _tag: "Reached", request: 1, target: peerId(2), route: "direct", rtt: 3, helpers: 0, nacks: 0 }
    ])
    expect([...driver.timers.keys()].filter((key) => key.startsWith("Reach"))).toEqual([])
  })

  it("no ack within the ping timeout: ping-reqs through alive helpers and a TCP ping; a relayed ack is 'indirect'", () => {
    const driver = knowing(5)
    const seq = check(driver, 4)
    const before = driver.outputs.length
    driver.runUntil(500)
    const after = driver.outputs.slice(before)
    const pingReqs = sends(after).flatMap((s) => s.packet.messages.filter((m): m is PingReq => m instanceof PingReq))
    expect(pingReqs).toHaveLength(3)
    expect(new Set(pingReqs.map((m) => m.target))).toEqual(new Set([peerId(4)]))
    const tcp = after.find((o) => o._tag === "OpenExchange")
    expect(tcp?._tag === "OpenExchange" ? tcp.deadline : undefined).toBe(1000)
    // a helper nacks, another relays the target's ack in its name
    const relaySeq = pingReqs[0]!.seq
    expect(relaySeq).not.toBe(seq)
    driver.advanceTo(520)
    driver.handle({
      _tag: "Datagram",
      from: peerAddress(0),
      payload: { messages: [new Nack({ seq: relaySeq, from: peerId(0) })], updates: [] }
    })
    driver.advanceTo(530)
    const outputs = driver.handle({
      _tag: "Datagram",
      from: peerAddress(1),
      payload: { messages: [new Ack({ seq: relaySeq, from: peerId(4) })], updates: [] }
    })
    expect(reached(outputs)).toEqual([
      { _tag: "Reached", request: 1, target: peerId(4), route: "indirect", rtt: 530, helpers: 3, nacks: 1 }
    ])
    // its TCP ping is no longer wanted
    expect(outputs.some((o) => o._tag === "CancelExchange" && tcp?._tag === "OpenExchange" && o.id === tcp.id)).toBe(
      true
    )
  })

  it("an answer over the TCP ping is 'tcp'; an ack from another identity at the address is no answer", () => {
    const driver = knowing(3)
    const seq = check(driver, 1)
    driver.runUntil(500)
    // someone else lives at the address now: not the member we asked about
    driver.handle({
      _tag: "Datagram",
      from: peerAddress(1),
      payload: { messages: [new Ack({ seq, from: peerId(9) })], updates: [] }
    })
    expect(reached(driver.outputs)).toEqual([])
    const tcp = [...driver.exchanges.values()].find((e) => !(e.request instanceof PushPull))!
    driver.advanceTo(610)
    const outputs = driver.handle({
      _tag: "ExchangeAnswered",
      id: tcp.id,
      payload: { messages: [new Ack({ seq, from: peerId(1) })], updates: [] }
    })
    expect(reached(outputs).map((r) => [r.route, r.rtt])).toEqual([["tcp", 610]])
  })

  it("nobody answering is reported at the deadline and nothing else: no suspicion, no failed probe, health unchanged", () => {
    const driver = knowing(4)
    check(driver, 3)
    driver.runUntil(1000)
    const [result] = reached(driver.outputs)
    expect(result).toMatchObject({ route: "none", rtt: undefined, helpers: 3, nacks: 0 })
    expect(driver.engine.table.get(peerId(3))?.state).toBe("Alive")
    expect(driver.engine.stats()).toMatchObject({ suspicionsRaised: 0, failedProbes: 0, probes: 0 })
    expect(driver.engine.awareness).toBe(0)
    expect(driver.outputs.some((o) => o._tag === "Count")).toBe(false)
    // nothing of it is left behind
    expect(driver.engine.footprint()).toMatchObject({ reaches: 0, waiters: 0, exchanges: 0, suspicions: 0 })
    expect(driver.timers.size).toBe(0)
  })

  it("a budget shorter than the ping timeout ends at the budget without going indirect", () => {
    const driver = knowing(4, false)
    driver.handle({ _tag: "Reach", request: 5, target: peerId(1), deadline: 200 })
    driver.runUntil(300)
    expect(driver.outputs.some((o) => o._tag === "Send" && o.packet.messages.some((m) => m instanceof PingReq))).toBe(
      false
    )
    expect(reached(driver.outputs)).toEqual([
      { _tag: "Reached", request: 5, target: peerId(1), route: "none", rtt: undefined, helpers: 0, nacks: 0 }
    ])
    expect(driver.now).toBe(300)
  })

  it("a member it does not hold is 'unknown' at once, and so is this node", () => {
    const driver = knowing(2)
    const outputs = driver.handle({ _tag: "Reach", request: 2, target: peerId(40), deadline: 1000 })
    expect(reached(outputs).map((r) => r.route)).toEqual(["unknown"])
    expect(sends(outputs)).toEqual([])
    const self = driver.handle({ _tag: "Reach", request: 3, target: driver.engine.localNode.id, deadline: 1000 })
    expect(reached(self).map((r) => r.route)).toEqual(["unknown"])
  })

  it("runs beside the probe round without touching it: the round's probe still ends in its own verdict", () => {
    const driver = knowing(3)
    driver.handle({ _tag: "Start" })
    check(driver, 1)
    // the regular round runs (its probes go unanswered, as nobody is there), and the check ends on its own
    driver.runUntil(1000)
    expect(reached(driver.outputs).map((r) => r.route)).toEqual(["none"])
    expect(driver.engine.stats().probes).toBeGreaterThan(0)
  })
})
