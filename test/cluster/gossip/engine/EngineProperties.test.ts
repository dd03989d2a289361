/**
 * The engine under random schedules of inputs (fast-check): datagrams from a
 * pool of peers carrying random messages and claims (about the peers and
 * about this node, at random states and incarnations, full or bare), garbage
 * bytes, stream requests, exchange answers, failures and deadlines, timers,
 * time, and the application's commands. After every step:
 *
 * - precedence is never violated: every change to the table is one
 *   `Rules.shouldApply` accepts (and a member back from its tombstone
 *   outranks it);
 * - no incarnation ever decreases, this node's included;
 * - every queued update is sent at most its retransmit limit;
 * - every timer is armed in the present or future, every exchange has a
 *   deadline.
 *
 * And once everything in flight has ended (all timers fired, exchanges
 * answered), the engine's memory is bounded by members + tombstones.
 */
import { describe, expect, it } from "@effect/vitest"
import * as fc from "fast-check"
import * as Codec from "../../../../src/cluster/gossip/Codec.ts"
import type { Input } from "../../../../src/cluster/gossip/engine/Input.ts"
import type { Output } from "../../../../src/cluster/gossip/engine/Output.ts"
import {
  Ack,
  type Message,
  Nack,
  NodeStateUpdate,
  Ping,
  PingReq,
  PushPull
} from "../../../../src/cluster/gossip/Messages.ts"
import type { ClusterNode, NodeId, NodeState } from "../../../../src/cluster/Node.ts"
import * as Rules from "../../../../src/cluster/Rules.ts"
import { Driver, peerAddress, peerId, SELF_ADDRESS, SELF_ID } from "./harness.ts"

const PEERS = 6
const STATES: ReadonlyArray<NodeState> = ["Alive", "Suspect", "Dead", "Left"]

/** A claim about peer `subject` (or this node, `subject` = -1). */
const updateArb = fc.record({
  subject: fc.integer({ min: -1, max: PEERS - 1 }),
  state: fc.constantFrom(...STATES),
  incarnation: fc.integer({ min: 0, max: 6 }),
  full: fc.boolean(),
  tag: fc.constantFrom("a", "b"),
  from: fc.integer({ min: 0, max: PEERS - 1 })
})
type UpdateSpec = typeof updateArb extends fc.Arbitrary<infer A> ? A : never

const toUpdate = (u: UpdateSpec): NodeStateUpdate => {
  const id = u.subject < 0 ? SELF_ID : peerId(u.subject)
  const address = u.subject < 0 ? SELF_ADDRESS : peerAddress(u.subject)
  return new NodeStateUpdate(
    {
      nodeId: id,
      state: u.state,
      incarnation: u.incarnation,
      ...(u.full || u.state === "Alive"
        ? { name: u.subject < 0 ? "self" : `p${u.subject}`, gossipAddress: address, tags: { v: u.tag } }
        : {}),
      ...(u.state === "Alive" ? {} : { from: peerId(u.from) })
    },
    { disableChecks: true }
  )
}

const messageArb = fc.oneof(
  fc.record({ kind: fc.constant("ping" as const), target: fc.integer({ min: -1, max: PEERS - 1 }) }),
  fc.record({ kind: fc.constant("ack" as const), recent: fc.nat(8), fromSubject: fc.boolean() }),
  fc.record({ kind: fc.constant("nack" as const), recent: fc.nat(8) }),
  fc.record({ kind: fc.constant("pingReq" as const), target: fc.integer({ min: 0, max: PEERS - 1 }) })
)

const stepArb = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant("datagram" as const),
      from: fc.integer({ min: 0, max: PEERS - 1 }),
      messages: fc.array(messageArb, { maxLength: 2 }),
      updates: fc.array(updateArb, { maxLength: 4 })
    })
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant("garbage" as const), bytes: fc.uint8Array({ maxLength: 40 }) })
  },
  { weight: 5, arbitrary: fc.record({ kind: fc.constant("advance" as const), ms: fc.integer({ min: 0, max: 3000 }) }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("timer" as const) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("answer" as const),
      outcome: fc.constantFrom("pushPull", "ack", "fail", "timeout"),
      nodes: fc.array(updateArb, { maxLength: 5 })
    })
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("stream" as const),
      from: fc.integer({ min: 0, max: PEERS - 1 }),
      nodes: fc.option(fc.array(updateArb, { maxLength: 5 }), { nil: undefined })
    })
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("command" as const),
      command: fc.constantFrom("setTags", "join", "leave", "stop", "start")
    })
  }
)

