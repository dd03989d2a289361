/**
 * What real networks do, on the simulated one: partitions short and longer
 * than the reap time, a blackholed host (its connects hang until their
 * deadline), a one-way cut, a flapping link and a paused process — at N = 6
 * and N = 50, defaults throughout. Each time bound is derived beside its
 * assertion from the protocol parameters (P = probeInterval 1 s, G =
 * gossipInterval 200 ms, R = reconnectInterval 10 s, gossipToTheDeadTime 30 s,
 * suspicionMult 4, suspicionMaxTimeoutMult 6, retransmitMult 4).
 */
import { assert, describe, expect, it } from "@effect/vitest"
import { Effect, Random } from "effect"
import { TestClock } from "effect/testing"
import { SimNetwork } from "../../../src/cluster/gossip/SimNetwork.ts"
import type { NodeState } from "../../../src/cluster/Node.ts"
import { advanceUntil, allSee, type SimNode, startCluster, stopAll, viewOf } from "./harness.ts"

const P = 1000
const G = 200
const R = 10_000
/** Retransmissions of one update: retransmitMult × ⌈log10(N + 1)⌉. */
const retransmits = (n: number) => 4 * Math.ceil(Math.log10(n + 1))
/** Lifeguard's longest suspicion: suspicionMaxTimeoutMult × suspicionMult × max(1, log10 N) × P. */
const maxSuspicion = (n: number) => 6 * 4 * Math.max(1, Math.log10(n)) * P
/** Gossip reaches everyone within its L retransmissions, each a gossip round apart (twice for slack). */
const spread = (n: number) => 2 * retransmits(n) * G

const sim = <A, E>(seed: number, effect: Effect.Effect<A, E, SimNetwork>) =>
  effect.pipe(Effect.provide(SimNetwork.layer), Random.withSeed(seed))

/** How many (observer, subject) pairs among `pairs` are currently seen in a state other than Alive. */
const notAlive = (pairs: ReadonlyArray<readonly [SimNode, SimNode]>) =>
  Effect.gen(function* () {
    let count = 0
    for (const [observer, subject] of pairs) if ((yield* viewOf(observer, subject))?.state !== "Alive") count++
    return count
  })

/** How many (observer, subject) pairs among `pairs` are currently seen in `state`. */
const seenAs = (pairs: ReadonlyArray<readonly [SimNode, SimNode]>, state: NodeState) =>
  Effect.gen(function* () {
    let count = 0
    for (const [observer, subject] of pairs) if ((yield* viewOf(observer, subject))?.state === state) count++
    return count
  })

const pairsWithin = (groups: ReadonlyArray<ReadonlyArray<SimNode>>) =>
  groups.flatMap((group) => group.flatMap((o) => group.filter((s) => s !== o).map((s) => [o, s] as const)))

const allPairs = (nodes: ReadonlyArray<SimNode>) => pairsWithin([nodes])

/** Advances `totalMillis` in `stepMillis` steps; the largest value `sample` took at any step. */
const worstOver = (sample: Effect.Effect<number>, totalMillis: number, stepMillis: number) =>
  Effect.gen(function* () {
    let worst = yield* sample
    for (let t = 0; t < totalMillis; t += stepMillis) {
      yield* TestClock.adjust(stepMillis)
      worst = Math.max(worst, yield* sample)
    }
    return worst
  })

/**
 * A 3 | 3 (or 25 | 25) partition held `holdMillis`, then healed: each side
 * declares the other failed, nobody suspects a member of its own side — during
 * the cut or after — and after the heal all see all alive within `healBound`.
 */
