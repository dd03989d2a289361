/**
 * The dissemination queue: state changes waiting to be piggybacked on
 * outgoing pings, acks and gossip packets (SWIM §4.1, infection-style
 * dissemination).
 *
 * - At most one update per member (`key`): a newer one replaces the older,
 *   which is no longer worth sending, and starts with a fresh transmit count.
 * - Each update is sent `retransmitMult × ⌈log10(N + 1)⌉` times — enough for
 *   it to reach every member with high probability — then dropped.
 * - Each packet carries the least-sent updates first (the ones the cluster
 *   is least likely to know), newest first among equals, at most `maxItems`
 *   of them and never more bytes than the packet has room for.
 *
 * Cost, with `n` queued updates and `T` distinct transmit counts (`T` is at
 * most the retransmit limit, 16 for a 2000-member cluster with the default
 * multiplier):
 *
 * - `enqueue`, `remove`: O(log n).
 * - `select`: O(T + (p + s) · log n), where `p ≤ maxItems` updates are taken
 *   and `s ≤ SELECT_MAX_SKIPS` are passed over for not fitting. No sort.
 * - `prune`: O(n log n); meant for an occasional trim, not per packet.
 *
 * How: one binary max-heap (keyed by insertion order) per transmit count, and
 * a map from key to entry for replacement. Sending an update moves it to the
 * next count's heap.
 *
 * Mutable and not re-entrant; the node's gossip engine owns one instance.
 *
 * @module
 * @since 0.1.0
 */

/** An update to piggyback. `size` is its encoded size in bytes, including any per-item framing. */
export interface BroadcastInput<A> {
  readonly key: string
  readonly payload: A
  readonly size: number
}

/** An update as {@link Broadcasts.select} hands it out: `transmits` counts this send too. */
export interface Broadcast<A> extends BroadcastInput<A> {
  readonly transmits: number
}

/**
 * How many non-fitting updates one `select` may pass over before it stops
 * looking. Bounds the scan when a packet is nearly full and the queue is
 * large; an update passed over keeps its place for the next packet.
 */
export const SELECT_MAX_SKIPS = 32

/** The default number of updates piggybacked on one packet. */
export const DEFAULT_MAX_ITEMS = 10

/**
 * How many times an update is sent in a cluster of `clusterSize` members:
 * `retransmitMult × ⌈log10(clusterSize + 1)⌉`, at least `retransmitMult`.
 */
export const retransmitLimit = (retransmitMult: number, clusterSize: number): number => {
  const n = Number.isFinite(clusterSize) && clusterSize > 1 ? clusterSize : 1
  return retransmitMult * Math.ceil(Math.log10(n + 1))
}

interface Entry<A> {
  readonly key: string
  readonly payload: A
  readonly size: number
  /** Insertion order: larger is newer. */
  readonly seq: number
  transmits: number
  /** Index in the heap of its transmit count. */
  index: number
}

/** Max-heap by `seq`, with each entry's index kept in the entry for O(log n) removal. */
type Heap<A> = Array<Entry<A>>

const swap = <A>(heap: Heap<A>, i: number, j: number): void => {
  const a = heap[i]!
  const b = heap[j]!
  heap[i] = b
  heap[j] = a
  b.index = i
  a.index = j
}

const siftUp = <A>(heap: Heap<A>, i: number): void => {
  while (i > 0) {
    const parent = (i - 1) >> 1
    if (heap[parent]!.seq >= heap[i]!.seq) return
    swap(heap, i, parent)
    i = parent
  }
}

const siftDown = <A>(heap: Heap<A>, i: number): void => {
  const length = heap.length
  while (true) {
    const left = 2 * i + 1
    if (left >= length) return
    const right = left + 1
    const child = right < length && heap[right]!.seq > heap[left]!.seq ? right : left
    if (heap[i]!.seq >= heap[child]!.seq) return
    swap(heap, i, child)
    i = child
  }
}

const push = <A>(heap: Heap<A>, entry: Entry<A>): void => {
  entry.index = heap.length
  heap.push(entry)
  siftUp(heap, entry.index)
}

const pop = <A>(heap: Heap<A>): Entry<A> | undefined => {
  const top = heap[0]
  if (top === undefined) return undefined
  const last = heap.pop()!
  if (last !== top) {
    heap[0] = last
    last.index = 0
    siftDown(heap, 0)
  }
  return top
}

const removeAt = <A>(heap: Heap<A>, i: number): void => {
  const last = heap.pop()!
  if (i === heap.length) return
  heap[i] = last
  last.index = i
  siftDown(heap, i)
  siftUp(heap, last.index)
}

const isValidSize = (size: number) => Number.isFinite(size) && size > 0

