/**
 * Cluster plumbing for the simulation benchmarks: starting thousands of nodes
 * on the in-memory network without the quadratic cost of the test harness,
 * and waiting for conditions over all of them without scanning N² views per
 * sample.
 *
 * - **Starting.** The test harness starts nodes one at a time, each joining
 *   through node 0 while the clock moves in 5 ms steps: N joins run back to
 *   back, node 0 answers every one of them with its whole (growing) state, and
 *   the running cluster burns simulated time all along. Here node 0 starts
 *   alone and the rest start in concurrent batches, each node joining through
 *   one random node of the batches before it, as nodes booting together with
 *   a seed list would. The seed's state is still sent whole (push-pull is the
 *   protocol), but the load is spread and the start-up takes milliseconds of
 *   simulated time instead of seconds.
 * - **Waiting.** {@link waitForAll} checks only the observers that did not
 *   yet satisfy the condition, with an O(1) member lookup where it can, and
 *   verifies everyone once more before it reports success, so a view that
 *   flips back is not missed.
 *
 * Every node is a full `Cluster.layerWithTransport` with the default timings
 * unless the caller passes others, built with `leaveOnClose: false`: closing
 * its scope is a crash, and a graceful leave is `cluster.leave`. (Closing a
 * node that leaves on close takes simulated time — it retransmits its `Left`
 * — so a crash measured from after the close would start the clock late.)
 */
import { Context, Effect, Exit, Layer, Option, Random, Scope } from "effect"
import { TestClock } from "effect/testing"
import { Cluster } from "../../src/cluster/Cluster.ts"
import * as ClusterConfig from "../../src/cluster/Config.ts"
import { SimNetwork } from "../../src/cluster/gossip/SimNetwork.ts"
import type { NodeId, NodeState } from "../../src/cluster/Node.ts"
import { addressOf, runWithClock, type SimNode } from "../../test/cluster/sim/harness.ts"

export type { SimNode }

/** Anything with a cluster to ask: a simulated node, or a real one. */
export interface Observer {
  readonly cluster: Cluster["Service"]
}

/** A simulated node and its id (read once: the id never changes). */
export interface Member extends SimNode {
  readonly id: NodeId
}

/** Builds node `index` joining through `seeds` (indices), without moving the clock: the caller does. */
const build = (
  network: SimNetwork["Service"],
  index: number,
  seeds: ReadonlyArray<number>,
  input: ClusterConfig.Input
) =>
  Effect.gen(function* () {
    const address = addressOf(index)
    const config = yield* ClusterConfig.make({
      nodeName: `n${index}`,
      bindAddress: address,
      seedNodes: seeds.map((i) => String(addressOf(i))),
      ...input
    })
    const scope = yield* Scope.make()
    const context = yield* Layer.buildWithScope(
      // No leave on close: a crash is a close, and a graceful leave is asked for explicitly.
      Cluster.layerWithTransport(config, { leaveOnClose: false }).pipe(
        Layer.provide(SimNetwork.transport(address)),
        Layer.provide(Layer.succeed(SimNetwork, network))
      ),
      scope
    )
    const cluster = Context.get(context, Cluster)
    const id = (yield* cluster.localNode).id
    return { index, address, cluster, scope, id } satisfies Member
  })

/** Starts node `index` joining through `seeds` (indices of running nodes), moving the clock while it joins. */
export const startMember = (index: number, seeds: ReadonlyArray<number>, input: ClusterConfig.Input = {}) =>
  Effect.gen(function* () {
    const network = yield* SimNetwork
    return yield* runWithClock(build(network, index, seeds, input), 1)
  })

/** Options of {@link startMembers}. */
export interface StartOptions {
  /** Nodes started concurrently per batch (default 50). */
  readonly batch?: number
  /** Timings and other configuration of every node. */
  readonly input?: ClusterConfig.Input
}

/**
 * Starts `n` nodes: node 0 alone, then batches of `batch` nodes at once, each
 * joining through one node drawn (from the seeded `Random`) among those
 * already running.
 */
