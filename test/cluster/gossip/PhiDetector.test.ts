import { assert, describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Layer, Result } from "effect"
import { TestClock } from "effect/testing"
import * as fc from "fast-check"
import * as ClusterConfig from "../../../src/cluster/Config.ts"
import {
  makeSettings,
  type Options,
  PhiAccrualDetector,
  PhiDetector,
  phiOf,
  type Settings
} from "../../../src/cluster/gossip/PhiDetector.ts"

const settings = (options: Partial<Options> = {}): Settings =>
  Result.getOrThrow(
    makeSettings({
      windowSize: 100,
      minStdDeviation: 1,
      acceptablePause: 0,
      firstHeartbeatEstimate: 1000,
      ...options
    })
  )

/** A detector that has seen heartbeats at these times. */
const detector = (times: ReadonlyArray<number>, options: Partial<Options> = {}) => {
  const d = new PhiAccrualDetector(settings(options))
  for (const t of times) d.heartbeat(t)
  return d
}

/** Heartbeats at 0, step, 2·step, … (count of them). */
const regular = (count: number, step: number) => Array.from({ length: count }, (_, i) => i * step)

/** Akka's own expression of the same approximation, evaluated the way Akka does. */
const akkaPhi = (elapsed: number, mean: number, std: number) => {
  const y = (elapsed - mean) / std
  const e = Math.exp(-y * (1.5976 + 0.070566 * y * y))
  return elapsed > mean ? -Math.log10(e / (1 + e)) : -Math.log10(1 - 1 / (1 + e))
}

/** The exact normal tail via Abramowitz & Stegun 7.1.26 (|error| ≤ 1.5e-7), independent of the logistic fit. */
const exactPhi = (elapsed: number, mean: number, std: number) => {
  const z = (elapsed - mean) / std / Math.SQRT2
  const x = Math.abs(z)
  const t = 1 / (1 + 0.3275911 * x)
  const poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
  const erf = Math.sign(z) * (1 - poly * Math.exp(-x * x))
  return -Math.log10(1 - 0.5 * (1 + erf))
}

describe("phiOf", () => {
  it("is log10(2) exactly at the mean", () => {
    expect(phiOf(1000, 1000, 100)).toBeCloseTo(Math.log10(2), 12)
  })

  it("agrees with Akka's form wherever Akka's form is finite", () => {
    for (let elapsed = 0; elapsed <= 3000; elapsed += 37) {
      expect(phiOf(elapsed, 1000, 150), `elapsed ${elapsed}`).toBeCloseTo(akkaPhi(elapsed, 1000, 150), 9)
    }
  })

  it("stays within 0.05 of the exact normal tail for |y| ≤ 3", () => {
    for (let y = -3; y <= 3; y += 0.25) {
      const elapsed = 1000 + y * 100
      expect(Math.abs(phiOf(elapsed, 1000, 100) - exactPhi(elapsed, 1000, 100)), `y ${y}`).toBeLessThan(0.05)
    }
  })

  it("stays finite and increasing far past the point where Akka's form is Infinity", () => {
    expect(akkaPhi(100_000, 1000, 100)).toBe(Infinity)
    const far = [10_000, 100_000, 1_000_000, 1e9, 1e12].map((t) => phiOf(t, 1000, 100))
    for (const p of far) expect(Number.isFinite(p)).toBe(true)
    for (let i = 1; i < far.length; i++) expect(far[i]!).toBeGreaterThan(far[i - 1]!)
  })

  it("is non-decreasing in elapsed time for any mean and deviation (property)", () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0, max: 1e7, noNaN: true }),
        fc.double({ min: 0, max: 1e7, noNaN: true }),
        fc.double({ min: 1, max: 1e5, noNaN: true }),
        fc.double({ min: 0.1, max: 1e4, noNaN: true }),
        (t1, t2, mean, std) => {
          const [lo, hi] = t1 <= t2 ? [t1, t2] : [t2, t1]
          const a = phiOf(lo, mean, std)
          const b = phiOf(hi, mean, std)
          return a >= 0 && Number.isFinite(b) && a <= b
        }
      )
    )
  })
})

