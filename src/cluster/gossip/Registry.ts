/**
 * Every member this node knows about — alive, suspect, dead or left until it
 * is reaped — with a tag index for discovery and tombstones for reaped
 * members, so that a stale message cannot bring one back.
 *
 * The table itself ({@link MemberTable}) is a plain synchronous data
 * structure, so the simulation and the tests can drive it directly; the
 * {@link NodeRegistry} service wraps it for the engine and adds the stream of
 * changes.
 *
 * @module
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { NodeNotFound } from "../Errors.ts"
import { type ClusterEvent, classify, NodeReaped } from "../Events.ts"
import type { ClusterNode, NodeId, NodeState, Tags } from "../Node.ts"
import { shouldApply } from "../Rules.ts"

/**
 * A claim the registry accepted. `previous` is the member as it was held
 * before (`undefined` when it was not a member: never seen, or reaped and now
 * returning), `current` as it is held now.
 */
export interface Applied {
  readonly _tag: "Applied"
  /** Position in the registry's total order of changes (1, 2, 3, … with no gaps). */
  readonly sequence: number
  readonly previous: ClusterNode | undefined
  readonly current: ClusterNode
}

/** A member removed after the reap time; `node` is its last state, now kept as a tombstone. */
export interface Reaped {
  readonly _tag: "Reaped"
  /** Position in the registry's total order of changes. */
  readonly sequence: number
  readonly node: ClusterNode
  /** When it was reaped, in the caller's clock (milliseconds). */
  readonly reapedAt: number
}

/** Every change the registry makes, in the order it makes them. */
export type RegistryChange = Applied | Reaped

/**
 * What is left of a reaped member: its last claim (state and incarnation, with
 * the rest of its last view) and when it was reaped. Only a claim that
 * `Rules.shouldApply` accepts against it can bring the member back.
 */
export interface Tombstone {
  readonly node: ClusterNode
  readonly reapedAt: number
}

/**
 * Tag queries answer "whom can I call": by default only `Alive` members.
 * `includeSuspect` adds suspected members, for callers that prefer a
 * possibly-slow member to none (a suspect is often just a slow link, and
 * Lifeguard expects many suspicions to be refuted). `Dead` and `Left` members
 * are never returned.
 */
export interface TagQueryOptions {
  readonly includeSuspect?: boolean | undefined
}

/** The membership event a change means to an application, if any (see `Events.classify`). */
export const toEvent = (change: RegistryChange): ClusterEvent | undefined =>
  change._tag === "Applied"
    ? classify(change.previous, change.current)
    : new NodeReaped({ node: change.node }, { disableChecks: true })

/** States kept in the tag index: the ones a tag query may return. */
const isIndexed = (state: NodeState): boolean => state === "Alive" || state === "Suspect"

const accepts = (state: NodeState, options: TagQueryOptions | undefined): boolean =>
  state === "Alive" || (state === "Suspect" && options?.includeSuspect === true)

/** Own-property read, so tag keys such as `__proto__` or `constructor` are plain keys. */
const tagValue = (tags: Tags, key: string): string | undefined => (Object.hasOwn(tags, key) ? tags[key] : undefined)

/**
 * The member table: members by id, tombstones by id, and a tag index
 * `key → value → ids` over the members a tag query can return (`Alive` and
 * `Suspect`), so discovery never scans the whole membership (built at the
 * first tag query, kept up to date after).
 *
 * Synchronous and single-owner: every method runs to completion, so a caller
 * that runs each call inside one `Effect.sync` gets atomic updates for free
 * (see {@link NodeRegistry}). Returned nodes are the table's own immutable
 * `ClusterNode` values; returned collections are fresh arrays.
 */
export class MemberTable {
  readonly #members = new Map<NodeId, ClusterNode>()
  readonly #tombstones = new Map<NodeId, Tombstone>()
  /** Built at the first tag query and maintained from then on: a table nobody queries by tag (a simulated node) keeps none. */
  #index: Map<string, Map<string, Set<NodeId>>> | undefined = undefined
  readonly #counts: Record<NodeState, number> = { Alive: 0, Suspect: 0, Dead: 0, Left: 0 }
  #sequence = 0

