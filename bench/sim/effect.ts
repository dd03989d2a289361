/**
 * The simulation benchmark's scenarios on the Effect-level simulation: whole
 * `Cluster.layerWithTransport` nodes on the in-memory `SimNetwork` under
 * `TestClock` — the service wiring included (fibers, the shell, the codec).
 * The same scenarios run on the discrete-event simulator in `des.ts`.
 */
import { Clock, Effect, Fiber, Random, Stream } from "effect"
import { TestClock } from "effect/testing"
import { SimNetwork } from "../../src/cluster/gossip/SimNetwork.ts"
import type { NodeId } from "../../src/cluster/Node.ts"
import { runWithClock } from "../../test/cluster/sim/harness.ts"
import {
  crashMember,
  holds,
  type Member,
  seesAlive,
  startMember,
  startMembers,
  stopMembers,
  sumStats,
  waitForAll
} from "./cluster.ts"
import { fmt, heapAfterGc, secs } from "./output.ts"
import type { LossRow, RunOptions, SizeRow } from "./rows.ts"
import { defaultTimings, probeFailure } from "./theory.ts"

const STEP = 100

const pick = <A>(items: ReadonlyArray<A>, avoid: ReadonlySet<A>) =>
  Effect.gen(function* () {
    while (true) {
      const item = items[yield* Random.nextIntBetween(0, items.length - 1)]!
      if (!avoid.has(item)) return item
    }
  })

export const effectScale = (n: number, options: RunOptions) =>
  Effect.gen(function* () {
    const network = yield* SimNetwork
    const wall = performance.now()
    const heapBefore = heapAfterGc()
    const t0 = yield* Clock.currentTimeMillis
    const members = yield* startMembers(n, { batch: options.batch })
    const startupMs = (yield* Clock.currentTimeMillis) - t0
    const formed = yield* waitForAll(members, seesAlive(n), 600_000, STEP)
    const formationMs = formed.all === undefined ? undefined : startupMs + formed.all
    const heap = heapAfterGc()
    const heapPerNodeKiB = heap === undefined || heapBefore === undefined ? undefined : (heap - heapBefore) / n / 1024
    options.log(
      `N=${n}: formed in ${fmt(formationMs)} simulated (${secs(wall)} wall), heap ${heapPerNodeKiB?.toFixed(0) ?? "—"} KiB/node`
    )

    const before = yield* network.totals
    yield* TestClock.adjust(options.quietMillis)
    const after = yield* network.totals
    const packetsPerNodePerSec =
      options.quietMillis > 0 ? (after.packetsSent - before.packetsSent) / n / (options.quietMillis / 1000) : undefined
    const bytesPerNodePerSec =
      options.quietMillis > 0 ? (after.bytesSent - before.bytesSent) / n / (options.quietMillis / 1000) : undefined
    const quietStats = yield* sumStats(members)
    options.log(
      `N=${n}: ${packetsPerNodePerSec?.toFixed(1) ?? "—"} packets, ${bytesPerNodePerSec?.toFixed(0) ?? "—"} bytes /node/s; ${quietStats.suspicionsRaised} false suspicions`
    )

    // One more node joins through a random member.
    const seed = yield* Random.nextIntBetween(0, n - 1)
    const joinedAt = yield* Clock.currentTimeMillis
    const newcomer = yield* startMember(n, [seed])
    const joinStart = (yield* Clock.currentTimeMillis) - joinedAt
    const joined = yield* waitForAll(members, holds(newcomer.id, ["Alive"]), 120_000, STEP)
    const joinMs = joined.all === undefined ? undefined : joinStart + joined.all
    const everyone = [...members, newcomer]
    options.log(`N=${n}: join known by all after ${fmt(joinMs)} (${secs(wall)} wall)`)
    yield* TestClock.adjust(5_000)

    // Crash one.
    const victim = yield* pick(everyone, new Set([newcomer]))
    const survivors = everyone.filter((m) => m !== victim)
    const crashed = yield* crashAndWait(victim, survivors)
    options.log(
      `N=${n}: crash known by the first after ${fmt(crashed.first)}, by all after ${fmt(crashed.all)} (${secs(wall)} wall)`
    )

    // One leaves.
    const leaver = yield* pick(survivors, new Set([newcomer]))
    const rest = survivors.filter((m) => m !== leaver)
    const leaving = yield* Effect.forkChild(leaver.cluster.leave, { startImmediately: true })
    const left = yield* waitForAll(rest, holds(leaver.id, ["Left", undefined]), 120_000, STEP)
    // the leaver may still be retransmitting its announcement: time has to move for it to finish
    yield* runWithClock(Fiber.join(leaving))
    yield* stopMembers([leaver])
    options.log(`N=${n}: leave known by all after ${fmt(left.all)} (${secs(wall)} wall)`)

    yield* stopMembers(rest)
    return {
      n,
      startupMs,
      formationMs,
      joinMs,
      crashFirstMs: crashed.first,
      crashAllMs: crashed.all,
      leaveMs: left.all,
      packetsPerNodePerSec,
      bytesPerNodePerSec,
      heapPerNodeKiB,
      falseSuspicions: quietStats.suspicionsRaised,
      falseDeaths: quietStats.deathsDeclared,
      wallSeconds: (performance.now() - wall) / 1000,
      engine: "effect",
      heapPerMemberBytes: heapPerNodeKiB === undefined ? undefined : (heapPerNodeKiB * 1024) / n
    } satisfies SizeRow
  })

