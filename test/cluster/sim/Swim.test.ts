/**
 * Whole clusters on the in-memory network under TestClock and a seeded
 * Random: every run replays exactly. Each time bound is derived from the
 * protocol parameters (the defaults: probeInterval P = 1 s, gossipInterval
 * G = 200 ms, suspicionMult 4, suspicionMaxTimeoutMult 6, retransmitMult 4,
 * at most 10 updates per packet, gossipNodes 3); the derivation sits beside
 * each assertion.
 */
import { assert, describe, expect, it } from "@effect/vitest"
import { Effect, Random } from "effect"
import { TestClock } from "effect/testing"
import * as Codec from "../../../src/cluster/gossip/Codec.ts"
import { NodeStateUpdate, Ping } from "../../../src/cluster/gossip/Messages.ts"
import { SimNetwork } from "../../../src/cluster/gossip/SimNetwork.ts"
import { Address } from "../../../src/cluster/Node.ts"
import {
  advanceUntil,
  allSee,
  anySees,
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
const G = 200
const log10 = (n: number) => Math.log10(n)
/** Retransmissions of one update: retransmitMult × ⌈log10(N + 1)⌉. */
const retransmits = (n: number) => 4 * Math.ceil(log10(n + 1))
/** Lifeguard's longest suspicion: suspicionMaxTimeoutMult × suspicionMult × max(1, log10 N) × P. */
const maxSuspicion = (n: number) => 6 * 4 * Math.max(1, log10(n)) * P

/** How many (observer, member) pairs are `Dead`, over all nodes. */
const deadViews = (nodes: ReadonlyArray<SimNode>) =>
  Effect.gen(function* () {
    let dead = 0
    for (const node of nodes) {
      for (const member of yield* node.cluster.members) if (member.state === "Dead") dead++
    }
    return dead
  })

/** One engine counter summed over `nodes`. */
const totalOf = (nodes: ReadonlyArray<SimNode>, counter: "suspicionsRaised" | "refutations" | "streamPingAcks") =>
  Effect.gen(function* () {
    let total = 0
    for (const node of nodes) total += (yield* node.cluster.stats)[counter]
    return total
  })

/** Advances `totalMillis` in `stepMillis` steps, returning the largest number of dead views seen. */
const watchForDeaths = (nodes: ReadonlyArray<SimNode>, totalMillis: number, stepMillis: number) =>
  Effect.gen(function* () {
    let worst = 0
    for (let t = 0; t < totalMillis; t += stepMillis) {
      yield* TestClock.adjust(stepMillis)
      worst = Math.max(worst, yield* deadViews(nodes))
    }
    return worst
  })

const sim = <A, E>(seed: number, effect: Effect.Effect<A, E, SimNetwork>) =>
  effect.pipe(Effect.provide(SimNetwork.layer), Random.withSeed(seed))

describe("SWIM on the simulated network", () => {
  it.effect("3 nodes form a cluster", () =>
    sim(
      1,
      Effect.gen(function* () {
        const nodes = yield* startCluster(3)
        // Joining is a push-pull with node 0, so node 2 knows everyone at once; node 1 learns
        // of node 2 from node 0's gossip: one gossip round (G) is enough, two leave slack.
        const took = yield* advanceUntil(allSee(nodes, nodes, "Alive"), 2 * G, 10)
        assert.isDefined(took)
        yield* stopAll(nodes)
      })
    )
  )

  it.effect(
    "50 nodes converge: every node sees all 50 alive",
    () =>
      sim(
        2,
        Effect.gen(function* () {
          const n = 50
          const nodes = yield* startCluster(n)
          // Each of the n announcements is retransmitted L = 4·⌈log10 51⌉ = 8 times by every node
          // that learns it; a node sends at most gossipNodes · 10 = 30 updates per gossip round,
          // so draining n · L updates takes n·L/30 ≈ 13.3 rounds ≈ 2.7 s; epidemic depth adds
          // ⌈log2 n⌉ ≈ 6 rounds (1.2 s). Bound: twice their sum.
          const bound = 2 * ((n * retransmits(n)) / 30 + Math.ceil(Math.log2(n))) * G
          const took = yield* advanceUntil(allSee(nodes, nodes, "Alive"), bound)
          assert.isDefined(took, `not converged within ${bound} ms`)
          yield* stopAll(nodes)
        })
      ),
    60_000
  )

  it.effect(
    "a crashed node is Failed at every other node",
    () =>
      sim(
        3,
        Effect.gen(function* () {
          const n = 8
          const nodes = yield* startCluster(n)
          yield* advanceUntil(allSee(nodes, nodes, "Alive"), 10_000)
          const victim = nodes[5]!
          yield* crash(victim)
          const rest = nodes.filter((node) => node !== victim)
          // Some survivor probes the victim within one round-robin pass ((n−1)·P), the probe
          // itself takes ≤ P, the suspicion runs out within maxSuspicion(n), and the Dead
          // update reaches everyone within its L retransmissions (L·G each way, twice for slack).
          const bound = (n - 1) * P + P + maxSuspicion(n) + 2 * retransmits(n) * G
          const first = yield* advanceUntil(anySees(rest, victim, "Dead"), bound, 10)
          assert.isDefined(first, `not detected within ${bound} ms`)
          // Once one member declares it dead the others hear it by gossip, not from their own
          // timers: within the Dead update's L retransmissions (L·G) plus one gossip round.
          const spread = yield* advanceUntil(allSee(rest, [victim], "Dead"), (retransmits(n) + 1) * G, 10)
          assert.isDefined(spread, "the Dead verdict did not spread by gossip")
          // The helpers' nacks reached every prober in time: a dead member is not taken as a sign
          // of the prober's own bad health (Lifeguard), so nobody's probe interval is stretched.
          for (const node of rest) expect((yield* node.cluster.stats).awareness).toBe(0)
          // …and nobody else was taken for dead on the way.
          for (const observer of rest) {
            for (const subject of rest) expect((yield* viewOf(observer, subject))?.state).toBe("Alive")
          }
          yield* stopAll(rest)
        })
      ),
    60_000
  )

  it.effect(
    "suspicionConfirmations: a shorter floor that still waits for independent accusers",
    () =>
      Effect.gen(function* () {
        const n = 8
        /** From the crash: when some survivor first holds the victim Suspect, and first Dead. */
        const crashTimeline = (suspicionConfirmations: number) =>
          Effect.gen(function* () {
            const nodes = yield* startCluster(n, { suspicionMult: 2, suspicionConfirmations })
            yield* advanceUntil(allSee(nodes, nodes, "Alive"), 10_000)
            const victim = nodes[3]!
            const rest = nodes.filter((node) => node !== victim)
            yield* crash(victim)
            // Some survivor probes it within one pass ((n − 1)·P) and the probe takes ≤ P.
            const suspected = yield* advanceUntil(anySees(rest, victim, "Suspect"), n * P, 10)
            const dead = yield* advanceUntil(anySees(rest, victim, "Dead"), 12 * P, 10)
            yield* stopAll(rest)
            assert.isDefined(suspected, "never suspected")
            assert.isDefined(dead, "never declared dead")
            return dead
          })
        // min = 2 × P = 2 s and max = 6 × min = 12 s. With k = 2 one confirmation gives
        // 12 − 10 × ln 2 / ln 3 ≈ 5.69 s and only both give 2 s; each holder of the suspicion
        // probes the suspect out of turn (at most every other round), so both come in time.
        // Each on a fresh network with the same seed, so the runs differ only in k.
        const two = yield* sim(11, crashTimeline(2))
        expect(two).toBeGreaterThanOrEqual(2 * P)
        expect(two).toBeLessThan(5690)
        // k = 0: the first accuser alone decides, exactly min after its suspicion began.
        const none = yield* sim(11, crashTimeline(0))
        expect(none).toBeGreaterThanOrEqual(2 * P)
        expect(none).toBeLessThanOrEqual(2 * P + 10)
        // k = 6 (every other survivor): until the sixth confirmation the timeout is at least
        // 12 − 10 × ln 6 / ln 7 ≈ 2.79 s, so the same crash takes longer to call.
        const six = yield* sim(11, crashTimeline(6))
        expect(six).toBeGreaterThan(none)
      }),
    60_000
  )

  it.effect(
    "a node that leaves is Left everywhere, never Failed",
    () =>
      sim(
        4,
        Effect.gen(function* () {
          const nodes = yield* startCluster(6)
          yield* advanceUntil(allSee(nodes, nodes, "Alive"), 10_000)
          const leaver = nodes[2]!
          const rest = nodes.filter((node) => node !== leaver)
          // Leaving waits (at most leaveTimeout) until its Left went out, so by then every
          // member has it or gets it within its retransmissions: L·G.
          yield* leave(leaver)
          const took = yield* advanceUntil(allSee(rest, [leaver], "Left"), retransmits(6) * G, 10)
          assert.isDefined(took)
          // Longer than any suspicion could run: still Left, not Dead.
          yield* TestClock.adjust(maxSuspicion(6) + 10 * P)
          expect(yield* allSee(rest, [leaver], "Left")).toBe(true)
          yield* stopAll(rest)
        })
      ),
    60_000
  )

  it.effect(
    "20 nodes, 10% loss on every link for 10 minutes, UDP only: suspicions are refuted, nobody is declared Failed",
    () =>
      sim(
        5,
        Effect.gen(function* () {
          const network = yield* SimNetwork
          // Without the TCP fallback every failed UDP probe ends in a suspicion: Lifeguard alone.
          const nodes = yield* startCluster(20, { tcpPings: false })
          yield* advanceUntil(allSee(nodes, nodes, "Alive"), 10_000)
          yield* network.setDefaults({ latency: "1 millis", loss: 0.1 })
          const worst = yield* watchForDeaths(nodes, 10 * 60 * 1000, 5000)
          expect(worst).toBe(0)
          // The loss was real: probes failed and members were suspected, and refuted.
          expect(yield* totalOf(nodes, "suspicionsRaised")).toBeGreaterThan(0)
          expect(yield* totalOf(nodes, "refutations")).toBeGreaterThan(0)
          yield* network.setDefaults({ loss: 0 })
          yield* stopAll(nodes)
        })
      ),
    120_000
  )

  it.effect(
    "with the TCP fallback, 10% datagram loss does not even raise suspicions",
    () =>
      sim(
        15,
        Effect.gen(function* () {
          const network = yield* SimNetwork
          const nodes = yield* startCluster(20)
          yield* advanceUntil(allSee(nodes, nodes, "Alive"), 10_000)
          yield* network.setDefaults({ latency: "1 millis", loss: 0.1 })
          // A probe fails over UDP only if the ping or its ack, and every helper's path, is lost;
          // the stream ping made at the same time is not lossy, so it answers instead.
          const worst = yield* watchForDeaths(nodes, 5 * 60 * 1000, 5000)
          expect(worst).toBe(0)
          expect(yield* totalOf(nodes, "suspicionsRaised")).toBe(0)
          expect(yield* totalOf(nodes, "streamPingAcks")).toBeGreaterThan(0)
          yield* network.setDefaults({ loss: 0 })
          yield* stopAll(nodes)
        })
      ),
    120_000
  )

  it.effect(
    "a node whose replies arrive after the probe gets suspected, refutes, and never fails",
    () =>
      sim(
        6,
        Effect.gen(function* () {
          const network = yield* SimNetwork
          const nodes = yield* startCluster(5)
          yield* advanceUntil(allSee(nodes, nodes, "Alive"), 10_000)
          const slow = nodes[2]!
          // 1.2 s > P: its acks miss both the ping timeout and the indirect window.
          yield* network.setNode(slow.address, { sendDelay: "1200 millis" })
          const worst = yield* watchForDeaths(nodes, 120_000, 1000)
          expect(worst).toBe(0)
          const stats = yield* slow.cluster.stats
          expect(stats.refutations).toBeGreaterThan(0)
          expect((yield* slow.cluster.localNode).incarnation).toBeGreaterThan(1)
          yield* network.clearNode(slow.address)
          yield* stopAll(nodes)
        })
      ),
    60_000
  )

  it.effect(
    "a 3 | 3 partition: each side declares the other Failed, and after healing all see 6 alive",
    () =>
      sim(
        7,
        Effect.gen(function* () {
          const network = yield* SimNetwork
          const nodes = yield* startCluster(6)
          yield* advanceUntil(allSee(nodes, nodes, "Alive"), 10_000)
          const [a, b] = [nodes.slice(0, 3), nodes.slice(3)]
          yield* network.partition([a.map((node) => node.address), b.map((node) => node.address)])
          // In a partition every probe across it fails and the unreachable helpers send no
          // nacks, so Lifeguard stretches the probe interval up to ×8 (awarenessMaxMultiplier):
          // a pass of the 5 others takes ≤ 5·8·P, the probe ≤ 8·P, then maxSuspicion(6) and
          // the Dead update's L·G.
          const splitBound = 5 * 8 * P + 8 * P + maxSuspicion(6) + 2 * retransmits(6) * G
          const split = yield* advanceUntil(
            Effect.zipWith(allSee(a, b, "Dead"), allSee(b, a, "Dead"), (x, y) => x && y),
            splitBound
          )
          assert.isDefined(split, `sides did not fail each other within ${splitBound} ms`)
          yield* network.heal
          // Every reconnectInterval (10 s) each node push-pulls with a member it thinks dead;
          // the exchange shows the other side it was declared dead, it refutes, and the Alive
          // spreads in L·G. Twice the interval covers an unlucky first pick.
          const healBound = 2 * 10_000 + 2 * retransmits(6) * G
          const healed = yield* advanceUntil(allSee(nodes, nodes, "Alive"), healBound)
          assert.isDefined(healed, `not healed within ${healBound} ms`)
          yield* stopAll(nodes)
        })
      ),
    60_000
  )
})

describe("probing and joining at scale", () => {
  it.effect(
    "a burst of 25 joins converges within the follow-up push-pull, not the push-pull interval",
    () =>
      // Seed 25 missed a pair for 27 s before the follow-up push-pull existed.
      sim(
        25,
        Effect.gen(function* () {
          const n = 25
          const nodes = yield* startCluster(n)
          // Joins land 5 ms apart, so gossip alone can miss a few (member, newcomer) pairs; each
          // node's follow-up push-pull 10·G after its join repairs them: 10·G + L·G, twice for slack.
          const bound = 2 * (10 + retransmits(n)) * G
          const took = yield* advanceUntil(allSee(nodes, nodes, "Alive"), bound)
          assert.isDefined(took, `not converged within ${bound} ms`)
          yield* stopAll(nodes)
        })
      ),
    60_000
  )

  it.effect(
    "a newcomer probes every member within two passes, whatever phi says",
    () =>
      // Seed 1 left members unprobed for over a minute when phi alone chose the order.
      sim(
        1,
        Effect.gen(function* () {
          const n = 25
          const nodes = yield* startCluster(n - 1)
          const pinged = new Set<string>()
          const newcomer = yield* startNode(n - 1, {}, [0], (transport) => ({
            ...transport,
            send: (to, payload) =>
              Effect.suspend(() => {
                const packet = Codec.decodePacketResult("shoal", payload)
                if (packet._tag === "Success" && packet.success.messages.some((m) => m._tag === "Ping")) {
                  pinged.add(String(to))
                }
                return transport.send(to, payload)
              })
          }))
          // A fresh node hears from most members rarely, so its phi is above the threshold for
          // many of them; out-of-turn probes may take every other round, so the round-robin
          // still covers all n − 1 members within 2·(n − 1)·P.
          yield* TestClock.adjust(2 * (n - 1) * P)
          const others = nodes.map((node) => String(node.address))
          expect(others.filter((address) => !pinged.has(address))).toEqual([])
          yield* stopAll([...nodes, newcomer])
        })
      ),
    60_000
  )
})

describe("dissemination limits", () => {
  it.effect(
    "packets carry at most 10 updates within maxPacketSize, and each update is sent exactly L times",
    () =>
      sim(
        8,
        Effect.gen(function* () {
          const sent: Array<Uint8Array> = []
          const n = 10
          const spy = yield* startNode(0, { tags: { zone: "a" } }, [], (transport) => ({
            ...transport,
            send: (to, payload) =>
              Effect.suspend(() => {
                sent.push(payload.slice())
                return transport.send(to, payload)
              })
          }))
          const others: Array<SimNode> = []
          for (let i = 1; i < n; i++) others.push(yield* startNode(i, { tags: { zone: "b", rack: `r${i}` } }))
          const nodes = [spy, ...others]
          yield* advanceUntil(allSee(nodes, nodes, "Alive"), 10_000)
          yield* TestClock.adjust(10 * P)
          // A fresh update from the spy: its new tags at a new incarnation.
          const before = sent.length
          const updated = yield* spy.cluster.setTags({ zone: "c" })
          yield* TestClock.adjust(30 * P)
          let carried = 0
          for (const bytes of sent) {
            expect(bytes.length).toBeLessThanOrEqual(1400)
            const packet = Codec.decodePacketResult("shoal", bytes)
            assert.isTrue(packet._tag === "Success")
            if (packet._tag !== "Success") continue
            expect(packet.success.updates.length).toBeLessThanOrEqual(10)
          }
          for (const bytes of sent.slice(before)) {
            const packet = Codec.decodePacketResult("shoal", bytes)
            if (packet._tag !== "Success") continue
            carried += packet.success.updates.filter(
              (u: NodeStateUpdate) => u.nodeId === updated.id && u.incarnation === updated.incarnation
            ).length
          }
          // retransmitMult × ⌈log10(N + 1)⌉ = 4 × ⌈log10 11⌉ = 8.
          expect(carried).toBe(retransmits(n))
          yield* stopAll(nodes)
        })
      ),
    60_000
  )

  it.effect(
    "updates with an older incarnation are ignored, and old accusations are not refuted",
    () =>
      sim(
        9,
        Effect.gen(function* () {
          const network = yield* SimNetwork
          const nodes = yield* startCluster(3)
          yield* advanceUntil(allSee(nodes, nodes, "Alive"), 10_000)
          const [a, b] = [nodes[0]!, nodes[1]!]
          const bNow = yield* b.cluster.localNode
          const aNow = yield* a.cluster.localNode
          expect(bNow.incarnation).toBeGreaterThan(0)
          // A stranger injects stale news into node a.
          const injected = yield* runWithClock(
            Effect.scoped(
              Effect.gen(function* () {
                const rogue = yield* network.attach(new Address({ host: "10.9.9.9", port: 7946 }))
                const stale = (nodeId: typeof bNow.id, state: "Dead" | "Suspect", incarnation: number) =>
                  new NodeStateUpdate({ nodeId, state, incarnation }, { disableChecks: true })
                const bytes = Codec.encodePacket(
                  { label: "shoal" },
                  {
                    messages: [],
                    updates: [
                      stale(bNow.id, "Dead", bNow.incarnation - 1),
                      stale(aNow.id, "Suspect", aNow.incarnation - 1),
                      NodeStateUpdate.fromNode(
                        bNow.with({ tags: { forged: "yes" }, incarnation: bNow.incarnation - 1 })
                      )
                    ]
                  }
                )
                yield* rogue.send(a.address, bytes)
                return bytes.length
              })
            )
          )
          expect(injected).toBeGreaterThan(0)
          yield* TestClock.adjust(5 * P)
          const view = yield* viewOf(a, b)
          expect(view?.state).toBe("Alive")
          expect(view?.incarnation).toBe(bNow.incarnation)
          expect(view?.tags.forged).toBeUndefined()
          expect((yield* a.cluster.stats).refutations).toBe(0)
          expect((yield* a.cluster.localNode).incarnation).toBe(aNow.incarnation)
          yield* stopAll(nodes)
        })
      ),
    30_000
  )

  it.effect(
    "a ping still carrying an old accusation is answered with the member's current Alive",
    () =>
      sim(
        16,
        Effect.gen(function* () {
          const network = yield* SimNetwork
          const nodes = yield* startCluster(3)
          yield* advanceUntil(allSee(nodes, nodes, "Alive"), 10_000)
          yield* TestClock.adjust(30 * P) // let every pending announcement finish its retransmissions
          const a = nodes[0]!
          const aNow = yield* a.cluster.localNode
          const bId = (yield* nodes[1]!.cluster.localNode).id
          // A member that missed a's last refutation pings it with the suspicion it still holds
          // (Lifeguard's buddy system): the accusation is older than a's incarnation.
          const reply = yield* runWithClock(
            Effect.scoped(
              Effect.gen(function* () {
                const laggard = yield* network.attach(new Address({ host: "10.9.9.8", port: 7946 }))
                const stale = new NodeStateUpdate(
                  { nodeId: aNow.id, state: "Suspect", incarnation: aNow.incarnation - 1, from: bId },
                  { disableChecks: true }
                )
                yield* laggard.send(
                  a.address,
                  Codec.encodePacket(
                    { label: "shoal" },
                    { messages: [new Ping({ seq: 7, from: bId, target: aNow.id })], updates: [stale] }
                  )
                )
                const [packet] = yield* laggard.receive
                return Codec.decodePacketResult("shoal", packet.payload)
              })
            )
          )
          assert.isTrue(reply._tag === "Success")
          if (reply._tag !== "Success") return
          expect(reply.success.messages.map((m) => m._tag)).toEqual(["Ack"])
          const announcement = reply.success.updates.find((u) => u.nodeId === aNow.id)
          expect(announcement?.state).toBe("Alive")
          expect(announcement?.incarnation).toBe(aNow.incarnation)
          // …without a new incarnation: nothing new was refuted.
          expect((yield* a.cluster.localNode).incarnation).toBe(aNow.incarnation)
          yield* stopAll(nodes)
        })
      ),
    30_000
  )
})