/** The queue; see the module comment. `A` is the update's payload (a decoded message). */
export class Broadcasts<A> {
  readonly retransmitMult: number
  readonly #byKey = new Map<string, Entry<A>>()
  /** `#tiers[t]` holds the entries sent `t` times so far. */
  #tiers: Array<Heap<A>> = []
  #seq = 0

  constructor(retransmitMult: number) {
    this.retransmitMult = Number.isInteger(retransmitMult) && retransmitMult >= 1 ? retransmitMult : 1
  }

  /** Number of queued updates. */
  get pending(): number {
    return this.#byKey.size
  }

  /** Whether an update for `key` is queued. */
  has(key: string): boolean {
    return this.#byKey.has(key)
  }

  /**
   * Queues an update, replacing any queued one for the same key (the caller
   * has already decided, by the precedence rules, that this one is newer).
   * Returns `false`, queuing nothing, when `size` is not a positive number.
   */
  enqueue(item: BroadcastInput<A>): boolean {
    if (!isValidSize(item.size)) return false
    this.remove(item.key)
    const entry: Entry<A> = {
      key: item.key,
      payload: item.payload,
      size: item.size,
      seq: this.#seq++,
      transmits: 0,
      index: 0
    }
    this.#byKey.set(item.key, entry)
    push(this.#tier(0), entry)
    return true
  }

  /** Drops the queued update for `key`, if any (e.g. its member was reaped). */
  remove(key: string): boolean {
    const entry = this.#byKey.get(key)
    if (entry === undefined) return false
    this.#byKey.delete(key)
    removeAt(this.#tiers[entry.transmits]!, entry.index)
    return true
  }

  /**
   * The updates to piggyback on one packet with `budgetBytes` of room, in a
   * cluster of `clusterSize` members: least-sent first, newest first among
   * equals, at most `maxItems`, with sizes summing to at most `budgetBytes`.
   * An update that does not fit is passed over (it keeps its place) and
   * smaller ones are tried. The chosen updates count as sent once more;
   * those that reach the retransmit limit leave the queue.
   */
  select(budgetBytes: number, clusterSize: number, maxItems: number = DEFAULT_MAX_ITEMS): Array<Broadcast<A>> {
    const limit = retransmitLimit(this.retransmitMult, clusterSize)
    this.#dropFrom(limit)
    if (!(budgetBytes > 0) || !(maxItems >= 1)) return []
    const picked: Array<Entry<A>> = []
    const skipped: Array<Entry<A>> = []
    let remaining = budgetBytes
    scan: for (let t = 0; t < this.#tiers.length; t++) {
      const heap = this.#tiers[t]!
      while (picked.length < maxItems) {
        const entry = pop(heap)
        if (entry === undefined) break
        if (entry.size > remaining) {
          skipped.push(entry)
          if (skipped.length >= SELECT_MAX_SKIPS) break scan
          continue
        }
        picked.push(entry)
        remaining -= entry.size
        if (remaining <= 0) break scan
      }
      if (picked.length >= maxItems) break
    }
    for (const entry of skipped) push(this.#tiers[entry.transmits]!, entry)
    const out: Array<Broadcast<A>> = new Array(picked.length)
    for (let i = 0; i < picked.length; i++) {
      const entry = picked[i]!
      entry.transmits++
      if (entry.transmits >= limit) this.#byKey.delete(entry.key)
      else push(this.#tier(entry.transmits), entry)
      out[i] = { key: entry.key, payload: entry.payload, size: entry.size, transmits: entry.transmits }
    }
    return out
  }

  /**
   * Keeps at most `maxItems` updates, dropping the most-sent (oldest first
   * among equals) — those the cluster most likely has already. Returns how
   * many were dropped.
   */
  prune(maxItems: number): number {
    const keep = Number.isFinite(maxItems) && maxItems > 0 ? Math.floor(maxItems) : 0
    const excess = this.#byKey.size - keep
    if (excess <= 0) return 0
    const entries = Array.from(this.#byKey.values())
    entries.sort((a, b) => b.transmits - a.transmits || a.seq - b.seq)
    for (let i = 0; i < excess; i++) this.remove(entries[i]!.key)
    return excess
  }

  /** Empties the queue. */
  clear(): void {
    this.#byKey.clear()
    this.#tiers = []
  }

  #tier(t: number): Heap<A> {
    while (this.#tiers.length <= t) this.#tiers.push([])
    return this.#tiers[t]!
  }

  /** Drops updates already sent `limit` times or more (the cluster shrank since they were queued). */
  #dropFrom(limit: number): void {
    if (this.#tiers.length <= limit) return
    for (let t = limit; t < this.#tiers.length; t++) {
      for (const entry of this.#tiers[t]!) this.#byKey.delete(entry.key)
    }
    this.#tiers.length = limit
  }
}
