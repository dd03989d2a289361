/**
 * What a simulated network does to a message between two addresses: its
 * delay (latency, jitter, the sender's send delay), whether a datagram is
 * lost, and whether the link is blocked (a partition, an isolated host, a
 * one-way cut). Pure and keyed by formatted addresses (`host:port`), so the
 * Effect-level `SimNetwork` and the discrete-event simulator apply the very
 * same model; each decides when to look (at send, at delivery) and owns the
 * randomness it passes in.
 *
 * Precedence of conditions: a link override, else the worse of the two
 * nodes' conditions (larger latency and jitter, losses combined as
 * independent: `1 − (1 − a)(1 − b)`), else the defaults — field by field.
 *
 * @since 0.1.0
 */

/** Conditions of a link, in milliseconds and a loss probability in [0, 1]. */
export interface Conditions {
  readonly latency: number
  readonly jitter: number
  readonly loss: number
}

/** Conditions with some fields left to the next level. */
export interface PartialConditions {
  readonly latency?: number
  readonly jitter?: number
  readonly loss?: number
}

/** A node's conditions: for every link from and to it, plus a delay on all it sends. */
export interface NodeOverride extends PartialConditions {
  readonly sendDelay?: number
}

/** 1 ms latency, no jitter, no loss. */
export const defaultConditions: Conditions = { latency: 1, jitter: 0, loss: 0 }

/** The key of the one-way link `from` → `to`. */
export const linkKey = (from: string, to: string): string => `${from}>${to}`

const worse = (a: number | undefined, b: number | undefined): number | undefined =>
  a === undefined ? b : b === undefined ? a : Math.max(a, b)

const combinedLoss = (a: number | undefined, b: number | undefined): number | undefined =>
  a === undefined ? b : b === undefined ? a : 1 - (1 - a) * (1 - b)

export class FaultModel {
  defaults: Conditions
  readonly #links = new Map<string, PartialConditions>()
  readonly #nodes = new Map<string, NodeOverride>()
  #groups = new Map<string, number>()
  #partitioned = false
  readonly #isolated = new Set<string>()
  readonly #cuts = new Set<string>()

  constructor(defaults: Conditions = defaultConditions) {
    this.defaults = defaults
  }

  setLink(from: string, to: string, conditions: PartialConditions): void {
    this.#links.set(linkKey(from, to), conditions)
  }

  clearLink(from: string, to: string): void {
    this.#links.delete(linkKey(from, to))
  }

  setNode(key: string, conditions: NodeOverride): void {
    this.#nodes.set(key, conditions)
  }

  clearNode(key: string): void {
    this.#nodes.delete(key)
  }

  /**
   * Nodes in different groups cannot reach each other; keys in no group form
   * one more group together. Replaces any previous partition.
   */
  partition(groups: ReadonlyArray<ReadonlyArray<string>>): void {
    const next = new Map<string, number>()
    groups.forEach((group, index) => {
      for (const key of group) next.set(key, index)
    })
    this.#groups = next
    this.#partitioned = true
  }

  /** Everything to and from `key` is dropped: a host that vanished. */
  isolate(key: string): void {
    this.#isolated.add(key)
  }

  /** Drops everything from `from` to `to` (that direction only). */
  cut(from: string, to: string): void {
    this.#cuts.add(linkKey(from, to))
  }

  uncut(from: string, to: string): void {
    this.#cuts.delete(linkKey(from, to))
  }

  /** Removes the partition, every isolation and every cut (conditions stay). */
  heal(): void {
    this.#groups = new Map()
    this.#partitioned = false
    this.#isolated.clear()
    this.#cuts.clear()
  }

  /** Whether nothing from `from` reaches `to` now. */
  blocked(from: string, to: string): boolean {
    if (this.#isolated.size > 0 && (this.#isolated.has(from) || this.#isolated.has(to))) return true
    if (this.#cuts.size > 0 && this.#cuts.has(linkKey(from, to))) return true
    if (!this.#partitioned) return false
    return (this.#groups.get(from) ?? -1) !== (this.#groups.get(to) ?? -1)
  }

  /** The conditions of the link `from` → `to` (see the module comment for precedence). */
  conditionsOf(from: string, to: string): Conditions {
    const links = this.#links
    const nodes = this.#nodes
    const link = links.size === 0 ? undefined : links.get(linkKey(from, to))
    const a = nodes.size === 0 ? undefined : nodes.get(from)
    const b = nodes.size === 0 ? undefined : nodes.get(to)
    if (link === undefined && a === undefined && b === undefined) return this.defaults
    return {
      latency: link?.latency ?? worse(a?.latency, b?.latency) ?? this.defaults.latency,
      jitter: link?.jitter ?? worse(a?.jitter, b?.jitter) ?? this.defaults.jitter,
      loss: link?.loss ?? combinedLoss(a?.loss, b?.loss) ?? this.defaults.loss
    }
  }

  /** One-way delay of a message from `from` under `conditions`; jitter is drawn from `random` only when there is any. */
  delayOf(from: string, conditions: Conditions, random: () => number): number {
    const jitter = conditions.jitter > 0 ? random() * conditions.jitter : 0
    const sendDelay = this.#nodes.size === 0 ? 0 : (this.#nodes.get(from)?.sendDelay ?? 0)
    return conditions.latency + jitter + sendDelay
  }

  /** Whether a datagram under `conditions` is lost; draws from `random` only when the link is lossy. */
  loses(conditions: Conditions, random: () => number): boolean {
    return conditions.loss > 0 && random() < conditions.loss
  }
}
