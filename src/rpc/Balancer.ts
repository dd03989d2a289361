/**
 * Which member takes the next call: the balancing strategies of the cluster
 * client, as a pure decision over the candidates (in a stable order) and the
 * calls each one has in flight. Randomness is passed in, so a seeded `Random`
 * replays the same choices.
 *
 * - **round-robin**: the candidates in turn; over `k × n` calls to a stable
 *   set of `n` members each gets exactly `k`.
 * - **random**: uniformly at random.
 * - **least-in-flight**: a candidate with the fewest calls in flight; ties go
 *   round-robin, so equally loaded members still share the calls evenly and a
 *   member holding slow calls gets new ones only when everyone is as busy.
 *
 * @module
 * @since 0.1.0
 */

/**
 * How a cluster client chooses among eligible members: in turn (`"round-robin"`),
 * at random (`"random"`), or the one with the fewest calls in flight
 * (`"least-in-flight"`, ties broken at random).
 */
export type Strategy = "round-robin" | "random" | "least-in-flight"

export const strategies: ReadonlyArray<Strategy> = ["round-robin", "random", "least-in-flight"]

/** A strategy with its memory (the round-robin cursor). */
export class Balancer {
  readonly strategy: Strategy
  readonly #random: () => number
  #cursor = 0

  /** `random` returns a double in [0, 1). */
  constructor(strategy: Strategy, random: () => number) {
    this.strategy = strategy
    this.#random = random
  }

  /**
   * The index of the candidate to call among `n`, given how many calls each
   * has in flight (`inFlight(i)` for candidate `i`); -1 when there is none.
   */
  pick(n: number, inFlight: (index: number) => number): number {
    if (n <= 0) return -1
    switch (this.strategy) {
      case "round-robin": {
        const i = this.#cursor % n
        this.#cursor = i + 1
        return i
      }
      case "random":
        return Math.min(n - 1, Math.floor(this.#random() * n))
      case "least-in-flight": {
        // the first candidate with the fewest, looking from the cursor on
        const start = this.#cursor % n
        let best = start
        let least = inFlight(start)
        for (let k = 1; k < n && least > 0; k++) {
          const i = (start + k) % n
          const load = inFlight(i)
          if (load < least) {
            least = load
            best = i
          }
        }
        this.#cursor = best + 1
        return best
      }
    }
  }
}
