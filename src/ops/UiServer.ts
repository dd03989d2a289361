/**
 * The live membership page (`shoal agent --ui host:port`): `GET /` is the
 * page (`UiPage`), `GET /events` a Server-Sent Events stream of `state`
 * documents (`UiState`, once a second and right after every membership
 * event) and `member` events for the timeline. Each open page costs one
 * stream; with no page open nothing runs.
 *
 * @module
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { Cluster } from "../cluster/Cluster.ts"
import type { NetworkError } from "../cluster/Errors.ts"
import { type Address, formatAddress } from "../cluster/Node.ts"
import { listen } from "./HttpListener.ts"
import { PAGE } from "./UiPage.ts"
import { uiEvent, uiState } from "./UiState.ts"

/** How often an open page gets a fresh state (phi and last-heard move continuously). */
export const STATE_INTERVAL = "1 second"

const encoder = new TextEncoder()

/** One Server-Sent Events message. */
export const sseMessage = (event: string, data: unknown): Uint8Array =>
  encoder.encode(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`)

/** The `/events` stream of `cluster`: a state now, then events (each followed by a state) and a state every second. */
export const events = (cluster: Cluster["Service"]): Stream.Stream<Uint8Array> =>
  Stream.unwrap(
    Effect.gen(function* () {
      const { events } = yield* cluster.watch
      const state = Effect.map(uiState(cluster), (s) => sseMessage("state", s))
      const changes = events.pipe(
        Stream.mapEffect((event) =>
          Effect.gen(function* () {
            const ts = yield* Clock.currentTimeMillis
            return [sseMessage("member", uiEvent(event, ts)), yield* state]
          })
        ),
        Stream.flattenIterable
      )
      const ticks = Stream.tick(STATE_INTERVAL).pipe(Stream.mapEffect(() => state))
      return Stream.merge(changes, ticks)
    }).pipe(Effect.orElseSucceed(() => Stream.empty))
  )

/** `GET /` and `GET /events` for `cluster`, as a route layer. */
export const routes = (cluster: Cluster["Service"]) =>
  Layer.mergeAll(
    HttpRouter.add("GET", "/", HttpServerResponse.html(PAGE)),
    HttpRouter.add(
      "GET",
      "/events",
      Effect.sync(() =>
        HttpServerResponse.stream(events(cluster), {
          contentType: "text/event-stream",
          headers: { "cache-control": "no-cache", "x-accel-buffering": "no" }
        })
      )
    )
  )

/** Serves the page for `cluster` at `http://address/` until the scope closes; the bound address. */
export const serveUi = (
  cluster: Cluster["Service"],
  address: Address
): Effect.Effect<Address, NetworkError, Scope.Scope> =>
  listen(address, routes(cluster)).pipe(
    Effect.tap((bound) => Effect.logInfo(`live page on http://${formatAddress(bound)}/`))
  )

/** The live page of the `Cluster` in context, for applications that embed one. */
export class UiServer extends Context.Service<UiServer, { readonly address: Address }>()("shoal/ops/UiServer") {
  /** Serves the page at `address` (port 0 picks one; read it back from the service). */
  static readonly layer = (address: Address): Layer.Layer<UiServer, NetworkError, Cluster> =>
    Layer.effect(
      UiServer,
      Effect.gen(function* () {
        const bound = yield* serveUi(yield* Cluster, address)
        return UiServer.of({ address: bound })
      })
    )
}
