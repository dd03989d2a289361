/**
 * The phi accrual failure detector (Hayashibara et al. 2004, in the form Akka
 * and Cassandra use). Instead of a yes/no verdict after a fixed timeout it
 * gives a suspicion level: phi = -log10(P(a heartbeat arrives later than
 * now)), computed from the recent distribution of heartbeat inter-arrival
 * times. phi 1 means a 10 % chance that the silence is normal, phi 8 one in
 * 10^8. SWIM's suspicion and refutation decide who is dead; phi only decides
 * whom the probe loop looks at first, so a slow link cannot kill a node.
 *
 * Two layers: {@link PhiAccrualDetector} is a plain, clock-free structure for
 * one member (time is passed in), and the {@link PhiDetector} service keeps
 * one per member and reads time from `Clock`.
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
import * as Result from "effect/Result"
import type { ClusterConfig } from "../Config.ts"
import { type DurationInput, parseDuration } from "../DurationText.ts"
import { InvalidConfiguration } from "../Errors.ts"

/** The largest window accepted, matching `ClusterConfig`'s bound on `phiWindowSize`. */
export const MAX_WINDOW_SIZE = 100_000

/** How a detector is tuned. Durations accept what configuration does (`"100ms"`, `"1 second"`, millis, a `Duration`). */
export interface Options {
  /** How many inter-arrival times are remembered (integer, 2..{@link MAX_WINDOW_SIZE}). */
  readonly windowSize: number
  /** Floor for the standard deviation, so a perfectly regular history does not make phi explode (> 0). */
  readonly minStdDeviation: DurationInput
  /** Extra silence tolerated before phi rises, e.g. for GC pauses (≥ 0). */
  readonly acceptablePause: DurationInput
  /** Expected interval used to seed the history at a member's first heartbeat (> 0). */
  readonly firstHeartbeatEstimate: DurationInput
}

/** {@link Options} checked and converted to milliseconds; build with {@link makeSettings}. */
export interface Settings {
  readonly windowSize: number
  readonly minStdDeviationMillis: number
  readonly acceptablePauseMillis: number
  readonly firstHeartbeatEstimateMillis: number
}

const invalid = (field: string, reason: string) => new InvalidConfiguration({ field, reason })

const millisOf = (
  field: string,
  input: DurationInput,
  allowZero: boolean
): Result.Result<number, InvalidConfiguration> => {
  const duration = typeof input === "string" ? parseDuration(input) : Duration.fromInput(input as Duration.Input)
  if (Option.isNone(duration) || !Duration.isFinite(duration.value)) {
    return Result.fail(invalid(field, "expected a finite duration"))
  }
  const millis = Duration.toMillis(duration.value)
  if (allowZero ? millis < 0 : millis <= 0) {
    return Result.fail(invalid(field, allowZero ? "must not be negative" : "must be positive"))
  }
  return Result.succeed(millis)
}

/**
 * Validates {@link Options}. Errors are `InvalidConfiguration` naming the
 * option (`windowSize`, `minStdDeviation`, …).
 */
export const makeSettings = (options: Options): Result.Result<Settings, InvalidConfiguration> => {
  const { windowSize } = options
  if (!Number.isInteger(windowSize) || windowSize < 2 || windowSize > MAX_WINDOW_SIZE) {
    return Result.fail(invalid("windowSize", `must be an integer in 2..${MAX_WINDOW_SIZE}`))
  }
  const minStd = millisOf("minStdDeviation", options.minStdDeviation, false)
  if (Result.isFailure(minStd)) return Result.fail(minStd.failure)
  const pause = millisOf("acceptablePause", options.acceptablePause, true)
  if (Result.isFailure(pause)) return Result.fail(pause.failure)
  const estimate = millisOf("firstHeartbeatEstimate", options.firstHeartbeatEstimate, false)
  if (Result.isFailure(estimate)) return Result.fail(estimate.failure)
  return Result.succeed({
    windowSize,
    minStdDeviationMillis: minStd.success,
    acceptablePauseMillis: pause.success,
    firstHeartbeatEstimateMillis: estimate.success
  })
}

/**
 * The detector's options from a cluster configuration: `phiWindowSize`,
 * `phiMinStdDeviation`, `phiAcceptablePause`, and `probeInterval` as the first
 * heartbeat estimate (a member is heard from at least about once per probe round).
 */
export const optionsFromConfig = (config: ClusterConfig): Options => ({
  windowSize: config.phiWindowSize,
  minStdDeviation: config.phiMinStdDeviation,
  acceptablePause: config.phiAcceptablePause,
  firstHeartbeatEstimate: config.probeInterval
})

const configField: Record<string, string> = {
  windowSize: "phiWindowSize",
  minStdDeviation: "phiMinStdDeviation",
  acceptablePause: "phiAcceptablePause",
  firstHeartbeatEstimate: "probeInterval"
}

