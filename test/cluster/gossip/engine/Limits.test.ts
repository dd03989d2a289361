/**
 * The bounds that hold without a keyring (`engine/Limits.ts`): a forged claim
 * is refused and counted, an honest one — however surprising — still applies.
 */
import { describe, expect, it } from "@effect/vitest"
import { MAX_INCARNATION_JUMP } from "../../../../src/cluster/gossip/engine/Limits.ts"
import { STRANGER_BURST } from "../../../../src/cluster/gossip/engine/Settings.ts"
import { Ack, MAX_INCARNATION, NodeStateUpdate, Ping } from "../../../../src/cluster/gossip/Messages.ts"
import { Address, type NodeState, type Tags } from "../../../../src/cluster/Node.ts"
import { Driver, defaultSettings, peerAddress, peerId, SELF_ID } from "./harness.ts"

const alive = (i: number, incarnation = 1, tags: Tags = {}) =>
  new NodeStateUpdate(
    { nodeId: peerId(i), state: "Alive", incarnation, name: `p${i}`, gossipAddress: peerAddress(i), tags },
    { disableChecks: true }
  )

const claim = (nodeId: string, state: NodeState, incarnation: number) =>
  new NodeStateUpdate(
    { nodeId: nodeId as NodeStateUpdate["nodeId"], state, incarnation, from: peerId(9) },
    { disableChecks: true }
  )

const deliver = (driver: Driver, updates: ReadonlyArray<NodeStateUpdate>) =>
  driver.handle({ _tag: "Datagram", from: peerAddress(0), payload: { messages: [], updates } })

const refused = (driver: Driver) => driver.engine.stats().updatesRefused

