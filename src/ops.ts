/**
 * `shoal/ops`: operating a cluster from the application that embeds it —
 * the same admin interface the `shoal` commands talk to (`AdminServer`,
 * `AdminClient`, the `AdminRpcs` group), the Prometheus endpoint
 * (`MetricsServer`, and `ClusterMetrics.sample` for any other exporter), and
 * the live membership page (`UiServer`). `docs/OPERATIONS.md` says what to
 * watch.
 *
 * @module
 * @since 0.1.0
 */
export * as AdminAddress from "./admin/AdminAddress.ts"
/** A client of an agent's (or application's) admin interface. */
export { AdminClient } from "./admin/AdminClient.ts"
export * as AdminHandlers from "./admin/AdminHandlers.ts"
export * as AdminRpcs from "./admin/AdminRpcs.ts"
/** The admin interface of the cluster in context, on a Unix socket or a token-guarded loopback port. */
export { AdminServer, type AdminServerOptions } from "./admin/AdminServer.ts"
/** Log lines for `monitor --log-level`: install its logger where the application builds its loggers. */
export { LogTap } from "./admin/LogTap.ts"
export * as ClusterMetrics from "./ops/ClusterMetrics.ts"
export * as Metrics from "./ops/MetricsServer.ts"
/** The Prometheus endpoint of the cluster in context. */
export { MetricsServer } from "./ops/MetricsServer.ts"
/** The live membership page of the cluster in context. */
export { UiServer } from "./ops/UiServer.ts"
