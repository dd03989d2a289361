/**
 * A set of member ids that answers "k random members, not these" in O(k):
 * the probe loop's indirect helpers and the gossip loop's fan-out both draw
 * from it every round, so copying the member list each time would cost
 * O(N) per round per node — too much for the 1000-node simulations.
 *
 * Pure: randomness is passed in as `() => number` in [0, 1).
 *
 * @module
 * @since 0.1.0
 */
const acceptAll = (): boolean => true

export class Peers<Id extends string = string> {
  readonly #items: Array<Id> = []
  readonly #position = new Map<Id, number>()

  get size(): number {
    return this.#items.length
  }

  has(id: Id): boolean {
    return this.#position.has(id)
  }

  /** Adds `id`; `false` when already present. O(1). */
  add(id: Id): boolean {
    if (this.#position.has(id)) return false
    this.#position.set(id, this.#items.length)
    this.#items.push(id)
    return true
  }

  /** Removes `id` by swapping the last item into its place; `false` when absent. O(1). */
  remove(id: Id): boolean {
    const index = this.#position.get(id)
    if (index === undefined) return false
    const last = this.#items.pop()!
    this.#position.delete(id)
    if (index < this.#items.length) {
      this.#items[index] = last
      this.#position.set(last, index)
    }
    return true
  }

  values(): ReadonlyArray<Id> {
    return this.#items
  }

  /**
   * Up to `k` distinct ids chosen uniformly at random, none in `exclude` and
   * each `accept`ed. Rejection sampling while the set is much larger than
   * `k`; a partial Fisher–Yates over a copy otherwise, so it always
   * terminates.
   */
  sample(
    k: number,
    random: () => number,
    exclude: ReadonlySet<Id> = new Set(),
    accept: (id: Id) => boolean = acceptAll
  ): Array<Id> {
    const n = this.#items.length
    if (k <= 0 || n === 0) return []
    if (n > 4 * (k + exclude.size)) {
      const chosen = new Set<Id>()
      let attempts = 0
      while (chosen.size < k && attempts < 8 * k + 16) {
        attempts++
        const id = this.#items[Math.floor(random() * n)]!
        if (!exclude.has(id) && accept(id)) chosen.add(id)
      }
      if (chosen.size === k) return Array.from(chosen)
    }
    const pool = this.#items.filter((id) => !exclude.has(id) && accept(id))
    const take = Math.min(k, pool.length)
    for (let i = 0; i < take; i++) {
      const j = i + Math.floor(random() * (pool.length - i))
      const tmp = pool[i]!
      pool[i] = pool[j]!
      pool[j] = tmp
    }
    pool.length = take
    return pool
  }

  /**
   * Up to `k` distinct ids chosen uniformly at random from the union of two
   * disjoint sets (the gossip fan-out draws from the live members and the
   * recently dead alike, as memberlist does).
   */
  static sampleUnion<Id extends string>(
    first: Peers<Id>,
    second: Peers<Id>,
    k: number,
    random: () => number
  ): Array<Id> {
    if (second.size === 0) return first.sample(k, random)
    if (first.size === 0) return second.sample(k, random)
    const n = first.size + second.size
    const take = Math.min(k, n)
    // how many come from `first`: a draw of `take` without replacement, one at a time
    let fromFirst = 0
    let leftFirst = first.size
    let leftAll = n
    for (let i = 0; i < take; i++) {
      if (random() * leftAll < leftFirst) {
        fromFirst++
        leftFirst--
      }
      leftAll--
    }
    return [...first.sample(fromFirst, random), ...second.sample(take - fromFirst, random)]
  }
}
