/**
 * Simulated clusters on the in-memory network under TestClock: how the
 * protocol scales with N and how it behaves on a lossy network. Times are
 * simulated (sampled every 100 ms); wall-clock time shows what the simulation
 * itself cost.
 *
 * Scale (`--sizes`): for each N, start N nodes (node 0, then batches of 50
 * joining through a random running node) and measure until every node sees
 * all N alive; count traffic over a quiet period; join one more node and
 * measure until all see it; crash one (isolated, no leave) and measure until
 * the first and the last survivor hold it dead; let one leave and measure
 * until all hold it left.
 *
 * Loss (`--loss`): N nodes (default 50) formed without loss, then every
 * datagram dropped with the given probability for a window (default 10
 * simulated minutes) in which nobody fails: every suspicion and every death
 * is false. Then one node crashes, still under loss, and detection is timed.
 * Each loss rate runs with the TCP fallback ping off and on (the simulated
 * streams never lose anything, so with it on no probe fails).
 *
 *   npm run bench:sim                              # everything, charts included (hours at N = 2000)
 *   npx node bench/sim.ts 10 100                   # only these sizes (no loss runs)
 *   npx node bench/sim.ts --sizes=10,50 --loss=0,10 --loss-n=20 --window=60
 *   npx node bench/sim.ts --skip-sizes --tcp-pings=off
 *
 * Other flags: `--quiet=S` (traffic window after formation, default 10 s;
 * 0 skips it), `--batch=B` (nodes started at once, default 50), `--out=FILE`,
 * `--charts=DIR` / `--no-charts`, `--fresh`. Run node with `--expose-gc` for
 * the heap column, and with a larger `--max-old-space-size` from N = 1000 on
 * (N = 2000 peaks near 9 GB).
 *
 * Results go to `bench/results/sim.json`, merged with what is there: a row
 * this run measured (same N, or same N / loss / window / TCP fallback)
 * replaces the old one, the others stay (`--fresh` drops them). Charts go to
 * `docs/sim-*.svg`. A benchmark, not a test: it prints figures, it asserts
 * nothing.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { loadavg } from "node:os"
import { dirname } from "node:path"
import { Clock, Effect, Fiber, Random, Stream } from "effect"
import { TestClock } from "effect/testing"
import { SimNetwork } from "../src/cluster/gossip/SimNetwork.ts"
import type { NodeId } from "../src/cluster/Node.ts"
import { runWithClock } from "../test/cluster/sim/harness.ts"
import { describeMachine, revision } from "./machine.ts"
import { writeCharts } from "./sim/charts.ts"
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
} from "./sim/cluster.ts"
import {
  allDetectionMillis,
  defaultTimings,
  disseminationMillis,
  firstDetectionMillis,
  probeFailure
} from "./sim/theory.ts"

// --- command line ---

const args = process.argv.slice(2)
const flag = (name: string): string | undefined =>
  args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? (args.includes(`--${name}`) ? "" : undefined)
const list = (text: string | undefined) =>
  text === undefined || text === "" ? undefined : text.split(",").map(Number).filter(Number.isFinite)

const positional = args
  .filter((a) => !a.startsWith("--"))
  .map(Number)
  .filter((n) => n > 1)
const sizes =
  flag("skip-sizes") !== undefined
    ? []
    : (list(flag("sizes")) ?? (positional.length > 0 ? positional : [10, 50, 100, 250, 500, 1000, 2000]))
const losses =
  flag("skip-loss") !== undefined || (positional.length > 0 && flag("loss") === undefined)
    ? []
    : (list(flag("loss")) ?? [0, 5, 10, 15, 20])
const lossN = Number(flag("loss-n") ?? 50)
/** `--tcp-pings=on|off|both` (default both): the loss runs with and without the TCP fallback ping. */
const tcpVariants = { on: [true], off: [false] }[flag("tcp-pings") ?? ""] ?? [false, true]
const windowSeconds = Number(flag("window") ?? 600)
const outFile = flag("out") ?? "bench/results/sim.json"
const chartDir = flag("charts") ?? "docs"
const batch = Number(flag("batch") ?? 50)
const fresh = flag("fresh") !== undefined

const STEP = 100
/** Simulated quiet after formation over which traffic is counted (`--quiet=0` skips it: it is costly at N = 2000). */
const QUIET = Number(flag("quiet") ?? 10) * 1000

