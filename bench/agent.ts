/**
 * `npm run bench:agent`: what one `shoal agent` process costs, beside
 * HashiCorp Serf measured in the same run, against the targets:
 *
 * | figure | how | target |
 * | --- | --- | --- |
 * | spawn → bound | one agent alone: spawn until it prints that it is bound (shoal: its `Started` line, printed once the UDP and TCP sockets are bound; Serf: "Log data will now stream in"), median of `--spawns` | ≤ 80 ms |
 * | all see all after the last spawn | N = 10: the seed first, then the 9 others spawned at once on this machine's cores, each joining through the seed; from the last spawn until every agent holds all 10 alive, median of `--reps` (as bench/membership's formation row) | ≤ 1.5 × Serf |
 * | idle CPU | that cluster after 5 s of quiet, over `--idle` seconds: utime + stime from /proc over wall time, mean per agent | ≤ 0.3 % of a core |
 * | idle RSS | `VmRSS` at the end of the idle window, mean per agent, with where it goes (anonymous memory vs. pages of the node binary and libraries, /proc/<pid>/smaps_rollup) | ≤ 55 MiB |
 *
 * Agents run as bench/membership runs them (`node bin/shoal.js agent
 * --format json`, `serf agent -profile=lan`, default timings), on
 * 127.0.0.1 directly rather than in a network namespace: nothing here counts
 * packets, so no root and no nftables. The CLI bundle is built first
 * (`npm run bench:agent` runs `build:cli`). Serf is installed with apt-get
 * when missing (root only); without it the Serf column is skipped.
 *
 * `--profile` also writes a CPU profile of one agent's start-up
 * (`--cpu-prof`) and a heap snapshot of an idle agent to `.tmp/agent-profile/`,
 * and prints the start-up profile's top entries.
 */
import { execFileSync } from "node:child_process"
import { mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs"
import { parseArgs } from "node:util"
import { agentEnv } from "../test/fixtures/agent-env.ts"
import { revision } from "./machine.ts"
import { Cluster, liveProcesses, now, sleep } from "./membership/cluster.ts"
import { commandExists, cpuSeconds, type Netns, rssKiB } from "./membership/host.ts"
import { type MembershipSystem, nodeBinary, serf, setShoalRoot, shoal } from "./membership/systems.ts"

const { values: options } = parseArgs({
  options: {
    spawns: { type: "string", default: "15" },
    reps: { type: "string", default: "3" },
    size: { type: "string", default: "10" },
    idle: { type: "string", default: "20" },
    "base-port": { type: "string", default: "17400" },
    systems: { type: "string", default: "shoal,serf" },
    profile: { type: "boolean", default: false },
    "shoal-root": { type: "string" },
    help: { type: "boolean", default: false }
  }
})
if (options.help) {
  console.log(
    "npm run bench:agent -- [--spawns 15] [--reps 3] [--size 10] [--idle 20] [--base-port 17400] [--systems shoal,serf] [--profile] [--shoal-root DIR]"
  )
  process.exit(0)
}

const root = new URL("../", import.meta.url).pathname
// Another checkout's bin/shoal.js (e.g. an older commit, its bundle built) for a before/after comparison.
if (options["shoal-root"] !== undefined) setShoalRoot(options["shoal-root"])
const SPAWNS = Number(options.spawns)
const REPS = Number(options.reps)
const N = Number(options.size)
const IDLE_MS = Number(options.idle) * 1000
const BASE_PORT = Number(options["base-port"])

/** bench/membership's shoal agent without its once-a-second Stats line: a plain `shoal agent`. */
const shoalAgent: MembershipSystem = {
  ...shoal,
  command: (spec) => {
    const [binary, args] = shoal.command(spec)
    const plain = [...args]
    const at = plain.indexOf("--stats-interval")
    if (at >= 0) plain.splice(at, 2)
    return [binary, plain]
  }
}

const available: Record<string, MembershipSystem> = { shoal: shoalAgent, serf }

const ensureSerf = (): boolean => {
  if (commandExists("serf")) return true
  if (process.getuid?.() !== 0 || !commandExists("apt-get")) return false
  console.error("installing serf with apt-get …")
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" }
  execFileSync("apt-get", ["update"], { stdio: "inherit", timeout: 300_000, env })
  execFileSync("apt-get", ["install", "-y", "serf"], { stdio: "inherit", timeout: 600_000, env })
  return commandExists("serf")
}

/** Runs commands as they are: the agents share the host's loopback. */
const direct = { wrap: (cmd: string, args: ReadonlyArray<string>) => [cmd, [...args]] } as unknown as Netns

const median = (xs: ReadonlyArray<number>): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0 ? Number.NaN : s[Math.floor((s.length - 1) / 2)]!
}

