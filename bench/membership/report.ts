/**
 * Medians over repetitions and the Markdown tables: each figure for every
 * system side by side, with the ratio shoal / Serf.
 */
import type { LossRun, MainRun } from "./scenarios.ts"
import type { SystemId } from "./systems.ts"

export const median = (xs: ReadonlyArray<number>): number | undefined => {
  if (xs.length === 0) return undefined
  const s = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

export interface Cell {
  /** Median over the repetitions that produced a value. */
  readonly value: number | undefined
  /** Repetitions that produced a value / repetitions run. */
  readonly of: readonly [number, number]
}

const cell = <R>(runs: ReadonlyArray<R>, pick: (run: R) => number | null | undefined): Cell => {
  const values = runs.map(pick).filter((v): v is number => typeof v === "number" && Number.isFinite(v))
  return { value: median(values), of: [values.length, runs.length] }
}

interface Metric<R> {
  readonly label: string
  readonly digits: number
  readonly pick: (run: R) => number | null | undefined
  /** Shown instead of a figure for a system that cannot produce it. */
  readonly notApplicable?: Partial<Record<SystemId, string>>
}

const seconds = (ms: number | null | undefined) => (typeof ms === "number" ? ms / 1000 : ms)

const mainMetrics: ReadonlyArray<Metric<MainRun>> = [
  { label: "Formation: joiners spawned → all see all N (s)", digits: 2, pick: (r) => seconds(r.formation.formationMs) },
  {
    label: "Join convergence: last joiner ready → all see all N (s)",
    digits: 2,
    pick: (r) => seconds(r.formation.afterLastReadyMs)
  },
  { label: "Agent start-up: spawn → ready (s)", digits: 2, pick: (r) => seconds(r.formation.startupMs) },
  { label: "Crash: first suspicion (s)", digits: 2, pick: (r) => seconds(r.crash?.firstSuspectMs) },
  { label: "Crash: first survivor declares it failed (s)", digits: 2, pick: (r) => seconds(r.crash?.firstMs) },
  { label: "Crash: all survivors declare it failed (s)", digits: 2, pick: (r) => seconds(r.crash?.allMs) },
  {
    label: "Graceful leave: all see it left (s)",
    digits: 2,
    pick: (r) => seconds(r.leave?.allMs),
    notApplicable: { "happn-swim": "no leave message" }
  },
  { label: "Idle CPU per node (% of one core)", digits: 2, pick: (r) => r.idle?.cpuPercentPerNode },
  { label: "Idle RSS per node (MiB)", digits: 1, pick: (r) => r.idle?.rssMiBPerNode },
  { label: "Idle UDP packets / s per node", digits: 1, pick: (r) => r.idle?.udpPacketsPerNodePerSec },
  { label: "Idle UDP bytes / s per node (IP length)", digits: 0, pick: (r) => r.idle?.udpBytesPerNodePerSec },
  { label: "Idle TCP bytes / s per node (push-pull)", digits: 0, pick: (r) => r.idle?.tcpBytesPerNodePerSec },
  { label: "False suspicions, no loss (formation → crash)", digits: 0, pick: (r) => r.falseSuspicions },
  { label: "False failures (events about live members)", digits: 0, pick: (r) => r.falseFailures }
]

const lossMetrics: ReadonlyArray<Metric<LossRun>> = [
  { label: "UDP packets actually dropped (%)", digits: 1, pick: (r) => r.measuredLossPercent },
  { label: "Suspicions raised (failed probes that accused a member)", digits: 0, pick: (r) => r.suspicionsRaised },
  {
    label: "Suspect events (summed over observers)",
    digits: 0,
    pick: (r) => r.suspectEvents,
    notApplicable: { serf: "not reported" }
  },
  {
    label: "Probes only the TCP fallback ping saved (Serf's log)",
    digits: 0,
    pick: (r) => r.tcpRescues,
    notApplicable: { shoal: "not reported", "happn-swim": "no fallback" }
  },
  {
    label: "TCP fallback pings answered (shoal's `streamPingAcks`)",
    digits: 0,
    pick: (r) => r.tcpPingAcks,
    notApplicable: { serf: "not reported", "happn-swim": "no fallback" }
  },
  { label: "Refutations", digits: 0, pick: (r) => r.refutations },
  {
    label: "Suspicion timeouts (local death declarations)",
    digits: 0,
    pick: (r) => r.deathsDeclared,
    notApplicable: { "happn-swim": "not reported" }
  },
  { label: "False failures (failed events about live members)", digits: 0, pick: (r) => r.falseFailureEvents },
  { label: "Live members declared failed (distinct)", digits: 0, pick: (r) => r.membersDeclaredFailed },
  { label: "Live members still held failed at the end of the window", digits: 0, pick: (r) => r.stillFailedAtEnd },
  { label: "Crash under loss: first survivor (s)", digits: 2, pick: (r) => seconds(r.crash?.firstMs) },
  { label: "Crash under loss: all survivors (s)", digits: 2, pick: (r) => seconds(r.crash?.allMs) }
]

const format = (c: Cell | undefined, digits: number, na?: string): string => {
  if (c === undefined) return "–"
  if (c.of[0] === 0) return na ?? (c.of[1] === 0 ? "–" : "none")
  const text = c.value!.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits })
  return c.of[0] < c.of[1] ? `${text} (${c.of[0]}/${c.of[1]})` : text
}

