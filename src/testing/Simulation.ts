/**
 * Whole clusters on the in-memory `SimNetwork` under `TestClock`: each node
 * is a real `Cluster.layerWithTransport` built in its own scope, so a test
 * can crash one (close its scope without a word), make it leave, partition
 * the network, and move simulated time forward. Nothing waits on real time,
 * so a run is exact and repeatable with a seeded `Random`.
 *
 * Run these inside `it.effect` (which provides `TestClock`) with a
 * `SimNetwork` in the context.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { SimNetwork, Simulation } from "shoal/testing"
 *
 * const threeNodes = Effect.gen(function* () {
 *   const nodes = yield* Simulation.startCluster(3)
 *   // simulated milliseconds until every node sees all three alive
 *   const formed = yield* Simulation.advanceUntil(Simulation.allSee(nodes, nodes, "Alive"), 10_000)
 *   yield* Simulation.stopAll(nodes)
 *   return formed
 * }).pipe(Effect.provide(SimNetwork.layer))
 * ```
 *
 * @module
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Scope from "effect/Scope"
import * as TestClock from "effect/testing/TestClock"
import { Cluster } from "../cluster/Cluster.ts"
import * as ClusterConfig from "../cluster/Config.ts"
import type { ClusterError } from "../cluster/Errors.ts"
import { SimNetwork } from "../cluster/gossip/SimNetwork.ts"
import { Address, type NodeState } from "../cluster/Node.ts"

/** One simulated node: its index, address, cluster service and the scope that runs it. */
export interface SimNode {
  readonly index: number
  readonly address: Address
  readonly cluster: Cluster["Service"]
  readonly scope: Scope.Closeable
}

/** The gossip address of node `index`: `10.0.x.y:7946`, distinct for up to 64,000 nodes. */
export const addressOf = (index: number): Address =>
  new Address({ host: `10.0.${Math.floor(index / 250)}.${(index % 250) + 1}`, port: 7946 })

/** Runs `effect`, advancing the `TestClock` in `stepMillis` steps until it completes. */
export const runWithClock = <A, E, R>(effect: Effect.Effect<A, E, R>, stepMillis = 5): Effect.Effect<A, E, R> =>
  Effect.gen(function* () {
    const fiber = yield* Effect.forkChild(effect, { startImmediately: true })
    while (fiber.pollUnsafe() === undefined) yield* TestClock.adjust(stepMillis)
    return yield* Fiber.join(fiber)
  })

/**
 * Starts node `index` on the network in the context, joining through the
 * nodes `seeds` (default: node 0, unless this is node 0). Closing its scope
 * stops it without leaving, as a crash would.
 */
export const startNode = (
  index: number,
  input: ClusterConfig.Input = {},
  seeds?: ReadonlyArray<number>
): Effect.Effect<SimNode, ClusterError, SimNetwork> =>
  Effect.gen(function* () {
    const network = yield* SimNetwork
    const address = addressOf(index)
    const config = yield* ClusterConfig.make({
      nodeName: `n${index}`,
      bindAddress: address,
      seedNodes: (seeds ?? (index === 0 ? [] : [0])).map((i) => String(addressOf(i))),
      ...input
    })
    const scope = yield* Scope.make()
    const build = Layer.buildWithScope(
      Cluster.layerWithTransport(config, { leaveOnClose: false }).pipe(
        Layer.provide(SimNetwork.transport(address)),
        Layer.provide(Layer.succeed(SimNetwork, network))
      ),
      scope
    )
    // Joining exchanges packets, which only move when simulated time does.
    const context = yield* runWithClock(build).pipe(Effect.onError(() => Scope.close(scope, Exit.void)))
    return { index, address, cluster: Context.get(context, Cluster), scope }
  })

/** Starts `n` nodes one after another, each joining through node 0. */
export const startCluster = (
  n: number,
  input: ClusterConfig.Input = {}
): Effect.Effect<ReadonlyArray<SimNode>, ClusterError, SimNetwork> =>
  Effect.gen(function* () {
    const nodes: Array<SimNode> = []
    for (let i = 0; i < n; i++) nodes.push(yield* startNode(i, input))
    return nodes
  })

/** Cuts a node off and stops it without a word: to the others it crashed. Takes no simulated time. */
export const crash = (node: SimNode): Effect.Effect<void, never, SimNetwork> =>
  Effect.gen(function* () {
    const network = yield* SimNetwork
    yield* network.isolate(node.address)
    yield* Scope.close(node.scope, Exit.void)
  })

/** Leaves gracefully (simulated time passes while the announcement goes out), then stops. */
export const leave = (node: SimNode): Effect.Effect<void> =>
  runWithClock(node.cluster.leave.pipe(Effect.ignore, Effect.andThen(Scope.close(node.scope, Exit.void))))

/** Stops every node (without leaving). */
export const stopAll = (nodes: ReadonlyArray<SimNode>): Effect.Effect<void> =>
  runWithClock(
    Effect.forEach(nodes, (node) => Scope.close(node.scope, Exit.void), { discard: true, concurrency: "unbounded" })
  )

/** Whether every node in `observers` sees every node in `subjects` in `state` (a closed node sees nothing). */
export const allSee = (
  observers: ReadonlyArray<SimNode>,
  subjects: ReadonlyArray<SimNode>,
  state: NodeState
): Effect.Effect<boolean> =>
  Effect.gen(function* () {
    const ids: Array<string> = []
    for (const s of subjects) ids.push(s.cluster.config.nodeId)
    for (const o of observers) {
      const members = yield* Effect.orElseSucceed(o.cluster.members, () => [])
      const states = new Map<string, NodeState>()
      for (const m of members) states.set(m.id, m.state)
      for (const id of ids) if (states.get(id) !== state) return false
    }
    return true
  })

/**
 * Advances simulated time in `stepMillis` steps until `condition` holds or
 * `limitMillis` have passed: the simulated milliseconds it took, or
 * `undefined` when it never held.
 */
export const advanceUntil = (
  condition: Effect.Effect<boolean>,
  limitMillis: number,
  stepMillis = 100
): Effect.Effect<number | undefined> =>
  Effect.gen(function* () {
    let elapsed = 0
    while (elapsed <= limitMillis) {
      if (yield* condition) return elapsed
      yield* TestClock.adjust(stepMillis)
      elapsed += stepMillis
    }
    return undefined
  })
