/**
 * The simulation's charts, rendered to SVG with Vega-Lite (compiled to a Vega
 * spec, then `View.toSVG()` with no renderer: headless, no browser, no
 * canvas). Measured figures are solid lines with points; models and fits are
 * dashed lines.
 *
 *   npx node bench/sim/charts.ts                 # redraw from bench/results/sim.json
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { parse, View } from "vega"
import { compile, type TopLevelSpec } from "vega-lite"
import type { LossRow, SimResults, SizeRow } from "../sim.ts"
import { allDetectionMillis, disseminationMillis, firstDetectionMillis, fitLog, fitPower } from "./theory.ts"

interface Point {
  readonly x: number
  readonly y: number
  readonly series: string
  readonly kind: "measured" | "model"
  /** A measured series and its model or fit share a hue. */
  readonly color: string
}

const BLUE = "#1f77b4"
const ORANGE = "#ff7f0e"
const GREEN = "#2ca02c"
const RED = "#d62728"
const PURPLE = "#9467bd"
const GRAY = "#7f7f7f"

const render = async (spec: TopLevelSpec): Promise<string> => {
  const view = new View(parse(compile(spec).spec), { renderer: "none" })
  const svg = await view.toSVG()
  view.finalize()
  return svg
}

/** N values for drawing a smooth model curve between the smallest and the largest measured N. */
const span = (ns: ReadonlyArray<number>): Array<number> => {
  const lo = Math.min(...ns)
  const hi = Math.max(...ns)
  const out: Array<number> = []
  for (let i = 0; i <= 40; i++) out.push(Math.round(lo * (hi / lo) ** (i / 40)))
  return [...new Set(out)]
}

const measured = (
  rows: ReadonlyArray<SizeRow>,
  series: string,
  color: string,
  pick: (r: SizeRow) => number | undefined
) =>
  rows.flatMap((r): Array<Point> => {
    const ms = pick(r)
    return ms === undefined ? [] : [{ x: r.n, y: ms / 1000, series, kind: "measured", color }]
  })

const curve = (ns: ReadonlyArray<number>, series: string, color: string, f: (n: number) => number): Array<Point> =>
  ns.map((n) => ({ x: n, y: f(n) / 1000, series, kind: "model", color }))

/** `a + b·log10 N` fitted to a measured series, as a dashed curve named with its coefficients. */
const fitted = (points: ReadonlyArray<Point>, label: string, ns: ReadonlyArray<number>): Array<Point> => {
  const fit = fitLog(points.map((p) => [p.x, p.y] as const))
  if (fit === undefined || points[0] === undefined) return []
  const series = `least-squares fit to ${label}: ${fit.a.toFixed(2)} + ${fit.b.toFixed(2)}·log₁₀N s`
  const color = points[0].color
  return ns.map((n) => ({ x: n, y: fit.a + fit.b * Math.log10(n), series, kind: "model", color }))
}

const lineChart = (
  title: string,
  subtitle: ReadonlyArray<string>,
  points: ReadonlyArray<Point>,
  x: { readonly title: string; readonly log: boolean },
  y: { readonly title: string; readonly symlog?: boolean; readonly log?: boolean }
): TopLevelSpec => {
  const xMin = Math.min(...points.map((p) => p.x))
  const xMax = Math.max(...points.map((p) => p.x))
  const domain: Array<string> = []
  const range: Array<string> = []
  for (const p of points) {
    if (!domain.includes(p.series)) {
      domain.push(p.series)
      range.push(p.color)
    }
  }
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: { text: title, subtitle: [...subtitle], anchor: "start" },
    width: 560,
    height: 320,
    background: "white",
    data: { values: points as Array<Point> },
    encoding: {
      x: {
        field: "x",
        type: "quantitative",
        title: x.title,
        scale: x.log ? { type: "log", domain: [xMin, xMax], nice: false } : { zero: true },
        axis: x.log ? { values: [10, 20, 50, 100, 200, 500, 1000, 2000, 5000], format: "d" } : {}
      },
      y: {
        field: "y",
        type: "quantitative",
        title: y.title,
        scale: y.symlog === true ? { type: "symlog" } : y.log === true ? { type: "log" } : { zero: true },
        axis:
          y.symlog === true
            ? { values: [0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000] }
            : y.log === true
              ? { values: [0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500] }
              : {}
      },
      color: {
        field: "series",
        type: "nominal",
        title: null,
        scale: { domain, range },
        legend: { orient: "bottom", direction: "vertical", labelLimit: 640 }
      }
    },
    layer: [
      {
        transform: [{ filter: "datum.kind === 'measured'" }],
        mark: { type: "line", point: { size: 50 }, strokeWidth: 2 }
      },
      {
        transform: [{ filter: "datum.kind === 'model'" }],
        mark: { type: "line", strokeDash: [6, 4], strokeWidth: 1.5 }
      }
    ]
  }
}

