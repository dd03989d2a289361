/**
 * What one node's protocol engine costs, alone: CPU time inside
 * `Engine.handle` per node per protocol period (one probe interval), on the
 * discrete-event simulator, in two states of a cluster of N nodes —
 *
 * - *settling*: right after it formed, while every node still re-gossips
 *   the members it learned at join (the busiest a formed cluster gets);
 * - *idle*: once every dissemination queue has drained (probes, acks and
 *   the occasional push-pull: what a cluster costs day to day).
 *
 * Besides the time, the inputs handled per node per period. A benchmark,
 * not a test: it prints, it asserts nothing.
 *
 *   npx node bench/engine.ts              # N = 10, 100, 1000
 *   npx node bench/engine.ts 50 500       # these sizes
 */
import { desCluster, desSeesAlive, desSettings, desStartMembers, desWaitForAll } from "./sim/des.ts"

const sizes = process.argv
  .slice(2)
  .map(Number)
  .filter((n) => n > 1)
const WINDOW = 30_000

const measure = (n: number) => {
  const settings = desSettings()
  const cluster = desCluster(n, settings)
  const { sim } = cluster
  const nodes = desStartMembers(cluster, n, 50)
  desWaitForAll(sim, nodes, desSeesAlive(n), 600_000)
  const window = (label: string) => {
    const events = sim.events
    sim.engineMillis = 0
    sim.timeEngine = true
    sim.advance(WINDOW)
    sim.timeEngine = false
    const periods = WINDOW / settings.probeInterval
    return {
      label,
      micros: (sim.engineMillis * 1000) / n / periods,
      inputs: (sim.events - events) / n / periods
    }
  }
  const settling = window("settling")
  // idle: every queue drained (checked each simulated second, for at most ten minutes)
  const pending = () => nodes.reduce((sum, node) => sum + node.engine.footprint().broadcasts!, 0)
  sim.advanceUntil(() => pending() === 0, 600_000, 1000)
  const idle = window(pending() === 0 ? "idle" : "idle (queues not drained in 10 min)")
  return [settling, idle].map((w) => ({ n, ...w }))
}

console.log("| N | state | engine µs / node / period | inputs / node / period |")
console.log("| ---: | --- | ---: | ---: |")
for (const n of sizes.length > 0 ? sizes : [10, 100, 1000]) {
  for (const row of measure(n)) {
    console.log(`| ${row.n} | ${row.label} | ${row.micros.toFixed(0)} | ${row.inputs.toFixed(1)} |`)
  }
}