// --- results ---

export interface SizeRow {
  readonly n: number
  /** Simulated time to start every node (batched joins). */
  readonly startupMs: number
  /** From the first node's start until every node sees all N alive. */
  readonly formationMs: number | undefined
  /** One more node joins a formed cluster: until every member sees it alive. */
  readonly joinMs: number | undefined
  readonly crashFirstMs: number | undefined
  readonly crashAllMs: number | undefined
  /** A member leaves gracefully: until every other member holds it left. */
  readonly leaveMs: number | undefined
  /** Over the quiet period after formation (undefined when it was skipped). */
  readonly packetsPerNodePerSec: number | undefined
  readonly bytesPerNodePerSec: number | undefined
  /**
   * JavaScript heap after a full GC once formed, minus the heap before the
   * nodes existed, per node (network and clock included); only with
   * `--expose-gc`.
   */
  readonly heapPerNodeKiB: number | undefined
  /** Suspicions raised before the crash (none is deserved: nothing had failed). */
  readonly falseSuspicions: number
  readonly falseDeaths: number
  readonly wallSeconds: number
}

export interface LossRow {
  readonly n: number
  readonly loss: number
  /**
   * The TCP fallback ping (default on). The simulated network never loses
   * stream messages, so with it on a lossy network's probes always succeed in
   * the end; off, the runs show SWIM/Lifeguard's datagram-only behaviour.
   */
  readonly tcpPings: boolean
  readonly windowSeconds: number
  readonly probes: number
  readonly failedProbes: number
  /** Accusations raised by a failed probe (every one false: nobody failed). */
  readonly suspicions: number
  /** What {@link probeFailure} predicts for this many probes. */
  readonly expectedSuspicions: number
  readonly refutations: number
  /** Suspicion timers that ran out: a live member declared dead. */
  readonly deathsDeclared: number
  /** NodeFailed events about a live member, summed over observers. */
  readonly failedEvents: number
  /** Distinct live members that anyone declared dead. */
  readonly membersDeclaredDead: number
  readonly crashFirstMs: number | undefined
  readonly crashAllMs: number | undefined
  readonly wallSeconds: number
}

export interface SimResults {
  readonly machine: ReturnType<typeof describeMachine>
  readonly timings: typeof defaultTimings & { readonly pingTimeout: number; readonly suspicionMaxTimeoutMult: number }
  readonly sizes: ReadonlyArray<SizeRow>
  readonly loss: ReadonlyArray<LossRow>
}

// --- experiments ---

const pick = <A>(items: ReadonlyArray<A>, avoid: ReadonlySet<A>) =>
  Effect.gen(function* () {
    while (true) {
      const item = items[yield* Random.nextIntBetween(0, items.length - 1)]!
      if (!avoid.has(item)) return item
    }
  })

