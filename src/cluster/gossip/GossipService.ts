/**
 * The fibers that keep a node in the cluster: receive, probe, gossip,
 * push-pull, reconnect and reap. `Swim` says what one round does; this says
 * when rounds run. All fibers live in one child scope, so `stop` — or closing
 * the layer's scope — ends every one of them, and `start` after `stop` begins
 * afresh.
 *
 * Loops start at a random offset within their interval so nodes started
 * together do not probe and gossip in lockstep. A round that fails or dies is
 * logged and the loop goes on: one bad round must never take a node out of the
 * cluster.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Random from "effect/Random"
import * as Scope from "effect/Scope"
import * as Codec from "./Codec.ts"
import { REAP_INTERVAL, Swim } from "./Swim.ts"
import { Transport } from "./Transport.ts"

/** Push-pull exchanges a peer may hold open against us, and for how long. */
const SERVE_TIMEOUT = Duration.seconds(10)

export class GossipService extends Context.Service<
  GossipService,
  {
    /** Starts the fibers (no-op when running). */
    readonly start: Effect.Effect<void>
    /** Interrupts every fiber and stops serving push-pull (no-op when stopped). */
    readonly stop: Effect.Effect<void>
    readonly isRunning: Effect.Effect<boolean>
  }
>()("shoal/cluster/gossip/GossipService") {
  static readonly make: Effect.Effect<GossipService["Service"], never, Swim | Transport | Scope.Scope> = Effect.gen(
    function* () {
      const swim = yield* Swim
      const transport = yield* Transport
      const parent = yield* Effect.scope
      const config = swim.config
      let running: Scope.Closeable | undefined

      /** Runs `round` forever, never letting a failure or defect end the loop. */
      const guarded = (name: string, round: Effect.Effect<void>) =>
        round.pipe(
          Effect.catchCause((cause) =>
            Cause.hasInterruptsOnly(cause) ? Effect.failCause(cause) : Effect.logWarning(`${name} round failed`, cause)
          )
        )

      /** Sleeps a random part of `interval`, then runs `round` every `interval` (start to start). */
      const every = (name: string, interval: Effect.Effect<Duration.Duration>, round: Effect.Effect<void>) =>
        Effect.gen(function* () {
          const first = Duration.toMillis(yield* interval)
          yield* Effect.sleep(Duration.millis(first * (yield* Random.next)))
          while (true) {
            const started = yield* Clock.currentTimeMillis
            yield* guarded(name, round)
            const elapsed = (yield* Clock.currentTimeMillis) - started
            const wait = Duration.toMillis(yield* interval) - elapsed
            yield* wait > 0 ? Effect.sleep(Duration.millis(wait)) : Effect.yieldNow
          }
        })

      const receive = Effect.gen(function* () {
        while (true) {
          const packets = yield* transport.receive
          yield* guarded("receive", swim.handlePackets(packets))
        }
      })

      const start = Effect.gen(function* () {
        if (running !== undefined) return
        const scope = yield* Scope.fork(parent, "sequential")
        running = scope
        const fork = <A>(effect: Effect.Effect<A>) =>
          Effect.forkIn(effect, scope, { startImmediately: true }).pipe(Effect.asVoid)
        yield* transport
          .serve(swim.handleStream, { maxBytes: Codec.MAX_PUSH_PULL_SIZE, timeout: SERVE_TIMEOUT })
          .pipe(Scope.provide(scope))
        yield* fork(receive)
        yield* fork(every("probe", swim.probeInterval, swim.probeRound))
        yield* fork(every("gossip", Effect.succeed(config.gossipInterval), swim.gossipRound))
        yield* fork(every("push-pull", swim.pushPullInterval, swim.pushPullRound))
        yield* fork(every("reconnect", Effect.succeed(config.reconnectInterval), swim.reconnectRound))
        yield* fork(every("reap", Effect.succeed(REAP_INTERVAL), swim.reapRound))
      }).pipe(Effect.uninterruptible)

      const stop = Effect.suspend(() => {
        const scope = running
        if (scope === undefined) return Effect.void
        running = undefined
        return Scope.close(scope, Exit.void)
      })

      yield* Effect.addFinalizer(() => stop)

      return GossipService.of({ start, stop, isRunning: Effect.sync(() => running !== undefined) })
    }
  )

  /** The service, not yet started (the Cluster starts it once joined). */
  static readonly layer: Layer.Layer<GossipService, never, Swim | Transport> = Layer.effect(
    GossipService,
    GossipService.make
  )
}
