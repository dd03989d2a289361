/**
 * The simulation benchmark's results: one row per cluster size, one per loss
 * run, and the comparison of the two simulators (see `bench/sim.ts`).
 */
import type { describeMachine } from "../machine.ts"
import type { defaultTimings } from "./theory.ts"

/** Which simulator ran a row: the discrete-event one over bare engines, or the Effect-level `SimNetwork`. */
export type Simulation = "des" | "effect"

/** What a scenario is run with. */
export interface RunOptions {
  /** Nodes started at once. */
  readonly batch: number
  /** Simulated quiet period after formation over which traffic is counted (ms; 0 skips it). */
  readonly quietMillis: number
  /** Loss runs: how long the lossy window lasts (s). */
  readonly windowSeconds: number
  readonly log: (line: string) => void
}

export interface SizeRow {
  readonly n: number
  /** Simulated time to start every node (batched joins). */
  readonly startupMs: number
  /** From the first node's start until every node sees all N alive. */
  readonly formationMs: number | undefined
  /** One more node joins a formed cluster: until every member sees it alive. */
  readonly joinMs: number | undefined
  readonly crashFirstMs: number | undefined
  readonly crashAllMs: number | undefined
  /** A member leaves gracefully: until every other member holds it left. */
  readonly leaveMs: number | undefined
  /** Over the quiet period after formation (undefined when it was skipped). */
  readonly packetsPerNodePerSec: number | undefined
  readonly bytesPerNodePerSec: number | undefined
  /**
   * JavaScript heap after a full GC once formed, minus the heap before the
   * nodes existed, per node (network and clock included); only with
   * `--expose-gc`.
   */
  readonly heapPerNodeKiB: number | undefined
  /** Suspicions raised before the crash (none is deserved: nothing had failed). */
  readonly falseSuspicions: number
  readonly falseDeaths: number
  readonly wallSeconds: number
  /** Which simulator ran it (absent in rows from before there were two: the Effect-level one). */
  readonly engine?: Simulation | undefined
  /** Heap per member per node, in bytes (`heapPerNodeKiB` / N). */
  readonly heapPerMemberBytes?: number | undefined
  /**
   * CPU time inside the protocol engine per node per protocol period (one
   * probe interval), in µs, over the quiet period: what one node's protocol
   * costs, without the simulator around it (discrete-event runs only).
   */
  readonly engineMicrosPerNodePerPeriod?: number | undefined
  /** Events the discrete-event simulator handled (one engine step each). */
  readonly events?: number | undefined
}

export interface LossRow {
  readonly n: number
  readonly loss: number
  /**
   * The TCP fallback ping (default on). The simulated network never loses
   * stream messages, so with it on a lossy network's probes always succeed in
   * the end; off, the runs show SWIM/Lifeguard's datagram-only behaviour.
   */
  readonly tcpPings: boolean
  readonly windowSeconds: number
  readonly probes: number
  readonly failedProbes: number
  /** Accusations raised by a failed probe (every one false: nobody failed). */
  readonly suspicions: number
  /** What `probeFailure` (theory.ts) predicts for this many probes. */
  readonly expectedSuspicions: number
  readonly refutations: number
  /** Suspicion timers that ran out: a live member declared dead. */
  readonly deathsDeclared: number
  /** NodeFailed events about a live member, summed over observers. */
  readonly failedEvents: number
  /** Distinct live members that anyone declared dead. */
  readonly membersDeclaredDead: number
  readonly crashFirstMs: number | undefined
  readonly crashAllMs: number | undefined
  readonly wallSeconds: number
  readonly engine?: Simulation | undefined
}

/** The same scenario at one N on both simulators, over several seeds: mean and standard deviation of each figure. */
export interface ComparisonRow {
  readonly n: number
  readonly runs: number
  readonly figure: string
  readonly effect: Summary
  readonly des: Summary
}

export interface Summary {
  readonly mean: number
  readonly sd: number
  /** Runs where the figure was not reached within its limit. */
  readonly missing: number
}

export interface SimResults {
  readonly machine: ReturnType<typeof describeMachine>
  readonly timings: typeof defaultTimings & { readonly pingTimeout: number; readonly suspicionMaxTimeoutMult: number }
  readonly sizes: ReadonlyArray<SizeRow>
  readonly loss: ReadonlyArray<LossRow>
  readonly comparison?: ReadonlyArray<ComparisonRow> | undefined
}