/** Crashes `victim`; simulated ms from the crash until the first and every survivor hold it dead (or reaped). */
const crashAndWait = (victim: Member, survivors: ReadonlyArray<Member>) =>
  Effect.gen(function* () {
    const crashedAt = yield* Clock.currentTimeMillis
    yield* crashMember(victim)
    const offset = (yield* Clock.currentTimeMillis) - crashedAt
    const waited = yield* waitForAll(survivors, holds(victim.id, ["Dead", undefined]), 120_000, STEP)
    return {
      first: waited.first === undefined ? undefined : offset + waited.first,
      all: waited.all === undefined ? undefined : offset + waited.all
    }
  })

/** Counts NodeFailed events per observer about members that are in fact alive. */
const countFailures = (members: ReadonlyArray<Member>) =>
  Effect.gen(function* () {
    const dead = new Set<NodeId>()
    let events = 0
    const fibers = yield* Effect.forEach(members, (m) =>
      m.cluster.events.pipe(
        Stream.runForEach((event) =>
          Effect.sync(() => {
            if (event._tag === "NodeFailed") {
              events++
              dead.add(event.node.id)
            }
          })
        ),
        Effect.forkChild({ startImmediately: true })
      )
    )
    return {
      stop: Effect.forEach(fibers, Fiber.interrupt, { discard: true }),
      read: () => ({ events, members: dead.size })
    }
  })

export const effectLossy = (n: number, loss: number, tcpPings: boolean, options: RunOptions) =>
  Effect.gen(function* () {
    const network = yield* SimNetwork
    const wall = performance.now()
    const members = yield* startMembers(n, { batch: options.batch, input: { tcpPings } })
    yield* waitForAll(members, seesAlive(n), 600_000, STEP)
    const before = yield* sumStats(members)
    const failures = yield* countFailures(members)
    yield* network.setDefaults({ loss: loss / 100 })
    // In one-minute steps, so progress can be reported.
    for (let s = 0; s < options.windowSeconds; s += 60)
      yield* TestClock.adjust(Math.min(60, options.windowSeconds - s) * 1000)
    const after = yield* sumStats(members)
    const seen = failures.read()
    yield* failures.stop
    const probes = after.probes - before.probes
    options.log(`N=${n} loss ${loss}% tcpPings ${tcpPings}: window done (${secs(wall)} wall)`)

    const victim = yield* pick(members, new Set())
    const survivors = members.filter((m) => m !== victim)
    const crashed = yield* crashAndWait(victim, survivors)
    yield* stopMembers(survivors)
    return {
      n,
      loss,
      tcpPings,
      windowSeconds: options.windowSeconds,
      probes,
      failedProbes: after.failedProbes - before.failedProbes,
      suspicions: after.suspicionsRaised - before.suspicionsRaised,
      expectedSuspicions: probes * probeFailure(loss / 100, defaultTimings.indirectChecks),
      refutations: after.refutations - before.refutations,
      deathsDeclared: after.deathsDeclared - before.deathsDeclared,
      failedEvents: seen.events,
      membersDeclaredDead: seen.members,
      crashFirstMs: crashed.first,
      crashAllMs: crashed.all,
      wallSeconds: (performance.now() - wall) / 1000,
      engine: "effect"
    } satisfies LossRow
  })

/**
 * Each run gets its own clock, network and seed, so one run's size or loss
 * never shifts another's numbers. The TestClock waits for everything a wake-up
 * sets off before moving on, but only for its `warningDelay` of real time; at
 * N ≥ 500 one simulated instant can take longer than the default second, and
 * the clock would then run ahead of the nodes.
 */
export const isolated = <A, E>(seed: number, effect: Effect.Effect<A, E, SimNetwork>) =>
  effect.pipe(
    Effect.provide(SimNetwork.layer),
    Random.withSeed(seed),
    Effect.provide(TestClock.layer({ warningDelay: "1 hour" }))
  )
