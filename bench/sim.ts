/**
 * Simulated clusters: how the protocol scales with N and how it behaves on a
 * lossy network. Times are simulated (sampled every 100 ms); wall-clock time
 * shows what the simulation itself cost.
 *
 * Two simulators run the same scenarios (`--engine`):
 *
 * - `des` (the default): the discrete-event simulator over bare protocol
 *   engines (`src/cluster/gossip/simulator/`) — no fibers, no TestClock, no
 *   codec on the way; it is what makes N = 2000 take minutes, not an hour.
 * - `effect`: whole `Cluster.layerWithTransport` nodes on the in-memory
 *   `SimNetwork` under `TestClock` — the service wiring included.
 *
 * `--compare=N` runs the scale scenario at N on both, `--runs` seeds each,
 * and prints each figure's mean and standard deviation side by side: the two
 * must agree within noise.
 *
 * Scale (`--sizes`): for each N, start N nodes (node 0, then batches of 50
 * joining through a random running node) and measure until every node sees
 * all N alive; count traffic over a quiet period (and, on `des`, the
 * engine's own CPU time per node per protocol period); join one more node and
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
 *   npm run bench:sim                              # everything, charts included
 *   npx node bench/sim.ts 10 100                   # only these sizes (no loss runs)
 *   npx node bench/sim.ts --sizes=10,50 --loss=0,10 --loss-n=20 --window=60
 *   npx node bench/sim.ts --skip-sizes --tcp-pings=off
 *   npx node bench/sim.ts --compare=100 --runs=10  # both simulators at N = 100
 *   npx node bench/sim.ts --engine=effect 100      # the Effect-level simulation
 *
 * Other flags: `--quiet=S` (traffic window after formation, default 10 s;
 * 0 skips it), `--batch=B` (nodes started at once, default 50), `--out=FILE`,
 * `--charts=DIR` / `--no-charts`, `--fresh`. Run node with `--expose-gc` for
 * the heap column, and with a larger `--max-old-space-size` for N ≥ 1000.
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
import { Effect } from "effect"
import { describeMachine, revision } from "./machine.ts"
import { writeCharts } from "./sim/charts.ts"
import { desLossy, desScale } from "./sim/des.ts"
import { effectLossy, effectScale, isolated } from "./sim/effect.ts"
import { fmt } from "./sim/output.ts"
import type { ComparisonRow, LossRow, RunOptions, SimResults, Simulation, SizeRow, Summary } from "./sim/rows.ts"
import { allDetectionMillis, defaultTimings, disseminationMillis, firstDetectionMillis } from "./sim/theory.ts"

export type { ComparisonRow, LossRow, SimResults, SizeRow }

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
const compareN = flag("compare") === undefined ? undefined : Number(flag("compare") || 100)
const sizes =
  flag("skip-sizes") !== undefined || (compareN !== undefined && flag("sizes") === undefined && positional.length === 0)
    ? []
    : (list(flag("sizes")) ?? (positional.length > 0 ? positional : [10, 50, 100, 250, 500, 1000, 2000]))
const losses =
  flag("skip-loss") !== undefined || ((positional.length > 0 || compareN !== undefined) && flag("loss") === undefined)
    ? []
    : (list(flag("loss")) ?? [0, 5, 10, 15, 20])
const lossN = Number(flag("loss-n") ?? 50)
/** `--tcp-pings=on|off|both` (default both): the loss runs with and without the TCP fallback ping. */
const tcpVariants = { on: [true], off: [false] }[flag("tcp-pings") ?? ""] ?? [false, true]
const engine: Simulation = flag("engine") === "effect" ? "effect" : "des"
const runs = Number(flag("runs") ?? 10)
const outFile = flag("out") ?? "bench/results/sim.json"
const chartDir = flag("charts") ?? "docs"
const fresh = flag("fresh") !== undefined

const log = (line: string) => console.error(line)

const options: RunOptions = {
  batch: Number(flag("batch") ?? 50),
  quietMillis: Number(flag("quiet") ?? 10) * 1000,
  windowSeconds: Number(flag("window") ?? 600),
  log
}

// --- runs ---

/** The scale scenario at `n` on `simulation`, seeded with `seed` (each run gets its own clock, network and seed). */
const scale = (simulation: Simulation, n: number, seed: number, runOptions: RunOptions = options) =>
  simulation === "des" ? Effect.sync(() => desScale(n, seed, runOptions)) : isolated(seed, effectScale(n, runOptions))

const lossy = (simulation: Simulation, n: number, loss: number, tcp: boolean, seed: number) =>
  simulation === "des"
    ? Effect.sync(() => desLossy(n, loss, tcp, seed, options))
    : isolated(seed, effectLossy(n, loss, tcp, options))

const summary = (values: ReadonlyArray<number | undefined>): Summary => {
  const present = values.filter((v): v is number => v !== undefined)
  const mean = present.reduce((a, b) => a + b, 0) / Math.max(1, present.length)
  const variance = present.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, present.length - 1)
  return { mean, sd: Math.sqrt(variance), missing: values.length - present.length }
}

const FIGURES: ReadonlyArray<readonly [string, (r: SizeRow) => number | undefined]> = [
  ["formed (ms)", (r) => r.formationMs],
  ["join known by all (ms)", (r) => r.joinMs],
  ["crash: first (ms)", (r) => r.crashFirstMs],
  ["crash: all (ms)", (r) => r.crashAllMs],
  ["leave known by all (ms)", (r) => r.leaveMs],
  ["packets / node / s", (r) => r.packetsPerNodePerSec],
  ["bytes / node / s", (r) => r.bytesPerNodePerSec],
  ["false suspicions", (r) => r.falseSuspicions]
]

