/**
 * The small HTTP servers of the operator tooling (`--metrics`, `--ui`): one
 * effect/http router on a Node server with bounded request handling — the
 * request must arrive within 10 s (headers within 5 s) and at most 64
 * connections are held — open until the scope closes.
 *
 * @module
 * @since 0.1.0
 */
import { createServer } from "node:http"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpServer from "effect/http/HttpServer"
import * as Layer from "effect/Layer"
import * as NetAddress from "effect/net/NetAddress"
import type * as Scope from "effect/Scope"
import { NetworkError } from "../cluster/Errors.ts"
import { Address, formatAddress } from "../cluster/Node.ts"

/** Connections one operator server holds at once. */
export const MAX_HTTP_CONNECTIONS = 64

/**
 * Serves `routes` at `address` until the scope closes; the address it bound
 * (the real port when given port 0). `NetworkError` when it cannot listen.
 */
export const listen = <E>(
  address: Address,
  routes: Layer.Layer<never, E, HttpRouter.HttpRouter>
): Effect.Effect<Address, NetworkError | E, Scope.Scope> =>
  Effect.gen(function* () {
    const context = yield* Layer.build(
      HttpRouter.serve(routes, { disableLogger: true, disableListenLog: true }).pipe(
        Layer.provideMerge(
          NodeHttpServer.layer(
            () => {
              const server = createServer({ requestTimeout: 10_000, headersTimeout: 5_000 })
              server.maxConnections = MAX_HTTP_CONNECTIONS
              return server
            },
            { host: address.host, port: address.port }
          )
        )
      )
    ).pipe(
      Effect.catchTag("ServeError", (cause) =>
        Effect.fail(
          new NetworkError({
            message: `cannot listen on ${formatAddress(address)}`,
            address: formatAddress(address),
            cause
          })
        )
      )
    )
    const bound = Context.get(context, HttpServer.HttpServer).address
    return NetAddress.isInetAddress(bound) ? new Address({ host: address.host, port: bound.port }) : address
  })
