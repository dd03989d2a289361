/**
 * Runs one scenario for one system and size, the same way every time: a
 * fresh topology and cluster, formation (the seed first, then everyone else
 * at once through it), a short settle, the fault, the heal, a bounded wait
 * for one consistent view, an aftermath window (late failures and
 * suspicions still count), then the checker. Every process, namespace and
 * rule is removed in `finally`, so a failed scenario leaves nothing behind
 * and the next starts clean.
 */
import { now } from "./agent-life.ts"
import { detection, type FaultModel, falseFailures, nothingCut, suspicionsOfReachable } from "./checker.ts"
import { consistentView, viewProblems } from "./consistent-view.ts"
import { Fleet, sleep } from "./fleet.ts"
import { NetworkFaults } from "./network-faults.ts"
import type { Check, Scenario, ScenarioContext } from "./scenario.ts"
import type { FaultSystem } from "./systems.ts"
import { Topology } from "./topology.ts"

export interface RunOptions {
  readonly n: number
  readonly rep: number
  readonly logDir: string
  /** Formation → fault: the cluster runs steady for a moment first. */
  readonly settleMs: number
  /** After the consistent view (or its bound): failures and suspicions in this window still count. */
  readonly aftermathMs: number
  readonly formationBoundMs: number
  readonly log: (line: string) => void
}

export interface ScenarioResult {
  readonly scenario: string
  readonly title: string
  readonly target: string
  readonly system: string
  readonly n: number
  readonly rep: number
  readonly startedAt: string
  readonly wallMs: number
  /** Seed spawned → every agent holds every other Alive. */
  readonly formationMs: number | null
  readonly detectionFirstMs: number | null
  /** Fault start → every relevant observer holds every victim failed (null: not all did). */
  readonly detectionAllMs: number | null
  readonly detectedPairs: string
  /** Heal → one consistent view (null: not within the bound). */
  readonly healMs: number | null
  readonly suspicionsOfReachable: number
  readonly falseFailures: number
  readonly falseFailureSamples: ReadonlyArray<string>
  readonly figures: Readonly<Record<string, number | null>>
  readonly checks: ReadonlyArray<Check>
  readonly errors: ReadonlyArray<string>
  /** Disagreements left when the heal bound ran out (empty when the view became consistent). */
  readonly viewProblems: ReadonlyArray<string>
}

export const passed = (r: ScenarioResult): boolean => r.errors.length === 0 && r.checks.every((c) => c.ok)

const ms = (t: number | undefined, from: number) => (t === undefined ? null : Math.round(t - from))