const logDir = `${root}.tmp/bench-agent-logs`
rmSync(logDir, { recursive: true, force: true })
mkdirSync(logDir, { recursive: true })

let portCursor = BASE_PORT
const nextPorts = (count: number) => {
  const base = portCursor
  portCursor += count * 2 + 4
  return base
}

const stopAll = () => {
  for (const child of liveProcesses) child.kill("SIGKILL")
}
process.on("SIGINT", () => {
  stopAll()
  process.exit(130)
})

/** spawn → ready of one agent alone, `SPAWNS` times. */
const spawnToBound = async (system: MembershipSystem): Promise<ReadonlyArray<number>> => {
  const times: Array<number> = []
  for (let i = 0; i < SPAWNS; i++) {
    const cluster = new Cluster({ system, netns: direct, size: 1, basePort: nextPorts(1), logDir })
    const agent = cluster.spawn(0)
    const ready = await cluster.waitUntil(() => agent.readyAt !== undefined, 10_000)
    if (ready === undefined || agent.readyAt === undefined) throw new Error(`${system.id}: no ready line within 10 s`)
    times.push(agent.readyAt - agent.spawnedAt)
    await cluster.stop()
    await sleep(100)
  }
  return times
}

interface FormationRun {
  readonly afterLastSpawnMs: number
  readonly idleCpuPercent: number | undefined
  readonly idleRssMiB: number | undefined
  readonly rssBreakdown: { readonly anonMiB: number; readonly fileMiB: number } | undefined
}

const smapsRollup = (pid: number) => {
  try {
    const text = readFileSync(`/proc/${pid}/smaps_rollup`, "utf8")
    const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? Number.NaN)
    return { anonMiB: field("Anonymous") / 1024, fileMiB: (field("Rss") - field("Anonymous")) / 1024 }
  } catch {
    return undefined
  }
}

/** N agents: the seed, then N − 1 at once; formation from the last spawn; on the first repetition, idle cost. */
const formation = async (system: MembershipSystem, measureIdle: boolean): Promise<FormationRun> => {
  const cluster = new Cluster({ system, netns: direct, size: N, basePort: nextPorts(N), logDir })
  try {
    const seed = cluster.spawn(0)
    if ((await cluster.waitUntil(() => seed.readyAt !== undefined, 10_000)) === undefined) {
      throw new Error(`${system.id}: the seed never became ready`)
    }
    await sleep(300)
    for (let i = 1; i < N; i++) cluster.spawn(i)
    const lastSpawn = now()
    const names = cluster.agents.map((a) => a.name)
    const allSeeAll = () =>
      cluster.agents.every((a) => names.every((name) => name === a.name || a.view.get(name) === "alive"))
    const at = await cluster.waitUntil(allSeeAll, 30_000)
    if (at === undefined) throw new Error(`${system.id}: the cluster did not form within 30 s`)
    const result = { afterLastSpawnMs: at - lastSpawn }
    if (!measureIdle) return { ...result, idleCpuPercent: undefined, idleRssMiB: undefined, rssBreakdown: undefined }
    await sleep(5_000)
    const pids = cluster.agents.map((a) => a.pid)
    const cpu0 = pids.map((pid) => cpuSeconds(pid) ?? Number.NaN)
    const t0 = now()
    await sleep(IDLE_MS)
    const wall = (now() - t0) / 1000
    const cpu = pids.map((pid, i) => (((cpuSeconds(pid) ?? Number.NaN) - cpu0[i]!) / wall) * 100)
    const rss = pids.map((pid) => (rssKiB(pid) ?? Number.NaN) / 1024)
    const breakdowns = pids.map(smapsRollup).filter((b) => b !== undefined)
    return {
      ...result,
      idleCpuPercent: cpu.reduce((a, b) => a + b, 0) / cpu.length,
      idleRssMiB: rss.reduce((a, b) => a + b, 0) / rss.length,
      rssBreakdown:
        breakdowns.length === 0
          ? undefined
          : {
              anonMiB: breakdowns.reduce((a, b) => a + b.anonMiB, 0) / breakdowns.length,
              fileMiB: breakdowns.reduce((a, b) => a + b.fileMiB, 0) / breakdowns.length
            }
    }
  } finally {
    await cluster.stop()
  }
}

