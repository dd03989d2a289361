/**
 * The health service: a set of named checks, run together every
 * `healthCheckInterval` by a fiber the layer owns, with the latest aggregate
 * published to subscribers. The cluster turns the aggregate's `healthy` into
 * this node's `healthy` tag.
 *
 * @module
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import * as Queue from "effect/Queue"
import * as Schema from "effect/Schema"
import * as Semaphore from "effect/Semaphore"
import type * as Stream from "effect/Stream"
import * as SubscriptionRef from "effect/SubscriptionRef"
import type { ClusterConfig } from "../Config.ts"
import { type DurationInput, parseDuration } from "../DurationText.ts"
import { InvalidConfiguration } from "../Errors.ts"
import { HealthCheck, HealthStatus } from "./HealthCheck.ts"

/**
 * The result of one run of every check: healthy only if all passed (and
 * healthy with no checks at all: nothing is known to be wrong). `checks` maps
 * each check's name to its status; `checkedAt` is when the run finished
 * (Clock milliseconds).
 */
export class AggregatedHealth extends Schema.Class<AggregatedHealth>("shoal/AggregatedHealth")({
  healthy: Schema.Boolean,
  checks: Schema.Record(Schema.String, HealthStatus),
  checkedAt: Schema.Number
}) {
  /** Names of the checks that did not pass, in registration order. */
  get failing(): ReadonlyArray<string> {
    return Object.keys(this.checks).filter((name) => !this.checks[name]!.healthy)
  }
}

/** Combines per-check statuses (in order) into an {@link AggregatedHealth}. */
export const aggregate = (
  results: ReadonlyArray<readonly [name: string, status: HealthStatus]>,
  checkedAt: number
): AggregatedHealth => {
  const checks: Record<string, HealthStatus> = {}
  for (const [name, status] of results) checks[name] = status
  return new AggregatedHealth({ healthy: results.every(([, s]) => s.healthy), checks, checkedAt })
}

/** How often checks run and how long each may take. */
export interface Options {
  /** Time between the starts of two scheduled runs (> 0). */
  readonly interval: DurationInput
  /** How long one check may take before it counts as unhealthy (> 0, at most `interval`). */
  readonly timeout: DurationInput
}

const positive = (field: string, input: DurationInput): Duration.Duration | InvalidConfiguration =>
  Option.match(typeof input === "string" ? parseDuration(input) : Duration.fromInput(input as Duration.Input), {
    onNone: () => new InvalidConfiguration({ field, reason: "expected a duration" }),
    onSome: (d) =>
      Duration.isFinite(d) && Duration.isPositive(d)
        ? d
        : new InvalidConfiguration({ field, reason: "must be positive and finite" })
  })

const validate = (options: Options) =>
  Effect.gen(function* () {
    const interval = positive("interval", options.interval)
    if (interval instanceof InvalidConfiguration) return yield* interval
    const timeout = positive("timeout", options.timeout)
    if (timeout instanceof InvalidConfiguration) return yield* timeout
    if (Duration.isGreaterThan(timeout, interval)) {
      return yield* new InvalidConfiguration({ field: "timeout", reason: "must not be longer than interval" })
    }
    return { interval, timeout }
  })

/**
 * Builds the service and starts its monitoring fiber in the current scope.
 *
 * Schedule: the first run is one `interval` after construction (there are no
 * checks yet; the initial status is the healthy empty aggregate), then one run
 * every `interval`, measured start to start; `refresh` runs at once and
 * restarts the cadence from there. Runs never overlap: `runChecks` (from the
 * fiber or a caller) holds a lock, so the published status is always the
 * newest run's.
 */
