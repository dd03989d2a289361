/**
 * Real processes, side by side: shoal agents against HashiCorp Serf agents
 * (and happn-swim when installed) on this machine, with the same timing
 * profile (memberlist's LAN defaults, which are shoal's defaults too). A
 * fourth column, shoal-fast, keeps the probe interval, ping timeout and
 * gossip but halves the suspicion floor while demanding the same two
 * independent confirmations (see systems.ts).
 *
 *   npm run bench:membership             # N = 5, 10, 25 × 3 repetitions, plus 10 % loss at N = 10
 *   npm run bench:membership -- --quick  # smoke test: N = 5, one repetition, short loss window
 *   node bench/membership.ts 5 10 --reps 5 --systems shoal,serf --no-loss
 *
 * Must run as root: it installs serf, nftables and iproute2 with apt-get when
 * missing, and runs every agent inside a network namespace it creates with
 * only `lo` (so the nftables byte counters see nothing but the agents'
 * traffic, and the loss rule touches nothing else), deleted at the end, on
 * failure and on SIGINT/SIGTERM. One system runs at a time.
 *
 * Per system, N and repetition (a fresh cluster each time): formation, idle
 * cost over a window, a SIGKILLed member's detection, a SIGINTed member's
 * leave. Then at N = 10, a window at 10 % random UDP loss (nftables
 * `numgen random mod 100 < 10 drop`) with nobody failing, and a crash under
 * that loss. Results: a Markdown table on stdout and beside the JSON (raw
 * per-repetition data, the machine, the load average).
 *
 * A benchmark, not a test: it prints figures, it asserts nothing.
 */

import { execFileSync } from "node:child_process"
import { existsSync, mkdirSync, writeFileSync } from "node:fs"
import { dirname, resolve } from "node:path"
import { liveProcesses, now } from "./membership/cluster.ts"
import { describeMachine, ensureTools, loadAverage, Netns } from "./membership/host.ts"
import { lossTable, mainTable, summary } from "./membership/report.ts"
import { type LossRun, type MainRun, type RunOptions, runLoss, runMain } from "./membership/scenarios.ts"
import {
  getShoalRoot,
  happnSwimInstalled,
  nodeBinary,
  type SystemId,
  setShoalRoot,
  systems
} from "./membership/systems.ts"

// --- arguments ---

const argv = process.argv.slice(2)
const flag = (name: string): string | undefined => {
  const i = argv.indexOf(`--${name}`)
  if (i < 0) return undefined
  const next = argv[i + 1]
  return next === undefined || next.startsWith("--") ? "" : next
}
const has = (name: string) => argv.includes(`--${name}`)
const numbers = (text: string | undefined) =>
  text === undefined || text === ""
    ? undefined
    : text
        .split(",")
        .map(Number)
        .filter((x) => Number.isFinite(x))
const positional = argv.filter((a, i) => /^\d+$/.test(a) && !(argv[i - 1] ?? "").startsWith("--")).map(Number)

if (has("help") || has("h")) {
  process.stdout.write(
    [
      "usage: node bench/membership.ts [N …] [options]",
      "  --quick               N = 5, one repetition, 20 s loss window at N = 5 (smoke test)",
      "  --n 5,10,25           cluster sizes (or as positional numbers)",
      "  --reps 3              repetitions per system and size (medians reported)",
      "  --systems a,b         among shoal, shoal-fast, serf, happn-swim (default: all installed)",
      "  --idle 20             idle window, seconds",
      "  --settle 5            wait after formation before measuring, seconds",
      "  --loss 10             loss percent of the loss variant",
      "  --loss-n 10           cluster size of the loss variant",
      "  --loss-window 90      loss window, seconds",
      "  --loss-reps 1         repetitions of the loss variant",
      "  --no-loss             skip the loss variant",
      "  --no-main             only the loss variant",
      "  --out FILE            JSON output (the Markdown goes beside it, .md)",
      "  --logs DIR            agent logs (default .tmp/bench-membership-logs)",
      "  --max-minutes 45      abort (and clean up) after this long",
      "  --shoal-root DIR      run bin/shoal.js of another checkout (e.g. a clean worktree)",
      ""
    ].join("\n")
  )
  process.exit(0)
}