export const startMembers = (n: number, options: StartOptions = {}) =>
  Effect.gen(function* () {
    const batch = Math.max(1, options.batch ?? 50)
    const input = options.input ?? {}
    const network = yield* SimNetwork
    const members: Array<Member> = [yield* startMember(0, [], input)]
    while (members.length < n) {
      const running = members.length
      const indices: Array<number> = []
      for (let i = running; i < Math.min(n, running + batch); i++) indices.push(i)
      const seeds: Array<number> = []
      for (const _ of indices) seeds.push(yield* Random.nextIntBetween(0, running - 1))
      const started = yield* runWithClock(
        Effect.forEach(indices, (index, k) => build(network, index, [seeds[k]!], input), { concurrency: "unbounded" }),
        1
      )
      members.push(...started)
    }
    return members
  })

/** Crashes a node: cut off from the network and stopped, at the current simulated instant. */
export const crashMember = (member: SimNode) =>
  Effect.gen(function* () {
    const network = yield* SimNetwork
    yield* network.isolate(member.address)
    yield* runWithClock(Scope.close(member.scope, Exit.void), 1)
  })

/** Stops every node (without leaving: N leaves gossiped to one another would cost more than the run). */
export const stopMembers = (members: ReadonlyArray<SimNode>) =>
  Effect.gen(function* () {
    const network = yield* SimNetwork
    for (const m of members) yield* network.isolate(m.address)
    yield* runWithClock(
      Effect.forEach(members, (m) => Scope.close(m.scope, Exit.void), { discard: true, concurrency: "unbounded" })
    )
  })

/** The state in which `observer` holds `subject`, `undefined` once it is unknown (never heard of, or reaped). */
export const stateOf = (observer: Observer, subject: NodeId): Effect.Effect<NodeState | undefined> =>
  Effect.map(
    Effect.option(observer.cluster.member(subject)),
    Option.match({ onNone: () => undefined, onSome: (node) => node.state })
  )

/** Whether `observer` holds `subject` in one of `states` (`undefined` in the list: or does not hold it at all). */
export const holds =
  (subject: NodeId, states: ReadonlyArray<NodeState | undefined>) =>
  (observer: Observer): Effect.Effect<boolean> =>
    Effect.map(stateOf(observer, subject), (state) => states.includes(state))

/** Whether `observer` sees exactly `n` members alive, itself included. */
export const seesAlive =
  (n: number) =>
  (observer: Observer): Effect.Effect<boolean> =>
    Effect.map(observer.cluster.aliveMembers, (alive) => alive.length === n)

/** When {@link waitForAll} saw the first and the last observer satisfy its condition (simulated ms). */
export interface Waited {
  /** The first sample at which at least one observer satisfied the condition. */
  readonly first: number | undefined
  /** The first sample at which every observer satisfied it at once. */
  readonly all: number | undefined
}

/**
 * Moves the clock in `stepMillis` steps (at most `limitMillis` in all) until
 * every observer satisfies `condition`, sampling only the observers still
 * pending and then every observer once more (a view can flip back). Times are
 * from the call, at sample resolution.
 */
export const waitForAll = (
  observers: ReadonlyArray<SimNode>,
  condition: (observer: SimNode) => Effect.Effect<boolean>,
  limitMillis: number,
  stepMillis = 100
) =>
  Effect.gen(function* () {
    let pending: ReadonlyArray<SimNode> = observers
    let first: number | undefined
    for (let t = 0; t <= limitMillis; t += stepMillis) {
      const still: Array<SimNode> = []
      for (const o of pending) if (!(yield* condition(o))) still.push(o)
      if (first === undefined && still.length < observers.length) first = t
      if (still.length === 0) {
        const recheck: Array<SimNode> = []
        for (const o of observers) if (!(yield* condition(o))) recheck.push(o)
        if (recheck.length === 0) return { first, all: t } satisfies Waited
        still.push(...recheck)
      }
      pending = still
      yield* TestClock.adjust(stepMillis)
    }
    return { first, all: undefined } satisfies Waited
  })

/** Sums a numeric field of every node's engine counters. */
export const sumStats = (members: ReadonlyArray<SimNode>) =>
  Effect.gen(function* () {
    const total = { suspicionsRaised: 0, deathsDeclared: 0, refutations: 0, failedProbes: 0, probes: 0 }
    for (const m of members) {
      const s = yield* m.cluster.stats
      total.suspicionsRaised += s.suspicionsRaised
      total.deathsDeclared += s.deathsDeclared
      total.refutations += s.refutations
      total.failedProbes += s.failedProbes
      total.probes += s.probes
    }
    return total
  })
