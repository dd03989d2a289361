/**
 * effect/cluster failover, side by side in one run: three runners with
 * SqlRunnerStorage + SqlMessageStorage on a real PostgreSQL, a client
 * talking to four conversation entities (one line every 100 ms each), and
 * the runner hosting `conversation-0` hit by a fault — SIGKILL, SIGSTOP, or
 * cut off by nftables — under each runner health:
 *
 * - `ping-default`: `RunnerHealth.layerPing`, effect/cluster's defaults
 *   (`NodeClusterSocket.layer()`, health checked every minute);
 * - `ping-1s`: the same, checked every second;
 * - `shoal`: `ShoalClusterSocket.layer()` on shoal's membership
 *   (`ClusterConfig.fastDetection`).
 *
 * Every process runs on its own host of a virtual LAN (bench/faults'
 * topology: network namespaces on a bridge, faults as nftables rules on the
 * switch), PostgreSQL on a host of its own. Reports, per case, the time from
 * the fault until the victim's conversations answered again from another
 * runner, and acknowledged lines lost (must be 0), to
 * bench/results/effect-cluster.json and .md and stdout. A benchmark: it
 * asserts nothing.
 *
 *   npm run bench:effect-cluster                       # 2 repetitions of everything (~20 min)
 *   npm run bench:effect-cluster -- --repetitions=1 --faults=sigkill --health=shoal,ping-1s
 *
 * Must run as root (namespaces; installs iproute2, nftables and postgresql when missing).
 */
import { mkdirSync, writeFileSync } from "node:fs"
import { dirname } from "node:path"
import { deleteLeftoverFolders, ensurePostgres } from "../examples/effect_cluster/postgres.ts"
import { FAULTS, type Fault, runScenario, type ScenarioResult } from "../examples/effect_cluster/scenario.ts"
import { HEALTH_MODES, type HealthMode } from "../examples/effect_cluster/settings.ts"
import { prepareHost } from "./faults/host-setup.ts"
import { deleteLeftovers } from "./faults/topology.ts"
import { describeMachine, revision } from "./machine.ts"

const argv = process.argv.slice(2)
const option = (name: string): string | undefined =>
  argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3)
const list = (name: string) =>
  option(name)
    ?.split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "")

const repetitions = Number(option("repetitions") ?? 2)
const faults = (list("faults") ?? FAULTS) as Array<Fault>
const healths = (list("health") ?? HEALTH_MODES) as Array<HealthMode>
const outFile = option("out") ?? "bench/results/effect-cluster.json"
const log = (line: string) => process.stderr.write(`${line}\n`)

if (!Number.isInteger(repetitions) || repetitions < 1) throw new Error("--repetitions must be a positive integer")
for (const f of faults) if (!FAULTS.includes(f)) throw new Error(`unknown fault ${f} (one of ${FAULTS.join(", ")})`)
for (const h of healths) if (!HEALTH_MODES.includes(h)) throw new Error(`unknown health ${h}`)

const cleanup = () => {
  deleteLeftovers()
  deleteLeftoverFolders()
}
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.on(signal, () => {
    log(`\n${signal}: stopping every process and deleting every namespace`)
    cleanup()
    process.exit(130)
  })
}

const LABELS: Record<HealthMode, string> = {
  "ping-default": "layerPing, defaults (check every 1 min)",
  "ping-1s": "layerPing, check every 1 s",
  shoal: "shoal (ShoalClusterSocket)"
}
const FAULT_LABELS: Record<Fault, string> = {
  sigkill: "SIGKILL",
  sigstop: "SIGSTOP",
  cut: "network cut (nftables)"
}
const TARGETS: Record<Fault, number> = { sigkill: 4_000, sigstop: 10_000, cut: 10_000 }

const commit = revision()
const loadBefore = (await import("node:os")).loadavg()
prepareHost(log, { serf: false })
ensurePostgres(log)

const results: Array<ScenarioResult & { readonly repetition: number }> = []
let basePort = 24_000
for (let repetition = 1; repetition <= repetitions; repetition++) {
  for (const fault of faults) {
    for (const health of healths) {
      log(`run ${repetition}/${repetitions}: ${fault}, ${health}`)
      const result = await runScenario({
        health,
        fault,
        network: "namespaces",
        basePort: (basePort += 50),
        recoveryDeadlineMillis: 120_000,
        log
      })
      results.push({ ...result, repetition })
      log(
        `  → unavailable ${result.unavailableMillis ?? "never (120 s)"} ms, lost ${result.lostMessages} of ${result.acknowledged}`
      )
    }
  }
}

const seconds = (ms: number | undefined) => (ms === undefined ? "> 120 s" : `${(ms / 1000).toFixed(1)} s`)
const cell = (fault: Fault, health: HealthMode) => {
  const runs = results.filter((r) => r.fault === fault && r.health === health)
  const times = runs.map((r) => seconds(r.unavailableMillis)).join(" / ")
  const lost = runs.reduce((sum, r) => sum + r.lostMessages, 0)
  return `${times} (lost ${lost})`
}
const verdict = (fault: Fault) => {
  const shoal = results.filter((r) => r.fault === fault && r.health === "shoal")
  if (shoal.length === 0) return "—"
  const worst = Math.max(...shoal.map((r) => r.unavailableMillis ?? Infinity))
  const stock = results.filter((r) => r.fault === fault && r.health !== "shoal")
  const bestStock = Math.min(...stock.map((r) => r.unavailableMillis ?? Infinity))
  const lost = shoal.some((r) => r.lostMessages > 0) || results.some((r) => r.fault === fault && r.lostMessages > 0)
  const met = worst <= TARGETS[fault] && (stock.length === 0 || worst <= bestStock) && !lost
  return `${met ? "met" : "MISSED"}: ≤ ${TARGETS[fault] / 1000} s${stock.length > 0 ? ", ≤ best stock" : ""}, 0 lost`
}
const table = [
  `| fault | ${healths.map((h) => LABELS[h]).join(" | ")} | target (shoal) |`,
  `|---|${healths.map(() => "---").join("|")}|---|`,
  ...faults.map((f) => `| ${FAULT_LABELS[f]} | ${healths.map((h) => cell(f, h)).join(" | ")} | ${verdict(f)} |`)
].join("\n")
const note = [
  "Time from the fault until every conversation the victim hosted answered again from another runner, per",
  `repetition (${repetitions}), and acknowledged lines lost over all repetitions. Three runners, SqlRunnerStorage +`,
  "SqlMessageStorage on PostgreSQL, a client talking to 4 conversations (a line every 100 ms each), every process",
  "on its own network namespace of a virtual LAN. Everything else is effect/cluster's defaults; shoal's layer",
  "also sets runnerHealthCheckInterval 1 s and refreshAssignmentsInterval 250 ms (ShoalRunnerStorage reads SQL",
  "at the stock 3 s cadence), and runs shoal with ClusterConfig.fastDetection."
].join("\n")
const machine = describeMachine(loadBefore, commit)
mkdirSync(dirname(outFile), { recursive: true })
writeFileSync(outFile, `${JSON.stringify({ machine, repetitions, results }, null, 2)}\n`)
writeFileSync(outFile.replace(/\.json$/, ".md"), `${table}\n\n${note}\n\nMachine: ${JSON.stringify(machine)}\n`)
process.stdout.write(`${table}\n\n${note}\n`)