/**
 * phi for a silence of `elapsed` ms against a normal distribution with this
 * `mean` and `stdDeviation` (both ms):
 *
 * ```text
 * y   = (elapsed - mean) / stdDeviation
 * a   = y · (1.5976 + 0.070566 · y²)           logistic approximation of the normal CDF:
 *                                               Φ(y) ≈ 1 / (1 + e^(-a))   (|error| < 1.4e-4)
 * phi = -log10(1 - Φ(y)) = log10(1 + e^a) = softplus(a) / ln 10
 * ```
 *
 * Akka evaluates the same expression as `-log10(e / (1 + e))` with
 * `e = e^(-a)`, which becomes `Infinity` once `e` underflows (about 38 standard
 * deviations late). The softplus form, `a + log1p(e^(-a))` for `a > 0` and
 * `log1p(e^a)` otherwise, is finite and strictly increasing for every finite
 * input, so phi keeps ordering members however long they have been silent.
 */
export const phiOf = (elapsed: number, mean: number, stdDeviation: number): number => {
  const y = (elapsed - mean) / stdDeviation
  const a = y * (1.5976 + 0.070566 * y * y)
  const softplus = a > 0 ? a + Math.log1p(Math.exp(-a)) : Math.log1p(Math.exp(a))
  return softplus / Math.LN10
}

/**
 * One member's detector: a ring buffer of the last `windowSize` inter-arrival
 * times with a running sum and sum of squares, so `heartbeat` and `phi` are
 * O(1). The sums are recomputed exactly each time the ring wraps, so
 * floating-point drift cannot accumulate over a long-lived member.
 *
 * Bootstrap (as Akka's `firstHeartbeatEstimate`): the first heartbeat seeds
 * the window with two virtual intervals, `estimate ± estimate / 4` (mean
 * `estimate`, standard deviation `estimate / 4`), so phi already rises if a
 * member is heard from once and then never again. Real intervals dilute the
 * seeds; after `windowSize` real intervals only real ones remain. Before any
 * heartbeat phi is 0: there is nothing to suspect yet.
 *
 * Mutable by design (one per member, updated per received packet); it holds no
 * clock, so every method takes `now` in milliseconds.
 */
export class PhiAccrualDetector {
  private readonly samples: Array<number> = []
  private next = 0
  private sum = 0
  private sumOfSquares = 0
  private last: number | undefined = undefined

  readonly settings: Settings

  constructor(settings: Settings) {
    this.settings = settings
  }

  /** When the last heartbeat arrived, if any. */
  get lastHeartbeat(): number | undefined {
    return this.last
  }

  /** Number of intervals in the window (seeds included). */
  get sampleCount(): number {
    return this.samples.length
  }

  /** Mean inter-arrival time in the window, in ms (without the acceptable pause); 0 when empty. */
  get mean(): number {
    return this.samples.length === 0 ? 0 : this.sum / this.samples.length
  }

  /** Population standard deviation of the window, in ms, before the floor is applied. */
  get stdDeviation(): number {
    const n = this.samples.length
    if (n === 0) return 0
    const mean = this.sum / n
    return Math.sqrt(Math.max(0, this.sumOfSquares / n - mean * mean))
  }

  /** The intervals in the window, oldest first (for inspection and tests). */
  get intervals(): ReadonlyArray<number> {
    return [...this.samples.slice(this.next), ...this.samples.slice(0, this.next)]
  }

  /**
   * Records a heartbeat arriving at `now`. A `now` earlier than the previous
   * heartbeat (a wall clock stepped back) counts as a zero interval.
   */
  heartbeat(now: number): void {
    if (this.last === undefined) {
      const estimate = this.settings.firstHeartbeatEstimateMillis
      this.record(estimate - estimate / 4)
      this.record(estimate + estimate / 4)
    } else {
      this.record(Math.max(0, now - this.last))
    }
    this.last = now
  }

  /** The suspicion level at `now`; see {@link phiOf} for the formula. */
  phi(now: number): number {
    if (this.last === undefined) return 0
    const elapsed = Math.max(0, now - this.last)
    const mean = this.mean + this.settings.acceptablePauseMillis
    const stdDeviation = Math.max(this.stdDeviation, this.settings.minStdDeviationMillis)
    return phiOf(elapsed, mean, stdDeviation)
  }

  /** Whether the member still looks alive at `now`: phi below `threshold`. */
  isAvailable(now: number, threshold: number): boolean {
    return this.phi(now) < threshold
  }

  private record(interval: number): void {
    const { windowSize } = this.settings
    if (this.samples.length < windowSize) {
      this.samples.push(interval)
      this.sum += interval
      this.sumOfSquares += interval * interval
      return
    }
    const old = this.samples[this.next]!
    this.samples[this.next] = interval
    this.next = (this.next + 1) % windowSize
    if (this.next === 0) {
      let sum = 0
      let sumOfSquares = 0
      for (const x of this.samples) {
        sum += x
        sumOfSquares += x * x
      }
      this.sum = sum
      this.sumOfSquares = sumOfSquares
    } else {
      this.sum += interval - old
      this.sumOfSquares += interval * interval - old * old
    }
  }
}

