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

/**
 * One transmit count's entries: a max-heap by `seq`, with each entry's index
 * kept in the entry for O(log n) removal. The keys it compares (`seqs`) sit
 * in an array of their own, parallel to the entries: a queue of thousands of
 * updates (a node that just learnt a whole cluster) then sifts through
 * contiguous numbers instead of touching an entry object at every level, and
 * the sifts move a hole rather than swap.
 */
class Tier<A> {
  readonly entries: Array<Entry<A>> = []
  readonly #seqs: Array<number> = []

  get size(): number {
    return this.entries.length
  }

  push(entry: Entry<A>): void {
    this.entries.push(entry)
    this.#seqs.push(entry.seq)
    this.#up(this.entries.length - 1, entry)
  }

  pop(): Entry<A> | undefined {
    const entries = this.entries
    const top = entries[0]
    if (top === undefined) return undefined
    const last = entries.pop()!
    this.#seqs.pop()
    if (last !== top) this.#down(0, last)
    return top
  }

  removeAt(i: number): void {
    const entries = this.entries
    const last = entries.pop()!
    this.#seqs.pop()
    if (i === entries.length) return
    this.#down(i, last)
    this.#up(last.index, last)
  }

  /** Places `entry` at hole `i` or above it. */
  #up(i: number, entry: Entry<A>): void {
    const entries = this.entries
    const seqs = this.#seqs
    const seq = entry.seq
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (seqs[parent]! >= seq) break
      const moved = entries[parent]!
      entries[i] = moved
      seqs[i] = seqs[parent]!
      moved.index = i
      i = parent
    }
    entries[i] = entry
    seqs[i] = seq
    entry.index = i
  }

  /** Places `entry` at hole `i` or below it. */
  #down(i: number, entry: Entry<A>): void {
    const entries = this.entries
    const seqs = this.#seqs
    const length = entries.length
    const seq = entry.seq
    while (true) {
      const left = 2 * i + 1
      if (left >= length) break
      const right = left + 1
      const child = right < length && seqs[right]! > seqs[left]! ? right : left
      if (seq >= seqs[child]!) break
      const moved = entries[child]!
      entries[i] = moved
      seqs[i] = seqs[child]!
      moved.index = i
      i = child
    }
    entries[i] = entry
    seqs[i] = seq
    entry.index = i
  }
}

const isValidSize = (size: number) => Number.isFinite(size) && size > 0

/** The queue; see the module comment. `A` is the update's payload (a decoded message). */
export class Broadcasts<A> {
  readonly retransmitMult: number
  readonly #byKey = new Map<string, Entry<A>>()
  /** `#tiers[t]` holds the entries sent `t` times so far. */
  #tiers: Array<Tier<A>> = []
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
    this.#tier(0).push(entry)
    return true
  }

  /** Drops the queued update for `key`, if any (e.g. its member was reaped). */
  remove(key: string): boolean {
    const entry = this.#byKey.get(key)
    if (entry === undefined) return false
    this.#byKey.delete(key)
    this.#tiers[entry.transmits]!.removeAt(entry.index)
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
    const out: Array<Broadcast<A>> = []
    this.#take(budgetBytes, clusterSize, maxItems, (entry) => {
      out.push({ key: entry.key, payload: entry.payload, size: entry.size, transmits: entry.transmits })
    })
    return out
  }

  /**
   * {@link select}, appending only the payloads to `out` (the hot path of a
   * node that sends a packet: no object per chosen update). Returns how many.
   */
  selectPayloads(
    out: Array<A>,
    budgetBytes: number,
    clusterSize: number,
    maxItems: number = DEFAULT_MAX_ITEMS
  ): number {
    return this.#take(budgetBytes, clusterSize, maxItems, (entry) => void out.push(entry.payload))
  }

  #take(budgetBytes: number, clusterSize: number, maxItems: number, chosen: (entry: Entry<A>) => void): number {
    const limit = retransmitLimit(this.retransmitMult, clusterSize)
    this.#dropFrom(limit)
    if (!(budgetBytes > 0) || !(maxItems >= 1)) return 0
    const picked: Array<Entry<A>> = []
    let skipped: Array<Entry<A>> | undefined
    let remaining = budgetBytes
    scan: for (let t = 0; t < this.#tiers.length; t++) {
      const heap = this.#tiers[t]!
      while (picked.length < maxItems) {
        const entry = heap.pop()
        if (entry === undefined) break
        if (entry.size > remaining) {
          skipped ??= []
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
    if (skipped !== undefined) for (const entry of skipped) this.#tiers[entry.transmits]!.push(entry)
    for (const entry of picked) {
      entry.transmits++
      if (entry.transmits >= limit) this.#byKey.delete(entry.key)
      else this.#tier(entry.transmits).push(entry)
      chosen(entry)
    }
    return picked.length
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

  #tier(t: number): Tier<A> {
    while (this.#tiers.length <= t) this.#tiers.push(new Tier())
    return this.#tiers[t]!
  }

  /** Drops updates already sent `limit` times or more (the cluster shrank since they were queued). */
  #dropFrom(limit: number): void {
    if (this.#tiers.length <= limit) return
    for (let t = limit; t < this.#tiers.length; t++) {
      for (const entry of this.#tiers[t]!.entries) this.#byKey.delete(entry.key)
    }
    this.#tiers.length = limit
  }
}
