/**
 * How the membership reaches effect/cluster's runner list, on a simulated
 * cluster and effect/cluster's in-memory `RunnerStorage`: the overlay of
 * `ShoalRunnerStorage` (a failed runner drops out of `getRunners` at once,
 * this process's own runner is never overlaid, and an overlay that would
 * leave no healthy runner is not applied), and `FailureReporter` writing the
 * failure into storage without waiting for a health poll.
 */
import { assert, describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer, Option, Random, type Scope } from "effect"
import { Runner } from "effect/cluster/Runner"
import { RunnerAddress } from "effect/cluster/RunnerAddress"
import * as RunnerStorageModule from "effect/cluster/RunnerStorage"
import { RunnerStorage } from "effect/cluster/RunnerStorage"
import * as ShardingConfig from "effect/cluster/ShardingConfig"
import { Cluster } from "../../src/cluster/Cluster.ts"
import { SimNetwork } from "../../src/cluster/gossip/SimNetwork.ts"
import * as FailureReporter from "../../src/effect-cluster/FailureReporter.ts"
import { RunnerPortProbe } from "../../src/effect-cluster/RunnerPortProbe.ts"
import * as RunnerTag from "../../src/effect-cluster/RunnerTag.ts"
import * as ShoalRunnerHealth from "../../src/effect-cluster/ShoalRunnerHealth.ts"
import * as ShoalRunnerStorage from "../../src/effect-cluster/ShoalRunnerStorage.ts"
import { advanceUntil, allSee, crash, type SimNode, startNode, stopAll, viewOf } from "../cluster/sim/harness.ts"

const sim = <A, E>(seed: number, effect: Effect.Effect<A, E, SimNetwork | Scope.Scope>) =>
  effect.pipe(Effect.scoped, Effect.provide(SimNetwork.layer), Random.withSeed(seed))

const address = (port: number) => RunnerAddress.make({ host: "127.0.0.1", port })
const runnerAt = (port: number) => new Runner({ address: address(port), groups: ["default"], weight: 1 })

/** Three runners (9001 is `observer` itself), each advertising its address. */
const threeRunners = Effect.gen(function* () {
  const nodes: Array<SimNode> = []
  for (let i = 0; i < 3; i++) nodes.push(yield* startNode(i, { tags: RunnerTag.tagsFor(address(9001 + i)) }))
  assert.isDefined(yield* advanceUntil(allSee(nodes, nodes, "Alive"), 20_000))
  return nodes
})

/** The storage, the overlay and the reporter as runner 9001 (on `observer`) builds them. */
const buildOn = (observer: SimNode) =>
  Effect.gen(function* () {
    const inner = Context.get(yield* Layer.build(RunnerStorageModule.layerMemory), RunnerStorage)
    for (const port of [9001, 9002, 9003]) yield* inner.register(runnerAt(port), true)
    const base = Layer.mergeAll(
      Layer.succeed(Cluster, observer.cluster),
      Layer.succeed(RunnerStorage, inner),
      ShardingConfig.layer({ runnerAddress: Option.some(address(9001)) })
    )
    const health = ShoalRunnerHealth.layerWithProbe.pipe(Layer.provide(RunnerPortProbe.layerFixed([])))
    const overlay = Context.get(
      yield* Layer.build(ShoalRunnerStorage.layer().pipe(Layer.provide(health), Layer.provide(base))),
      RunnerStorage
    )
    yield* Layer.build(FailureReporter.layer.pipe(Layer.provide(health), Layer.provide(base)))
    return { inner, overlay }
  })

const healthyPorts = (runners: ReadonlyArray<readonly [Runner, boolean]>) =>
  runners
    .filter(([, healthy]) => healthy)
    .map(([runner]) => runner.address.port)
    .sort()

describe("ShoalRunnerStorage and FailureReporter", () => {
  it.effect("a dead runner leaves the runner list at once, and its failure is written to storage", () =>
    sim(
      21,
      Effect.gen(function* () {
        const nodes = yield* threeRunners
        const { inner, overlay } = yield* buildOn(nodes[0]!)
        expect(healthyPorts(yield* overlay.getRunners)).toEqual([9001, 9002, 9003])

        yield* crash(nodes[2]!)
        assert.isDefined(
          yield* advanceUntil(
            Effect.map(viewOf(nodes[0]!, nodes[2]!), (view) => view?.state === "Dead"),
            30_000
          )
        )
        // The overlay: gone from this process's assignments, whatever storage says.
        expect(healthyPorts(yield* overlay.getRunners)).toEqual([9001, 9002])
        // The reporter wrote it into storage for every other process (no health poll ran here).
        assert.isDefined(
          yield* advanceUntil(
            Effect.map(Effect.orDie(inner.getRunners), (runners) => !healthyPorts(runners).includes(9003)),
            1_000
          )
        )
        yield* stopAll([nodes[0]!, nodes[1]!])
      })
    )
  )

  it.effect("never overlays its own runner, and never leaves no healthy runner at all", () =>
    sim(
      22,
      Effect.gen(function* () {
        const nodes = yield* threeRunners
        const observer = nodes[0]!
        const { inner, overlay } = yield* buildOn(observer)
        // Storage marks 9001 (self) unhealthy: the overlay keeps storage's word about it.
        yield* inner.setRunnerHealth(address(9001), false)
        expect(healthyPorts(yield* overlay.getRunners)).toEqual([9002, 9003])
        yield* inner.setRunnerHealth(address(9001), true)

        // With 9001 unhealthy in storage, both others die: the reporter marks the first one
        // unhealthy but not the last healthy runner, and the overlay, which would leave none,
        // returns storage's flags as they are.
        yield* inner.setRunnerHealth(address(9001), false)
        yield* crash(nodes[1]!)
        yield* crash(nodes[2]!)
        assert.isDefined(
          yield* advanceUntil(
            Effect.map(Effect.all([viewOf(observer, nodes[1]!), viewOf(observer, nodes[2]!)]), (views) =>
              views.every((view) => view?.state === "Dead")
            ),
            30_000
          )
        )
        yield* advanceUntil(Effect.succeed(false), 1_000)
        const stored = healthyPorts(yield* inner.getRunners)
        expect(stored).toHaveLength(1)
        expect(healthyPorts(yield* overlay.getRunners)).toEqual(stored)
        yield* stopAll([observer])
      })
    )
  )
})
