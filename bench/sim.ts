/**
 * Simulated clusters on the in-memory network under TestClock: how the
 * protocol scales with N. For each N it starts N nodes (each joining through
 * node 0), measures the simulated time until every node sees all N alive,
 * crashes one node and measures until the first and the last survivor know
 * it is dead, and counts packets and bytes per node per second over a quiet
 * period. Wall-clock time shows what the simulation itself cost.
 *
 *   npm run bench:sim                 # N = 10, 100, 1000
 *   npx node bench/sim.ts 10 50       # chosen sizes
 *
 * A benchmark, not a test: it prints figures, it asserts nothing.
 */
import { Effect, Random } from "effect"
import { TestClock } from "effect/testing"
import { SimNetwork } from "../src/cluster/gossip/SimNetwork.ts"
import { allSee, crash, type SimNode, startCluster, stopAll } from "../test/cluster/sim/harness.ts"

const sizes = process.argv
  .slice(2)
  .map(Number)
  .filter((n) => n > 1)
const ns = sizes.length > 0 ? sizes : [10, 100, 1000]

interface Row {
  readonly n: number
  readonly convergenceMs: number | undefined
  readonly firstDetectMs: number | undefined
  readonly allDetectMs: number | undefined
  readonly packetsPerNodePerSec: number
  readonly bytesPerNodePerSec: number
  readonly wallSeconds: number
}

/** Samples every `step` ms: true once the condition holds, with the time it took. */
const timeUntil = (condition: Effect.Effect<boolean>, limit: number, step: number) =>
  Effect.gen(function* () {
    for (let t = 0; t <= limit; t += step) {
      if (yield* condition) return t
      yield* TestClock.adjust(step)
    }
    return undefined
  })

const anySees = (observers: ReadonlyArray<SimNode>, subject: SimNode) =>
  Effect.gen(function* () {
    const id = (yield* subject.cluster.localNode).id
    for (const o of observers) {
      if ((yield* o.cluster.members).some((m) => m.id === id && m.state === "Dead")) return true
    }
    return false
  })

const run = (n: number) =>
  Effect.gen(function* () {
    const network = yield* SimNetwork
    const wall = performance.now()
    const nodes = yield* startCluster(n)
    const step = n >= 500 ? 500 : 100
    const convergenceMs = yield* timeUntil(allSee(nodes, nodes, "Alive"), 300_000, step)

    // Quiet period: steady-state traffic per node.
    const before = yield* network.totals
    const quiet = 20_000
    yield* TestClock.adjust(quiet)
    const after = yield* network.totals
    const packetsPerNodePerSec = (after.packetsSent - before.packetsSent) / n / (quiet / 1000)
    const bytesPerNodePerSec = (after.bytesSent - before.bytesSent) / n / (quiet / 1000)

    const victim = nodes[Math.floor(n / 2)]!
    const rest = nodes.filter((node) => node !== victim)
    yield* crash(victim)
    let firstDetectMs: number | undefined
    let allDetectMs: number | undefined
    for (let t = 0; t <= 300_000; t += step) {
      if (firstDetectMs === undefined && (yield* anySees(rest, victim))) firstDetectMs = t
      if (firstDetectMs !== undefined && (yield* allSee(rest, [victim], "Dead"))) {
        allDetectMs = t
        break
      }
      yield* TestClock.adjust(step)
    }
    yield* stopAll(rest)
    return {
      n,
      convergenceMs,
      firstDetectMs,
      allDetectMs,
      packetsPerNodePerSec,
      bytesPerNodePerSec,
      wallSeconds: (performance.now() - wall) / 1000
    } satisfies Row
  }).pipe(Effect.provide(SimNetwork.layer), Random.withSeed(n))

const fmt = (ms: number | undefined) => (ms === undefined ? "—" : `${(ms / 1000).toFixed(1)} s`)

const main = Effect.gen(function* () {
  const rows: Array<Row> = []
  for (const n of ns) {
    const row = yield* run(n)
    rows.push(row)
    console.error(`N=${n} done in ${row.wallSeconds.toFixed(1)} s wall`)
  }
  console.log("")
  console.log(
    "| N | converged (all see all alive) | crash: first knows | crash: all know | packets/node/s | bytes/node/s | wall time |"
  )
  console.log("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
  for (const r of rows) {
    console.log(
      `| ${r.n} | ${fmt(r.convergenceMs)} | ${fmt(r.firstDetectMs)} | ${fmt(r.allDetectMs)} | ${r.packetsPerNodePerSec.toFixed(
        1
      )} | ${Math.round(r.bytesPerNodePerSec)} | ${r.wallSeconds.toFixed(1)} s |`
    )
  }
  console.log("")
  console.log("Default timings (probe 1 s, ping timeout 500 ms, gossip 200 ms to 3, suspicion ×4, retransmit ×4);")
  console.log("1 ms links, no loss; times are simulated, sampled every 100 ms (500 ms for N ≥ 500).")
})

Effect.runPromise(main.pipe(Effect.provide(TestClock.layer()))).catch((error) => {
  console.error(error)
  process.exit(1)
})
