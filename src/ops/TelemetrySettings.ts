/**
 * Whether and how OpenTelemetry is on, from the standard `OTEL_*` variables
 * (see `Telemetry`). A module of its own, without the OpenTelemetry SDK, so the
 * agent can decide before it loads any of it.
 *
 * @module
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"

/** Which exporter each signal uses. */
export type ExporterKind = "otlp" | "console" | "none"

/** What the `OTEL_*` variables ask for. */
export interface TelemetrySettings {
  readonly traces: ExporterKind
  readonly metrics: ExporterKind
  readonly serviceName: string
  readonly metricIntervalMillis: number
  readonly metricTimeoutMillis: number
}

const text = (name: string) =>
  Config.option(Config.String(name)).pipe(
    Effect.map(Option.filter((value) => value.trim() !== "")),
    Effect.orElseSucceed(() => Option.none<string>())
  )

const kind = (value: Option.Option<string>, endpointSet: boolean): ExporterKind => {
  if (Option.isNone(value)) return endpointSet ? "otlp" : "none"
  const first = value.value.split(",")[0]!.trim().toLowerCase()
  return first === "console" ? "console" : first === "none" ? "none" : "otlp"
}

const millis = (value: Option.Option<string>, fallback: number): number => {
  const n = Option.isSome(value) ? Number(value.value) : Number.NaN
  return Number.isFinite(n) && n > 0 ? n : fallback
}

/** The settings, or `None` when OpenTelemetry is off (the default: no `OTEL_*` exporter or endpoint set). */
export const telemetrySettings: Effect.Effect<Option.Option<TelemetrySettings>> = Effect.gen(function* () {
  const disabled = yield* text("OTEL_SDK_DISABLED")
  if (Option.isSome(disabled) && disabled.value.trim().toLowerCase() === "true") return Option.none()
  const endpoint = Option.isSome(yield* text("OTEL_EXPORTER_OTLP_ENDPOINT"))
  const tracesEndpoint = endpoint || Option.isSome(yield* text("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
  const metricsEndpoint = endpoint || Option.isSome(yield* text("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"))
  const traces = kind(yield* text("OTEL_TRACES_EXPORTER"), tracesEndpoint)
  const metrics = kind(yield* text("OTEL_METRICS_EXPORTER"), metricsEndpoint)
  if (traces === "none" && metrics === "none") return Option.none()
  return Option.some({
    traces,
    metrics,
    serviceName: Option.getOrElse(yield* text("OTEL_SERVICE_NAME"), () => "shoal"),
    metricIntervalMillis: millis(yield* text("OTEL_METRIC_EXPORT_INTERVAL"), 60_000),
    metricTimeoutMillis: millis(yield* text("OTEL_METRIC_EXPORT_TIMEOUT"), 30_000)
  })
})
