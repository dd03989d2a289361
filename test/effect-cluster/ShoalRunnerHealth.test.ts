/**
 * `ShoalRunnerHealth.isAlive` against a simulated membership: real clusters
 * on the in-memory SimNetwork under TestClock, with runners advertising their
 * runner address as a tag, observed from a node that builds the layer — for
 * each state a runner can be in (Alive, Suspect, failing its checks, Dead,
 * Left) and an address nobody advertises.
 */
import { assert, describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer, Random, Ref, type Scope } from "effect"
import { RunnerAddress } from "effect/cluster/RunnerAddress"
import * as RunnerHealth from "effect/cluster/RunnerHealth"
import { Cluster } from "../../src/cluster/Cluster.ts"
import { SimNetwork } from "../../src/cluster/gossip/SimNetwork.ts"
import { HealthCheck, HealthStatus } from "../../src/cluster/health/HealthCheck.ts"
import { Address, ClusterNode } from "../../src/cluster/Node.ts"
import { livenessOf } from "../../src/effect-cluster/RunnerLiveness.ts"
import { RunnerPortProbe } from "../../src/effect-cluster/RunnerPortProbe.ts"
import * as RunnerTag from "../../src/effect-cluster/RunnerTag.ts"
import * as ShoalRunnerHealth from "../../src/effect-cluster/ShoalRunnerHealth.ts"
import { advanceUntil, allSee, crash, leave, type SimNode, startNode, stopAll, viewOf } from "../cluster/sim/harness.ts"

const sim = <A, E>(seed: number, effect: Effect.Effect<A, E, SimNetwork | Scope.Scope>) =>
  effect.pipe(Effect.scoped, Effect.provide(SimNetwork.layer), Random.withSeed(seed))

const runner = (port: number) => RunnerAddress.make({ host: "127.0.0.1", port })

/** The layer built on `observer`'s cluster, with a probe that reports `refusing` as refusing connections. */
const healthOn = (observer: SimNode, refusing: ReadonlyArray<string> = []) =>
  Effect.map(
    Layer.build(
      ShoalRunnerHealth.layerWithProbe.pipe(
        Layer.provide(Layer.succeed(Cluster, observer.cluster)),
        Layer.provide(RunnerPortProbe.layerFixed(refusing))
      )
    ),
    (context) => Context.get(context, RunnerHealth.RunnerHealth)
  )

describe("ShoalRunnerHealth", () => {
  it.effect("alive, suspect, unhealthy, dead, left and unknown runners, as the membership sees them", () =>
    sim(
      15,
      Effect.gen(function* () {
        const network = yield* SimNetwork
        const addresses = [1, 2, 3, 4, 5].map((i) => runner(9000 + i))
        const observer = yield* startNode(0)
        const runners: Array<SimNode> = []
        for (const [i, address] of addresses.entries()) {
          runners.push(yield* startNode(i + 1, { tags: RunnerTag.tagsFor(address) }))
        }
        const nodes = [observer, ...runners]
        assert.isDefined(yield* advanceUntil(allSee(nodes, nodes, "Alive"), 20_000))
        const health = yield* healthOn(observer)
        const [alive, slow, failing, crashed, leaving] = addresses as [
          RunnerAddress,
          RunnerAddress,
          RunnerAddress,
          RunnerAddress,
          RunnerAddress
        ]

        // Alive and passing its checks.
        expect(yield* health.isAlive(alive)).toBe(true)
        // Nobody advertises this address.
        expect(yield* health.isAlive(runner(9999))).toBe(false)

        // Failing its health checks: it is alive, but publishes healthy=false.
        const passing = yield* Ref.make(true)
        yield* runners[2]!.cluster.addHealthCheck(
          HealthCheck.make(
            "app",
            Effect.map(Ref.get(passing), (ok) => (ok ? HealthStatus.healthy() : HealthStatus.unhealthy("down")))
          )
        )
        yield* Ref.set(passing, false)
        assert.isDefined(
          yield* advanceUntil(
            Effect.map(viewOf(observer, runners[2]!), (view) => view?.tags.healthy === "false"),
            5_000
          )
        )
        expect((yield* viewOf(observer, runners[2]!))?.state).toBe("Alive")
        expect(yield* health.isAlive(failing)).toBe(false)

        // Suspect: still alive, unless its runner port refuses connections.
        yield* network.setNode(runners[1]!.address, { sendDelay: "1500 millis" })
        assert.isDefined(
          yield* advanceUntil(
            Effect.map(viewOf(observer, runners[1]!), (view) => view?.state === "Suspect"),
            30_000,
            10
          )
        )
        expect(yield* health.isAlive(slow)).toBe(true)
        const refusingHealth = yield* healthOn(observer, [`127.0.0.1:${slow.port}`])
        expect(yield* refusingHealth.isAlive(slow)).toBe(false)
        // The probe is asked only about suspects: an Alive runner is alive whatever its port says.
        expect(yield* (yield* healthOn(observer, [`127.0.0.1:${alive.port}`])).isAlive(alive)).toBe(true)
        yield* network.clearNode(runners[1]!.address)

        // Dead: crashed and declared failed.
        yield* crash(runners[3]!)
        assert.isDefined(
          yield* advanceUntil(
            Effect.map(viewOf(observer, runners[3]!), (view) => view?.state === "Dead"),
            30_000
          )
        )
        expect(yield* health.isAlive(crashed)).toBe(false)

        // Left gracefully.
        yield* leave(runners[4]!)
        assert.isDefined(
          yield* advanceUntil(
            Effect.map(viewOf(observer, runners[4]!), (view) => view?.state === "Left"),
            10_000
          )
        )
        expect(yield* health.isAlive(leaving)).toBe(false)

        expect(yield* health.isAlive(alive)).toBe(true)
        yield* stopAll([observer, runners[0]!, runners[1]!, runners[2]!])
      })
    )
  )

  it("a restarted runner at the same address is alive while its old member is dead", () => {
    const address = runner(9001)
    const member = (id: string, state: ClusterNode["state"], healthy = "true") =>
      new ClusterNode({
        id: id as ClusterNode["id"],
        name: id,
        gossipAddress: new Address({ host: "10.0.0.1", port: 7946 }),
        tags: { ...RunnerTag.tagsFor(address), healthy },
        state,
        incarnation: 0
      })
    const old = member("00000000-0000-4000-8000-000000000001", "Dead")
    const fresh = member("00000000-0000-4000-8000-000000000002", "Alive")
    expect(livenessOf([old], address)).toBe("gone")
    expect(livenessOf([old, fresh], address)).toBe("alive")
    expect(livenessOf([old, member("00000000-0000-4000-8000-000000000003", "Suspect")], address)).toBe("suspect")
    expect(livenessOf([member("00000000-0000-4000-8000-000000000004", "Alive", "false")], address)).toBe("gone")
    expect(livenessOf([fresh], runner(9002))).toBe("gone")
  })
})