  /** Number of members (any state; tombstones excluded). */
  get size(): number {
    return this.#members.size
  }

  /** Number of members in `state`, in O(1) (a simulation of thousands of nodes asks it of every node). */
  count(state: NodeState): number {
    return this.#counts[state]
  }

  /** Sequence number of the last change made (0 before the first). */
  get sequence(): number {
    return this.#sequence
  }

  /** A read-only view of the tag index, for inspection and tests. Never holds an empty set or map. */
  get tagIndex(): ReadonlyMap<string, ReadonlyMap<string, ReadonlySet<NodeId>>> {
    return this.#indexed()
  }

  /** The member with this id, if held. */
  get(id: NodeId): ClusterNode | undefined {
    return this.#members.get(id)
  }

  /** How many tombstones are kept. */
  get tombstoneCount(): number {
    return this.#tombstones.size
  }

  /** The tombstone of a reaped member, if still kept. */
  tombstone(id: NodeId): Tombstone | undefined {
    return this.#tombstones.get(id)
  }

  /** All tombstones, oldest reap first. */
  tombstones(): Array<readonly [NodeId, Tombstone]> {
    return Array.from(this.#tombstones)
  }

  /** All members, in the order they were first added. */
  members(): Array<ClusterNode> {
    return Array.from(this.#members.values())
  }

  /** Members in state `Alive`. */
  aliveNodes(): Array<ClusterNode> {
    const out: Array<ClusterNode> = []
    for (const node of this.#members.values()) if (node.state === "Alive") out.push(node)
    return out
  }

  /**
   * Applies a claim about a member if `Rules.shouldApply` accepts it against
   * what is held (the member, else its tombstone). An accepted `Alive` claim
   * replaces the whole view (name, addresses, tags: the member is their only
   * authority); any other accepted claim changes only state and incarnation,
   * because the accuser's copy of the rest may be stale.
   *
   * A non-`Alive` claim that supersedes a tombstone strengthens the tombstone
   * but does not bring the member back (it would only have to be reaped again),
   * so it returns `undefined` like an ignored claim.
   */
  upsert(node: ClusterNode): Applied | undefined {
    const member = this.#members.get(node.id)
    if (member !== undefined) {
      if (!shouldApply(member, node)) return undefined
      return this.#apply(member, node.state === "Alive" ? node : this.#restate(member, node.state, node.incarnation))
    }
    const tombstone = this.#tombstones.get(node.id)
    if (tombstone !== undefined) {
      if (!shouldApply(tombstone.node, node)) return undefined
      if (node.state !== "Alive") {
        this.#tombstones.set(node.id, {
          node: this.#restate(tombstone.node, node.state, node.incarnation),
          reapedAt: tombstone.reapedAt
        })
        return undefined
      }
      this.#tombstones.delete(node.id)
      return this.#apply(undefined, node)
    }
    return shouldApply(undefined, node) ? this.#apply(undefined, node) : undefined
  }

  /**
   * Applies `state` at `incarnation` to a member, keeping the rest of its
   * view, under the same rule as {@link upsert}. `undefined` when the member is
   * not held (check {@link get} first to tell that apart) or the claim loses.
   */
  updateState(id: NodeId, state: NodeState, incarnation: number): Applied | undefined {
    const member = this.#members.get(id)
    if (member === undefined || !shouldApply(member, { state, incarnation })) return undefined
    return this.#apply(member, this.#restate(member, state, incarnation))
  }

  /**
   * Reaps a member: removes it and keeps a tombstone with its last claim.
   * `undefined` when it is not a member (already reaped, or never known), so
   * reaping is idempotent.
   */
  remove(id: NodeId, now: number): Reaped | undefined {
    const node = this.#members.get(id)
    if (node === undefined) return undefined
    this.#members.delete(id)
    this.#counts[node.state]--
    if (isIndexed(node.state) && this.#index !== undefined) this.#unindexAll(node)
    this.#tombstones.set(id, { node, reapedAt: now })
    return { _tag: "Reaped", sequence: ++this.#sequence, node, reapedAt: now }
  }

  /**
   * Forgets tombstones reaped at least `ttlMillis` before `now`; returns how
   * many. After that a stale message about the member is treated like news
   * about an unknown member (accepted only if `Alive`), so the TTL must
   * outlast the time an old message can keep circulating.
   */
  expireTombstones(now: number, ttlMillis: number): number {
    let expired = 0
    for (const [id, tombstone] of this.#tombstones) {
      if (now - tombstone.reapedAt >= ttlMillis) {
        this.#tombstones.delete(id)
        expired++
      }
    }
    return expired
  }

  /** `Alive` members (and `Suspect` ones with `includeSuspect`) whose tag `key` is `value`. */
  getNodesByTag(key: string, value: string, options?: TagQueryOptions): Array<ClusterNode> {
    const ids = this.#indexed().get(key)?.get(value)
    const out: Array<ClusterNode> = []
    if (ids === undefined) return out
    for (const id of ids) {
      const node = this.#members.get(id)!
      if (accepts(node.state, options)) out.push(node)
    }
    return out
  }

  /**
   * `Alive` members (and `Suspect` ones with `includeSuspect`) carrying every
   * tag in `tags`: the index sets are intersected starting from the smallest,
   * so the cost is bounded by the rarest tag. No tags means every such member.
   */
  getNodesByTags(tags: Tags, options?: TagQueryOptions): Array<ClusterNode> {
    const sets: Array<ReadonlySet<NodeId>> = []
    for (const key of Object.keys(tags)) {
      const ids = this.#indexed().get(key)?.get(tags[key]!)
      if (ids === undefined) return []
      sets.push(ids)
    }
    const out: Array<ClusterNode> = []
    if (sets.length === 0) {
      for (const node of this.#members.values()) if (accepts(node.state, options)) out.push(node)
      return out
    }
    sets.sort((a, b) => a.size - b.size)
    const [smallest, ...rest] = sets as [ReadonlySet<NodeId>, ...Array<ReadonlySet<NodeId>>]
    outer: for (const id of smallest) {
      for (const other of rest) if (!other.has(id)) continue outer
      const node = this.#members.get(id)!
      if (accepts(node.state, options)) out.push(node)
    }
    return out
  }

  #restate(node: ClusterNode, state: NodeState, incarnation: number): ClusterNode {
    return node.with({ state, incarnation })
  }

  #apply(previous: ClusterNode | undefined, current: ClusterNode): Applied {
    this.#members.set(current.id, current)
    if (previous !== undefined) this.#counts[previous.state]--
    this.#counts[current.state]++
    this.#reindex(previous, current)
    return { _tag: "Applied", sequence: ++this.#sequence, previous, current }
  }

  /** Moves the member's index entries from `previous` to `current`, touching only the tags that differ. */
  #reindex(previous: ClusterNode | undefined, current: ClusterNode): void {
    if (this.#index === undefined) return
    const was = previous !== undefined && isIndexed(previous.state) ? previous : undefined
    const is = isIndexed(current.state)
    if (was !== undefined && is && was.tags === current.tags) return
    if (was !== undefined) {
      for (const key of Object.keys(was.tags)) {
        const value = was.tags[key]!
        if (!is || tagValue(current.tags, key) !== value) this.#unindex(key, value, current.id)
      }
    }
    if (is) {
      for (const key of Object.keys(current.tags)) {
        const value = current.tags[key]!
        if (was === undefined || tagValue(was.tags, key) !== value) this.#indexOne(key, value, current.id)
      }
    }
  }

  /** The tag index, built from the members now if this is its first use. */
  #indexed(): Map<string, Map<string, Set<NodeId>>> {
    if (this.#index !== undefined) return this.#index
    this.#index = new Map()
    for (const node of this.#members.values()) {
      if (!isIndexed(node.state)) continue
      for (const key of Object.keys(node.tags)) this.#indexOne(key, node.tags[key]!, node.id)
    }
    return this.#index
  }

  #indexOne(key: string, value: string, id: NodeId): void {
    const index = this.#index!
    let values = index.get(key)
    if (values === undefined) index.set(key, (values = new Map()))
    let ids = values.get(value)
    if (ids === undefined) values.set(value, (ids = new Set()))
    ids.add(id)
  }

  #unindex(key: string, value: string, id: NodeId): void {
    const values = this.#index?.get(key)
    const ids = values?.get(value)
    if (values === undefined || ids === undefined) return
    ids.delete(id)
    if (ids.size === 0) {
      values.delete(value)
      if (values.size === 0) this.#index!.delete(key)
    }
  }

  #unindexAll(node: ClusterNode): void {
    for (const key of Object.keys(node.tags)) this.#unindex(key, node.tags[key]!, node.id)
  }
}

