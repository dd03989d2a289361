/**
 * The Prometheus endpoint (`shoal agent --metrics host:port`): `GET /metrics`
 * samples the cluster (`ClusterMetrics.sample`) and answers every metric in
 * the process's effect registry in the Prometheus text format (effect's
 * `PrometheusMetrics`). Nothing runs between scrapes.
 *
 * @module
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import * as Layer from "effect/Layer"
import * as PrometheusMetrics from "effect/observability/PrometheusMetrics"
import type * as Scope from "effect/Scope"
import { Cluster } from "../cluster/Cluster.ts"
import type { NetworkError } from "../cluster/Errors.ts"
import { type Address, formatAddress } from "../cluster/Node.ts"
import { sample } from "./ClusterMetrics.ts"
import { listen } from "./HttpListener.ts"

/** The exposition format's content type (text format 0.0.4). */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

/** The metrics text for `cluster` now: a fresh sample, then the whole registry. */
export const scrape = (cluster: Cluster["Service"]): Effect.Effect<string> =>
  sample(cluster).pipe(Effect.andThen(PrometheusMetrics.format()))

/** `GET /metrics` for `cluster`, as a route layer (add it to any effect/http router). */
export const routes = (cluster: Cluster["Service"]) =>
  HttpRouter.add(
    "GET",
    "/metrics",
    Effect.map(scrape(cluster), (body) => HttpServerResponse.text(body, { contentType: PROMETHEUS_CONTENT_TYPE }))
  )

/** Serves `cluster`'s metrics at `http://address/metrics` until the scope closes; the bound address. */
export const serveMetrics = (
  cluster: Cluster["Service"],
  address: Address
): Effect.Effect<Address, NetworkError, Scope.Scope> =>
  listen(address, routes(cluster)).pipe(
    Effect.tap((bound) => Effect.logInfo(`metrics on http://${formatAddress(bound)}/metrics`))
  )

/** The Prometheus endpoint of the `Cluster` in context, for applications that embed one. */
export class MetricsServer extends Context.Service<MetricsServer, { readonly address: Address }>()(
  "shoal/ops/MetricsServer"
) {
  /** Serves `/metrics` at `address` (port 0 picks one; read it back from the service). */
  static readonly layer = (address: Address): Layer.Layer<MetricsServer, NetworkError, Cluster> =>
    Layer.effect(
      MetricsServer,
      Effect.gen(function* () {
        const bound = yield* serveMetrics(yield* Cluster, address)
        return MetricsServer.of({ address: bound })
      })
    )
}