describe("PhiAccrualDetector", () => {
  it("is 0 before the first heartbeat", () => {
    expect(detector([]).phi(5000)).toBe(0)
    expect(detector([]).isAvailable(1e9, 0.5)).toBe(true)
  })

  it("bootstraps from the first-heartbeat estimate: mean = estimate, std = estimate / 4", () => {
    const d = detector([10_000], { firstHeartbeatEstimate: 1000, minStdDeviation: 1 })
    expect(d.intervals).toEqual([750, 1250])
    expect(d.mean).toBe(1000)
    expect(d.stdDeviation).toBe(250)
    expect(d.phi(11_000)).toBeCloseTo(Math.log10(2), 12)
    // silence after a single heartbeat is still suspicious: 4 estimates late ⇒ y = 12
    expect(d.phi(14_000)).toBeGreaterThan(8)
  })

  it("rises monotonically while no heartbeat arrives", () => {
    const d = detector(regular(20, 1000))
    const last = d.lastHeartbeat!
    let previous = -1
    for (let t = last; t <= last + 5000; t += 50) {
      const p = d.phi(t)
      expect(p).toBeGreaterThanOrEqual(previous)
      if (t - last >= 500) expect(p).toBeGreaterThan(previous)
      previous = p
    }
    expect(previous).toBeGreaterThan(8)
  })

  it("drops back after a heartbeat", () => {
    const d = detector(regular(20, 1000), { minStdDeviation: 100 })
    const late = d.lastHeartbeat! + 3000
    expect(d.phi(late)).toBeGreaterThan(8)
    d.heartbeat(late)
    expect(d.phi(late)).toBeLessThan(0.01)
    expect(d.isAvailable(late, 8)).toBe(true)
  })

  it("matches hand-computed values for a known window", () => {
    // window 3: the seeds (750, 1250) are pushed out by the three real intervals 1000, 1100, 900
    const d = detector([0, 1000, 2100, 3000], { windowSize: 3, minStdDeviation: 1 })
    expect(d.intervals).toEqual([1000, 1100, 900])
    const mean = (1000 + 1100 + 900) / 3
    const std = Math.sqrt(((1000 - mean) ** 2 + (1100 - mean) ** 2 + (900 - mean) ** 2) / 3)
    expect(d.mean).toBeCloseTo(1000, 9)
    expect(d.stdDeviation).toBeCloseTo(std, 9)
    expect(std).toBeCloseTo(81.6497, 4)
    // 1200 ms of silence: y = 200 / 81.6497 = 2.44949, a = y·(1.5976 + 0.070566·y²) = 4.95040,
    // phi = log10(1 + e^a) = 2.1529 (the exact normal tail gives 2.1455)
    expect(d.phi(4200)).toBeCloseTo(akkaPhi(1200, mean, std), 9)
    expect(d.phi(4200)).toBeCloseTo(2.1529, 3)
    expect(Math.abs(d.phi(4200) - exactPhi(1200, mean, std))).toBeLessThan(0.01)
  })

  it("honours the window size: after windowSize new intervals only they count", () => {
    const d = detector(regular(50, 100), { windowSize: 4 })
    expect(d.mean).toBe(100)
    const start = d.lastHeartbeat!
    for (let i = 1; i <= 3; i++) d.heartbeat(start + i * 500)
    expect(d.mean).toBe((100 + 500 * 3) / 4)
    d.heartbeat(start + 4 * 500)
    expect(d.intervals).toEqual([500, 500, 500, 500])
    expect(d.mean).toBe(500)
    expect(d.stdDeviation).toBe(0)
    expect(d.sampleCount).toBe(4)
  })

  it("floors the standard deviation at minStdDeviation", () => {
    // perfectly regular heartbeats: the real deviation is 0
    const times = regular(200, 1000)
    const tight = detector(times, { minStdDeviation: 50 })
    const loose = detector(times, { minStdDeviation: 100 })
    expect(tight.stdDeviation).toBe(0)
    const t = times.at(-1)! + 1200
    expect(tight.phi(t)).toBeCloseTo(phiOf(1200, 1000, 50), 12)
    expect(loose.phi(t)).toBeCloseTo(phiOf(1200, 1000, 100), 12)
    // y = 4 vs y = 2: a wider floor makes the same silence less suspicious
    expect(tight.phi(t)).toBeGreaterThan(loose.phi(t) + 1)
  })

  it("does not apply the floor when the real deviation is larger", () => {
    const d = detector([0, 1000, 3000, 4000, 6000], { windowSize: 4, minStdDeviation: 10 })
    expect(d.intervals).toEqual([1000, 2000, 1000, 2000])
    expect(d.stdDeviation).toBe(500)
    expect(d.phi(7500)).toBeCloseTo(phiOf(1500, 1500, 500), 12)
  })

  it("shifts the curve right by the acceptable pause", () => {
    const times = regular(30, 1000)
    const plain = detector(times, { minStdDeviation: 100 })
    const paused = detector(times, { minStdDeviation: 100, acceptablePause: 3000 })
    const last = times.at(-1)!
    for (const elapsed of [0, 500, 1000, 1500, 2500]) {
      expect(paused.phi(last + elapsed + 3000)).toBeCloseTo(plain.phi(last + elapsed), 12)
    }
    expect(plain.isAvailable(last + 2000, 8)).toBe(false)
    expect(paused.isAvailable(last + 2000, 8)).toBe(true)
  })

  it("treats a clock that steps back as a zero interval, never NaN", () => {
    const d = detector([0, 1000, 2000, 1500])
    expect(d.intervals.at(-1)).toBe(0)
    expect(Number.isNaN(d.phi(1400))).toBe(false)
    expect(d.phi(1400)).toBeGreaterThanOrEqual(0)
  })

  it("keeps its running sums exact over a long, irregular history", () => {
    let seed = 12345
    const next = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31
      return seed / 2 ** 31
    }
    const d = new PhiAccrualDetector(settings({ windowSize: 7 }))
    let t = 0
    for (let i = 0; i < 100_003; i++) {
      t += 200 + next() * 1800.123
      d.heartbeat(t)
    }
    const window = d.intervals
    expect(window.length).toBe(7)
    const mean = window.reduce((s, x) => s + x, 0) / 7
    const std = Math.sqrt(window.reduce((s, x) => s + (x - mean) ** 2, 0) / 7)
    expect(d.mean).toBeCloseTo(mean, 8)
    expect(d.stdDeviation).toBeCloseTo(std, 6)
  })
})