type MessageSpec = typeof messageArb extends fc.Arbitrary<infer A> ? A : never

const toMessage = (m: MessageSpec, sender: number, recentSeq: (back: number) => number): Message => {
  const from = peerId(sender)
  switch (m.kind) {
    case "ping":
      return new Ping({ seq: 1000 + sender, from, target: m.target < 0 ? SELF_ID : peerId(m.target) })
    case "ack":
      return new Ack({ seq: recentSeq(m.recent), from: m.fromSubject ? from : peerId((sender + 1) % PEERS) })
    case "nack":
      return new Nack({ seq: recentSeq(m.recent), from })
    case "pingReq":
      return new PingReq({
        seq: 2000 + sender,
        requestor: from,
        target: peerId(m.target),
        targetAddress: peerAddress(m.target)
      })
  }
}

/** Turns a generated step into an input for `driver` (some steps only move the clock or fire a timer). */
const inputFor = (
  driver: Driver,
  step: typeof stepArb extends fc.Arbitrary<infer A> ? A : never
): Input | undefined => {
  const recentSeq = (back: number) => driver.pingSeqs[driver.pingSeqs.length - 1 - back] ?? back
  switch (step.kind) {
    case "datagram": {
      const messages: Array<Message> = step.messages.map((m) => toMessage(m, step.from, recentSeq))
      return {
        _tag: "Datagram",
        from: peerAddress(step.from),
        payload: { messages, updates: step.updates.map(toUpdate) }
      }
    }
    case "garbage":
      return { _tag: "Datagram", from: peerAddress(0), payload: step.bytes }
    case "advance":
      driver.advanceTo(driver.now + step.ms)
      return undefined
    case "timer":
      driver.fireNext()
      return undefined
    case "answer": {
      const open = driver.exchanges.values().next()
      if (open.done) return undefined
      const exchange = open.value
      driver.exchanges.delete(exchange.id)
      if (step.outcome === "timeout") {
        driver.advanceTo(exchange.deadline)
        return { _tag: "ExchangeFailed", id: exchange.id, reason: "exchange timed out", timedOut: true }
      }
      if (step.outcome === "fail")
        return { _tag: "ExchangeFailed", id: exchange.id, reason: "refused", timedOut: false }
      if (step.outcome === "ack" && !(exchange.request instanceof PushPull)) {
        const ping = exchange.request.messages.find((m) => m._tag === "Ping")
        return {
          _tag: "ExchangeAnswered",
          id: exchange.id,
          payload: { messages: [new Ack({ seq: ping?.seq ?? 0, from: peerId(0) })], updates: [] }
        }
      }
      return {
        _tag: "ExchangeAnswered",
        id: exchange.id,
        payload: new PushPull({ from: peerId(0), join: false, nodes: step.nodes.map(toUpdate) })
      }
    }
    case "stream":
      return {
        _tag: "StreamRequest",
        request: 1,
        from: peerAddress(step.from),
        payload:
          step.nodes === undefined
            ? { messages: [new Ping({ seq: 7, from: peerId(step.from), target: SELF_ID })], updates: [] }
            : new PushPull({ from: peerId(step.from), join: true, nodes: step.nodes.map(toUpdate) })
      }
    case "command":
      switch (step.command) {
        case "setTags":
          return { _tag: "SetTags", tags: { t: String(driver.now) } }
        case "join":
          return {
            _tag: "Join",
            ticket: 1,
            seeds: [{ seed: "p0", addresses: [peerAddress(0), peerAddress(1)] }],
            deadline: driver.now + 10_000
          }
        case "leave":
          return { _tag: "Leave", ticket: 2 }
        case "stop":
          return { _tag: "Stop" }
        case "start":
          return { _tag: "Start" }
      }
  }
}

