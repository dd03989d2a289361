/**
 * A min-heap of things that happen at a time: the earliest first, and among
 * equal times the first scheduled first (`seq`), so a simulation that
 * schedules in a deterministic order replays in that order. Both simulated
 * networks deliver through one.
 *
 * @since 0.1.0
 */

/** Something due at `time` (ms); `seq` breaks ties in scheduling order. */
export interface Timed {
  readonly time: number
  readonly seq: number
}

const before = (a: Timed, b: Timed): boolean => a.time < b.time || (a.time === b.time && a.seq < b.seq)

export class TimedQueue<A extends Timed> {
  readonly #items: Array<A> = []

  get size(): number {
    return this.#items.length
  }

  /** The earliest item, left in place. */
  peek(): A | undefined {
    return this.#items[0]
  }

  clear(): void {
    this.#items.length = 0
  }

  push(item: A): void {
    const items = this.#items
    let i = items.length
    items.push(item)
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (!before(item, items[parent]!)) break
      items[i] = items[parent]!
      i = parent
    }
    items[i] = item
  }

  /** Removes and returns the earliest item. */
  pop(): A | undefined {
    const items = this.#items
    const top = items[0]
    const last = items.pop()
    if (top === undefined || last === undefined || items.length === 0) return top
    let i = 0
    const n = items.length
    while (true) {
      const left = 2 * i + 1
      if (left >= n) break
      const right = left + 1
      const child = right < n && before(items[right]!, items[left]!) ? right : left
      if (!before(items[child]!, last)) break
      items[i] = items[child]!
      i = child
    }
    items[i] = last
    return top
  }
}
