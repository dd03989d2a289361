/**
 * The details of probing and dissemination that memberlist gets right and a
 * reading of shoal's engine found wrong (issue "failure detection on real
 * networks", §3): nack timing at a helper with a raised health score (R4),
 * awareness after an indirect or TCP success, who is asked to help, who is
 * reconnected to, whether a leaving node still answers, and gossip to the
 * recently dead. Each test spies on what a node sends, on the simulated
 * network under TestClock.
 */
import { assert, describe, expect, it } from "@effect/vitest"
import { Clock, Effect, Fiber, Random } from "effect"
import { TestClock } from "effect/testing"
import * as Codec from "../../../src/cluster/gossip/Codec.ts"
import { NodeStateUpdate, type Packet, Ping, PingReq } from "../../../src/cluster/gossip/Messages.ts"
import { SimNetwork } from "../../../src/cluster/gossip/SimNetwork.ts"
import type { Transport } from "../../../src/cluster/gossip/Transport.ts"
import { Address, type NodeId, type NodeState } from "../../../src/cluster/Node.ts"
import {
  addressOf,
  advanceUntil,
  allSee,
  crash,
  leave,
  runWithClock,
  type SimNode,
  startCluster,
  startNode,
  stopAll,
  viewOf
} from "./harness.ts"

const P = 1000

const sim = <A, E>(seed: number, effect: Effect.Effect<A, E, SimNetwork>) =>
  effect.pipe(Effect.provide(SimNetwork.layer), Random.withSeed(seed))

/** A transport that shows every datagram and exchange to `onSend` / `onExchange` before sending it. */
const spying =
  (onSend: (to: Address, packet: Packet | undefined) => void, onExchange: (to: Address) => void = () => {}) =>
  (transport: Transport["Service"]): Transport["Service"] => ({
    ...transport,
    send: (to, payload) =>
      Effect.suspend(() => {
        const decoded = Codec.decodePacketResult("shoal", payload)
        onSend(to, decoded._tag === "Success" ? decoded.success : undefined)
        return transport.send(to, payload)
      }),
    exchange: (to, request, options) =>
      Effect.suspend(() => {
        onExchange(to)
        return transport.exchange(to, request, options)
      })
  })

/** Makes `target` refute `times` accusations sent by a stranger: Lifeguard raises its health score by one each. */
const accuseRepeatedly = (target: SimNode, accuser: NodeId, times: number) =>
  Effect.gen(function* () {
    const network = yield* SimNetwork
    const rogue = yield* network.attach(new Address({ host: "10.9.9.8", port: 7946 }))
    for (let i = 0; i < times; i++) {
      const self = yield* target.cluster.localNode
      const update = new NodeStateUpdate(
        { nodeId: self.id, state: "Suspect", incarnation: self.incarnation, from: accuser },
        { disableChecks: true }
      )
      yield* rogue.send(target.address, Codec.encodePacket({ label: "shoal" }, { messages: [], updates: [update] }))
      yield* TestClock.adjust(10)
    }
  }).pipe(Effect.scoped)