/**
 * The registry the engine feeds with every update it hears, and that
 * discovery, health and the RPC layer read.
 *
 * Concurrency: fibers run on one JavaScript thread and an `Effect.sync`
 * thunk runs to completion without yielding, so each operation below — the
 * rule check, the mutation of the plain `Map`s, the index update and the
 * publication of the change — happens in one synchronous block that no other
 * fiber can interleave with. That makes every operation atomic and the order
 * of `changes` exactly the order of application, without a lock or a `Ref`
 * on the hot path (the engine calls `upsert` for every update it receives).
 * Reads are consistent snapshots for the same reason. (The same holds for
 * any single-threaded runtime; it would not survive moving the table to
 * shared memory between workers.)
 *
 * Turn changes into user-facing events with {@link toEvent}.
 */
export class NodeRegistry extends Context.Service<
  NodeRegistry,
  {
    /**
     * The table itself, for the protocol engine, which applies every change
     * there synchronously and hands each one to {@link publish}; everything
     * below reads the same table.
     */
    readonly table: MemberTable
    /** Publishes a change the engine made to {@link table} to the subscribers of {@link changes}. */
    readonly publish: (change: RegistryChange) => void
    /** Applies a claim (see {@link MemberTable.upsert}); the change, or `undefined` when the claim lost. */
    readonly upsert: (node: ClusterNode) => Effect.Effect<Applied | undefined>
    /**
     * Applies a state at an incarnation to a held member, keeping the rest of
     * its view; `undefined` when the claim lost. Fails with `NodeNotFound`
     * when the id is not a member (never known, or reaped: a tombstone is only
     * revived by the member's own `Alive` through {@link upsert}).
     */
    readonly updateState: (
      id: NodeId,
      state: NodeState,
      incarnation: number
    ) => Effect.Effect<Applied | undefined, NodeNotFound>
    /** Reaps a member, keeping a tombstone; `undefined` when it is not a member. */
    readonly remove: (id: NodeId, now: number) => Effect.Effect<Reaped | undefined>
    /** Forgets tombstones older than `ttl` at `now` (milliseconds); returns how many. */
    readonly expireTombstones: (now: number, ttl: Duration.Input) => Effect.Effect<number>
    /** The member with this id, if held. */
    readonly get: (id: NodeId) => Effect.Effect<Option.Option<ClusterNode>>
    /** The tombstone of a reaped member, if still kept. */
    readonly getTombstone: (id: NodeId) => Effect.Effect<Option.Option<Tombstone>>
    /** Every member, whatever its state. */
    readonly members: Effect.Effect<ReadonlyArray<ClusterNode>>
    /** Members in state `Alive`. */
    readonly getAliveNodes: Effect.Effect<ReadonlyArray<ClusterNode>>
    /** From the tag index; only `Alive` members unless `includeSuspect` (see {@link TagQueryOptions}). */
    readonly getNodesByTag: (
      key: string,
      value: string,
      options?: TagQueryOptions
    ) => Effect.Effect<ReadonlyArray<ClusterNode>>
    /** Members carrying all of `tags`, from the tag index (see {@link TagQueryOptions}). */
    readonly getNodesByTags: (tags: Tags, options?: TagQueryOptions) => Effect.Effect<ReadonlyArray<ClusterNode>>
    /** Number of members (any state; tombstones excluded). */
    readonly size: Effect.Effect<number>
    /**
     * Every change from the moment the stream *starts running*: it subscribes
     * lazily, so changes made between building the stream and its first pull
     * are not seen. Use {@link subscribe} or {@link watch} to be sure.
     */
    readonly changes: Stream.Stream<RegistryChange>
    /** A subscription that receives every change made after this effect returns (scoped). */
    readonly subscribe: Effect.Effect<PubSub.Subscription<RegistryChange>, never, Scope.Scope>
    /**
     * The members now and, in `changes`, exactly the changes made after that
     * snapshot: no change is missed or seen twice. The subscription is live
     * when this returns (scoped).
     */
    readonly watch: Effect.Effect<
      { readonly members: ReadonlyArray<ClusterNode>; readonly changes: Stream.Stream<RegistryChange> },
      never,
      Scope.Scope
    >
  }