/** Removes what only a top-level spec may carry, to nest a chart in a concatenation. */
const nested = (spec: TopLevelSpec) => {
  const { $schema: _, background: __, ...rest } = spec as unknown as Record<string, unknown>
  return rest
}

const stacked = (charts: ReadonlyArray<TopLevelSpec>): TopLevelSpec =>
  ({
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    background: "white",
    vconcat: charts.map(nested),
    resolve: { scale: { color: "independent" } }
  }) as unknown as TopLevelSpec

const convergence = (rows: ReadonlyArray<SizeRow>): TopLevelSpec => {
  const ns = span(rows.map((r) => r.n))
  const join = measured(rows, "one node joins a formed cluster: until all see it alive", BLUE, (r) => r.joinMs)
  const leave = measured(rows, "one node leaves: until all hold it left", GREEN, (r) => r.leaveMs)
  const formation = measured(rows, "formation from nothing: until all see all N alive", PURPLE, (r) => r.formationMs)
  const power = fitPower(formation.map((p) => [p.x, p.y] as const))
  const one = lineChart(
    "Dissemination of one change against cluster size (simulated)",
    ["Default timings: gossip to 3 members every 200 ms,", "plus piggybacking on every probe and ack"],
    [
      ...join,
      ...leave,
      ...curve(ns, "model: epidemic push, (log₄N + ln N / 3) rounds × 200 ms", GRAY, disseminationMillis),
      ...fitted(join, "the join", ns)
    ],
    { title: "cluster size N (log scale)", log: true },
    { title: "simulated seconds" }
  )
  const all = lineChart(
    "Formation from nothing against cluster size (simulated)",
    [
      "Node 0, then batches of 50 joining through random running members; every",
      "joiner re-gossips the whole membership it pulled, so this grows about like N"
    ],
    [
      ...formation,
      ...(power === undefined
        ? []
        : ns.map(
            (n): Point => ({
              x: n,
              y: power.a * n ** power.b,
              series: `least-squares fit: ${(power.a * 1000).toFixed(1)} ms × N^${power.b.toFixed(2)}`,
              kind: "model",
              color: PURPLE
            })
          ))
    ],
    { title: "cluster size N (log scale)", log: true },
    { title: "simulated seconds (log scale)", log: true }
  )
  return stacked([one, all])
}

const detection = (rows: ReadonlyArray<SizeRow>): TopLevelSpec => {
  const ns = span(rows.map((r) => r.n))
  const first = measured(rows, "first member declares it dead", ORANGE, (r) => r.crashFirstMs)
  const all = measured(rows, "every member holds it dead", RED, (r) => r.crashAllMs)
  return lineChart(
    "Crash detection against cluster size (simulated)",
    [
      "Probe 1 s, ping timeout 500 ms, suspicion 4 × max(1, log₁₀N)",
      "probe intervals (Lifeguard, shortened by confirmations)"
    ],
    [
      ...first,
      ...all,
      ...curve(ns, "model, first: 1.5 s + 4·max(1, log₁₀N) s", ORANGE, firstDetectionMillis),
      ...curve(ns, "model, all: first + epidemic dissemination", RED, allDetectionMillis),
      ...fitted(all, "every member", ns).map((p) => ({ ...p, color: GRAY }))
    ],
    { title: "cluster size N (log scale)", log: true },
    { title: "simulated seconds after the crash" }
  )
}

