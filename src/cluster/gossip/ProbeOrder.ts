/**
 * Whom to probe next: SWIM's shuffled round robin (§4.3), with the phi
 * detector's out-of-turn probes on top.
 *
 * - A *pass* visits every member exactly once, in an order shuffled afresh
 *   (Fisher–Yates) at the start of each pass, so every member is probed
 *   within `2 × size` probe intervals while the choice stays unpredictable.
 * - A member added mid-pass takes a uniformly random place among those not
 *   yet probed in this pass, so it is probed before the pass ends.
 * - A removed member is never returned again.
 * - `prioritize` queues members whose phi crossed the threshold; they are
 *   probed before the round robin resumes, in the order given, each once
 *   however often it is queued. They keep their normal turn as well — except
 *   that no member is probed twice in a row while there is anyone else to
 *   probe: an out-of-turn probe whose normal turn comes right after it
 *   counts as that turn, and a queued member that was probed just before is
 *   dropped from the queue.
 *
 * Randomness is passed in as `() => number` in `[0, 1)` (the shell passes
 * `Random`'s `nextDoubleUnsafe`), so a seeded source replays the order exactly.
 *
 * Cost: `next`, `add`, `remove` O(1) (amortised: each pass's shuffle is O(n)
 * spread over the pass's n probes); `prioritize` O(ids). Mutable; the node's
 * probe loop owns one instance.
 *
 * @module
 * @since 0.1.0
 */

/** A uniform index in `[0, n)` from a `[0, 1)` draw, safe against a source that misbehaves. */
const randomIndex = (random: () => number, n: number): number => {
  const r = random()
  return r > 0 ? Math.min(n - 1, Math.floor(r * n)) : 0
}

/**
 * The order members are probed in: a shuffled round-robin, reshuffled every
 * pass, new members inserted at a random position, with room to probe one
 * member out of turn (see the module comment).
 */
export class ProbeOrder<Id extends string = string> {
  /** The current pass: `[0, cursor)` already probed, `[cursor, length)` still to come. */
  readonly #order: Array<Id> = []
  /** Where each member sits in `#order`. */
  readonly #position = new Map<Id, number>()
  #cursor = 0
  #priority: Array<Id> = []
  #priorityHead = 0
  readonly #queued = new Set<Id>()
  #last: Id | undefined = undefined

  /** Starts with `members`; the first call to {@link next} shuffles them into the first pass. */
  constructor(members: Iterable<Id> = []) {
    for (const id of members) {
      if (this.#position.has(id)) continue
      this.#position.set(id, this.#order.length)
      this.#order.push(id)
    }
    this.#cursor = this.#order.length
  }

  /** Number of members in the rotation. */
  get size(): number {
    return this.#order.length
  }

  /** Whether `id` is in the rotation. */
  has(id: Id): boolean {
    return this.#position.has(id)
  }

  /**
   * Adds a member at a uniformly random place among those not yet probed in
   * this pass (or, between passes, to the next pass's shuffle). Returns
   * `false` if it was already there.
   */
  add(id: Id, random: () => number): boolean {
    if (this.#position.has(id)) return false
    const end = this.#order.length
    const passOver = this.#cursor >= end
    this.#order.push(id)
    this.#position.set(id, end)
    if (passOver) {
      // Between passes: it joins the shuffle of the next one, which starts with the next probe.
      this.#cursor = end + 1
      return true
    }
    // Inside-out Fisher–Yates step: a random permutation of the rest stays a random permutation.
    const target = this.#cursor + randomIndex(random, end - this.#cursor + 1)
    this.#swap(target, end)
    return true
  }

  /** Takes a member out of the rotation (and out of the priority queue). Returns `false` if it was not there. */
  remove(id: Id): boolean {
    let at = this.#position.get(id)
    if (at === undefined) return false
    if (at < this.#cursor) {
      // Already probed this pass: move it to the pass's boundary and make it the first still to come,
      // so that taking it out below never moves a member across the boundary.
      this.#swap(at, this.#cursor - 1)
      this.#cursor--
      at = this.#cursor
    }
    this.#swap(at, this.#order.length - 1)
    this.#order.pop()
    this.#position.delete(id)
    this.#queued.delete(id)
    return true
  }

  /**
   * Queues members to be probed next, out of turn, in the given order.
   * Unknown members and members already queued are ignored.
   */
  prioritize(ids: Iterable<Id>): void {
    for (const id of ids) {
      if (!this.#position.has(id) || this.#queued.has(id)) continue
      this.#queued.add(id)
      this.#priority.push(id)
    }
  }

  /** Members queued by {@link prioritize} and not yet handed out. */
  get prioritized(): number {
    return this.#queued.size
  }

  /** The member to probe now, or `undefined` when there is none. */
  next(random: () => number): Id | undefined {
    const size = this.#order.length
    if (size === 0) {
      this.#clearPriority()
      return undefined
    }
    while (this.#priorityHead < this.#priority.length) {
      const id = this.#priority[this.#priorityHead++]!
      this.#queued.delete(id)
      if (!this.#position.has(id) || (id === this.#last && size > 1)) continue
      return this.#handOut(id)
    }
    this.#clearPriority()
    while (true) {
      if (this.#cursor >= size) this.#reshuffle(random)
      const id = this.#order[this.#cursor++]!
      // Only after an out-of-turn probe of the same member: its turn is taken.
      if (id === this.#last && size > 1) continue
      return this.#handOut(id)
    }
  }

  #handOut(id: Id): Id {
    this.#last = id
    return id
  }

  #clearPriority(): void {
    if (this.#priority.length === 0) return
    this.#priority = []
    this.#priorityHead = 0
    this.#queued.clear()
  }

  /** Starts a new pass. Its first member is never the one probed last, when there is a choice. */
  #reshuffle(random: () => number): void {
    const order = this.#order
    for (let i = order.length - 1; i > 0; i--) this.#swap(i, randomIndex(random, i + 1))
    if (order.length > 1 && order[0] === this.#last) this.#swap(0, 1 + randomIndex(random, order.length - 1))
    this.#cursor = 0
  }

  #swap(i: number, j: number): void {
    if (i === j) return
    const order = this.#order
    const a = order[i]!
    const b = order[j]!
    order[i] = b
    order[j] = a
    this.#position.set(b, i)
    this.#position.set(a, j)
  }
}