describe("makeSettings", () => {
  const field = (options: Partial<Options>) => {
    const result = makeSettings({
      windowSize: 10,
      minStdDeviation: 100,
      acceptablePause: 0,
      firstHeartbeatEstimate: 1000,
      ...options
    })
    return Result.isFailure(result) ? result.failure.field : undefined
  }

  it("accepts valid options and converts durations to millis", () => {
    const s = settings({
      minStdDeviation: "100 millis",
      acceptablePause: "2 seconds",
      firstHeartbeatEstimate: "1 second"
    })
    expect(s).toEqual({
      windowSize: 100,
      minStdDeviationMillis: 100,
      acceptablePauseMillis: 2000,
      firstHeartbeatEstimateMillis: 1000
    })
  })

  it("rejects bad options with InvalidConfiguration naming the option", () => {
    expect(field({ windowSize: 1 })).toBe("windowSize")
    expect(field({ windowSize: 2.5 })).toBe("windowSize")
    expect(field({ windowSize: 1_000_000 })).toBe("windowSize")
    expect(field({ windowSize: Number.NaN })).toBe("windowSize")
    expect(field({ minStdDeviation: 0 })).toBe("minStdDeviation")
    expect(field({ minStdDeviation: Number.NaN })).toBe("minStdDeviation")
    expect(field({ acceptablePause: -1 })).toBe("acceptablePause")
    expect(field({ acceptablePause: "forever" as never })).toBe("acceptablePause")
    expect(field({ firstHeartbeatEstimate: 0 })).toBe("firstHeartbeatEstimate")
    expect(field({ firstHeartbeatEstimate: Number.POSITIVE_INFINITY })).toBe("firstHeartbeatEstimate")
    expect(field({ acceptablePause: 0 })).toBeUndefined()
  })
})

const options: Options = { windowSize: 10, minStdDeviation: 100, acceptablePause: 0, firstHeartbeatEstimate: 1000 }

