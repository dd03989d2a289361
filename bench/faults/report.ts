/**
 * The fault suite's tables: one row per scenario run (the quick profile), and
 * medians per scenario and N with shoal beside Serf and their ratio (the full
 * profile). Targets are printed beside the figures; they are never asserted.
 */
import { median } from "../membership/report.ts"
import { passed, type ScenarioResult } from "./runner.ts"

const sec = (ms: number | null | undefined) => (typeof ms === "number" ? (ms / 1000).toFixed(2) : "–")

/**
 * Heal → one view, when it means something: after a fault that was never
 * detected the view was never split, so the ~0 s "heal" says nothing and is
 * left out (undefined).
 */
const healFigure = (r: ScenarioResult): number | null | undefined =>
  r.detectedPairs !== "0/0" && r.detectionFirstMs === null ? undefined : r.healMs

const extraFigures = (r: ScenarioResult): string =>
  Object.entries(r.figures)
    .map(([k, v]) => `${k} ${v ?? "–"}`)
    .join(", ")

const verdict = (r: ScenarioResult): string => {
  if (passed(r)) return "pass"
  const failed = [...r.errors, ...r.checks.filter((c) => !c.ok).map((c) => `${c.name} (${c.detail})`)]
  return `FAIL: ${failed.join("; ")}`
}

const cells = (xs: ReadonlyArray<string>) => `| ${xs.join(" | ")} |`

/** One row per run: what the quick profile prints. */
export const runsTable = (results: ReadonlyArray<ScenarioResult>): string => {
  const header = [
    "scenario",
    "system",
    "N",
    "detection: first / all (s)",
    "heal → one view (s)",
    "suspicions of reachable members",
    "false failures",
    "other figures",
    "target (not asserted)",
    "result"
  ]
  return [
    cells(header),
    cells(header.map((_, i) => (i >= 2 && i <= 6 ? "---:" : "---"))),
    ...results.map((r) =>
      cells([
        r.scenario,
        r.system,
        String(r.n),
        r.detectedPairs === "0/0" ? "–" : `${sec(r.detectionFirstMs)} / ${sec(r.detectionAllMs)} (${r.detectedPairs})`,
        healFigure(r) === undefined ? `${sec(r.healMs)} (nothing was detected)` : sec(r.healMs),
        String(r.suspicionsOfReachable),
        String(r.falseFailures),
        extraFigures(r) || "–",
        r.target,
        verdict(r)
      ])
    )
  ].join("\n")
}

interface Figure {
  readonly label: string
  readonly pick: (r: ScenarioResult) => number | null | undefined
  readonly seconds: boolean
}

const figures: ReadonlyArray<Figure> = [
  { label: "detection, all observers (s)", pick: (r) => r.detectionAllMs, seconds: true },
  { label: "heal → one view (s)", pick: healFigure, seconds: true },
  { label: "suspicions of reachable members", pick: (r) => r.suspicionsOfReachable, seconds: false },
  { label: "false failures", pick: (r) => r.falseFailures, seconds: false },
  { label: "ghost: longest (s)", pick: (r) => r.figures.ghostMaxMs, seconds: true }
]

const medianCell = (runs: ReadonlyArray<ScenarioResult>, f: Figure) => {
  const values = runs.map(f.pick).filter((v): v is number => typeof v === "number")
  const m = median(values)
  return { value: m === undefined ? undefined : f.seconds ? m / 1000 : m, of: [values.length, runs.length] as const }
}

const show = (c: ReturnType<typeof medianCell>, digits: number) => {
  if (c.of[1] === 0) return "n/a"
  if (c.value === undefined) return "none"
  const text = c.value.toFixed(digits)
  return c.of[0] < c.of[1] ? `${text} (${c.of[0]}/${c.of[1]})` : text
}

const ratio = (a: ReturnType<typeof medianCell>, b: ReturnType<typeof medianCell>) => {
  if (a.value === undefined || b.value === undefined) return "–"
  if (b.value === 0) return a.value === 0 ? "=" : "∞"
  return (a.value / b.value).toFixed(2)
}

/** Medians per (scenario, N, figure): shoal, Serf, shoal / Serf, the checks passed, the target. */
export const mediansTable = (results: ReadonlyArray<ScenarioResult>): string => {
  const header = [
    "scenario",
    "N",
    "figure (median)",
    "shoal",
    "serf",
    "shoal / serf",
    "runs passed (shoal, serf)",
    "target"
  ]
  const lines = [cells(header), cells(header.map((_, i) => (i >= 3 && i <= 5 ? "---:" : "---")))]
  const keys = [...new Set(results.map((r) => `${r.scenario}\u0000${r.n}`))]
  for (const key of keys) {
    const [scenario, n] = key.split("\u0000") as [string, string]
    const mine = results.filter((r) => r.scenario === scenario && String(r.n) === n)
    const of = (system: string) => mine.filter((r) => r.system === system)
    const passes = (system: string) => {
      const rs = of(system)
      return rs.length === 0 ? "n/a" : `${rs.filter(passed).length}/${rs.length}`
    }
    let first = true
    for (const f of figures) {
      const [s, h] = [medianCell(of("shoal"), f), medianCell(of("serf"), f)]
      const untimed = f.label.startsWith("detection") && mine.every((r) => r.detectedPairs === "0/0")
      if (untimed || (s.of[0] === 0 && h.of[0] === 0 && f.label.startsWith("ghost"))) continue
      const digits = f.seconds ? 2 : 0
      lines.push(
        cells([
          scenario,
          n,
          f.label,
          show(s, digits),
          show(h, digits),
          ratio(s, h),
          `${passes("shoal")}, ${passes("serf")}`,
          first ? mine[0]!.target : ""
        ])
      )
      first = false
    }
  }
  return lines.join("\n")
}

/** The checks that failed, one line each, for the runs that failed. */
export const failureDetails = (results: ReadonlyArray<ScenarioResult>): string =>
  results
    .filter((r) => !passed(r))
    .map((r) => {
      const lines = [...r.errors, ...r.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`)]
      return `- ${r.scenario} (${r.system}, N = ${r.n}, rep ${r.rep}): ${lines.join("; ")}`
    })
    .join("\n")

/**
 * Targets stated relative to another scenario: the blackhole against the
 * SIGKILL (known failed by all within 1 s of it), per system and N, medians.
 */
export const relativeTargets = (results: ReadonlyArray<ScenarioResult>): string => {
  const lines: Array<string> = []
  const groups = [...new Set(results.map((r) => `${r.system}\u0000${r.n}`))]
  for (const group of groups) {
    const [system, n] = group.split("\u0000") as [string, string]
    const detection = (scenario: string) =>
      median(
        results
          .filter((r) => r.system === system && String(r.n) === n && r.scenario === scenario)
          .map((r) => r.detectionAllMs)
          .filter((v): v is number => v !== null)
      )
    const hole = detection("blackhole")
    const kill = detection("sigkill")
    if (!results.some((r) => r.system === system && r.scenario === "blackhole")) continue
    lines.push(
      `- ${system}, N = ${n}: blackhole known failed by all after ${sec(hole)} s, SIGKILL after ${sec(kill)} s` +
        (hole !== undefined && kill !== undefined ? `: ${sec(hole - kill)} s later` : "") +
        " (target: ≤ 1 s later)"
    )
  }
  return lines.join("\n")
}
