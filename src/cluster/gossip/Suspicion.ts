/**
 * Lifeguard's dynamic suspicion timeout (Dadgar et al. 2018, §4.2; the values
 * memberlist uses).
 *
 * A suspected member is given a long time to refute — `max` — because a
 * single accuser may be the one in trouble. Every *independent* accuser that
 * confirms the suspicion is evidence that the member really is gone, so the
 * timeout shrinks logarithmically towards `min`, reaching it after `k`
 * confirmations:
 *
 * ```text
 * min        = suspicionMult × max(1, log10(n)) × probeInterval
 * max        = suspicionMaxTimeoutMult × min
 * k          = confirmations, by default suspicionMult − 2   (0 when fewer than k other members could confirm)
 * timeout(c) = max(min, max − (max − min) × ln(c + 1) / ln(k + 1))   (min when k < 1)
 * ```
 *
 * `n` is the number of members this node knows of, itself included. All times
 * are milliseconds; the caller reads the clock and passes it in, so this
 * module is pure and the effectful shell decides when to look at
 * {@link Suspicion.deadline} again (after every successful `confirm`).
 *
 * @module
 * @since 0.1.0
 */

/** The cluster-size-dependent parameters of a suspicion timer. */
export interface SuspicionBounds {
  /** Confirmations that drive the timeout down to `min` (0: none expected, the timeout is `min`). */
  readonly k: number
  /** The shortest timeout, in ms. */
  readonly min: number
  /** The timeout with no confirmations, in ms. */
  readonly max: number
}

/** What {@link suspicionBounds} needs: the cluster size and the configuration's multipliers. */
export interface SuspicionParameters {
  /** Members known to this node, itself included. */
  readonly clusterSize: number
  readonly suspicionMult: number
  readonly suspicionMaxTimeoutMult: number
  /** In ms. */
  readonly probeInterval: number
  /** `k` when set apart from `suspicionMult` (`suspicionConfirmations` in the configuration). */
  readonly confirmations?: number | undefined
}

/** A count that came from the outside world, made safe for the formulas: at least 1, never NaN. */
const atLeastOne = (n: number): number => (Number.isFinite(n) && n > 1 ? n : 1)

/**
 * `k`, `min` and `max` for a cluster of `clusterSize` members. Times are
 * whole milliseconds (rounded down, as memberlist does).
 *
 * `k` is `suspicionMult − 2` unless given, so that, with the members' probes
 * out of phase, the expected confirmations arrive about two probe intervals
 * before the nominal timeout; it drops to 0 when the cluster has fewer than
 * `k` members besides this node and the suspect to send them.
 */
export const suspicionBounds = (parameters: SuspicionParameters): SuspicionBounds => {
  const n = atLeastOne(parameters.clusterSize)
  const scale = Math.max(1, Math.log10(n))
  const min = Math.floor(parameters.suspicionMult * scale * parameters.probeInterval)
  const max = Math.floor(parameters.suspicionMaxTimeoutMult * min)
  const wanted = Math.max(0, Math.floor(parameters.confirmations ?? parameters.suspicionMult - 2))
  const k = n - 2 < wanted ? 0 : wanted
  return { k, min, max }
}

/**
 * The total timeout (from the start of the suspicion) after `confirmations`
 * independent confirmations, in whole ms: `max` with none, falling
 * logarithmically to `min` at `k`, never below `min`.
 */
export const suspicionTimeout = (bounds: SuspicionBounds, confirmations: number): number => {
  if (bounds.k < 1) return bounds.min
  const c = Number.isFinite(confirmations) && confirmations > 0 ? confirmations : 0
  const fraction = Math.log(c + 1) / Math.log(bounds.k + 1)
  return Math.max(bounds.min, Math.floor(bounds.max - (bounds.max - bounds.min) * fraction))
}

/** How a suspicion starts: who is suspected, at which incarnation, by whom and when. */
export interface SuspicionStart<Id extends string> {
  readonly target: Id
  readonly incarnation: number
  /** The member whose accusation started it (this node itself after a failed probe). */
  readonly accuser: Id
  /** In ms, from the caller's clock. */
  readonly startedAt: number
  readonly bounds: SuspicionBounds
}

/**
 * One member's suspicion timer. Mutable: the owner (one per suspect) calls
 * {@link confirm} as `Suspect` messages about the same member at the same
 * incarnation arrive, then re-arms its timer at {@link deadline}.
 *
 * The original accuser is not a confirmation: our own suspicion gossiped back
 * to us must not shorten the timer.
 */
export class Suspicion<Id extends string = string> {
  readonly target: Id
  readonly incarnation: number
  readonly accuser: Id
  readonly startedAt: number
  readonly k: number
  readonly min: number
  readonly max: number
  readonly #confirmations = new Set<Id>()

  constructor(start: SuspicionStart<Id>) {
    this.target = start.target
    this.incarnation = start.incarnation
    this.accuser = start.accuser
    this.startedAt = start.startedAt
    this.k = start.bounds.k
    this.min = start.bounds.min
    this.max = start.bounds.max
  }

  /** The independent accusers that confirmed the suspicion (never the original accuser). */
  get confirmations(): ReadonlySet<Id> {
    return this.#confirmations
  }

  /**
   * Records that `accuser` also suspects the target. Returns `true` only for
   * new, independent evidence — a member not heard from before, while fewer
   * than `k` have confirmed — which is also when the message is worth
   * re-gossiping and the deadline has moved closer.
   */
  confirm(accuser: Id): boolean {
    if (this.#confirmations.size >= this.k) return false
    if (accuser === this.accuser || this.#confirmations.has(accuser)) return false
    this.#confirmations.add(accuser)
    return true
  }

  /** The current total timeout in ms, given the confirmations so far. */
  timeout(): number {
    return suspicionTimeout(this, this.#confirmations.size)
  }

  /** When (absolute ms on the caller's clock) the target is to be declared dead. */
  deadline(): number {
    return this.startedAt + this.timeout()
  }

  /** Milliseconds left at `now`; zero or negative means the timer has run out. */
  remaining(now: number): number {
    return this.deadline() - now
  }

  /**
   * Whether the timer ran out before the expected confirmations arrived —
   * memberlist counts these as "degraded" timeouts, a sign that the cluster
   * could not corroborate the failure.
   */
  isDegraded(): boolean {
    return this.k > 0 && this.#confirmations.size < this.k
  }
}