export const make = Effect.fnUntraced(function* (options: Options) {
  const { interval, timeout } = yield* validate(options)
  const scope = yield* Effect.scope
  const registered = new Map<string, { readonly check: HealthCheck; readonly token: symbol }>()
  const lock = yield* Semaphore.make(1)
  const status = yield* SubscriptionRef.make(aggregate([], yield* Clock.currentTimeMillis))
  // end every `changes` stream with the service, so no subscriber waits forever on a closed node
  yield* Effect.addFinalizer(() => PubSub.shutdown(status.pubsub))
  const wake = yield* Queue.sliding<void>(1)

  const runAll = (checks: ReadonlyArray<HealthCheck>) =>
    Effect.forEach(
      checks,
      (check) => Effect.map(HealthCheck.run(check, timeout, scope), (s) => [check.name, s] as const),
      { concurrency: "unbounded" }
    )
  // A round with checks is a span; an empty one is not: it does nothing worth a trace, and
  // its span every `interval` would be most of what an idle node sends to a tracing backend.
  const runTraced = (checks: ReadonlyArray<HealthCheck>) =>
    runAll(checks).pipe(Effect.withSpan("Health.runChecks", { attributes: { checks: checks.length } }))

  const runChecks = Effect.gen(function* () {
    const checks = [...registered.values()].map((r) => r.check)
    const results = checks.length === 0 ? [] : yield* runTraced(checks)
    const result = aggregate(results, yield* Clock.currentTimeMillis)
    yield* SubscriptionRef.set(status, result)
    return result
  }).pipe(Semaphore.withPermit(lock))

  const monitor = Effect.gen(function* () {
    let started = yield* Clock.currentTimeMillis
    while (true) {
      const elapsed = (yield* Clock.currentTimeMillis) - started
      const wait = Math.max(0, Duration.toMillis(interval) - elapsed)
      yield* Effect.raceFirst(Effect.sleep(Duration.millis(wait)), Queue.take(wake))
      started = yield* Clock.currentTimeMillis
      yield* runChecks
    }
  })
  yield* Effect.forkScoped(monitor)

  return Health.of({
    interval,
    timeout,
    addCheck: (check) =>
      Effect.sync(() => {
        const token = Symbol(check.name)
        registered.set(check.name, { check, token })
        return Effect.sync(() => {
          if (registered.get(check.name)?.token === token) registered.delete(check.name)
        })
      }),
    checks: Effect.sync(() => [...registered.keys()]),
    runChecks,
    refresh: Effect.asVoid(Queue.offer(wake, undefined)),
    status: SubscriptionRef.get(status),
    changes: SubscriptionRef.changes(status)
  })
})

/**
 * This node's health checks. The layer's fiber runs them every `interval`
 * and publishes each aggregate to `status` / `changes`; it stops when the
 * layer's scope closes.
 */
export class Health extends Context.Service<
  Health,
  {
    readonly interval: Duration.Duration
    readonly timeout: Duration.Duration
    /**
     * Registers a check and returns the effect that removes it again. A check
     * with the name of a registered one replaces it (and the old remover then
     * does nothing). Does not run anything: call `refresh` to see the check
     * in `status` before the next scheduled run. For a check that lives as
     * long as a scope: `Effect.acquireRelease(health.addCheck(c), (remove) => remove)`.
     */
    readonly addCheck: (check: HealthCheck) => Effect.Effect<Effect.Effect<void>>
    /** Names of the registered checks, in registration order. */
    readonly checks: Effect.Effect<ReadonlyArray<string>>
    /**
     * Runs every check now, in parallel, each limited to `timeout`; publishes
     * and returns the aggregate. Waits for a run already in progress first.
     */
    readonly runChecks: Effect.Effect<AggregatedHealth>
    /** Asks the monitoring fiber to run the checks now (does not wait for the run). */
    readonly refresh: Effect.Effect<void>
    /** The latest published aggregate. */
    readonly status: Effect.Effect<AggregatedHealth>
    /** The latest aggregate, then every newly published one. */
    readonly changes: Stream.Stream<AggregatedHealth>
  }
>()("shoal/cluster/health/Health") {
  /** The service with these timings; fails with `InvalidConfiguration` naming `interval` or `timeout`. */
  static readonly layer = (options: Options): Layer.Layer<Health, InvalidConfiguration> =>
    Layer.effect(Health, make(options))

  /** The service with `healthCheckInterval` and `healthCheckTimeout` from the cluster configuration. */
  static readonly layerFromConfig = (config: ClusterConfig): Layer.Layer<Health, InvalidConfiguration> =>
    Layer.effect(
      Health,
      make({ interval: config.healthCheckInterval, timeout: config.healthCheckTimeout }).pipe(
        Effect.mapError(
          (e) =>
            new InvalidConfiguration({
              field: e.field === "interval" ? "healthCheckInterval" : "healthCheckTimeout",
              reason: e.reason
            })
        )
      )
    )
}