/** Checks the per-step invariants on every step's outputs; returns what it saw, for the final checks. */
const watch = (driver: Driver) => {
  const incarnations = new Map<NodeId, number>()
  const tombstones = new Map<NodeId, ClusterNode>()
  const sent = new Map<NodeStateUpdate, number>()
  // the largest retransmit limit any select could use, retransmitMult × ⌈log10(N + 1)⌉ with every peer and
  // this node alive (computed here, not by the module under test)
  const limit = 4 * Math.ceil(Math.log10(PEERS + 1 + 1))
  let selfIncarnation = driver.engine.localNode.incarnation
  driver.onStep = (outputs: ReadonlyArray<Output>) => {
    for (const output of outputs) {
      switch (output._tag) {
        case "MembershipChanged": {
          const change = output.change
          if (change._tag === "Reaped") {
            tombstones.set(change.node.id, change.node)
            break
          }
          const { previous, current } = change
          if (previous !== undefined) {
            expect(
              Rules.shouldApply(previous, current),
              `${previous.state}@${previous.incarnation} → ${current.state}@${current.incarnation}`
            ).toBe(true)
          } else {
            expect(current.state).toBe("Alive")
            const tombstone = tombstones.get(current.id)
            if (tombstone !== undefined) expect(Rules.supersedes(current, tombstone)).toBe(true)
            tombstones.delete(current.id)
          }
          const before = incarnations.get(current.id) ?? -1
          expect(current.incarnation).toBeGreaterThanOrEqual(before)
          incarnations.set(current.id, current.incarnation)
          break
        }
        case "Send":
          for (const update of output.packet.updates) {
            const count = (sent.get(update) ?? 0) + 1
            sent.set(update, count)
            expect(count, `update about ${update.nodeId} sent ${count} times`).toBeLessThanOrEqual(limit)
          }
          expect(Codec.packCompound("shoal", output.packet.messages, output.packet.updates, 1400).included).toBe(
            output.packet.updates.length
          )
          break
        case "SetTimer":
          expect(output.at).toBeGreaterThanOrEqual(driver.now)
          break
        case "OpenExchange":
          expect(Number.isFinite(output.deadline)).toBe(true)
          expect(output.deadline).toBeGreaterThanOrEqual(driver.now)
          break
      }
    }
    const self = driver.engine.localNode.incarnation
    expect(self).toBeGreaterThanOrEqual(selfIncarnation)
    selfIncarnation = self
  }
}

describe("the engine under random schedules", () => {
  it("keeps precedence, incarnations, retransmit limits and deadlines at every step", () => {
    fc.assert(
      fc.property(fc.integer(), fc.array(stepArb, { minLength: 1, maxLength: 150 }), (seed, steps) => {
        const driver = new Driver({ seed })
        watch(driver)
        driver.handle({ _tag: "Start" })
        for (const step of steps) {
          const input = inputFor(driver, step)
          if (input !== undefined) driver.handle(input)
        }
      }),
      { numRuns: 300 }
    )
  })

  it("holds memory bounded by members + tombstones once everything in flight has ended", () => {
    fc.assert(
      fc.property(fc.integer(), fc.array(stepArb, { minLength: 1, maxLength: 150 }), (seed, steps) => {
        const driver = new Driver({ seed })
        driver.handle({ _tag: "Start" })
        for (const step of steps) {
          const input = inputFor(driver, step)
          if (input !== undefined) driver.handle(input)
        }
        // end everything in flight: exchanges fail at their deadlines, then the rounds stop and every timer fires
        for (const exchange of Array.from(driver.exchanges.values())) {
          driver.exchanges.delete(exchange.id)
          driver.advanceTo(exchange.deadline)
          driver.handle({ _tag: "ExchangeFailed", id: exchange.id, reason: "exchange timed out", timedOut: true })
        }
        driver.handle({ _tag: "Stop" })
        for (let fired = 0; fired < 10_000 && driver.fireNext(); fired++) {
          for (const exchange of Array.from(driver.exchanges.values())) {
            driver.exchanges.delete(exchange.id)
            driver.handle({ _tag: "ExchangeFailed", id: exchange.id, reason: "refused", timedOut: false })
          }
        }
        expect(driver.timers.size).toBe(0)
        const f = driver.engine.footprint()
        const bound = f.members! + f.tombstones!
        for (const key of [
          "live",
          "alive",
          "recentlyDead",
          "probeOrder",
          "addresses",
          "downSince",
          "detectors",
          "suspicions",
          "lastProbed",
          "broadcasts",
          "reconnectTargets",
          "lastRevived"
        ]) {
          expect(f[key], key).toBeLessThanOrEqual(bound)
        }
        // nothing in flight is left behind
        expect(f.waiters).toBe(0)
        expect(f.exchanges).toBe(0)
        expect(f.exchanging).toBe(0)
        expect(f.joins).toBe(0)
        expect(f.resolving).toBe(0)
        expect(f.leaveTickets).toBe(0)
        expect(f.members).toBeLessThanOrEqual(PEERS + 1)
      }),
      { numRuns: 200 }
    )
  })
})
