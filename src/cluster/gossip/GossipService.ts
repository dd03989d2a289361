/**
 * What keeps a node in the cluster while it runs: the receive loop (every
 * datagram to the engine), the stream server (push-pull and the TCP
 * fallback ping), and the engine's rounds (probe, gossip, push-pull,
 * reconnect, reap — the engine's own timers). All of it lives in one child
 * scope, so `stop` — or closing the layer's scope — ends it, and `start`
 * after `stop` begins afresh.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Scope from "effect/Scope"
import * as Codec from "./Codec.ts"
import { Swim } from "./Swim.ts"
import { Transport } from "./Transport.ts"

/** How long a peer may hold a push-pull exchange open against us. */
const SERVE_TIMEOUT = Duration.seconds(10)

export class GossipService extends Context.Service<
  GossipService,
  {
    /** Starts receiving, serving and the rounds (no-op when running). */
    readonly start: Effect.Effect<void>
    /** Stops all of it (no-op when stopped). */
    readonly stop: Effect.Effect<void>
    readonly isRunning: Effect.Effect<boolean>
  }
>()("shoal/cluster/gossip/GossipService") {
  static readonly make: Effect.Effect<GossipService["Service"], never, Swim | Transport | Scope.Scope> = Effect.gen(
    function* () {
      const swim = yield* Swim
      const transport = yield* Transport
      const parent = yield* Effect.scope
      let running: Scope.Closeable | undefined

      /** One bad batch must never take a node out of the cluster: logged, and the loop goes on. */
      const receive = Effect.gen(function* () {
        while (true) {
          const packets = yield* transport.receive
          yield* swim
            .handlePackets(packets)
            .pipe(
              Effect.catchCause((cause) =>
                Cause.hasInterruptsOnly(cause) ? Effect.failCause(cause) : Effect.logWarning("receive failed", cause)
              )
            )
        }
      })

      const start = Effect.gen(function* () {
        if (running !== undefined) return
        const scope = yield* Scope.fork(parent, "sequential")
        running = scope
        yield* transport
          .serve(swim.handleStream, { maxBytes: Codec.MAX_PUSH_PULL_SIZE, timeout: SERVE_TIMEOUT })
          .pipe(Scope.provide(scope))
        yield* Effect.forkIn(receive, scope, { startImmediately: true })
        yield* swim.start
      }).pipe(Effect.uninterruptible)

      const stop = Effect.suspend(() => {
        const scope = running
        if (scope === undefined) return Effect.void
        running = undefined
        return Effect.andThen(swim.stop, Scope.close(scope, Exit.void))
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
