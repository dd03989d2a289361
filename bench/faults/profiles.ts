/**
 * The two profiles of the fault suite, sharing every scenario and the runner:
 *
 * - quick (CI, `npm run test:faults`): shoal only, N = 6, one repetition,
 *   short holds, three scenarios at a time (each on its own topology: they
 *   share nothing but the CPU, and idle agents use well under 1 % of a core);
 * - full (`npm run bench:faults`): shoal and Serf, N = 6, 10, 25, three
 *   repetitions, the holds (30 s, 90 s and 20 min partitions) with
 *   shoal's defaults throughout, one scenario at a time.
 */
import type { Scenario } from "./scenario.ts"
import {
  blackhole,
  flappingLink,
  loss,
  oneWayCut,
  partition,
  partitionBeyondReap,
  pause,
  restartNewId,
  restartSameId,
  sigkill
} from "./scenarios.ts"
import type { SystemId } from "./systems.ts"

export interface Profile {
  readonly name: "quick" | "full"
  readonly sizes: ReadonlyArray<number>
  readonly repetitions: number
  readonly systems: ReadonlyArray<SystemId>
  /** Scenarios run at once (each on its own topology). */
  readonly parallel: number
  readonly settleMs: number
  readonly aftermathMs: number
  readonly formationBoundMs: number
  /** Every scenario the profile knows, in run order; `defaults` are those run without --scenarios. */
  readonly scenarios: ReadonlyArray<Scenario>
  readonly defaults: ReadonlyArray<string>
}

/** Longest first, so that three at a time finish together. */
const quickScenarios: ReadonlyArray<Scenario> = [
  partitionBeyondReap("20s", 75_000, 60_000),
  flappingLink(2_000, 5_000, 60_000, 30_000),
  restartSameId(3, 4_000, 30_000),
  partition(30_000, 30_000),
  blackhole(30_000, 30_000),
  oneWayCut(30_000, 30_000),
  loss(10, 30_000, 30_000),
  restartNewId(5, 4_000, 30_000),
  pause(10_000, 30_000),
  sigkill(30_000, 30_000)
]

export const quickProfile: Profile = {
  name: "quick",
  sizes: [6],
  repetitions: 1,
  systems: ["shoal"],
  parallel: 3,
  settleMs: 2_000,
  aftermathMs: 5_000,
  formationBoundMs: 30_000,
  scenarios: quickScenarios,
  defaults: quickScenarios.map((s) => s.id)
}

const fullScenarios: ReadonlyArray<Scenario> = [
  partition(30_000, 60_000),
  partition(90_000, 60_000),
  partition(20 * 60_000, 120_000),
  blackhole(60_000, 60_000),
  sigkill(60_000, 60_000),
  oneWayCut(60_000, 60_000),
  flappingLink(2_000, 5_000, 60_000, 60_000),
  pause(10_000, 60_000),
  loss(10, 90_000, 60_000),
  restartNewId(5, 4_000, 60_000),
  restartSameId(3, 4_000, 60_000),
  // Not in the defaults: the 20 min partition is the real test of reaping; this is its quick stand-in.
  partitionBeyondReap("20s", 90_000, 120_000)
]

export const fullProfile: Profile = {
  name: "full",
  sizes: [6, 10, 25],
  repetitions: 3,
  systems: ["shoal", "serf"],
  parallel: 1,
  settleMs: 5_000,
  aftermathMs: 15_000,
  formationBoundMs: 90_000,
  scenarios: fullScenarios,
  defaults: fullScenarios.map((s) => s.id).filter((id) => id !== "partition-beyond-reap")
}
