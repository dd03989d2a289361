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
  /**
   * Background exchanges not started because `MAX_BACKGROUND_EXCHANGES` were
   * already in flight, or because strangers asked for more than `STRANGER_BURST`
   * plus one per probe interval.
   */
  readonly exchangesDeferred: number
  readonly pushPulls: number
  readonly pushPullFailures: number
  readonly packetsRejected: number
  readonly updatesApplied: number
  /**
   * Claims refused by the engine's limits (see `Limits`): an incarnation far
   * above what is known, a member beyond `maxMembers`, an announcement too
   * large, updates past the per-packet cap, a ping-req for a member unknown
   * at that address.
   */
  readonly updatesRefused: number
  /**
   * With `requireIdentities`: `Alive` and `Left` claims not applied because
   * they were unsigned or their signature did not verify against the
   * member's certificate (forgeries, or a member without an identity).
   */
  readonly claimsRefused: number
  /** With `requireIdentities`: claims not applied yet because the member's certificate is not held (a push-pull brings it). */
  readonly claimsUnverifiable: number
  /** With `requireIdentities`: `Dead` claims about other members taken as `Suspect` (each node's own timer decides). */
  readonly deathsDowngraded: number
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
  updatesApplied: 0,
  updatesRefused: 0,
  claimsRefused: 0,
  claimsUnverifiable: 0,
  deathsDowngraded: 0
})
