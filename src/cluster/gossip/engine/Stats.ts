/**
 * Running totals of what one node's engine did, for tests, benchmarks and
 * the CLI (its JSON `Stats` lines are a contract: fields are only added).
 *
 * @since 0.1.0
 */

export interface SwimStats {
  readonly probes: number
  readonly indirectProbes: number
  readonly failedProbes: number
  readonly suspicionsRaised: number
  readonly deathsDeclared: number
  readonly refutations: number
  /** Probes that failed over UDP but were answered over the TCP fallback. */
  readonly streamPingAcks: number
  /** Members declared dead because their address answered as another identity (a restart under a new id). */
  readonly replacements: number
  /** Exchanges started with a member held dead because it was heard from (a healed partition, a resumed process). */
  readonly revivals: number
  /** Background exchanges not started because `MAX_BACKGROUND_EXCHANGES` were already in flight. */
  readonly exchangesDeferred: number
  readonly pushPulls: number
  readonly pushPullFailures: number
  readonly packetsRejected: number
  readonly updatesApplied: number
}

/** The mutable counters behind {@link SwimStats}. */
export type Counters = { -readonly [K in keyof SwimStats]: SwimStats[K] }

export const zeroCounters = (): Counters => ({
  probes: 0,
  indirectProbes: 0,
  failedProbes: 0,
  suspicionsRaised: 0,
  deathsDeclared: 0,
  refutations: 0,
  streamPingAcks: 0,
  replacements: 0,
  revivals: 0,
  exchangesDeferred: 0,
  pushPulls: 0,
  pushPullFailures: 0,
  packetsRejected: 0,
  updatesApplied: 0
})
