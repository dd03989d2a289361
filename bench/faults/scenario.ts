/**
 * What a fault scenario is: how to inject the fault and hold it, how to end
 * it, what the fault makes legitimate (see checker.ts), whose failure is
 * timed, and which extra figures and checks it adds. The runner (runner.ts)
 * does the rest the same way for every scenario: a fresh topology and
 * cluster, formation, the fault, the heal, one consistent view, an aftermath
 * window, the checker, and cleanup whatever happened.
 */
import type { AgentLife } from "./agent-life.ts"
import type { PairPredicate } from "./checker.ts"
import type { ExpectedTags } from "./consistent-view.ts"
import type { Fleet } from "./fleet.ts"
import type { NetworkFaults } from "./network-faults.ts"
import type { SystemId } from "./systems.ts"

export interface ScenarioContext {
  readonly fleet: Fleet
  readonly network: NetworkFaults
  readonly n: number
  readonly log: (line: string) => void
  /** Figures a scenario measures while it runs (e.g. the loss actually dropped), reported with the rest. */
  readonly figures: Record<string, number | null>
}

/** One correctness check of a run: asserted by the quick profile, reported by the full one. */
export interface Check {
  readonly name: string
  readonly ok: boolean
  readonly detail: string
}

/** What a scenario measured itself, beside the runner's figures. */
export interface Evaluation {
  readonly figures: Readonly<Record<string, number | null>>
  readonly checks: ReadonlyArray<Check>
}

export interface WindowTimes {
  readonly formedAt: number
  readonly faultAt: number
  readonly healAt: number
  readonly healedAt: number | undefined
  readonly end: number
  /** Every slot's life current when the fault began. */
  readonly livesAtFault: ReadonlyArray<AgentLife>
}

export interface Scenario {
  readonly id: string
  readonly title: string
  /** The target for this fault, printed beside the figures (never asserted). */
  readonly target: string
  readonly systems: ReadonlyArray<SystemId>
  /** Flags for every shoal agent of this scenario only (everything else stays at shoal's defaults). */
  readonly shoalArgs?: ReadonlyArray<string>
  /** Pairs the fault cuts for long enough that a failure is legitimate. */
  readonly separated?: (n: number) => PairPredicate
  /** Pairs whose suspicions are expected but whose failure would be false. */
  readonly unreliable?: (n: number) => PairPredicate
  /** (observer, victim) slot pairs whose failure verdicts are timed. */
  readonly detect?: (n: number) => ReadonlyArray<readonly [number, number]>
  /** Whether every timed pair must see the failure before the heal (a correctness check). */
  readonly mustDetect: boolean
  /** Bound on heal → one consistent view (generous: the targets are far below it). */
  readonly healBoundMs: number
  /** Tags the consistent view must show (a restart with new tags). */
  readonly expectedTags?: (fleet: Fleet) => ExpectedTags
  /** Injects the fault and holds it; resolves with the time the fault began, once the heal is due. */
  inject(ctx: ScenarioContext): Promise<number>
  /** Ends the fault. */
  heal(ctx: ScenarioContext): Promise<void>
  evaluate?(ctx: ScenarioContext, times: WindowTimes): Evaluation
}