const partitionThenHeal = (n: number, seed: number, holdMillis: number, healBound: number) =>
  sim(
    seed,
    Effect.gen(function* () {
      const network = yield* SimNetwork
      const nodes = yield* startCluster(n)
      yield* advanceUntil(allSee(nodes, nodes, "Alive"), 20_000)
      const [a, b] = [nodes.slice(0, n / 2), nodes.slice(n / 2)]
      yield* network.partition([a.map((node) => node.address), b.map((node) => node.address)])
      const inside = pairsWithin([a, b])
      const across = [
        ...a.flatMap((o) => b.map((s) => [o, s] as const)),
        ...b.flatMap((o) => a.map((s) => [o, s] as const))
      ]
      // A probe across the cut fails; allow Lifeguard's cap on the interval (×8): a pass of the
      // others ≤ (n − 1)·8·P, the probe ≤ 8·P, then the longest suspicion and the Dead update's
      // spread. A shorter cut must at least be noticed (a suspicion across it) before it heals.
      const splitBound = (n - 1) * 8 * P + 8 * P + maxSuspicion(n) + spread(n)
      let split: number | undefined
      let noticed = 0
      let during = 0
      for (let t = 0; t < holdMillis; t += 500) {
        yield* TestClock.adjust(500)
        during = Math.max(during, yield* notAlive(inside))
        const crossing = yield* notAlive(across)
        noticed = Math.max(noticed, crossing)
        if (split === undefined && (yield* seenAs(across, "Dead")) === across.length) split = t + 500
      }
      expect(during, "members of one side suspected or failed each other during the cut").toBe(0)
      if (splitBound <= holdMillis) assert.isDefined(split, `sides did not fail each other within ${splitBound} ms`)
      else assert.isAbove(noticed, 0, "the cut went unnoticed")
      yield* network.heal
      // After a complete split nothing about one side is still in flight on the other: no member
      // may even suspect one of its own side. A cut that heals mid-detection leaves suspicions in
      // flight, and gossip carries them into the suspect's own side until it refutes (Lifeguard's
      // design: the suspect must hear them): then only a failure inside a side is wrong.
      const wrongInside = split === undefined ? seenAs(inside, "Dead") : notAlive(inside)
      let insideAfter = 0
      let healed: number | undefined
      for (let t = 0; t <= healBound; t += 100) {
        insideAfter = Math.max(insideAfter, yield* wrongInside)
        if (yield* allSee(nodes, nodes, "Alive")) {
          healed = t
          break
        }
        yield* TestClock.adjust(100)
      }
      assert.isDefined(healed, `not healed within ${healBound} ms`)
      expect(insideAfter, "members of one side suspected or failed each other after the heal").toBe(0)
      // and it stays healed
      expect(yield* worstOver(notAlive(allPairs(nodes)), 30_000, 1000)).toBe(0)
      yield* stopAll(nodes)
      return { split, healed }
    })
  )

