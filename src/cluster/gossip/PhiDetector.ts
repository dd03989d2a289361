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

/** Shared by every detector until its first heartbeat (never written: {@link PhiAccrualDetector} grows first). */
const EMPTY_WINDOW: Array<number> = []

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
 *
 * Memory: every member of every node holds one, so the window grows with
 * the samples it has (4, 8, 16, … up to `windowSize` slots) instead of
 * reserving a full window, or the growth step of a JavaScript array (at
 * least 17 slots), for members heard from a few times.
 */
export class PhiAccrualDetector {
  private samples: Array<number> = EMPTY_WINDOW
  private count = 0
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
    return this.count
  }

  /** Mean inter-arrival time in the window, in ms (without the acceptable pause); 0 when empty. */
  get mean(): number {
    return this.count === 0 ? 0 : this.sum / this.count
  }

  /** Population standard deviation of the window, in ms, before the floor is applied. */
  get stdDeviation(): number {
    const n = this.count
    if (n === 0) return 0
    const mean = this.sum / n
    return Math.sqrt(Math.max(0, this.sumOfSquares / n - mean * mean))
  }

  /** The intervals in the window, oldest first (for inspection and tests). */
  get intervals(): ReadonlyArray<number> {
    const window = this.samples.slice(0, this.count)
    return [...window.slice(this.next), ...window.slice(0, this.next)]
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
    return phiOf(elapsed, this.expectedInterval, this.spread)
  }

  /** Whether the member still looks alive at `now`: phi below `threshold`. */
  isAvailable(now: number, threshold: number): boolean {
    return this.phi(now) < threshold
  }

  /**
   * When phi reaches the level whose standardised silence is `y` (see
   * {@link silenceAt}): phi only grows with silence, so it is at or above
   * that level exactly from then on, until the next heartbeat. Infinite
   * before the first heartbeat (phi stays 0).
   */
  reaches(y: number): number {
    if (this.last === undefined) return Number.POSITIVE_INFINITY
    return this.last + this.expectedInterval + y * this.spread
  }

  /** The mean the formula uses: the window's, plus the acceptable pause. */
  private get expectedInterval(): number {
    return this.mean + this.settings.acceptablePauseMillis
  }

  /** The standard deviation the formula uses: the window's, floored. */
  private get spread(): number {
    return Math.max(this.stdDeviation, this.settings.minStdDeviationMillis)
  }

  private record(interval: number): void {
    const { windowSize } = this.settings
    if (this.count < windowSize) {
      if (this.count === this.samples.length) this.grow()
      this.samples[this.count++] = interval
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
      for (let i = 0; i < this.count; i++) {
        const x = this.samples[i]!
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

  /** Doubles the window's room (from 4), never beyond `windowSize`. */
  private grow(): void {
    const size = Math.min(this.settings.windowSize, Math.max(4, this.samples.length * 2))
    const grown = new Array<number>(size)
    for (let i = 0; i < this.count; i++) grown[i] = this.samples[i]!
    this.samples = grown
  }
}

/**
 * The standardised silence `y = (elapsed − mean) / stdDeviation` at which
 * {@link phiOf} equals `threshold`. phi depends on the silence only through
 * `y`, and strictly increases with it, so a member's phi crosses the
 * threshold at `last + mean + y · stdDeviation` (see
 * {@link PhiAccrualDetector.reaches}): a time known at each heartbeat,
 * which lets a node find the members above the threshold without computing
 * every member's phi. Found by bisection, to far below a millisecond.
 */
export const silenceAt = (threshold: number): number => {
  let low = -40
  let high = 40
  for (let i = 0; i < 200 && high - low > 1e-12; i++) {
    const mid = (low + high) / 2
    if (phiOf(mid, 0, 1) < threshold) low = mid
    else high = mid
  }
  return high
}

/** A member's current phi. */
export interface PhiReading {
  readonly id: string
  readonly phi: number
  /** When the member's last heartbeat arrived (`Clock` milliseconds); absent before the first. */
  readonly lastHeartbeat?: number | undefined
}

/** A member's detector, with its place in {@link PhiDetectors}' "above the threshold since" order. */
class TrackedDetector extends PhiAccrualDetector {
  readonly id: string
  /** When its phi reaches the store's threshold (infinite before the first heartbeat). */
  crossesAt = Number.POSITIVE_INFINITY
  /** Its index in the store's heap. */
  index = -1

  constructor(id: string, settings: Settings) {
    super(settings)
    this.id = id
  }
}

/**
 * One detector per member, keyed by member id (`NodeId` is a string), with
 * time passed in: the protocol engine's heartbeats and the service's reads
 * both go through one of these.
 *
 * Besides each member's phi it answers "whose phi is highest above the
 * threshold" without computing every member's phi each probe round — which a
 * node that rarely hears from most members (every member of a large cluster)
 * would otherwise do for the whole membership every round. A min-heap orders
 * the members by when their phi crosses `threshold`
 * ({@link PhiAccrualDetector.reaches}, known at each heartbeat), and only
 * the few above it longest are compared.
 */
export class PhiDetectors {
  readonly settings: Settings
  readonly threshold: number
  readonly #y: number
  readonly #detectors = new Map<string, TrackedDetector>()
  readonly #heap: Array<TrackedDetector> = []

  constructor(settings: Settings, threshold: number) {
    this.settings = settings
    this.threshold = threshold
    this.#y = silenceAt(threshold)
  }

  get size(): number {
    return this.#detectors.size
  }

  /** The ids with a detector, in the order they got one. */
  ids(): IterableIterator<string> {
    return this.#detectors.keys()
  }

  /** Whether `id` has a detector (it was heard from since it became a member). */
  has(id: string): boolean {
    return this.#detectors.has(id)
  }

  /** When the last heartbeat from `id` arrived, if any. */
  lastHeartbeat(id: string): number | undefined {
    return this.#detectors.get(id)?.lastHeartbeat
  }

  /** Records a heartbeat from `id` at `now`, creating its detector on first contact. */
  heartbeat(id: string, now: number): void {
    let detector = this.#detectors.get(id)
    if (detector === undefined) {
      detector = new TrackedDetector(id, this.settings)
      this.#detectors.set(id, detector)
      detector.heartbeat(now)
      detector.crossesAt = detector.reaches(this.#y)
      detector.index = this.#heap.length
      this.#heap.push(detector)
      this.#up(detector.index)
      return
    }
    this.#beat(detector, now)
  }

  #beat(detector: TrackedDetector, now: number): void {
    detector.heartbeat(now)
    const before = detector.crossesAt
    detector.crossesAt = detector.reaches(this.#y)
    if (detector.crossesAt < before) this.#up(detector.index)
    else this.#down(detector.index)
  }

  /**
   * Records a heartbeat from `id` at `now` if it has a detector, unless the
   * last one came less than `window` ms before (packets closer together are
   * one arrival). Returns whether `id` has a detector: one lookup for the
   * common case, a packet from a member already heard from.
   */
  heartbeatIfKnown(id: string, now: number, window: number): boolean {
    const detector = this.#detectors.get(id)
    if (detector === undefined) return false
    const last = detector.lastHeartbeat
    if (last === undefined || now - last >= window) this.#beat(detector, now)
    return true
  }

  /** `id`'s phi at `now`; 0 for a member never heard from. */
  phi(id: string, now: number): number {
    return this.#detectors.get(id)?.phi(now) ?? 0
  }

  /** Forgets `id`; it starts from the bootstrap again if heard from later. */
  remove(id: string): void {
    const detector = this.#detectors.get(id)
    if (detector === undefined) return
    this.#detectors.delete(id)
    const last = this.#heap.pop()!
    if (last !== detector) {
      this.#heap[detector.index] = last
      last.index = detector.index
      this.#down(last.index)
      this.#up(last.index)
    }
  }

  /** Every member's phi at `now`. */
  readings(now: number): Array<PhiReading> {
    const out: Array<PhiReading> = []
    for (const [id, detector] of this.#detectors) out.push({ id, phi: detector.phi(now) })
    return out
  }

  /** As {@link readings}, with when each member was last heard from (for the admin interface and metrics). */
  detailedReadings(now: number): Array<PhiReading> {
    const out: Array<PhiReading> = []
    for (const [id, detector] of this.#detectors) {
      out.push({ id, phi: detector.phi(now), lastHeartbeat: detector.lastHeartbeat })
    }
    return out
  }

  /**
   * The member with the highest phi at `now` among those above the threshold
   * that `eligible` accepts — looked for among the `candidates` that have
   * been above it longest (all of them when there are no more), so the cost
   * is O(candidates · log n) however many members are above the threshold.
   * Ties go to the smaller id, as {@link PhiDetector.above} orders them.
   */
  highestAbove(now: number, eligible: (id: string) => boolean, candidates = 256): string | undefined {
    const heap = this.#heap
    const popped: Array<TrackedDetector> = []
    let best: TrackedDetector | undefined
    let bestPhi = Number.NEGATIVE_INFINITY
    let considered = 0
    // a millisecond of slack for the crossing times' rounding: phi itself decides who is above
    while (heap.length > 0 && heap[0]!.crossesAt <= now + 1 && considered < candidates) {
      const top = this.#pop()
      popped.push(top)
      const phi = top.phi(now)
      if (phi < this.threshold || !eligible(top.id)) continue
      considered++
      if (phi > bestPhi || (phi === bestPhi && best !== undefined && top.id < best.id)) {
        best = top
        bestPhi = phi
      }
    }
    for (const detector of popped) {
      detector.index = heap.length
      heap.push(detector)
      this.#up(detector.index)
    }
    return best?.id
  }

  #pop(): TrackedDetector {
    const heap = this.#heap
    const top = heap[0]!
    const last = heap.pop()!
    if (last !== top) {
      heap[0] = last
      last.index = 0
      this.#down(0)
    }
    return top
  }

  #up(i: number): void {
    const heap = this.#heap
    const item = heap[i]!
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (heap[parent]!.crossesAt <= item.crossesAt) break
      heap[i] = heap[parent]!
      heap[i]!.index = i
      i = parent
    }
    heap[i] = item
    item.index = i
  }

  #down(i: number): void {
    const heap = this.#heap
    const n = heap.length
    const item = heap[i]!
    while (true) {
      const left = 2 * i + 1
      if (left >= n) break
      const right = left + 1
      const child = right < n && heap[right]!.crossesAt < heap[left]!.crossesAt ? right : left
      if (heap[child]!.crossesAt >= item.crossesAt) break
      heap[i] = heap[child]!
      heap[i]!.index = i
      i = child
    }
    heap[i] = item
    item.index = i
  }
}

