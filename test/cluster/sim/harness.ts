/**
 * Runs whole clusters on the in-memory SimNetwork under TestClock: each node
 * is a `Cluster.layerWithTransport` built in its own scope, so a test can
 * crash one (close its scope without leaving), make it leave, or partition
 * the network, and then move time forward.
 */
import { Clock, Context, Effect, Exit, Fiber, Layer, Scope } from "effect"
import { TestClock } from "effect/testing"
import { Cluster } from "../../../src/cluster/Cluster.ts"
import * as ClusterConfig from "../../../src/cluster/Config.ts"
import { SimNetwork } from "../../../src/cluster/gossip/SimNetwork.ts"
import { Transport } from "../../../src/cluster/gossip/Transport.ts"
import { Address, type ClusterNode, type NodeState } from "../../../src/cluster/Node.ts"

export interface SimNode {
  readonly index: number
  readonly address: Address
  readonly cluster: Cluster["Service"]
  readonly scope: Scope.Closeable
}

export const addressOf = (index: number) =>
  new Address({ host: `10.0.${Math.floor(index / 250)}.${(index % 250) + 1}`, port: 7946 })

/** Runs `effect` while advancing the TestClock in small steps until it completes. */
export const runWithClock = <A, E>(effect: Effect.Effect<A, E>, stepMillis = 5) =>
  Effect.gen(function* () {
    const fiber = yield* Effect.forkChild(effect, { startImmediately: true })
    while (fiber.pollUnsafe() === undefined) yield* TestClock.adjust(stepMillis)
    return yield* Fiber.join(fiber)
  })

/** Starts node `index`, seeding it with node 0 unless it is node 0. `wrap` can spy on its transport. */
export const startNode = (
  index: number,
  input: ClusterConfig.Input = {},
  seeds?: ReadonlyArray<number>,
  wrap?: (transport: Transport["Service"]) => Transport["Service"]
) =>
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
      // Closing a node's scope just stops it; `leave` below leaves explicitly first. A node that
      // left on close would spend simulated time (up to leaveTimeout) inside `crash`.
      Cluster.layerWithTransport(config, { leaveOnClose: false }).pipe(
        Layer.provide(
          wrap === undefined
            ? SimNetwork.transport(address)
            : Layer.effect(Transport, Effect.map(network.attach(address), wrap))
        ),
        Layer.provide(Layer.succeed(SimNetwork, network)),
        // the node's fibers sleep on its own clock, so `pause` can freeze them
        Layer.provide(Layer.succeed(Clock.Clock, network.clockFor(address)))
      ),
      scope
    )
    // Joining exchanges packets, which only move when simulated time does.
    const context = yield* runWithClock(build)
    return { index, address, cluster: Context.get(context, Cluster), scope } satisfies SimNode
  })

/** Starts `n` nodes one after another (each joins through node 0). */
export const startCluster = (n: number, input: ClusterConfig.Input = {}) =>
  Effect.gen(function* () {
    const nodes: Array<SimNode> = []
    for (let i = 0; i < n; i++) nodes.push(yield* startNode(i, input))
    return nodes
  })

/** Stops a node without a word: to the others it has crashed. Takes no simulated time. */
export const crash = (node: SimNode) =>
  Effect.gen(function* () {
    const network = yield* SimNetwork
    // Cut it off first so nothing it does while shutting down reaches the others.
    yield* network.isolate(node.address)
    yield* Scope.close(node.scope, Exit.void)
  })

/** Leaves gracefully (which takes simulated time: it waits until its Left went out), then stops. */
export const leave = (node: SimNode) =>
  runWithClock(node.cluster.leave.pipe(Effect.andThen(Scope.close(node.scope, Exit.void))))

export const stopAll = (nodes: ReadonlyArray<SimNode>) =>
  runWithClock(
    Effect.forEach(nodes, (node) => Scope.close(node.scope, Exit.void), { discard: true, concurrency: "unbounded" })
  )

/** How `observer` currently sees `subject` (undefined when unknown). */
export const viewOf = (observer: SimNode, subject: SimNode) =>
  Effect.gen(function* () {
    const local = yield* subject.cluster.localNode
    const members = yield* observer.cluster.members
    return members.find((m) => m.id === local.id)
  })

/** Whether every node in `observers` sees every node in `subjects` in `state`. */
export const allSee = (observers: ReadonlyArray<SimNode>, subjects: ReadonlyArray<SimNode>, state: NodeState) =>
  Effect.gen(function* () {
    const ids: Array<string> = []
    for (const s of subjects) ids.push((yield* s.cluster.localNode).id)
    for (const o of observers) {
      const states = new Map<string, NodeState>()
      for (const m of yield* o.cluster.members) states.set(m.id, m.state)
      for (const id of ids) if (states.get(id) !== state) return false
    }
    return true
  })

/** Whether at least one node in `observers` sees `subject` in `state`. */
export const anySees = (observers: ReadonlyArray<SimNode>, subject: SimNode, state: NodeState) =>
  Effect.map(
    Effect.forEach(observers, (node) => viewOf(node, subject)),
    (views) => views.some((view) => view?.state === state)
  )

/**
 * Advances simulated time in `step`s until `condition` holds or `limitMillis`
 * have passed; returns the simulated milliseconds it took (or undefined).
 */
export const advanceUntil = (condition: Effect.Effect<boolean>, limitMillis: number, stepMillis = 100) =>
  Effect.gen(function* () {
    let elapsed = 0
    while (elapsed <= limitMillis) {
      if (yield* condition) return elapsed
      yield* TestClock.adjust(stepMillis)
      elapsed += stepMillis
    }
    return undefined
  })

export const aliveCount = (node: SimNode) =>
  Effect.map(
    node.cluster.members,
    (members: ReadonlyArray<ClusterNode>) => members.filter((m) => m.state === "Alive").length
  )