const quick = has("quick")
const sizes = numbers(flag("n")) ?? (positional.length > 0 ? positional : quick ? [5] : [5, 10, 25])
const reps = Number(flag("reps") ?? (quick ? 1 : 3))
const idleSeconds = Number(flag("idle") ?? 20)
const settleSeconds = Number(flag("settle") ?? 5)
const lossPercent = Number(flag("loss") ?? 10)
const lossN = Number(flag("loss-n") ?? (quick ? 5 : 10))
const lossWindowSeconds = Number(flag("loss-window") ?? (quick ? 20 : 90))
const lossReps = Number(flag("loss-reps") ?? 1)
const withLoss = !has("no-loss")
const withMain = !has("no-main")
const outFile = flag("out") || (quick ? ".tmp/membership-quick.json" : "bench/results/membership.json")
const logRoot = flag("logs") || ".tmp/bench-membership-logs"
const maxMinutes = Number(flag("max-minutes") ?? 45)
if (flag("shoal-root")) setShoalRoot(resolve(flag("shoal-root")!))

const log = (line: string) => process.stderr.write(`${line}\n`)

const requested = (flag("systems") || "shoal,shoal-fast,serf,happn-swim")
  .split(",")
  .map((s) => s.trim()) as Array<SystemId>
for (const s of requested) {
  if (!(s in systems)) throw new Error(`unknown system ${s} (${Object.keys(systems).join(", ")})`)
}
const notes: Array<string> = []
const chosen = requested.filter((s) => {
  if (s !== "happn-swim" || happnSwimInstalled()) return true
  notes.push("happn-swim is not installed (npm devDependency): its column is skipped")
  return false
})
if (Math.max(...sizes, lossN) > 200) throw new Error("N above 200 is not supported by the port plan")

// --- cleanup ---

let netns: Netns | undefined
const cleanup = () => {
  for (const child of liveProcesses) {
    try {
      child.kill("SIGKILL")
    } catch {
      // already gone
    }
  }
  netns?.delete()
}
process.on("exit", cleanup)
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.on(signal, () => {
    log(`\n${signal}: stopping every agent and deleting the namespace`)
    cleanup()
    process.exit(130)
  })
}
const watchdog = setTimeout(() => {
  log(`aborting: the run took longer than ${maxMinutes} minutes (--max-minutes)`)
  cleanup()
  process.exit(1)
}, maxMinutes * 60_000)

// --- run ---