/**
 * Builds the service over a fresh {@link PhiDetectors}. Time comes from
 * `Clock` at each call. `threshold` orders the store's "above the threshold
 * longest" answers (the configuration's `phiThreshold`).
 */
export const make = Effect.fnUntraced(function* (options: Options, threshold = 8) {
  const settings = yield* Effect.fromResult(makeSettings(options))
  const detectors = new PhiDetectors(settings, threshold)

  return PhiDetector.of({
    settings,
    detectors,
    heartbeat: (id) => Effect.map(Clock.currentTimeMillis, (now) => detectors.heartbeat(id, now)),
    phi: (id) => Effect.map(Clock.currentTimeMillis, (now) => detectors.phi(id, now)),
    isAvailable: (id, threshold) => Effect.map(Clock.currentTimeMillis, (now) => detectors.phi(id, now) < threshold),
    remove: (id) => Effect.sync(() => detectors.remove(id)),
    readings: Effect.map(Clock.currentTimeMillis, (now) => detectors.detailedReadings(now)),
    snapshot: Effect.map(
      Clock.currentTimeMillis,
      (now): ReadonlyMap<string, number> => new Map(detectors.readings(now).map((r) => [r.id, r.phi]))
    ),
    above: (threshold) =>
      Effect.map(Clock.currentTimeMillis, (now) =>
        detectors
          .readings(now)
          .filter((r) => r.phi >= threshold)
          .sort((a, b) => b.phi - a.phi || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
      )
  })
})

/**
 * One phi accrual detector per member. The protocol engine records a
 * heartbeat for every packet it receives from a member and asks which
 * members to probe out of turn (in {@link PhiDetectors}); the API, metrics
 * and CLI read `phi` and `snapshot`. `remove` forgets a member that left or
 * was reaped.
 */
export class PhiDetector extends Context.Service<
  PhiDetector,
  {
    /** The validated tuning. */
    readonly settings: Settings
    /**
     * The detectors themselves, for the protocol engine, which records every
     * heartbeat there (see `engine/`); the methods below read the same ones.
     */
    readonly detectors: PhiDetectors
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
      make(optionsFromConfig(config), config.phiThreshold).pipe(
        Effect.mapError((e) => new InvalidConfiguration({ field: configField[e.field] ?? e.field, reason: e.reason }))
      )
    )
}