for (const n of [6, 50]) {
  describe(`faults at N = ${n}`, () => {
    it.effect(
      "a partition held 30 s: healed by pinging the recently dead",
      () =>
        Effect.map(
          // Deaths are declared well inside gossipToTheDeadTime (30 s) before the heal, so every
          // node still pings one recently dead member per probe round: the first answer across
          // the cut starts an exchange (≤ 2·P with slack), then the refutations spread.
          partitionThenHeal(n, 20 + n, 30_000, 2 * P + 2 * spread(n)),
          (times) => console.log(`N=${n} partition 30 s: split after ${times.split} ms, healed ${times.healed} ms`)
        ),
      120_000
    )

    it.effect(
      "a partition held 90 s: healed by the reconnect rounds",
      () =>
        Effect.map(
          // Past gossipToTheDeadTime: every R each node reconnects to a failed member with
          // probability failed / alive (= 1 here); the first exchange across the cut comes
          // within R, twice for an unlucky draw, then the refutations spread.
          partitionThenHeal(n, 30 + n, 90_000, 2 * R + 2 * spread(n)),
          (times) => console.log(`N=${n} partition 90 s: split after ${times.split} ms, healed ${times.healed} ms`)
        ),
      120_000
    )

    it.effect(
      "a host blackholed (everything to and from it dropped; its connects hang): failed like a crash",
      () =>
        sim(
          40 + n,
          Effect.gen(function* () {
            const network = yield* SimNetwork
            const nodes = yield* startCluster(n)
            yield* advanceUntil(allSee(nodes, nodes, "Alive"), 20_000)
            const victim = nodes[n - 1]!
            const rest = nodes.slice(0, -1)
            yield* network.isolate(victim.address)
            // as for a crash: a pass, the probe, the longest suspicion, the spread — the TCP
            // fallback's hanging connect holds no probe round past its interval
            const bound = (n - 1) * P + P + maxSuspicion(n) + spread(n)
            const took = yield* advanceUntil(allSee(rest, [victim], "Dead"), bound)
            assert.isDefined(took, `not failed within ${bound} ms`)
            expect(yield* notAlive(allPairs(rest))).toBe(0)
            console.log(`N=${n} blackholed host failed by all after ${took} ms`)
            yield* stopAll(nodes)
          })
        ),
      120_000
    )

    it.effect(
      "a one-way cut between two members for 60 s: nobody is declared failed",
      () =>
        sim(
          50 + n,
          Effect.gen(function* () {
            const network = yield* SimNetwork
            const nodes = yield* startCluster(n)
            yield* advanceUntil(allSee(nodes, nodes, "Alive"), 20_000)
            const [x, y] = [nodes[0]!, nodes[1]!]
            // x's packets to y vanish; y's reach x; everyone else reaches both (indirect probes and
            // the helpers' relayed acks carry what the cut drops)
            yield* network.cut(x.address, y.address)
            expect(yield* worstOver(seenAs(allPairs(nodes), "Dead"), 60_000, 500)).toBe(0)
            yield* network.heal
            yield* stopAll(nodes)
          })
        ),
      120_000
    )

    it.effect(
      "a link that drops both ways for 2 s every 5 s, for 60 s: nobody is declared failed",
      () =>
        sim(
          60 + n,
          Effect.gen(function* () {
            const network = yield* SimNetwork
            const nodes = yield* startCluster(n)
            yield* advanceUntil(allSee(nodes, nodes, "Alive"), 20_000)
            const [x, y] = [nodes[0]!, nodes[1]!]
            let worst = 0
            for (let cycle = 0; cycle < 12; cycle++) {
              yield* network.cut(x.address, y.address)
              yield* network.cut(y.address, x.address)
              worst = Math.max(worst, yield* worstOver(seenAs(allPairs(nodes), "Dead"), 2_000, 250))
              yield* network.heal
              worst = Math.max(worst, yield* worstOver(seenAs(allPairs(nodes), "Dead"), 3_000, 250))
            }
            expect(worst).toBe(0)
            yield* stopAll(nodes)
          })
        ),
      120_000
    )

    it.effect(
      "a host whose link drops for 2 s every 5 s, for 60 s: suspected and refuted, never declared failed",
      () =>
        sim(
          65 + n,
          Effect.gen(function* () {
            const network = yield* SimNetwork
            const nodes = yield* startCluster(n)
            yield* advanceUntil(allSee(nodes, nodes, "Alive"), 20_000)
            const flapping = nodes[n - 1]!
            // each outage is shorter than the minimum suspicion timeout (4 s × max(1, log10 N)):
            // the suspect must hear of each suspicion once its link is back and refute in time
            let worst = 0
            for (let cycle = 0; cycle < 12; cycle++) {
              yield* network.isolate(flapping.address)
              worst = Math.max(worst, yield* worstOver(seenAs(allPairs(nodes), "Dead"), 2_000, 250))
              yield* network.heal
              worst = Math.max(worst, yield* worstOver(seenAs(allPairs(nodes), "Dead"), 3_000, 250))
            }
            expect(worst).toBe(0)
            yield* stopAll(nodes)
          })
        ),
      120_000
    )

    it.effect(
      "a process paused 10 s (SIGSTOP) and resumed: declared failed or suspected, then Alive in every view at once",
      () =>
        sim(
          70 + n,
          Effect.gen(function* () {
            const network = yield* SimNetwork
            const nodes = yield* startCluster(n)
            yield* advanceUntil(allSee(nodes, nodes, "Alive"), 20_000)
            const sleeper = nodes[n - 1]!
            const rest = nodes.slice(0, -1)
            const before = (yield* sleeper.cluster.localNode).incarnation
            yield* network.pause(sleeper.address)
            let accused = 0
            for (let t = 0; t < 10_000; t += 250) {
              yield* TestClock.adjust(250)
              for (const node of rest) if ((yield* viewOf(node, sleeper))?.state !== "Alive") accused++
            }
            assert.isAbove(accused, 0, "nobody noticed a process paused for 10 s")
            const suspicionsBefore = (yield* sleeper.cluster.stats).suspicionsRaised
            yield* network.resume(sleeper.address)
            // On waking it probes at once (its timers are overdue) and answers pings; a word from a
            // member held dead starts an exchange, it hears the verdict and refutes: a probe
            // interval, the exchange, then the refutation's spread.
            const bound = 2 * P + spread(n)
            const back = yield* advanceUntil(allSee(rest, [sleeper], "Alive"), bound, 50)
            assert.isDefined(back, `not Alive everywhere within ${bound} ms of resuming`)
            expect((yield* sleeper.cluster.localNode).incarnation).toBeGreaterThan(before)
            // nobody else paid for it: the probe the sleeper was in when it froze says nothing about
            // its target, so it accused no one
            expect(yield* worstOver(seenAs(allPairs(nodes), "Dead"), 10_000, 500)).toBe(0)
            expect((yield* sleeper.cluster.stats).suspicionsRaised).toBe(suspicionsBefore)
            console.log(`N=${n} paused node Alive everywhere ${back} ms after resuming`)
            yield* stopAll(nodes)
          })
        ),
      120_000
    )
  })
}