export const runScenario = async (
  system: FaultSystem,
  scenario: Scenario,
  options: RunOptions
): Promise<ScenarioResult> => {
  const { n, rep, log } = options
  const began = now()
  const startedAt = new Date().toISOString()
  const errors: Array<string> = []
  const checks: Array<Check> = []
  const figures: Record<string, number | null> = {}
  let formationMs: number | null = null
  let detect = { firstMs: null as number | null, allMs: null as number | null, pairs: 0, detected: 0 }
  let healMs: number | null = null
  let suspicions = 0
  let falses: ReturnType<typeof falseFailures> = []
  let problems: Array<string> = []
  let topology: Topology | undefined
  let fleet: Fleet | undefined
  try {
    topology = Topology.create(n)
    fleet = new Fleet({
      system,
      topology,
      logDir: `${options.logDir}/${scenario.id}-${system.id}-n${n}-r${rep}`,
      extraArgs: system.id === "shoal" ? (scenario.shoalArgs ?? []) : []
    })
    const network = new NetworkFaults(topology)
    const ctx: ScenarioContext = { fleet, network, n, log, figures }
    const f = fleet

    // Formation: the seed, then everyone else at once through it.
    const seed = f.spawn(0)
    await f.waitUntil(() => seed.readyAt !== undefined || !seed.running, options.formationBoundMs)
    if (seed.readyAt === undefined) throw new Error(`${seed.name} did not start (see ${options.logDir})`)
    for (let i = 1; i < n; i++) f.spawn(i)
    const formedAt = await f.waitUntil(
      () => f.unexpectedExits().length > 0 || consistentView(f),
      options.formationBoundMs
    )
    if (formedAt === undefined || !consistentView(f)) {
      throw new Error(
        `no consistent view within ${options.formationBoundMs} ms of starting: ${viewProblems(f).slice(0, 3).join("; ")}`
      )
    }
    formationMs = Math.round(formedAt - seed.spawnedAt)
    await sleep(options.settleMs)

    // The fault, then the heal.
    const livesAtFault = f.currentLives()
    const faultAt = await scenario.inject(ctx)
    const healAt = now()
    await scenario.heal(ctx)
    f.notify()
    const expectedTags = scenario.expectedTags?.(f)
    const healedAt = await f.waitUntil(() => consistentView(f, expectedTags), scenario.healBoundMs)
    healMs = ms(healedAt, healAt)
    problems = healedAt === undefined ? viewProblems(f, expectedTags) : []
    await sleep(options.aftermathMs)
    const end = now()
    const stillConsistent = viewProblems(f, expectedTags)

    // The checker.
    const model: FaultModel = {
      separated: scenario.separated?.(n) ?? nothingCut,
      unreliable: scenario.unreliable?.(n) ?? nothingCut
    }
    const pairs = scenario.detect?.(n) ?? []
    detect = detection(pairs, livesAtFault, faultAt, healAt)
    suspicions = suspicionsOfReachable(f, model, faultAt)
    falses = falseFailures(f, model)
    if (scenario.mustDetect) {
      checks.push({
        name: "every relevant observer declared the victim(s) failed before the heal",
        ok: detect.allMs !== null,
        detail: `${detect.detected}/${detect.pairs} (observer, victim) pairs; all after ${detect.allMs ?? "–"} ms`
      })
    }
    checks.push({
      name: "no false failure",
      ok: falses.length === 0,
      detail:
        falses.length === 0
          ? "none"
          : `${falses.length}: ${falses
              .slice(0, 4)
              .map((x) => `${x.observer} → ${x.subject} at +${Math.round(x.t - faultAt)} ms`)
              .join(", ")}`
    })
    checks.push({
      name: `one consistent view within ${scenario.healBoundMs} ms of the heal`,
      ok: healedAt !== undefined,
      detail: healedAt !== undefined ? `after ${healMs} ms` : `still: ${problems.slice(0, 4).join("; ")}`
    })
    if (healedAt !== undefined) {
      checks.push({
        name: `the view stays consistent through the ${options.aftermathMs} ms aftermath`,
        ok: stillConsistent.length === 0,
        detail: stillConsistent.length === 0 ? "yes" : stillConsistent.slice(0, 4).join("; ")
      })
    }
    const evaluation = scenario.evaluate?.(ctx, { formedAt, faultAt, healAt, healedAt, end, livesAtFault })
    if (evaluation !== undefined) {
      Object.assign(figures, evaluation.figures)
      checks.push(...evaluation.checks)
    }
  } catch (error) {
    errors.push(error instanceof Error ? error.message : String(error))
  } finally {
    try {
      if (fleet !== undefined) {
        for (const life of fleet.unexpectedExits()) {
          errors.push(`${life.name} (life ${life.life}) exited by itself with code ${life.exitCode}`)
        }
        await fleet.stop()
      }
    } finally {
      topology?.delete()
    }
  }
  return {
    scenario: scenario.id,
    title: scenario.title,
    target: scenario.target,
    system: system.id,
    n,
    rep,
    startedAt,
    wallMs: Math.round(now() - began),
    formationMs,
    detectionFirstMs: detect.firstMs,
    detectionAllMs: detect.allMs,
    detectedPairs: `${detect.detected}/${detect.pairs}`,
    healMs,
    suspicionsOfReachable: suspicions,
    falseFailures: falses.length,
    falseFailureSamples: falses
      .slice(0, 10)
      .map((x) => `${x.observer} → ${x.subject} at ${new Date(x.t).toISOString()}`),
    figures,
    checks,
    errors,
    viewProblems: problems.slice(0, 10)
  }
}
