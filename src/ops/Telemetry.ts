/**
 * OpenTelemetry for the agent, through `@effect/opentelemetry`: the spans
 * that `Effect.fn` names (and effect/rpc's) and every effect metric, sent over
 * OTLP/HTTP (JSON) by the OpenTelemetry JS exporters, configured only by the
 * standard variables:
 *
 * - on when `OTEL_EXPORTER_OTLP_ENDPOINT` (or its `_TRACES_`/`_METRICS_`
 *   form) is set, or `OTEL_TRACES_EXPORTER` / `OTEL_METRICS_EXPORTER` names
 *   `otlp` or `console`; off with `OTEL_SDK_DISABLED=true`, and per signal
 *   with `OTEL_TRACES_EXPORTER=none` / `OTEL_METRICS_EXPORTER=none`;
 * - endpoints, headers and timeouts as the exporters read them
 *   (`OTEL_EXPORTER_OTLP_*`);
 * - `OTEL_SERVICE_NAME` (default `shoal`) and `OTEL_RESOURCE_ATTRIBUTES`;
 * - `OTEL_METRIC_EXPORT_INTERVAL` (ms, default 60000) and
 *   `OTEL_METRIC_EXPORT_TIMEOUT` (ms, default 30000); the cluster's sampled
 *   metrics are brought up to date at that interval.
 *
 * The agent imports this module only when the variables turn it on.
 *
 * @module
 * @since 0.1.0
 */
import * as NodeSdk from "@effect/opentelemetry/NodeSdk"
import { OTLPMetricExporter } from "@opentelemetry/exporter-metrics-otlp-http"
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http"
import {
  ConsoleMetricExporter,
  PeriodicExportingMetricReader,
  type PushMetricExporter
} from "@opentelemetry/sdk-metrics"
import { BatchSpanProcessor, ConsoleSpanExporter, type SpanExporter } from "@opentelemetry/sdk-trace-base"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import type { Cluster } from "../cluster/Cluster.ts"
import { sample } from "./ClusterMetrics.ts"
import type { TelemetrySettings } from "./TelemetrySettings.ts"

const traceExporter = (kind: TelemetrySettings["traces"]): SpanExporter | undefined =>
  kind === "otlp" ? new OTLPTraceExporter() : kind === "console" ? new ConsoleSpanExporter() : undefined

const metricExporter = (kind: TelemetrySettings["metrics"]): PushMetricExporter | undefined =>
  kind === "otlp" ? new OTLPMetricExporter() : kind === "console" ? new ConsoleMetricExporter() : undefined

/** The OpenTelemetry layer for `settings`: provide it around everything whose spans and metrics should go out. */
export const layer = (settings: TelemetrySettings, serviceVersion: string): Layer.Layer<never> => {
  const spans = traceExporter(settings.traces)
  const metrics = metricExporter(settings.metrics)
  return NodeSdk.layer(() => ({
    resource: { serviceName: settings.serviceName, serviceVersion },
    ...(spans === undefined ? {} : { spanProcessor: new BatchSpanProcessor(spans) }),
    ...(metrics === undefined
      ? {}
      : {
          metricReader: new PeriodicExportingMetricReader({
            exporter: metrics,
            exportIntervalMillis: settings.metricIntervalMillis,
            exportTimeoutMillis: Math.min(settings.metricTimeoutMillis, settings.metricIntervalMillis)
          })
        }),
    shutdownTimeout: "3 seconds"
  })) as unknown as Layer.Layer<never>
}

/** Keeps the cluster's sampled metrics current for the exporter: one sample per export interval, until the scope closes. */
export const sampleForExport = (
  cluster: Cluster["Service"],
  settings: TelemetrySettings
): Effect.Effect<void, never, Scope.Scope> =>
  settings.metrics === "none"
    ? Effect.void
    : sample(cluster).pipe(
        Effect.repeat(Schedule.spaced(settings.metricIntervalMillis)),
        Effect.forkScoped,
        Effect.asVoid
      )
