/**
 * The fault suite's full profile: real shoal agents beside real HashiCorp Serf
 * agents (`serf agent -profile=lan`, memberlist's LAN defaults = shoal's
 * defaults), each agent in its own network namespace on a virtual bridge,
 * under every fault of the quick profile at the lengths (partitions
 * of 30 s, 90 s and 20 min with shoal's defaults, reapAfter 15 min), at
 * N = 6, 10 and 25, three repetitions. Medians, shoal / Serf ratios and the
 * targets go to bench/results/faults.json and faults.md and to stdout.
 *
 *   npm run bench:faults                                    # everything (many hours)
 *   npm run bench:faults -- --sizes=6 --repetitions=1 --scenarios=sigkill,blackhole
 *   npm run bench:faults -- --help
 *
 * Must run as root (it installs iproute2, nftables and serf with apt-get when
 * missing). A benchmark: it asserts nothing, it reports every check's verdict.
 */
import { mkdirSync, writeFileSync } from "node:fs"
import { dirname, resolve } from "node:path"
import { liveProcesses, now } from "./faults/agent-life.ts"
import { prepareHost } from "./faults/host-setup.ts"
import { fullProfile } from "./faults/profiles.ts"
import { failureDetails, mediansTable, relativeTargets, runsTable } from "./faults/report.ts"
import { passed, runScenario, type ScenarioResult } from "./faults/runner.ts"
import { faultSystems, type SystemId } from "./faults/systems.ts"
import { deleteLeftovers } from "./faults/topology.ts"
import { describeMachine, revision } from "./machine.ts"
import { getShoalRoot, setShoalRoot } from "./membership/systems.ts"

const argv = process.argv.slice(2)
/** `--name=value` or `--name value`. */
const option = (name: string): string | undefined => {
  const eq = argv.find((a) => a.startsWith(`--${name}=`))
  if (eq !== undefined) return eq.slice(name.length + 3)
  const i = argv.indexOf(`--${name}`)
  return i < 0 ? undefined : argv[i + 1]
}
const list = (name: string) =>
  option(name)
    ?.split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "")

if (argv.includes("--help") || argv.includes("-h")) {
  process.stdout.write(
    [
      "usage: npm run bench:faults -- [options]",
      `  --sizes=6,10,25        cluster sizes (default ${fullProfile.sizes.join(",")})`,
      `  --repetitions=3        runs per scenario, size and system (medians reported; default ${fullProfile.repetitions})`,
      `  --scenarios=a,b        among ${fullProfile.scenarios.map((s) => s.id).join(", ")}`,
      `                         (default: all but partition-beyond-reap, the quick profile's 20 s-reapAfter stand-in)`,
      "  --systems=shoal,serf   systems to run (default both)",
      "  --parallel=1           scenarios at once, each on its own topology (default 1: timings undisturbed)",
      "  --out=FILE             JSON results (default bench/results/faults.json; the Markdown goes beside it)",
      "  --logs=DIR             agent logs (default .tmp/faults-logs/<date>)",
      "  --max-minutes=N        abort, cleaning up, after this long (default 900)",
      "  --shoal-root=DIR       run bin/shoal.js of another checkout",
      ""
    ].join("\n")
  )
  process.exit(0)
}

const sizes = list("sizes")?.map(Number) ?? fullProfile.sizes
const repetitions = Number(option("repetitions") ?? fullProfile.repetitions)
const scenarioIds = list("scenarios") ?? fullProfile.defaults
const systemIds = (list("systems") ?? fullProfile.systems) as Array<SystemId>
const parallel = Math.max(1, Number(option("parallel") ?? fullProfile.parallel))
const outFile = option("out") ?? "bench/results/faults.json"
const logDir = option("logs") ?? `.tmp/faults-logs/${new Date().toISOString().replace(/[:.]/g, "-")}`
const maxMinutes = Number(option("max-minutes") ?? 900)
if (option("shoal-root") !== undefined) setShoalRoot(resolve(option("shoal-root")!))

const log = (line: string) => process.stderr.write(`${line}\n`)

/** A bad argument: one line on stderr and exit 2, before anything is created. */
const usageError = (message: string): never => {
  log(`bench:faults: ${message} (see --help)`)
  process.exit(2)
}
for (const id of scenarioIds) {
  if (!fullProfile.scenarios.some((s) => s.id === id)) usageError(`unknown scenario ${id}`)
}
for (const id of systemIds) if (!(id in faultSystems)) usageError(`unknown system ${id}`)
if (sizes.some((n) => !Number.isInteger(n) || n < 3 || n > 100)) usageError("sizes must be integers in 3..100")
if (!Number.isInteger(repetitions) || repetitions < 1) usageError("--repetitions must be a positive integer")

