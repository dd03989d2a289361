/**
 * Lifeguard's local health multiplier (Dadgar et al. 2018, §4.1).
 *
 * A node that is itself slow — a saturated CPU, a paused process, a lossy
 * uplink — misses acks from healthy peers and would accuse them. So every
 * node keeps a score of evidence that *it* is the problem, and stretches its
 * own probe timeouts (and probe interval) by `score + 1`: an unhealthy node
 * waits longer before it suspects anyone, and its peers, not it, end up
 * deciding.
 *
 * The score lives in `[0, max − 1]` (`max` = `awarenessMaxMultiplier`,
 * default 8, so timeouts stretch at most 8×). The events that move it, as in
 * memberlist:
 *
 * - a probe that got an ack (direct or through a helper): −1;
 * - a probe that failed: with no helpers to judge by, +1; with helpers and
 *   not one nack back, +1 per helper (our own link is the likelier culprit);
 *   with at least one nack, 0 — a helper reached us, tried the target and
 *   failed too, so the probe's verdict is corroborated. (memberlist adds +1
 *   per missing nack even then; in a partition the helpers across the cut
 *   never answer, so every failed probe across it stretched the prober's
 *   interval ×2–3 and a 3 | 3 split took 14–16 s to detect instead of 8–10.)
 * - having to refute a suspicion about ourselves: +1.
 *
 * @module
 * @since 0.1.0
 */

/** Score change for a probe answered with an ack. */
export const PROBE_SUCCEEDED = -1

/** Score change for having to refute a suspicion about ourselves. */
export const REFUTED = 1

/**
 * Score change for a probe that got no ack at all. `expectedNacks` is the
 * number of helpers asked to probe indirectly that support nacks; `nacks` the
 * nacks they sent back. Helpers that all stayed silent are evidence that our
 * own network is the problem; one that answered "no ack from the target
 * either" exonerates us.
 */
export const probeFailed = (expectedNacks: number, nacks: number): number => {
  const expected = Number.isFinite(expectedNacks) && expectedNacks > 0 ? Math.floor(expectedNacks) : 0
  if (expected === 0) return 1
  const received = Number.isFinite(nacks) && nacks > 0 ? Math.floor(nacks) : 0
  return received > 0 ? 0 : expected
}

/**
 * The score itself. Mutable; owned by the node's probe loop (which applies
 * the deltas above) and read by whoever computes a timeout.
 */
export class Awareness {
  /** One more than the highest score: the largest factor {@link scale} applies. */
  readonly max: number
  #score = 0

  constructor(max = 8) {
    this.max = Number.isInteger(max) && max >= 1 ? max : 1
  }

  /** Current score: 0 is healthy. */
  get score(): number {
    return this.#score
  }

  /** Whether there is no evidence of local trouble. */
  get isHealthy(): boolean {
    return this.#score === 0
  }

  /** Adds `delta`, clamped to `[0, max − 1]`; returns the new score. Non-finite deltas are ignored. */
  apply(delta: number): number {
    if (!Number.isFinite(delta)) return this.#score
    this.#score = Math.min(this.max - 1, Math.max(0, Math.trunc(this.#score + delta)))
    return this.#score
  }

  /** `timeout × (score + 1)`: a probe timeout (or interval) stretched for the node's health. */
  scale(timeout: number): number {
    return timeout * (this.#score + 1)
  }
}