>()("shoal/cluster/gossip/NodeRegistry") {
  static readonly make: Effect.Effect<NodeRegistry["Service"], never, Scope.Scope> = Effect.gen(function* () {
    const table = new MemberTable()
    // Unbounded so no subscriber ever misses a change; a subscriber must keep up.
    // With no subscriber, a publish is dropped at once.
    const pubsub = yield* PubSub.unbounded<RegistryChange>()
    yield* Effect.addFinalizer(() => PubSub.shutdown(pubsub))

    const publish = <C extends RegistryChange>(change: C | undefined): C | undefined => {
      if (change !== undefined) PubSub.publishUnsafe(pubsub, change)
      return change
    }

    const subscribe = PubSub.subscribe(pubsub)

    return NodeRegistry.of({
      table,
      publish: (change) => void publish(change),
      upsert: (node) => Effect.sync(() => publish(table.upsert(node))),
      updateState: (id, state, incarnation) =>
        Effect.suspend(() =>
          table.get(id) === undefined
            ? Effect.fail(new NodeNotFound({ nodeId: id }))
            : Effect.succeed(publish(table.updateState(id, state, incarnation)))
        ),
      remove: (id, now) => Effect.sync(() => publish(table.remove(id, now))),
      expireTombstones: (now, ttl) => Effect.sync(() => table.expireTombstones(now, Duration.toMillis(ttl))),
      get: (id) => Effect.sync(() => Option.fromUndefinedOr(table.get(id))),
      getTombstone: (id) => Effect.sync(() => Option.fromUndefinedOr(table.tombstone(id))),
      members: Effect.sync(() => table.members()),
      getAliveNodes: Effect.sync(() => table.aliveNodes()),
      getNodesByTag: (key, value, options) => Effect.sync(() => table.getNodesByTag(key, value, options)),
      getNodesByTags: (tags, options) => Effect.sync(() => table.getNodesByTags(tags, options)),
      size: Effect.sync(() => table.size),
      changes: Stream.fromPubSub(pubsub),
      subscribe,
      watch: Effect.gen(function* () {
        // Subscribe first, then snapshot: a change made in between is in both,
        // and the sequence number drops it from the stream.
        const subscription = yield* subscribe
        const [members, sequence] = yield* Effect.sync(() => [table.members(), table.sequence] as const)
        return {
          members,
          changes: Stream.fromSubscription(subscription).pipe(Stream.filter((change) => change.sequence > sequence))
        }
      })
    })
  })

  /** A fresh, empty registry (no dependencies). */
  static readonly layer: Layer.Layer<NodeRegistry> = Layer.effect(NodeRegistry, NodeRegistry.make)
}