/** The scale scenario at `n` on both simulators with seeds 1…`runs`: each figure's mean and sd. */
const compare = (n: number) =>
  Effect.gen(function* () {
    const quiet: RunOptions = { ...options, log: () => {} }
    const rows: Record<Simulation, Array<SizeRow>> = { des: [], effect: [] }
    for (let seed = 1; seed <= runs; seed++) {
      for (const simulation of ["effect", "des"] as const)
        rows[simulation].push(yield* scale(simulation, n, seed, quiet))
      log(`compare N=${n}: seed ${seed} of ${runs} done`)
    }
    return FIGURES.map(
      ([figure, pick]): ComparisonRow => ({
        n,
        runs,
        figure,
        effect: summary(rows.effect.map(pick)),
        des: summary(rows.des.map(pick))
      })
    )
  })

// --- output ---

/** Read at start: the tree may change while a long run goes on. */
const commit = revision()

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
    "| N | formed (all see all) | join known by all | crash: first | crash: all | leave known by all | model: dissemination | model: crash first / all | packets/node/s | bytes/node/s | heap/node | heap/member/node | engine µs/node/period | false suspicions | simulator | wall |"
  )
  console.log(
    "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | :---: | ---: |"
  )
  for (const r of rows) {
    console.log(
      `| ${r.n} | ${fmt(r.formationMs)} | ${fmt(r.joinMs)} | ${fmt(r.crashFirstMs)} | ${fmt(r.crashAllMs)} | ${fmt(
        r.leaveMs
      )} | ${fmt(disseminationMillis(r.n))} | ${fmt(firstDetectionMillis(r.n))} / ${fmt(allDetectionMillis(r.n))} | ${r.packetsPerNodePerSec?.toFixed(1) ?? "—"} | ${r.bytesPerNodePerSec === undefined ? "—" : Math.round(r.bytesPerNodePerSec)} | ${r.heapPerNodeKiB === undefined ? "—" : `${Math.round(r.heapPerNodeKiB)} KiB`} | ${r.heapPerMemberBytes === undefined ? "—" : `${Math.round(r.heapPerMemberBytes)} B`} | ${r.engineMicrosPerNodePerPeriod?.toFixed(0) ?? "—"} | ${r.falseSuspicions} | ${r.engine ?? "effect"} | ${r.wallSeconds.toFixed(0)} s |`
    )
  }
}

const printLoss = (rows: ReadonlyArray<LossRow>) => {
  console.log("")
  console.log(
    "| N | TCP fallback | loss | window | probes | failed probes | false suspicions | model | refutations | false deaths (timers) | NodeFailed events | members declared dead | crash: first | crash: all | simulator | wall |"
  )
  console.log(
    "| ---: | :---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | :---: | ---: |"
  )
  for (const r of rows) {
    console.log(
      `| ${r.n} | ${r.tcpPings ? "on" : "off"} | ${r.loss} % | ${r.windowSeconds / 60} min | ${r.probes} | ${r.failedProbes} | ${r.suspicions} | ${r.tcpPings ? "—" : r.expectedSuspicions.toFixed(0)} | ${r.refutations} | ${r.deathsDeclared} | ${r.failedEvents} | ${r.membersDeclaredDead} | ${fmt(r.crashFirstMs)} | ${fmt(
        r.crashAllMs
      )} | ${r.engine ?? "effect"} | ${r.wallSeconds.toFixed(0)} s |`
    )
  }
}

const printComparison = (rows: ReadonlyArray<ComparisonRow>) => {
  const cell = (s: Summary) =>
    `${s.mean.toFixed(s.mean < 100 ? 1 : 0)} ± ${s.sd.toFixed(s.sd < 100 ? 1 : 0)}${s.missing > 0 ? ` (${s.missing} missing)` : ""}`
  console.log("")
  console.log(
    `| figure (N = ${rows[0]?.n}, ${rows[0]?.runs} seeds each) | Effect-level (SimNetwork) | discrete-event |`
  )
  console.log("| --- | ---: | ---: |")
  for (const r of rows) console.log(`| ${r.figure} | ${cell(r.effect)} | ${cell(r.des)} |`)
}

const main = Effect.gen(function* () {
  const loadBefore = loadavg()
  const comparison = compareN === undefined ? [] : yield* compare(compareN)
  const sizeRows: Array<SizeRow> = []
  for (const n of sizes) {
    const row = yield* scale(engine, n, n)
    sizeRows.push(row)
    log(`N=${n} done in ${row.wallSeconds.toFixed(1)} s wall`)
  }
  const lossRows: Array<LossRow> = []
  for (const tcp of tcpVariants) {
    for (const loss of losses) {
      const row = yield* lossy(engine, lossN, loss, tcp, 1000 + loss)
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
    ),
    comparison: comparison.length > 0 ? comparison : (old.comparison ?? [])
  }
  if (comparison.length > 0) printComparison(comparison)
  if (sizeRows.length > 0) printSizes(sizeRows)
  if (lossRows.length > 0) printLoss(lossRows)
  console.log("")
  console.log("Default timings (probe 1 s, ping timeout 500 ms, 3 indirect, gossip 200 ms to 3, suspicion ×4 (max ×6),")
  console.log("retransmit ×4); 1 ms links; times simulated, sampled every 100 ms.")
  console.log(
    `Simulator: ${engine === "des" ? "discrete-event over bare engines" : "Effect-level SimNetwork + TestClock"}.`
  )
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
