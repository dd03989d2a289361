/**
 * What one RPC peer may cost a server, whoever it is: the TLS handshake has a
 * deadline (`handshakeTimeout`, in `Tls.serverOptions`), a connection on which
 * nothing arrives for `idleTimeout` is closed, no more than `maxConnections`
 * are held at once (one more is closed as soon as it is accepted), and a
 * frame the server will not read — one that claims more than `maxFrameBytes`,
 * or does not parse — closes the connection instead of leaving it open with a
 * parser that refuses everything after. A connection that ends in an error (a
 * reset, a failed read, a refused frame) is the peer's doing: it is counted
 * and logged at Debug, not reported as the server's error.
 *
 * effect/rpc's socket server does none of this by itself: it keeps a
 * connection whose frame it rejected, and the Node TLS server it runs on
 * waits two minutes for a handshake and holds idle connections for ever.
 *
 * @module
 * @since 0.1.0
 */
import * as NodeSocket from "@effect/platform-node/NodeSocket"
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import * as RpcSerialization from "effect/rpc/RpcSerialization"
import * as Socket from "effect/socket/Socket"
import type * as SocketServer from "effect/socket/SocketServer"
import type { RpcConfig } from "./RpcConfig.ts"
import * as Serialization from "./Serialization.ts"

const refused = Metric.counter("shoal_rpc_connections_refused", {
  description: "RPC connections closed on accept because maxConnections were open",
  incremental: true
})
const idleClosed = Metric.counter("shoal_rpc_connections_idle_closed", {
  description: "RPC connections closed after idleTimeout without a byte",
  incremental: true
})
const failed = Metric.counter("shoal_rpc_connections_failed", {
  description: "RPC connections that ended in an error (reset, failed read, a frame the server refused)",
  incremental: true
})

/**
 * A connection's end that the peer caused: a socket error (effect/rpc's
 * socket protocol turns those into defects), alone or as a failure. Anything
 * else — a bug, an interruption — goes on to the server as before.
 */
const isPeerCaused = (cause: Cause.Cause<unknown>): boolean => {
  if (Cause.hasInterrupts(cause)) return false
  const error = Cause.findError(cause)
  if (Result.isSuccess(error)) return Socket.isSocketError(error.success)
  const defect = Cause.findDefect(cause)
  return Result.isSuccess(defect) && Socket.isSocketError(defect.success)
}

/**
 * `server`, with every connection it hands out counted (over the cap it is
 * destroyed before the handler sees it) and closed when idle.
 */
export const limitConnections = (
  server: SocketServer.SocketServer["Service"],
  config: RpcConfig
): SocketServer.SocketServer["Service"] => {
  let open = 0
  const idleMillis = Duration.toMillis(config.idleTimeout)
  return {
    ...server,
    run: (handler) =>
      server.run((socket) =>
        Effect.gen(function* () {
          const conn = yield* Effect.serviceOption(NodeSocket.NetSocket)
          if (Option.isSome(conn)) {
            if (open >= config.maxConnections) {
              conn.value.destroy()
              return yield* Metric.update(refused, 1)
            }
            conn.value.setTimeout(idleMillis)
            conn.value.once("timeout", () => {
              Effect.runFork(Metric.update(idleClosed, 1))
              conn.value.destroy()
            })
          }
          open++
          return yield* handler(socket).pipe(
            Effect.catchCause((cause) =>
              isPeerCaused(cause)
                ? Effect.andThen(Metric.update(failed, 1), Effect.logDebug("RPC connection ended in an error", cause))
                : Effect.failCause(cause)
            ),
            Effect.ensuring(Effect.sync(() => void open--))
          )
        })
      )
  }
}

/**
 * The serialization a server reads with: shoal's, limited to
 * `maxFrameBytes` per frame, and a frame it cannot read surfaces as effect/rpc's
 * `MaxBufferSizeExceeded` — the one parse failure on which its socket server
 * closes the connection (with code 1009) instead of answering a defect and
 * reading on.
 */
export const serverSerialization = (config: RpcConfig): Layer.Layer<RpcSerialization.RpcSerialization> =>
  Layer.effect(
    RpcSerialization.RpcSerialization,
    Effect.map(
      Effect.service(RpcSerialization.RpcSerialization).pipe(
        Effect.provide(Serialization.layerWith({ maxFrameSize: config.maxFrameBytes }))
      ),
      (inner) =>
        RpcSerialization.RpcSerialization.of({
          ...inner,
          makeUnsafe: () => {
            const parser = inner.makeUnsafe()
            return {
              encode: parser.encode,
              decode: (data) => {
                try {
                  return parser.decode(data)
                } catch {
                  throw new RpcSerialization.MaxBufferSizeExceeded({ maxBufferSize: config.maxFrameBytes })
                }
              }
            }
          }
        })
    )
  )