/** A member's current phi. */
export interface PhiReading {
  readonly id: string
  readonly phi: number
  /** When the member's last heartbeat arrived (`Clock` milliseconds); absent before the first. */
  readonly lastHeartbeat?: number | undefined
}

/**
 * Builds the per-member detector map. Time comes from `Clock` at each call;
 * keys are member ids (`NodeId` is a string).
 */
export const make = Effect.fnUntraced(function* (options: Options) {
  const settings = yield* Effect.fromResult(makeSettings(options))
  const detectors = new Map<string, PhiAccrualDetector>()

  const readings = (now: number): Array<PhiReading> => {
    const out: Array<PhiReading> = []
    for (const [id, detector] of detectors) out.push({ id, phi: detector.phi(now) })
    return out
  }

  /** As `readings`, with when each member was last heard from. */
  const detailedReadings = (now: number): Array<PhiReading> => {
    const out: Array<PhiReading> = []
    for (const [id, detector] of detectors) {
      out.push({ id, phi: detector.phi(now), lastHeartbeat: detector.lastHeartbeat })
    }
    return out
  }

  return PhiDetector.of({
    settings,
    heartbeat: (id) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        let detector = detectors.get(id)
        if (detector === undefined) {
          detector = new PhiAccrualDetector(settings)
          detectors.set(id, detector)
        }
        detector.heartbeat(now)
      }),
    phi: (id) => Effect.map(Clock.currentTimeMillis, (now) => detectors.get(id)?.phi(now) ?? 0),
    isAvailable: (id, threshold) =>
      Effect.map(Clock.currentTimeMillis, (now) => (detectors.get(id)?.phi(now) ?? 0) < threshold),
    remove: (id) =>
      Effect.sync(() => {
        detectors.delete(id)
      }),
    readings: Effect.map(Clock.currentTimeMillis, detailedReadings),
    snapshot: Effect.map(
      Clock.currentTimeMillis,
      (now): ReadonlyMap<string, number> => new Map(readings(now).map((r) => [r.id, r.phi]))
    ),
    above: (threshold) =>
      Effect.map(Clock.currentTimeMillis, (now) =>
        readings(now)
          .filter((r) => r.phi >= threshold)
          .sort((a, b) => b.phi - a.phi || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
      )
  })
})

/**
 * One phi accrual detector per member. The gossip layer calls `heartbeat`
 * for every packet it receives from a member; the probe loop asks `above`
 * which members to probe out of turn; the API, metrics and CLI show
 * `snapshot`. `remove` forgets a member that left or was reaped.
 */
export class PhiDetector extends Context.Service<
  PhiDetector,
  {
    /** The validated tuning. */
    readonly settings: Settings
    /** Records a heartbeat from `id` now (creating its detector on first contact). */
    readonly heartbeat: (id: string) => Effect.Effect<void>
    /** `id`'s phi now; 0 for a member never heard from. */
    readonly phi: (id: string) => Effect.Effect<number>
    /** Whether `id`'s phi is below `threshold` now (true for a member never heard from). */
    readonly isAvailable: (id: string, threshold: number) => Effect.Effect<boolean>
    /** Forgets `id`; it starts from the bootstrap again if heard from later. */
    readonly remove: (id: string) => Effect.Effect<void>
    /** Every known member's phi now and when it was last heard from (for the admin interface and metrics). */
    readonly readings: Effect.Effect<ReadonlyArray<PhiReading>>
    /** Every known member's phi now. */
    readonly snapshot: Effect.Effect<ReadonlyMap<string, number>>
    /** Members whose phi is at or above `threshold`, highest first (ties by id, for determinism). */
    readonly above: (threshold: number) => Effect.Effect<ReadonlyArray<PhiReading>>
  }
>()("shoal/cluster/gossip/PhiDetector") {
  /** A detector service with these options; fails with `InvalidConfiguration` naming the bad option. */
  static readonly layer = (options: Options): Layer.Layer<PhiDetector, InvalidConfiguration> =>
    Layer.effect(PhiDetector, make(options))

  /**
   * A detector service tuned by the cluster configuration (see
   * {@link optionsFromConfig}); a failure names the configuration field.
   */
  static readonly layerFromConfig = (config: ClusterConfig): Layer.Layer<PhiDetector, InvalidConfiguration> =>
    Layer.effect(
      PhiDetector,
      make(optionsFromConfig(config)).pipe(
        Effect.mapError((e) => new InvalidConfiguration({ field: configField[e.field] ?? e.field, reason: e.reason }))
      )
    )
}
