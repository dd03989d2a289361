/**
 * Runner-to-runner (and client-to-runner) RPC that gives up on a runner as
 * soon as shoal does.
 *
 * effect/cluster sends a message to the runner that owns its shard over a
 * socket (`Runners.RpcClientProtocol`). When that runner is paused or cut off,
 * the TCP connection stays open and a call waits until the RPC keep-alive
 * gives up (5–10 s) before effect/cluster falls back to reading the reply
 * from storage, where the shard's next owner will put it. This wraps the
 * protocol so that, the moment `RunnerHealth.isAlive` turns false for the
 * runner it talks to (judged on every membership event about that runner),
 * its calls in flight fail with `RpcClientError` and new ones fail at once,
 * until the runner is alive again. A failed call is not a lost message:
 * effect/cluster persists the request first and then waits for its reply in
 * storage.
 *
 * @module
 * @since 0.1.0
 */
import * as RunnerHealth from "effect/cluster/RunnerHealth"
import * as Runners from "effect/cluster/Runners"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { RpcClientError } from "effect/rpc/RpcClientError"
import type { FromServerEncoded } from "effect/rpc/RpcMessage"
import * as Stream from "effect/Stream"
import { SocketReadError } from "effect/socket/Socket"
import { Cluster } from "../cluster/Cluster.ts"
import { advertises } from "./RunnerTag.ts"

/** Wraps the `RpcClientProtocol` below it (provide e.g. `NodeClusterSocket.layerClientProtocol` underneath). */
export const layer: Layer.Layer<
  Runners.RpcClientProtocol,
  never,
  Runners.RpcClientProtocol | Cluster | RunnerHealth.RunnerHealth
> = Layer.effect(
  Runners.RpcClientProtocol,
  Effect.gen(function* () {
    const inner = yield* Runners.RpcClientProtocol
    const cluster = yield* Cluster
    const health = yield* RunnerHealth.RunnerHealth
    return Runners.RpcClientProtocol.of({
      codecFor: inner.codecFor,
      make: Effect.fnUntraced(function* (address) {
        const protocol = yield* inner.make(address)
        const error = new RpcClientError({
          reason: new SocketReadError({
            cause: new Error(`runner ${address.host}:${address.port} is gone according to the cluster membership`)
          })
        })
        const handlers = new Map<number, (data: FromServerEncoded) => Effect.Effect<void>>()
        let gone = false
        const check = Effect.gen(function* () {
          const alive = yield* health.isAlive(address)
          if (alive || gone) {
            gone = !alive
            return
          }
          gone = true
          for (const write of handlers.values()) yield* write({ _tag: "ClientProtocolError", error })
        })
        // Subscribe before the first judgement, so that no event falls between the two.
        // built on an open cluster: a ClusterClosed here would be a wiring bug, not an outcome
        const { events } = yield* Effect.orDie(cluster.watch)
        yield* check
        yield* events.pipe(
          Stream.filter((event) => advertises(event.node, address)),
          Stream.runForEach(() => check),
          Effect.forkScoped
        )
        return {
          ...protocol,
          run: (clientId, write) =>
            Effect.suspend(() => {
              handlers.set(clientId, write)
              return protocol.run(clientId, write)
            }).pipe(Effect.ensuring(Effect.sync(() => handlers.delete(clientId)))),
          send: (clientId, request, transferables) =>
            Effect.suspend(() => (gone ? Effect.fail(error) : protocol.send(clientId, request, transferables)))
        }
      })
    })
  })
)