describe("Lifeguard on the simulated network", () => {
  it.effect(
    "R4: a helper with a raised health score sends its nack inside the requestor's window",
    () =>
      sim(
        104,
        Effect.gen(function* () {
          const network = yield* SimNetwork
          const n0 = yield* startNode(0)
          const n1 = yield* startNode(1)
          const n2 = yield* startNode(2)
          const nodes = [n0, n1, n2]
          yield* advanceUntil(allSee(nodes, nodes, "Alive"), 10_000)
          yield* TestClock.adjust(30_000)
          const helper = yield* n1.cluster.localNode
          const requestor = (yield* n0.cluster.localNode).id
          // the target: a member the helper knows at its address, that no longer answers
          const silent = yield* n2.cluster.localNode
          yield* network.isolate(n2.address)
          const elapsed = yield* runWithClock(
            Effect.scoped(
              Effect.gen(function* () {
                const rogue = yield* network.attach(new Address({ host: "10.9.9.7", port: 7946 }))
                // One suspicion the helper has to refute (+1 health score, Lifeguard), and in the
                // same packet a ping-req for a target that does not answer.
                const accusation = new NodeStateUpdate(
                  { nodeId: helper.id, state: "Suspect", incarnation: helper.incarnation, from: requestor },
                  { disableChecks: true }
                )
                const req = new PingReq({
                  seq: 4242,
                  requestor,
                  target: silent.id,
                  targetAddress: silent.gossipAddress
                })
                const t0 = yield* Clock.currentTimeMillis
                yield* rogue.send(
                  n1.address,
                  Codec.encodePacket({ label: "shoal" }, { messages: [req], updates: [accusation] })
                )
                while (true) {
                  const packets = yield* rogue.receive
                  for (const p of packets) {
                    const d = Codec.decodePacketResult("shoal", p.payload)
                    if (d._tag === "Success" && d.success.messages.some((m) => m._tag === "Nack" && m.seq === 4242)) {
                      return (yield* Clock.currentTimeMillis) - t0
                    }
                  }
                }
              })
            ),
            5
          )
          expect((yield* n1.cluster.stats).refutations).toBe(1)
          // A healthy requestor counts nacks for probeInterval − pingTimeout = 500 ms after it sent
          // the ping-req. memberlist's helper nacks after the unscaled ProbeTimeout (net.go
          // handleIndirectPing); shoal's after 0.8 × pingTimeout = 400 ms, whatever its own score.
          expect(elapsed).toBeLessThan(500)
          yield* stopAll(nodes)
        })
      ),
    30_000
  )

  it.effect(
    "a ping-req is honoured only for a member known at the address it names: a stranger cannot make a node ping anywhere",
    () =>
      sim(
        116,
        Effect.gen(function* () {
          const network = yield* SimNetwork
          const pinged: Array<string> = []
          const n0 = yield* startNode(0)
          const n1 = yield* startNode(
            1,
            {},
            [0],
            spying((to, packet) => {
              if (packet?.messages.some((m) => m._tag === "Ping")) pinged.push(String(to))
            })
          )
          yield* advanceUntil(allSee([n0, n1], [n0, n1], "Alive"), 10_000)
          const requestor = (yield* n0.cluster.localNode).id
          const known = yield* n0.cluster.localNode
          yield* Effect.scoped(
            Effect.gen(function* () {
              const rogue = yield* network.attach(new Address({ host: "10.9.9.5", port: 7946 }))
              const requests = [
                // nobody n1 knows
                new PingReq({
                  seq: 1,
                  requestor,
                  target: "0b3f5a0e-2c4d-4e8f-9a1b-3c5d7e9f1a2b" as NodeId,
                  targetAddress: addressOf(200)
                }),
                // a member n1 knows, at another address
                new PingReq({ seq: 2, requestor, target: known.id, targetAddress: addressOf(201) })
              ]
              for (const req of requests) {
                yield* rogue.send(n1.address, Codec.encodePacket({ label: "shoal" }, { messages: [req], updates: [] }))
              }
              yield* TestClock.adjust(1_000)
            })
          )
          expect(pinged.filter((to) => to === String(addressOf(200)) || to === String(addressOf(201)))).toEqual([])
          expect((yield* n1.cluster.stats).updatesRefused).toBeGreaterThanOrEqual(2)
          yield* stopAll([n0, n1])
        })
      ),
    30_000
  )

  it.effect(
    "a probe answered over the TCP fallback lowers the prober's health score, as a direct ack does",
    () =>
      sim(
        111,
        Effect.gen(function* () {
          const network = yield* SimNetwork
          const nodes = yield* startCluster(4)
          yield* advanceUntil(allSee(nodes, nodes, "Alive"), 10_000)
          const n0 = nodes[0]!
          yield* accuseRepeatedly(n0, (yield* nodes[1]!.cluster.localNode).id, 3)
          expect((yield* n0.cluster.stats).awareness).toBe(3)
          // every datagram n0 sends is lost (pings, ping-reqs, acks); streams still work, so each
          // of its probes is answered over TCP — and nobody suspects it, their TCP pings work too
          for (const other of nodes.slice(1)) yield* network.setLink(n0.address, other.address, { loss: 1 })
          // a probe every (score + 1)·P: 4 + 3 + 2 + 1 s to come down from 3, twice for slack
          yield* TestClock.adjust(2 * 10 * P)
          const stats = yield* n0.cluster.stats
          expect(stats.streamPingAcks).toBeGreaterThan(0)
          expect(stats.awareness).toBe(0)
          yield* stopAll(nodes)
        })
      ),
    30_000
  )

  it.effect(
    "ping-req helpers are drawn from Alive members only, never from suspects",
    () =>
      sim(
        112,
        Effect.gen(function* () {
          const network = yield* SimNetwork
          const nodes: Array<SimNode> = []
          let observe: ((to: Address) => Effect.Effect<NodeState | undefined>) | undefined
          const asked: Array<Address> = []
          // suspicions that last (suspicionMult 30: at least 30 s), so n0 probes with a suspect in view
          const slow = { suspicionMult: 30 }
          nodes.push(
            yield* startNode(
              0,
              slow,
              [],
              spying((to, packet) => {
                if (packet?.messages.some((m) => m._tag === "PingReq")) asked.push(to)
              })
            )
          )
          for (let i = 1; i < 5; i++) nodes.push(yield* startNode(i, slow))
          yield* advanceUntil(allSee(nodes, nodes, "Alive"), 10_000)
          const n0 = nodes[0]!
          observe = (to) =>
            Effect.map(n0.cluster.members, (ms) => ms.find((m) => String(m.gossipAddress) === String(to))?.state)
          // two members vanish: while n0 suspects one, its probes of the other go indirect, and
          // the suspect must not be among the three helpers it asks (memberlist's rule)
          yield* network.isolate(nodes[3]!.address)
          yield* network.isolate(nodes[4]!.address)
          let askedSuspects = 0
          let askedAtAll = 0
          for (let t = 0; t < 30_000; t += 50) {
            const before = asked.length
            yield* TestClock.adjust(50)
            for (const to of asked.slice(before)) {
              askedAtAll++
              if ((yield* observe(to)) === "Suspect") askedSuspects++
            }
          }
          assert.isAbove(askedAtAll, 0, "no probe went indirect")
          expect(askedSuspects).toBe(0)
          yield* stopAll(nodes)
        })
      ),
    30_000
  )

  it.effect(
    "failed members are reconnected to; members that left are not",
    () =>
      sim(
        113,
        Effect.gen(function* () {
          const exchangedWith: Array<string> = []
          const n0 = yield* startNode(
            0,
            {},
            [],
            spying(
              () => {},
              (to) => exchangedWith.push(String(to))
            )
          )
          const rest: Array<SimNode> = []
          for (let i = 1; i < 4; i++) rest.push(yield* startNode(i))
          const nodes = [n0, ...rest]
          yield* advanceUntil(allSee(nodes, nodes, "Alive"), 10_000)
          const [gone, crashed] = [rest[1]!, rest[2]!]
          yield* leave(gone)
          yield* crash(crashed)
          yield* advanceUntil(
            Effect.zipWith(viewOf(n0, gone), viewOf(n0, crashed), (a, b) => a?.state === "Left" && b?.state === "Dead"),
            60_000
          )
          exchangedWith.length = 0
          // ten reconnect rounds (R = 10 s), each trying the one failed member with probability
          // failed / alive = 1 / 2
          yield* TestClock.adjust(100_000)
          expect(exchangedWith.filter((to) => to === String(gone.address))).toEqual([])
          expect(exchangedWith.filter((to) => to === String(crashed.address)).length).toBeGreaterThan(0)
          yield* stopAll([n0, rest[0]!])
        })
      ),
    60_000
  )

  it.effect(
    "a leaving node still answers pings until it stops (its Left rides on the acks)",
    () =>
      sim(
        114,
        Effect.gen(function* () {
          const network = yield* SimNetwork
          const nodes = yield* startCluster(3)
          yield* advanceUntil(allSee(nodes, nodes, "Alive"), 10_000)
          const leaver = nodes[2]!
          const id = (yield* leaver.cluster.localNode).id
          const acked = yield* Effect.scoped(
            Effect.gen(function* () {
              const rogue = yield* network.attach(new Address({ host: "10.9.9.9", port: 7946 }))
              const leaving = yield* Effect.forkChild(leaver.cluster.leave, { startImmediately: true })
              yield* TestClock.adjust(1)
              const state = (yield* leaver.cluster.localNode).state
              yield* rogue.send(
                leaver.address,
                Codec.encodePacket(
                  { label: "shoal" },
                  {
                    messages: [
                      new Ping({ seq: 77, from: "0b3f5a0e-2c4d-4e8f-9a1b-3c5d7e9f1a2b" as NodeId, target: id })
                    ],
                    updates: []
                  }
                )
              )
              yield* TestClock.adjust(10)
              const packets = yield* rogue.receive
              yield* runWithClock(Fiber.join(leaving))
              return {
                state,
                ack: packets.some((p) => {
                  const d = Codec.decodePacketResult("shoal", p.payload)
                  return d._tag === "Success" && d.success.messages.some((m) => m._tag === "Ack" && m.seq === 77)
                })
              }
            })
          )
          expect(acked.state).toBe("Left")
          expect(acked.ack).toBe(true)
          yield* stopAll(nodes)
        })
      ),
    30_000
  )

  it.effect(
    "gossip reaches the recently dead while plenty are alive (memberlist's fan-out over both)",
    () =>
      sim(
        115,
        Effect.gen(function* () {
          let deadAddress: string | undefined
          let gossipToTheDead = 0
          const n0 = yield* startNode(
            0,
            {},
            [],
            spying((to, packet) => {
              if (String(to) === deadAddress && packet !== undefined && packet.updates.length > 0) gossipToTheDead++
            })
          )
          const rest: Array<SimNode> = []
          for (let i = 1; i < 6; i++) rest.push(yield* startNode(i))
          const nodes = [n0, ...rest]
          yield* advanceUntil(allSee(nodes, nodes, "Alive"), 10_000)
          const victim = rest[4]!
          yield* crash(victim)
          yield* advanceUntil(
            Effect.map(viewOf(n0, victim), (v) => v?.state === "Dead"),
            60_000,
            10
          )
          deadAddress = String(victim.address)
          // four alive besides n0 (more than gossipNodes = 3); its Dead verdict and whatever else
          // is pending still go to the dead member too, within gossipToTheDeadTime
          yield* TestClock.adjust(5_000)
          expect(gossipToTheDead).toBeGreaterThan(0)
          yield* stopAll(nodes.slice(0, -1))
        })
      ),
    30_000
  )
})