const ratio = (a: Cell | undefined, b: Cell | undefined): string => {
  if (a?.value === undefined || b?.value === undefined || a.of[0] === 0 || b.of[0] === 0) return "–"
  if (b.value === 0) return a.value === 0 ? "=" : "∞"
  return `${(a.value / b.value).toFixed(2)}`
}

const table = <R extends { readonly system: string; readonly n: number }>(
  runs: ReadonlyArray<R>,
  metrics: ReadonlyArray<Metric<R>>,
  systems: ReadonlyArray<SystemId>,
  sizes: ReadonlyArray<number>
): string => {
  // Other shoal configurations get their own ratio to Serf beside their column.
  const others = systems.filter((s) => s !== "shoal" && s !== "serf")
  const withRatio = (s: SystemId) => s.startsWith("shoal")
  const header = [
    "Figure (median)",
    "N",
    "shoal",
    "serf",
    "shoal / serf",
    ...others.flatMap((s) => (withRatio(s) ? [s, `${s} / serf`] : [s]))
  ]
  const lines = [`| ${header.join(" | ")} |`, `| ${header.map((_, i) => (i < 2 ? "---" : "---:")).join(" | ")} |`]
  for (const metric of metrics) {
    for (const n of sizes) {
      const cells = new Map<string, Cell>()
      for (const s of systems) {
        const mine = runs.filter((r) => r.system === s && r.n === n)
        if (mine.length > 0) cells.set(s, cell(mine, metric.pick))
      }
      if (cells.size === 0) continue
      const f = (s: SystemId) => format(cells.get(s), metric.digits, metric.notApplicable?.[withRatio(s) ? "shoal" : s])
      const row = [metric.label, String(n), f("shoal"), f("serf"), ratio(cells.get("shoal"), cells.get("serf"))]
      const rest = others.flatMap((s) => (withRatio(s) ? [f(s), ratio(cells.get(s), cells.get("serf"))] : [f(s)]))
      lines.push(`| ${[...row, ...rest].join(" | ")} |`)
    }
  }
  return lines.join("\n")
}

export const mainTable = (runs: ReadonlyArray<MainRun>, systems: ReadonlyArray<SystemId>) =>
  table(
    runs,
    mainMetrics,
    systems,
    [...new Set(runs.map((r) => r.n))].sort((a, b) => a - b)
  )

export const lossTable = (runs: ReadonlyArray<LossRun>, systems: ReadonlyArray<SystemId>) =>
  table(
    runs,
    lossMetrics,
    systems,
    [...new Set(runs.map((r) => r.n))].sort((a, b) => a - b)
  )

/** The medians in JSON form, keyed by system, N and figure. */
export const summary = (runs: ReadonlyArray<MainRun>, lossRuns: ReadonlyArray<LossRun>) => {
  const out: Record<string, Record<string, Record<string, number | null>>> = {}
  const add = <R extends { readonly system: string; readonly n: number }>(
    rs: ReadonlyArray<R>,
    metrics: ReadonlyArray<Metric<R>>,
    prefix: string
  ) => {
    for (const r of rs) {
      const key = `${prefix}N=${r.n}`
      const bySystem = (out[r.system] ??= {})
      if (bySystem[key] !== undefined) continue
      const mine = rs.filter((x) => x.system === r.system && x.n === r.n)
      bySystem[key] = Object.fromEntries(metrics.map((m) => [m.label, cell(mine, m.pick).value ?? null]))
    }
  }
  add(runs, mainMetrics, "")
  add(lossRuns, lossMetrics, "loss ")
  return out
}