const scale = (n: number) =>
  Effect.gen(function* () {
    const network = yield* SimNetwork
    const wall = performance.now()
    const heapBefore = heapAfterGc()
    const t0 = yield* Clock.currentTimeMillis
    const members = yield* startMembers(n, { batch })
    const startupMs = (yield* Clock.currentTimeMillis) - t0
    const formed = yield* waitForAll(members, seesAlive(n), 600_000, STEP)
    const formationMs = formed.all === undefined ? undefined : startupMs + formed.all
    const heap = heapAfterGc()
    const heapPerNodeKiB = heap === undefined || heapBefore === undefined ? undefined : (heap - heapBefore) / n / 1024
    log(
      `N=${n}: formed in ${fmt(formationMs)} simulated (${secs(wall)} wall), heap ${heapPerNodeKiB?.toFixed(0) ?? "—"} KiB/node`
    )

    const before = yield* network.totals
    yield* TestClock.adjust(QUIET)
    const after = yield* network.totals
    const packetsPerNodePerSec = QUIET > 0 ? (after.packetsSent - before.packetsSent) / n / (QUIET / 1000) : undefined
    const bytesPerNodePerSec = QUIET > 0 ? (after.bytesSent - before.bytesSent) / n / (QUIET / 1000) : undefined
    const quietStats = yield* sumStats(members)
    log(
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
    log(`N=${n}: join known by all after ${fmt(joinMs)} (${secs(wall)} wall)`)
    yield* TestClock.adjust(5_000)

    // Crash one.
    const victim = yield* pick(everyone, new Set([newcomer]))
    const survivors = everyone.filter((m) => m !== victim)
    const crashed = yield* crashAndWait(victim, survivors)
    log(
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
    log(`N=${n}: leave known by all after ${fmt(left.all)} (${secs(wall)} wall)`)

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
      wallSeconds: (performance.now() - wall) / 1000
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

const lossy = (n: number, loss: number, tcpPings: boolean) =>
  Effect.gen(function* () {
    const network = yield* SimNetwork
    const wall = performance.now()
    const members = yield* startMembers(n, { batch, input: { tcpPings } })
    yield* waitForAll(members, seesAlive(n), 600_000, STEP)
    const before = yield* sumStats(members)
    const failures = yield* countFailures(members)
    yield* network.setDefaults({ loss: loss / 100 })
    // In one-minute steps, so progress can be reported.
    for (let s = 0; s < windowSeconds; s += 60) yield* TestClock.adjust(Math.min(60, windowSeconds - s) * 1000)
    const after = yield* sumStats(members)
    const seen = failures.read()
    yield* failures.stop
    const probes = after.probes - before.probes
    log(`N=${n} loss ${loss}% tcpPings ${tcpPings}: window done (${secs(wall)} wall)`)

    const victim = yield* pick(members, new Set())
    const survivors = members.filter((m) => m !== victim)
    const crashed = yield* crashAndWait(victim, survivors)
    yield* stopMembers(survivors)
    return {
      n,
      loss,
      tcpPings,
      windowSeconds,
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
      wallSeconds: (performance.now() - wall) / 1000
    } satisfies LossRow
  })

/**
 * Each run gets its own clock, network and seed, so one run's size or loss
 * never shifts another's numbers. The TestClock waits for everything a wake-up
 * sets off before moving on, but only for its `warningDelay` of real time; at
 * N ≥ 500 one simulated instant can take longer than the default second, and
 * the clock would then run ahead of the nodes.
 */
const isolated = <A, E>(seed: number, effect: Effect.Effect<A, E, SimNetwork>) =>
  effect.pipe(
    Effect.provide(SimNetwork.layer),
    Random.withSeed(seed),
    Effect.provide(TestClock.layer({ warningDelay: "1 hour" }))
  )

// --- output ---

const log = (line: string) => console.error(line)

const gc = (globalThis as { gc?: () => void }).gc
/** Heap in use after two full collections; undefined without `--expose-gc`. */
const heapAfterGc = (): number | undefined => {
  if (gc === undefined) return undefined
  gc()
  gc()
  return process.memoryUsage().heapUsed
}

/** Read at start: the tree may change while a long run goes on. */
const commit = revision()
const secs = (since: number) => `${((performance.now() - since) / 1000).toFixed(1)} s`
const fmt = (ms: number | undefined) => (ms === undefined ? "—" : `${(ms / 1000).toFixed(1)} s`)

/** This run's rows, plus the previous file's rows for keys this run did not measure; sorted by key. */
const merge = <A>(rows: ReadonlyArray<A>, old: ReadonlyArray<A>, key: (row: A) => number | string): Array<A> => {
  const mine = new Set(rows.map(key))
  const all = [...rows, ...old.filter((row) => !mine.has(key(row)))]
  return all.sort((a, b) => {
    const ka = key(a)
    const kb = key(b)
    return typeof ka === "number" && typeof kb === "number"
      ? ka - kb
      : String(ka).localeCompare(String(kb), "en", { numeric: true })
  })
}

const previous = (): Partial<SimResults> => {
  if (!existsSync(outFile)) return {}
  try {
    return JSON.parse(readFileSync(outFile, "utf8")) as Partial<SimResults>
  } catch {
    return {}
  }
}

const printSizes = (rows: ReadonlyArray<SizeRow>) => {
  console.log("")
  console.log(
    "| N | formed (all see all) | join known by all | crash: first | crash: all | leave known by all | model: dissemination | model: crash first / all | packets/node/s | bytes/node/s | heap/node | false suspicions | wall |"
  )
  console.log("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
  for (const r of rows) {
    console.log(
      `| ${r.n} | ${fmt(r.formationMs)} | ${fmt(r.joinMs)} | ${fmt(r.crashFirstMs)} | ${fmt(r.crashAllMs)} | ${fmt(
        r.leaveMs
      )} | ${fmt(disseminationMillis(r.n))} | ${fmt(firstDetectionMillis(r.n))} / ${fmt(allDetectionMillis(r.n))} | ${r.packetsPerNodePerSec?.toFixed(1) ?? "—"} | ${r.bytesPerNodePerSec === undefined ? "—" : Math.round(r.bytesPerNodePerSec)} | ${r.heapPerNodeKiB === undefined ? "—" : `${Math.round(r.heapPerNodeKiB)} KiB`} | ${r.falseSuspicions} | ${r.wallSeconds.toFixed(0)} s |`
    )
  }
}

const printLoss = (rows: ReadonlyArray<LossRow>) => {
  console.log("")
  console.log(
    "| N | TCP fallback | loss | window | probes | failed probes | false suspicions | model | refutations | false deaths (timers) | NodeFailed events | members declared dead | crash: first | crash: all | wall |"
  )
  console.log(
    "| ---: | :---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
  )
  for (const r of rows) {
    console.log(
      `| ${r.n} | ${r.tcpPings ? "on" : "off"} | ${r.loss} % | ${r.windowSeconds / 60} min | ${r.probes} | ${r.failedProbes} | ${r.suspicions} | ${r.tcpPings ? "—" : r.expectedSuspicions.toFixed(0)} | ${r.refutations} | ${r.deathsDeclared} | ${r.failedEvents} | ${r.membersDeclaredDead} | ${fmt(r.crashFirstMs)} | ${fmt(
        r.crashAllMs
      )} | ${r.wallSeconds.toFixed(0)} s |`
    )
  }
}

const main = Effect.gen(function* () {
  const loadBefore = loadavg()
  const sizeRows: Array<SizeRow> = []
  for (const n of sizes) {
    const row = yield* isolated(n, scale(n))
    sizeRows.push(row)
    log(`N=${n} done in ${row.wallSeconds.toFixed(1)} s wall`)
  }
  const lossRows: Array<LossRow> = []
  for (const tcp of tcpVariants) {
    for (const loss of losses) {
      const row = yield* isolated(1000 + loss, lossy(lossN, loss, tcp))
      lossRows.push(row)
      log(`loss ${loss}% (tcpPings ${tcp}) done in ${row.wallSeconds.toFixed(1)} s wall`)
    }
  }
  // Read at the end: another run may have written its part meanwhile.
  const old = previous()
  const results: SimResults = {
    machine: describeMachine(loadBefore, commit),
    timings: { ...defaultTimings, pingTimeout: 500, suspicionMaxTimeoutMult: 6 },
    sizes: merge(sizeRows, fresh ? [] : (old.sizes ?? []), (r) => r.n),
    loss: merge(
      lossRows,
      fresh ? [] : (old.loss ?? []),
      (r) => `${r.tcpPings ? "tcp" : "udp"}/${r.n}/${r.loss}/${r.windowSeconds}`
    )
  }
  if (sizeRows.length > 0) printSizes(sizeRows)
  if (lossRows.length > 0) printLoss(lossRows)
  console.log("")
  console.log("Default timings (probe 1 s, ping timeout 500 ms, 3 indirect, gossip 200 ms to 3, suspicion ×4 (max ×6),")
  console.log("retransmit ×4); 1 ms links; times simulated, sampled every 100 ms.")
  console.log(
    `Machine: ${results.machine.cpus} × ${results.machine.cpu}, Node ${results.machine.node}, load ${results.machine.loadBefore.join(" ")} → ${results.machine.loadAfter.join(" ")}`
  )
  mkdirSync(dirname(outFile), { recursive: true })
  writeFileSync(outFile, `${JSON.stringify(results, null, 2)}\n`)
  log(`wrote ${outFile}`)
  if (flag("no-charts") === undefined) {
    const written = yield* Effect.promise(() => writeCharts(results, chartDir))
    log(written.length > 0 ? `wrote ${written.join(", ")}` : "no charts: a chart needs two sizes or two loss rates")
  }
})

Effect.runPromise(main).catch((error) => {
  console.error(error)
  process.exit(1)
})