describe("Limits", () => {
  it("a forged Left about this node at the wire's ceiling is refused: the node neither leaves nor burns its incarnations", () => {
    const driver = new Driver({ seed: 1 })
    const before = driver.engine.localNode.incarnation
    deliver(driver, [claim(SELF_ID, "Left", MAX_INCARNATION)])
    expect(driver.engine.localNode.state).toBe("Alive")
    expect(driver.engine.localNode.incarnation).toBe(before)
    expect(refused(driver)).toBe(1)
  })

  it("a claim about this node just past the jump limit is refused; one within it is refuted above it", () => {
    const driver = new Driver({ seed: 2 })
    const known = driver.engine.localNode.incarnation
    deliver(driver, [claim(SELF_ID, "Suspect", known + MAX_INCARNATION_JUMP + 1)])
    expect(driver.engine.localNode.incarnation).toBe(known)
    expect(refused(driver)).toBe(1)

    deliver(driver, [claim(SELF_ID, "Suspect", known + 1)])
    expect(driver.engine.localNode.state).toBe("Alive")
    expect(driver.engine.localNode.incarnation).toBeGreaterThan(known + 1)
    expect(refused(driver)).toBe(1)
  })

  it("a forged Left about a known member 2000 incarnations ahead is refused; its own refutation-sized step applies", () => {
    const driver = new Driver({ seed: 3 })
    deliver(driver, [alive(1, 5)])
    deliver(driver, [claim(peerId(1), "Left", 5 + 2000)])
    expect(driver.engine.table.get(peerId(1))?.state).toBe("Alive")
    expect(refused(driver)).toBe(1)

    deliver(driver, [alive(1, 6, { zone: "b" })])
    expect(driver.engine.table.get(peerId(1))).toMatchObject({ state: "Alive", incarnation: 6, tags: { zone: "b" } })
    expect(refused(driver)).toBe(1)
  })

  it("members beyond maxMembers are refused, counted, and leave the table at the cap", () => {
    const driver = new Driver({ seed: 4, settings: defaultSettings({ maxMembers: 3 }) })
    deliver(driver, [alive(0), alive(1), alive(2), alive(3), alive(4)])
    // the table holds this node too: itself and two peers
    expect(driver.engine.table.size).toBe(3)
    expect(refused(driver)).toBe(3)
    // a known member's news still applies at the cap
    deliver(driver, [alive(0, 2, { zone: "a" })])
    expect(driver.engine.table.get(peerId(0))?.incarnation).toBe(2)
    expect(refused(driver)).toBe(3)
  })

  it("one datagram applies at most maxUpdatesPerPacket updates; the rest are refused and counted", () => {
    const driver = new Driver({ seed: 5 })
    const max = defaultSettings().maxUpdatesPerPacket
    deliver(
      driver,
      Array.from({ length: max + 5 }, (_, i) => alive(i))
    )
    // the first `max` are members now (the table holds this node too)
    expect(driver.engine.table.size).toBe(max + 1)
    expect(driver.engine.table.get(peerId(max - 1))?.state).toBe("Alive")
    expect(driver.engine.table.get(peerId(max))).toBeUndefined()
    expect(refused(driver)).toBe(5)
  })

  it("an announcement larger than a packet can carry is refused", () => {
    const driver = new Driver({ seed: 6 })
    deliver(driver, [alive(1, 1, { blob: "x".repeat(2000) })])
    expect(driver.engine.table.get(peerId(1))).toBeUndefined()
    expect(refused(driver)).toBe(1)
    deliver(driver, [alive(1, 1, { blob: "x".repeat(200) })])
    expect(driver.engine.table.get(peerId(1))?.state).toBe("Alive")
  })

  it("pings from strangers start at most STRANGER_BURST exchanges at once, then one per probe interval", () => {
    const driver = new Driver({ seed: 8 })
    const probeInterval = defaultSettings().probeInterval
    let stranger = 0
    /** `n` pings from strangers at distinct (attacker-chosen) addresses; the exchanges they started, each failed at once. */
    const strangersPing = (n: number) => {
      let opened = 0
      for (let i = 0; i < n; i++) {
        stranger++
        const from = new Address({ host: "10.9.0.1", port: 10_000 + stranger })
        const outputs = driver.handle({
          _tag: "Datagram",
          from,
          payload: {
            messages: [new Ping({ seq: stranger, from: peerId(100 + stranger), target: SELF_ID })],
            updates: []
          }
        })
        for (const output of outputs) {
          if (output._tag !== "OpenExchange") continue
          opened++
          driver.handle({ _tag: "ExchangeFailed", id: output.id, reason: "refused", timedOut: false })
        }
      }
      return opened
    }
    expect(strangersPing(20)).toBe(STRANGER_BURST)
    driver.advanceTo(probeInterval / 2)
    expect(strangersPing(20)).toBe(0)
    driver.advanceTo(probeInterval)
    expect(strangersPing(20)).toBe(1)
    driver.advanceTo(10 * probeInterval)
    expect(strangersPing(20)).toBe(STRANGER_BURST)
    expect(driver.engine.stats().exchangesDeferred).toBe(80 - 2 * STRANGER_BURST - 1)
  })

  it("members known only by hearsay take at most every other round: the member heard from is probed every few rounds", () => {
    const driver = new Driver({ seed: 9 })
    const probeInterval = defaultSettings().probeInterval
    // peer 0 pings us (heard from directly) and announces nine others we never hear from
    driver.handle({
      _tag: "Datagram",
      from: peerAddress(0),
      payload: {
        messages: [new Ping({ seq: 1, from: peerId(0), target: SELF_ID })],
        updates: Array.from({ length: 10 }, (_, i) => alive(i))
      }
    })
    driver.handle({ _tag: "Start" })
    const probedHeard: Array<number> = []
    driver.onStep = (outputs) => {
      for (const output of outputs) {
        if (output._tag !== "Send") continue
        for (const message of output.packet.messages) {
          if (message._tag !== "Ping" || message.target !== peerId(0)) continue
          probedHeard.push(driver.now)
          // peer 0 answers at once: it stays heard from and never suspected
          pendingAcks.push(message.seq)
        }
      }
    }
    const pendingAcks: Array<number> = []
    const rounds = 10
    for (let round = 0; round < rounds; round++) {
      driver.runUntil((round + 1) * probeInterval)
      for (const seq of pendingAcks.splice(0)) {
        driver.handle({
          _tag: "Datagram",
          from: peerAddress(0),
          payload: { messages: [new Ack({ seq, from: peerId(0) })], updates: [] }
        })
      }
    }
    // the round robin alone reaches it once in ten rounds; with the rule, about every third
    expect(probedHeard.length).toBeGreaterThanOrEqual(3)
  })
})