describe("a paused process", () => {
  it.effect(
    "frozen mid-probe, it accuses nobody when it wakes: a probe that outlived its interval says nothing about its target",
    () =>
      sim(
        80,
        Effect.gen(function* () {
          const network = yield* SimNetwork
          const nodes = yield* startCluster(6)
          yield* advanceUntil(allSee(nodes, nodes, "Alive"), 20_000)
          const sleeper = nodes[5]!
          // 40 ms each way (nacks still arrive in time): every probe waits 80 ms for its ack, so
          // pausing at every 50th of a probe interval freezes the sleeper inside a probe a few times
          yield* network.setDefaults({ latency: "40 millis" })
          const before = (yield* sleeper.cluster.stats).suspicionsRaised
          for (let offset = 0; offset < 50; offset++) {
            yield* TestClock.adjust(P / 50)
            yield* network.pause(sleeper.address)
            yield* TestClock.adjust(10_000)
            yield* network.resume(sleeper.address)
            yield* advanceUntil(allSee(nodes, nodes, "Alive"), 10_000, 50)
          }
          expect((yield* sleeper.cluster.stats).suspicionsRaised).toBe(before)
          yield* stopAll(nodes)
        })
      ),
    120_000
  )
})

describe("a partition longer than the reap time", () => {
  it.effect(
    "R3: a node cut off for longer than reapAfter rejoins after the network heals",
    () =>
      sim(
        103,
        Effect.gen(function* () {
          const network = yield* SimNetwork
          // Defaults: reapAfter 15 min, tombstoneTtl 1 h, reconnectInterval 10 s.
          const nodes: Array<SimNode> = yield* startCluster(4)
          yield* advanceUntil(allSee(nodes, nodes, "Alive"), 10_000)
          const cut = nodes[3]!
          const cutId = (yield* cut.cluster.localNode).id
          yield* network.isolate(cut.address)
          const knows = (observer: SimNode) =>
            Effect.map(observer.cluster.members, (ms) => ms.some((m) => m.id === cutId))
          const forgotten = yield* advanceUntil(
            Effect.gen(function* () {
              for (const n of nodes.slice(0, 3)) if (yield* knows(n)) return false
              return (yield* cut.cluster.members).length === 1
            }),
            30 * 60_000,
            1000
          )
          assert.isDefined(forgotten, "sides never reaped each other")
          yield* network.heal
          // Serf keeps failed members for ReconnectTimeout (24 h) and retries them every 30 s;
          // here every R, past the reaping too: within R (twice for the draw), then the spread.
          const healed = yield* advanceUntil(allSee(nodes, nodes, "Alive"), 2 * R + spread(4), 100)
          assert.isDefined(healed, "partition never healed")
          console.log("R3 reaped after", forgotten, "ms of isolation; healed", healed, "ms after the heal")
          yield* stopAll(nodes)
        })
      ),
    120_000
  )

  it.effect(
    "a 3 | 3 partition held 20 minutes (past reapAfter): healed through the reconnect targets",
    () =>
      Effect.map(partitionThenHeal(6, 104, 20 * 60_000, 2 * R + 2 * spread(6)), (times) =>
        console.log(`N=6 partition 20 min: split after ${times.split} ms, healed ${times.healed} ms`)
      ),
    180_000
  )
})