/** A start-up CPU profile and a heap snapshot of an idle agent, summarised. */
const profile = async () => {
  const dir = `${root}.tmp/agent-profile`
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir, { recursive: true })
  const { spawn } = await import("node:child_process")
  const child = spawn(
    nodeBinary,
    [
      "--cpu-prof",
      `--cpu-prof-dir=${dir}`,
      "--cpu-prof-interval=100",
      "--heapsnapshot-signal=SIGUSR2",
      `${root}bin/shoal.js`,
      "agent",
      "--bind",
      "127.0.0.1:0",
      "--format",
      "json"
    ],
    { cwd: dir, stdio: "ignore", env: agentEnv }
  )
  await sleep(5_000)
  child.kill("SIGUSR2")
  await sleep(3_000)
  child.kill("SIGINT")
  await new Promise((resolve) => child.once("exit", resolve))
  const file = readdirSync(dir).find((f) => f.endsWith(".cpuprofile"))
  const snapshot = readdirSync(dir).find((f) => f.endsWith(".heapsnapshot"))
  if (file === undefined) return
  const p = JSON.parse(readFileSync(`${dir}/${file}`, "utf8")) as {
    nodes: Array<{ id: number; callFrame: { functionName: string; url: string }; children?: Array<number> }>
    samples: Array<number>
    timeDeltas: Array<number>
  }
  const byId = new Map(p.nodes.map((n) => [n.id, n]))
  const parent = new Map<number, number>()
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  // The first 300 ms of samples: start-up. Attribute each to a phase by its stack.
  const phases = new Map<string, number>()
  let t = 0
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i]! / 1000
    if (t > 300) break
    const stack: Array<string> = []
    for (let id: number | undefined = p.samples[i]; id !== undefined; id = parent.get(id)) {
      const frame = byId.get(id)!.callFrame
      stack.push(`${frame.functionName} ${frame.url}`)
    }
    const joined = stack.join("\n")
    const phase = joined.includes("(idle)")
      ? "idle (waiting for I/O)"
      : joined.includes("(garbage collector)")
        ? "garbage collection"
        : /compileSourceTextModule|compileForInternalLoader|\(program\)/.test(joined)
          ? "compiling (the bundle, Node's own modules) and V8 internals"
          : joined.includes("shoal.mjs")
            ? joined.includes("emitListeningNT") || joined.includes("processTicksAndRejections")
              ? "running: after the sockets bound (join, watch, first output)"
              : "evaluating the bundle and running the CLI up to binding"
            : "Node start-up and the rest"
    phases.set(phase, (phases.get(phase) ?? 0) + p.timeDeltas[i]! / 1000)
  }
  console.log(`\nstart-up CPU profile (${dir}/${file}, first 300 ms):`)
  for (const [phase, ms] of [...phases].sort((a, b) => b[1] - a[1]))
    console.log(`  ${ms.toFixed(1).padStart(6)} ms  ${phase}`)
  if (snapshot !== undefined) {
    const heap = JSON.parse(readFileSync(`${dir}/${snapshot}`, "utf8")) as {
      snapshot: { meta: { node_fields: Array<string>; node_types: [Array<string>] } }
      nodes: Array<number>
      strings: Array<string>
    }
    const fields = heap.snapshot.meta.node_fields
    const width = fields.length
    const typeAt = fields.indexOf("type")
    const nameAt = fields.indexOf("name")
    const sizeAt = fields.indexOf("self_size")
    const types = heap.snapshot.meta.node_types[0]
    const byType = new Map<string, number>()
    const byName = new Map<string, number>()
    let total = 0
    for (let i = 0; i < heap.nodes.length; i += width) {
      const type = types[heap.nodes[i + typeAt]!]!
      const size = heap.nodes[i + sizeAt]!
      total += size
      byType.set(type, (byType.get(type) ?? 0) + size)
      if (type === "object" || type === "closure") {
        const name = heap.strings[heap.nodes[i + nameAt]!]!
        byName.set(name, (byName.get(name) ?? 0) + size)
      }
    }
    console.log(
      `\nheap snapshot of the idle agent (${dir}/${snapshot}): ${(total / 1048576).toFixed(1)} MiB of objects`
    )
    for (const [type, size] of [...byType].sort((a, b) => b[1] - a[1]).slice(0, 8)) {
      console.log(`  ${(size / 1048576).toFixed(2).padStart(6)} MiB  ${type}`)
    }
    console.log("  largest object kinds:")
    for (const [name, size] of [...byName].sort((a, b) => b[1] - a[1]).slice(0, 8)) {
      console.log(`  ${(size / 1048576).toFixed(2).padStart(6)} MiB  ${name}`)
    }
  }
}

