/**
 * The engine's own seeded source of randomness: every random choice a node
 * makes (probe order, helpers, gossip targets, reconnect draws, loop
 * offsets) comes from here, so the same seed and the same inputs replay a
 * node exactly, with or without an Effect runtime around it.
 *
 * xoroshiro128+ from `pure-rand`, 53 bits per draw.
 *
 * @since 0.1.0
 */
import { uniformFloat64 } from "pure-rand/distribution/uniformFloat64"
import { xoroshiro128plus } from "pure-rand/generator/xoroshiro128plus"

/** A uniform draw in `[0, 1)`. */
export type Rng = () => number

/** A generator seeded with `seed` (any integer; the shell draws it from Effect's `Random`). */
export const seeded = (seed: number): Rng => {
  const generator = xoroshiro128plus(seed | 0)
  // The first outputs of a small seed are barely mixed (seed 0 starts at 0.99999…): a jump (2⁶⁴
  // steps ahead, a mix of 128 states) decorrelates them.
  generator.jump()
  return () => uniformFloat64(generator)
}

/** A uniform index in `[0, n)` (0 when `n` ≤ 0). */
export const index = (rng: Rng, n: number): number => (n <= 0 ? 0 : Math.min(n - 1, Math.floor(rng() * n)))