const lossChart = (rows: ReadonlyArray<LossRow>): TopLevelSpec => {
  const n = rows[0]?.n ?? 0
  const minutes = (rows[0]?.windowSeconds ?? 0) / 60
  const udp = rows.filter((r) => !r.tcpPings)
  const tcp = rows.filter((r) => r.tcpPings)
  const point = (r: LossRow, y: number, series: string, color: string): Point => ({
    x: r.loss,
    y,
    series,
    kind: "measured",
    color
  })
  const counts: Array<Point> = [
    // refutations first, so the (nearly equal) suspicions are drawn over them
    ...udp.map((r) => point(r, r.refutations, "UDP only: refutations", GREEN)),
    ...udp.map((r) => point(r, r.suspicions, "UDP only: false suspicions", BLUE)),
    ...udp.map((r) => point(r, r.deathsDeclared, "UDP only: false failures (a live member declared dead)", RED)),
    ...tcp.map((r) => point(r, r.suspicions, "with TCP fallback (default): false suspicions", PURPLE)),
    ...tcp.map((r) => point(r, r.deathsDeclared, "with TCP fallback (default): false failures", ORANGE))
  ]
  const model: Array<Point> = udp.map((r) => ({
    x: r.loss,
    y: r.expectedSuspicions,
    series: "model, UDP only: probes × P(direct and 3 indirect paths all lose one)",
    kind: "model",
    color: BLUE
  }))
  const detect: Array<Point> = [
    ...udp.flatMap((r) =>
      r.crashFirstMs === undefined ? [] : [point(r, r.crashFirstMs / 1000, "UDP only: first declares it dead", ORANGE)]
    ),
    ...udp.flatMap((r) =>
      r.crashAllMs === undefined ? [] : [point(r, r.crashAllMs / 1000, "UDP only: all hold it dead", RED)]
    ),
    ...tcp.flatMap((r) =>
      r.crashFirstMs === undefined
        ? []
        : [point(r, r.crashFirstMs / 1000, "with TCP fallback: first declares it dead", PURPLE)]
    ),
    ...tcp.flatMap((r) =>
      r.crashAllMs === undefined ? [] : [point(r, r.crashAllMs / 1000, "with TCP fallback: all hold it dead", BLUE)]
    )
  ]
  const left = lineChart(
    `False suspicions and failures against packet loss (N = ${n})`,
    [
      `${minutes} simulated minutes in which nobody fails; every datagram dropped`,
      "independently with the given probability; the simulated streams (push-pull,",
      "TCP fallback ping) never lose anything, so with the fallback probes succeed"
    ],
    [...counts, ...model],
    { title: "packet loss (%)", log: false },
    { title: `count in ${minutes} min (symlog scale)`, symlog: true }
  )
  const right = lineChart(
    `Crash detection under the same loss (N = ${n})`,
    ["One node crashes after the window"],
    detect,
    { title: "packet loss (%)", log: false },
    { title: "simulated seconds after the crash" }
  )
  return stacked([left, right])
}

/** Writes the charts for whatever parts `results` holds; returns the files written. */
export const writeCharts = async (results: SimResults, dir: string): Promise<Array<string>> => {
  mkdirSync(dir, { recursive: true })
  const written: Array<string> = []
  const write = async (name: string, spec: TopLevelSpec) => {
    const file = join(dir, name)
    writeFileSync(file, `${await render(spec)}\n`)
    written.push(file)
  }
  if (results.sizes.length > 1) {
    await write("sim-convergence.svg", convergence(results.sizes))
    await write("sim-detection.svg", detection(results.sizes))
  }
  if (results.loss.length > 1) await write("sim-loss.svg", lossChart(results.loss))
  return written
}

if (import.meta.main) {
  const file = process.argv[2] ?? "bench/results/sim.json"
  const results = JSON.parse(readFileSync(file, "utf8")) as SimResults
  writeCharts(results, process.argv[3] ?? "docs").then(
    (files) => console.log(`wrote ${files.join(", ")}`),
    (error) => {
      console.error(error)
      process.exit(1)
    }
  )
}