const systems = options.systems.split(",").filter((id) => {
  if (available[id] === undefined) throw new Error(`unknown system ${id} (shoal, serf)`)
  if (id === "serf" && !ensureSerf()) {
    console.error("serf is not installed (and cannot be installed here): skipping its column")
    return false
  }
  return true
})

const load = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")
console.log(
  `bench:agent on ${revision()}, node ${execFileSync(nodeBinary, ["--version"], { encoding: "utf8" }).trim()}, load ${load}`
)
console.log(`N = ${N}, ${SPAWNS} single spawns, ${REPS} formations, idle window ${IDLE_MS / 1000} s\n`)

interface Row {
  readonly spawn: number
  readonly formation: number
  readonly formations: ReadonlyArray<number>
  readonly idle: FormationRun
}
const rows = new Map<string, Row>()
try {
  for (const id of systems) {
    const system = available[id]!
    const spawns = await spawnToBound(system)
    const runs: Array<FormationRun> = []
    for (let rep = 0; rep < REPS; rep++) runs.push(await formation(system, rep === 0))
    const row = {
      spawn: median(spawns),
      formation: median(runs.map((r) => r.afterLastSpawnMs)),
      formations: runs.map((r) => r.afterLastSpawnMs),
      idle: runs[0]!
    }
    rows.set(id, row)
    console.log(
      `${id}: spawn → bound ${row.spawn.toFixed(1)} ms (min ${Math.min(...spawns).toFixed(1)}, max ${Math.max(...spawns).toFixed(1)}); ` +
        `all see all after the last spawn ${row.formations.map((f) => f.toFixed(0)).join(" / ")} ms; ` +
        `idle ${row.idle.idleCpuPercent?.toFixed(2)} % CPU, ${row.idle.idleRssMiB?.toFixed(1)} MiB RSS` +
        (row.idle.rssBreakdown === undefined
          ? ""
          : ` (anonymous ${row.idle.rssBreakdown.anonMiB.toFixed(1)}, file-backed ${row.idle.rssBreakdown.fileMiB.toFixed(1)})`)
    )
  }
} finally {
  stopAll()
}

const s = rows.get("shoal")
const f = rows.get("serf")
const ratio = (a: number | undefined, b: number | undefined) =>
  a === undefined || b === undefined || b === 0 ? "–" : (a / b).toFixed(2)
const verdict = (ok: boolean | undefined) => (ok === undefined ? "–" : ok ? "met" : "missed")
if (s !== undefined) {
  console.log("\n| figure | shoal | Serf | shoal / Serf | target | result |")
  console.log("| --- | ---: | ---: | ---: | --- | --- |")
  console.log(
    `| one agent: spawn → bound (median of ${SPAWNS}) | ${s.spawn.toFixed(0)} ms | ${f?.spawn.toFixed(0) ?? "–"} ms | ${ratio(s.spawn, f?.spawn)} | ≤ 80 ms | ${verdict(s.spawn <= 80)} |`
  )
  console.log(
    `| N = ${N}: all see all after the last spawn (median of ${REPS}) | ${s.formation.toFixed(0)} ms | ${f?.formation.toFixed(0) ?? "–"} ms | ${ratio(s.formation, f?.formation)} | ≤ 1.5 × Serf | ${verdict(f === undefined ? undefined : s.formation <= 1.5 * f.formation)} |`
  )
  console.log(
    `| N = ${N}: idle CPU per agent | ${s.idle.idleCpuPercent?.toFixed(2)} % | ${f?.idle.idleCpuPercent?.toFixed(2) ?? "–"} % | ${ratio(s.idle.idleCpuPercent, f?.idle.idleCpuPercent)} | ≤ 0.3 % | ${verdict(s.idle.idleCpuPercent === undefined ? undefined : s.idle.idleCpuPercent <= 0.3)} |`
  )
  console.log(
    `| N = ${N}: idle RSS per agent | ${s.idle.idleRssMiB?.toFixed(1)} MiB | ${f?.idle.idleRssMiB?.toFixed(1) ?? "–"} MiB | ${ratio(s.idle.idleRssMiB, f?.idle.idleRssMiB)} | ≤ 55 MiB | ${verdict(s.idle.idleRssMiB === undefined ? undefined : s.idle.idleRssMiB <= 55)} |`
  )
}
if (options.profile) await profile()