const main = async () => {
  ensureTools(log)
  const machine = describeMachine(nodeBinary)
  const git = (args: ReadonlyArray<string>) => {
    try {
      return execFileSync("git", ["-C", getShoalRoot(), ...args], { encoding: "utf8", timeout: 10_000 }).trim()
    } catch {
      return "unknown"
    }
  }
  const shoalVersion = {
    root: getShoalRoot(),
    commit: git(["rev-parse", "HEAD"]),
    // Uncommitted changes under src/ or bin/ mean the figures are not those of the commit.
    dirty: git(["status", "--porcelain", "--", "src", "bin"]) !== "",
    // bin/shoal.js runs the rolldown bundle when `npm run build` made one, else the TypeScript sources.
    cli: existsSync(`${getShoalRoot()}dist/shoal.mjs`) && process.env.SHOAL_FROM_SOURCE !== "1" ? "bundle" : "sources"
  }
  const loadBefore = loadAverage()
  const began = now()
  netns = Netns.create()
  log(`namespace ${netns.name}; systems ${chosen.join(", ")}; N = ${sizes.join(", ")} × ${reps}; load ${loadBefore}`)
  const logDir = `${logRoot}/${new Date().toISOString().replace(/[:.]/g, "-")}`
  mkdirSync(logDir, { recursive: true })
  const block = Math.max(100, 2 * Math.max(...sizes, lossN) + 10)
  let runIndex = 0
  const options = (): RunOptions => ({
    netns: netns!,
    basePort: 20_000 + ((runIndex++ * block) % 40_000),
    logDir,
    settleMs: settleSeconds * 1000,
    idleMs: idleSeconds * 1000,
    timeouts: { ready: 30_000, formation: 90_000, crash: 60_000, leave: 30_000 }
  })

  const runs: Array<MainRun> = []
  // Interleaved (N, repetition, system), so a drift in the machine's load hits every system alike.
  for (const n of withMain ? sizes : []) {
    for (let rep = 1; rep <= reps; rep++) {
      for (const id of chosen) {
        const started = now()
        const run = await runMain(systems[id], n, rep, options())
        runs.push(run)
        const f = (ms: number | null | undefined) => (typeof ms === "number" ? `${(ms / 1000).toFixed(2)}s` : "–")
        log(
          `${id.padEnd(10)} N=${String(n).padStart(3)} rep ${rep}: formation ${f(run.formation.formationMs)}, ` +
            `crash ${f(run.crash?.firstMs)}/${f(run.crash?.allMs)}, leave ${f(run.leave?.allMs)}, ` +
            `cpu ${run.idle?.cpuPercentPerNode.toFixed(2) ?? "–"}%, ` +
            `udp ${run.idle?.udpBytesPerNodePerSec.toFixed(0) ?? "–"} B/s/node ` +
            `(${((now() - started) / 1000).toFixed(0)}s)${run.errors.length > 0 ? `  ! ${run.errors.join("; ")}` : ""}`
        )
      }
    }
  }

  const lossRuns: Array<LossRun> = []
  if (withLoss) {
    for (let rep = 1; rep <= lossReps; rep++) {
      for (const id of chosen) {
        const started = now()
        let run: LossRun
        try {
          run = await runLoss(systems[id], lossN, rep, lossPercent, lossWindowSeconds * 1000, options())
        } catch (error) {
          const message = error instanceof Error ? error.message : String(error)
          notes.push(`${id}, ${lossPercent} % loss, rep ${rep}: ${message}`)
          log(`${id} loss rep ${rep} failed: ${message}`)
          continue
        }
        lossRuns.push(run)
        log(
          `${id.padEnd(10)} ${lossPercent}% loss N=${lossN} rep ${rep}: suspicions ${run.suspicionsRaised}, ` +
            `refutations ${run.refutations}, false failures ${run.falseFailureEvents}, ` +
            `crash ${run.crash?.firstMs ?? "–"}/${run.crash?.allMs ?? "–"} ms ` +
            `(${((now() - started) / 1000).toFixed(0)}s)${run.errors.length > 0 ? `  ! ${run.errors.join("; ")}` : ""}`
        )
      }
    }
  }

  const loadAfter = loadAverage()
  const durationSeconds = Math.round((now() - began) / 1000)
  const markdown = [
    `Machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, Linux ${machine.kernel}; ` +
      `agents on Node ${machine.agentNode}, serf ${machine.serfPackage} (reports "${machine.serf}"), ` +
      `shoal ${shoalVersion.commit.slice(0, 7)}${shoalVersion.dirty ? " with uncommitted changes" : ""} ` +
      `(CLI from the ${shoalVersion.cli === "bundle" ? "dist/ bundle" : "TypeScript sources"}). ` +
      `Load average before ${loadBefore.join(" ")}, after ${loadAfter.join(" ")}; run took ${durationSeconds} s.`,
    "",
    ...(runs.length === 0
      ? []
      : [
          `Medians of ${reps} repetition${reps === 1 ? "" : "s"}; "(k/n)": only k of n repetitions produced the figure.`,
          "",
          mainTable(runs, chosen)
        ]),
    ...(lossRuns.length === 0
      ? []
      : [
          "",
          `${lossPercent} % random UDP loss, N = ${lossN}, ${lossWindowSeconds} s window with no member failing ` +
            `(every suspicion and failure is false), then one SIGKILL under the same loss` +
            `${lossReps === 1 ? " (one repetition)" : ` (medians of ${lossReps})`}:`,
          "",
          lossTable(lossRuns, chosen)
        ]),
    ...(notes.length === 0 ? [] : ["", ...notes.map((n) => `Note: ${n}`)])
  ].join("\n")

  const results = {
    benchmark: "membership",
    command: `node bench/membership.ts ${argv.join(" ")}`.trim(),
    date: new Date().toISOString(),
    durationSeconds,
    machine: { ...machine, loadBefore, loadAfter },
    shoal: shoalVersion,
    settings: {
      sizes,
      reps,
      idleSeconds,
      settleSeconds,
      lossPercent,
      lossN,
      lossWindowSeconds,
      lossReps,
      systems: chosen,
      timingProfile:
        "memberlist LAN defaults for shoal and serf: probe 1 s, ping timeout 500 ms, 3 indirect checks, gossip 200 ms to 3, " +
        "suspicion mult 4 (max 6×), retransmit mult 4, push-pull 30 s; happn-swim: probe 1 s, ping 500 ms, ping-req 500 ms, " +
        "3 helpers, suspicion timeout 10 ms (library default, not configurable)"
    },
    notes,
    summary: summary(runs, lossRuns),
    runs,
    lossRuns
  }
  mkdirSync(dirname(outFile), { recursive: true })
  writeFileSync(outFile, `${JSON.stringify(results, null, 2)}\n`)
  writeFileSync(`${outFile.replace(/\.json$/, "")}.md`, `${markdown}\n`)
  process.stdout.write(`${markdown}\n`)
  log(`\nwrote ${outFile} and ${outFile.replace(/\.json$/, "")}.md; agent logs in ${logDir}`)
}

main()
  .catch((error: unknown) => {
    log(`bench:membership failed: ${error instanceof Error ? error.message : String(error)}`)
    process.exitCode = 1
  })
  .finally(() => {
    clearTimeout(watchdog)
    cleanup()
  })