const cleanup = () => {
  for (const child of liveProcesses) {
    try {
      child.kill("SIGKILL")
    } catch {
      // already gone
    }
  }
  deleteLeftovers()
}
process.on("exit", cleanup)
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.on(signal, () => {
    log(`\n${signal}: stopping every agent and deleting every namespace`)
    cleanup()
    process.exit(130)
  })
}
const watchdog = setTimeout(() => {
  log(`aborting: the run took longer than ${maxMinutes} minutes (--max-minutes)`)
  cleanup()
  process.exit(1)
}, maxMinutes * 60_000)

/** Runs `tasks` with at most `limit` at once, in order. */
const pool = async <T>(tasks: ReadonlyArray<() => Promise<T>>, limit: number): Promise<Array<T>> => {
  const out: Array<T> = []
  let next = 0
  const worker = async () => {
    while (next < tasks.length) {
      const i = next++
      out[i] = await tasks[i]!()
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker))
  return out
}

const main = async () => {
  prepareHost(log, { serf: systemIds.includes("serf") })
  const commit = revision()
  const loadBefore = (await import("node:os")).loadavg()
  const began = now()
  const scenarios = fullProfile.scenarios.filter((s) => scenarioIds.includes(s.id))
  const tasks: Array<() => Promise<ScenarioResult | undefined>> = []
  // Interleaved (N, repetition, scenario, system): a drift in the machine's load hits both systems alike.
  for (const n of sizes) {
    for (let rep = 1; rep <= repetitions; rep++) {
      for (const scenario of scenarios) {
        for (const id of systemIds) {
          if (!scenario.systems.includes(id)) continue
          tasks.push(async () => {
            const result = await runScenario(faultSystems[id], scenario, {
              n,
              rep,
              logDir,
              settleMs: fullProfile.settleMs,
              aftermathMs: fullProfile.aftermathMs,
              formationBoundMs: fullProfile.formationBoundMs,
              log
            })
            log(`${runsTable([result]).split("\n")[2]}  (${Math.round(result.wallMs / 1000)} s)`)
            return result
          })
        }
      }
    }
  }
  log(
    `${tasks.length} runs: N = ${sizes.join(", ")} × ${repetitions}; ${scenarioIds.join(", ")}; ${systemIds.join(", ")}`
  )
  const results = (await pool(tasks, parallel)).filter((r): r is ScenarioResult => r !== undefined)
  const durationSeconds = Math.round((now() - began) / 1000)
  const machine = describeMachine(loadBefore, commit)
  const markdown = [
    `Fault suite, full profile: ${systemIds.join(" and ")}, N = ${sizes.join(", ")}, ` +
      `${repetitions} repetition${repetitions === 1 ? "" : "s"}, ${parallel} scenario${parallel === 1 ? "" : "s"} at a time; ` +
      `shoal ${commit} (${getShoalRoot()}); ${machine.cpus} × ${machine.cpu}; load ${machine.loadBefore.join(" ")} → ` +
      `${machine.loadAfter.join(" ")}; ${durationSeconds} s.`,
    "",
    `Medians; "(k/n)": only k of n runs produced the figure. ${results.filter(passed).length}/${results.length} runs passed every check.`,
    "",
    mediansTable(results),
    "",
    relativeTargets(results),
    "",
    "Every run:",
    "",
    runsTable(results),
    "",
    failureDetails(results)
  ].join("\n")
  mkdirSync(dirname(outFile), { recursive: true })
  const json = {
    benchmark: "faults",
    command: `node bench/faults.ts ${argv.join(" ")}`.trim(),
    durationSeconds,
    machine,
    settings: { sizes, repetitions, scenarios: scenarioIds, systems: systemIds, parallel },
    results
  }
  writeFileSync(outFile, `${JSON.stringify(json, null, 2)}\n`)
  writeFileSync(outFile.replace(/\.json$/, ".md"), `${markdown}\n`)
  process.stdout.write(`${markdown}\n`)
  log(`\nwrote ${outFile} and ${outFile.replace(/\.json$/, ".md")}; agent logs in ${logDir}`)
}

main()
  .catch((error: unknown) => {
    log(`bench:faults failed: ${error instanceof Error ? error.message : String(error)}`)
    process.exitCode = 1
  })
  .finally(() => {
    clearTimeout(watchdog)
    cleanup()
  })