describe("PhiDetector service", () => {
  it.effect("reads time from Clock and matches the pure detector", () =>
    Effect.gen(function* () {
      const phi = yield* PhiDetector
      const reference = new PhiAccrualDetector(phi.settings)
      expect(yield* phi.phi("a")).toBe(0)
      let now = 0
      for (const step of [1000, 900, 1100, 1000, 1050]) {
        yield* TestClock.adjust(step)
        now += step
        yield* phi.heartbeat("a")
        reference.heartbeat(now)
      }
      yield* TestClock.adjust(1700)
      const expected = reference.phi(now + 1700)
      expect(expected).toBeGreaterThan(1)
      expect(yield* phi.phi("a")).toBeCloseTo(expected, 12)
      expect(yield* phi.isAvailable("a", expected + 0.01)).toBe(true)
      expect(yield* phi.isAvailable("a", expected - 0.01)).toBe(false)
    }).pipe(Effect.provide(PhiDetector.layer(options)))
  )

  it.effect("phi rises with silence and falls back on a heartbeat", () =>
    Effect.gen(function* () {
      const phi = yield* PhiDetector
      for (let i = 0; i < 10; i++) {
        yield* phi.heartbeat("a")
        yield* TestClock.adjust(1000)
      }
      const readings: Array<number> = []
      for (let i = 0; i < 5; i++) {
        readings.push(yield* phi.phi("a"))
        yield* TestClock.adjust(500)
      }
      for (let i = 1; i < readings.length; i++) expect(readings[i]!).toBeGreaterThan(readings[i - 1]!)
      expect(readings.at(-1)!).toBeGreaterThan(8)
      yield* phi.heartbeat("a")
      // the 3.5 s gap is now in the window (9 × 1000 and 3500: mean 1250, std 750), so phi(0) ≈ 0.02
      expect(yield* phi.phi("a")).toBeCloseTo(phiOf(0, 1250, 750), 12)
      expect(yield* phi.phi("a")).toBeLessThan(0.05)
    }).pipe(Effect.provide(PhiDetector.layer(options)))
  )

  it.effect("lists members above a threshold, highest first; snapshot and remove", () =>
    Effect.gen(function* () {
      const phi = yield* PhiDetector
      // a, b and c beat every second; then c stops first, b later, a keeps beating
      for (let i = 0; i < 10; i++) {
        for (const id of ["a", "b", "c"]) yield* phi.heartbeat(id)
        yield* TestClock.adjust(1000)
      }
      yield* phi.heartbeat("a")
      yield* phi.heartbeat("b")
      yield* TestClock.adjust(1000)
      yield* phi.heartbeat("a")
      yield* TestClock.adjust(800)

      const snapshot = yield* phi.snapshot
      expect([...snapshot.keys()].sort()).toEqual(["a", "b", "c"])
      const [a, b, c] = [snapshot.get("a")!, snapshot.get("b")!, snapshot.get("c")!]
      expect(c).toBeGreaterThan(b)
      expect(b).toBeGreaterThan(a)

      const above = yield* phi.above(b)
      assert.deepStrictEqual(above, [
        { id: "c", phi: c },
        { id: "b", phi: b }
      ])
      expect(yield* phi.above(c + 1)).toEqual([])
      expect((yield* phi.above(0)).map((r) => r.id)).toEqual(["c", "b", "a"])

      yield* phi.remove("c")
      expect(yield* phi.phi("c")).toBe(0)
      expect([...(yield* phi.snapshot).keys()].sort()).toEqual(["a", "b"])
      expect((yield* phi.above(0)).map((r) => r.id)).toEqual(["b", "a"])
    }).pipe(Effect.provide(PhiDetector.layer(options)))
  )

  it.effect("a removed member starts again from the bootstrap", () =>
    Effect.gen(function* () {
      const phi = yield* PhiDetector
      for (let i = 0; i < 5; i++) {
        yield* phi.heartbeat("a")
        yield* TestClock.adjust(100)
      }
      yield* phi.remove("a")
      yield* phi.heartbeat("a")
      yield* TestClock.adjust(1000)
      // bootstrap mean is the estimate (1000): phi is log10(2) exactly one estimate later
      expect(yield* phi.phi("a")).toBeCloseTo(Math.log10(2), 12)
    }).pipe(Effect.provide(PhiDetector.layer(options)))
  )

  it.effect("layer fails with InvalidConfiguration on bad options", () =>
    Effect.gen(function* () {
      const exit = yield* Layer.build(PhiDetector.layer({ ...options, windowSize: 0 })).pipe(Effect.exit)
      assert(Exit.isFailure(exit))
      const error = yield* Effect.flip(Layer.build(PhiDetector.layer({ ...options, minStdDeviation: -5 })))
      expect(error._tag).toBe("InvalidConfiguration")
      expect(error.field).toBe("minStdDeviation")
    })
  )

  it.effect("layerFromConfig takes its tuning from ClusterConfig", () =>
    Effect.gen(function* () {
      const config = yield* ClusterConfig.make({
        phiWindowSize: 7,
        phiMinStdDeviation: "40 millis",
        phiAcceptablePause: "250 millis",
        probeInterval: "2 seconds",
        pingTimeout: "500 millis"
      })
      const phi = yield* Effect.service(PhiDetector).pipe(Effect.provide(PhiDetector.layerFromConfig(config)))
      expect(phi.settings).toEqual({
        windowSize: 7,
        minStdDeviationMillis: 40,
        acceptablePauseMillis: 250,
        firstHeartbeatEstimateMillis: 2000
      })
    })
  )
})
