import { describe, expect, it } from "@effect/vitest"
import * as fc from "fast-check"
import { Suspicion, suspicionBounds, suspicionTimeout } from "../../../src/cluster/gossip/Suspicion.ts"

// memberlist's LAN defaults: suspicionMult 4, suspicionMaxTimeoutMult 6, probeInterval 1 s.
const defaults = { suspicionMult: 4, suspicionMaxTimeoutMult: 6, probeInterval: 1000 }
const bounds = (clusterSize: number) => suspicionBounds({ ...defaults, clusterSize })

const start = (clusterSize: number, startedAt = 10_000) =>
  new Suspicion<string>({ target: "t", incarnation: 3, accuser: "a", startedAt, bounds: bounds(clusterSize) })

describe("suspicionBounds", () => {
  it("min = 4 s below 10 members, growing with log10(n) above; max = 6 × min", () => {
    expect(bounds(5)).toEqual({ k: 2, min: 4000, max: 24_000 })
    expect(bounds(10)).toEqual({ k: 2, min: 4000, max: 24_000 })
    expect(bounds(100)).toEqual({ k: 2, min: 8000, max: 48_000 })
    expect(bounds(1000)).toEqual({ k: 2, min: 12_000, max: 72_000 })
    // 4 × log10(2000) × 1000 = 13204.12 → whole ms
    expect(bounds(2000)).toEqual({ k: 2, min: 13_204, max: 79_224 })
  })

  it("k = suspicionMult − 2, and 0 when fewer than k members besides us and the suspect exist", () => {
    expect(bounds(3).k).toBe(0)
    expect(bounds(4).k).toBe(2)
    expect(suspicionBounds({ ...defaults, suspicionMult: 6, clusterSize: 7 }).k).toBe(4)
    expect(suspicionBounds({ ...defaults, suspicionMult: 6, clusterSize: 5 }).k).toBe(0)
    expect(suspicionBounds({ ...defaults, suspicionMult: 2, clusterSize: 100 }).k).toBe(0)
    expect(suspicionBounds({ ...defaults, suspicionMult: 1, clusterSize: 100 }).k).toBe(0)
  })

  it("takes k from `confirmations` when given, so a shorter floor can still demand the same evidence", () => {
    const fast = { ...defaults, suspicionMult: 2, confirmations: 2 }
    expect(suspicionBounds({ ...fast, clusterSize: 10 })).toEqual({ k: 2, min: 2000, max: 12_000 })
    expect(suspicionBounds({ ...fast, clusterSize: 3 }).k).toBe(0)
    expect(suspicionBounds({ ...defaults, confirmations: 0, clusterSize: 10 }).k).toBe(0)
    expect(suspicionBounds({ ...defaults, confirmations: 5, clusterSize: 10 }).k).toBe(5)
    // Without it, suspicionMult 2 means no confirmations at all: the first accuser alone decides, after min.
    expect(suspicionBounds({ ...defaults, suspicionMult: 2, clusterSize: 10 }).k).toBe(0)
  })

  it("treats a nonsensical cluster size as a cluster of one", () => {
    for (const n of [0, -5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(bounds(n)).toEqual({ k: 0, min: 4000, max: 24_000 })
    }
  })
})

describe("suspicionTimeout", () => {
  it("falls logarithmically from max to min over k confirmations (hand-computed)", () => {
    const b = bounds(5) // k 2, 4 s .. 24 s
    expect(suspicionTimeout(b, 0)).toBe(24_000)
    // 24000 − 20000 × ln 2 / ln 3 = 11381.40…
    expect(suspicionTimeout(b, 1)).toBe(11_381)
    expect(suspicionTimeout(b, 2)).toBe(4000)
    expect(suspicionTimeout(b, 3)).toBe(4000)

    const c = bounds(100) // k 2, 8 s .. 48 s
    expect(suspicionTimeout(c, 0)).toBe(48_000)
    // 48000 − 40000 × ln 2 / ln 3 = 22762.81…
    expect(suspicionTimeout(c, 1)).toBe(22_762)
    expect(suspicionTimeout(c, 2)).toBe(8000)
  })

  it("with k = 4: 24000 − 20000 × ln(c+1) / ln 5", () => {
    const b = { k: 4, min: 4000, max: 24_000 }
    expect([0, 1, 2, 3, 4, 5].map((c) => suspicionTimeout(b, c))).toEqual([24_000, 15_386, 10_347, 6772, 4000, 4000])
  })

  it("is min when no confirmations are expected", () => {
    const b = bounds(3)
    for (const c of [0, 1, 5]) expect(suspicionTimeout(b, c)).toBe(4000)
  })

  it("stays within [min, max] and never grows with more confirmations", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5000 }),
        fc.integer({ min: 1, max: 10 }),
        fc.integer({ min: 1, max: 10 }),
        fc.integer({ min: 1, max: 5000 }),
        (clusterSize, suspicionMult, suspicionMaxTimeoutMult, probeInterval) => {
          const b = suspicionBounds({ clusterSize, suspicionMult, suspicionMaxTimeoutMult, probeInterval })
          let previous = Number.POSITIVE_INFINITY
          for (let c = 0; c <= b.k + 2; c++) {
            const t = suspicionTimeout(b, c)
            expect(t).toBeGreaterThanOrEqual(b.min)
            expect(t).toBeLessThanOrEqual(b.k < 1 ? b.min : b.max)
            expect(t).toBeLessThanOrEqual(previous)
            expect(Number.isInteger(t)).toBe(true)
            previous = t
          }
          if (b.k >= 1) expect(suspicionTimeout(b, b.k)).toBe(b.min)
        }
      )
    )
  })
})

describe("Suspicion", () => {
  it("starts at max and moves its deadline closer with each independent confirmation", () => {
    const s = start(5)
    expect(s.deadline()).toBe(34_000)
    expect(s.confirm("b")).toBe(true)
    expect(s.deadline()).toBe(21_381)
    expect(s.confirm("c")).toBe(true)
    expect(s.deadline()).toBe(14_000)
    expect([...s.confirmations]).toEqual(["b", "c"])
  })

  it("does not count the original accuser, nor the same accuser twice", () => {
    const s = start(10)
    expect(s.confirm("a")).toBe(false)
    expect(s.confirmations.size).toBe(0)
    expect(s.confirm("b")).toBe(true)
    expect(s.confirm("b")).toBe(false)
    expect(s.confirmations.size).toBe(1)
    expect(s.deadline()).toBe(21_381)
  })

  it("stops accepting confirmations at k", () => {
    const s = start(100)
    expect(s.confirm("b")).toBe(true)
    expect(s.confirm("c")).toBe(true)
    expect(s.confirm("d")).toBe(false)
    expect([...s.confirmations]).toEqual(["b", "c"])
    expect(s.timeout()).toBe(8000)
  })

  it("with k = 0 the deadline is min and confirmations are not news", () => {
    const s = start(3, 500)
    expect(s.k).toBe(0)
    expect(s.deadline()).toBe(4500)
    expect(s.confirm("b")).toBe(false)
    expect(s.deadline()).toBe(4500)
    expect(s.isDegraded()).toBe(false)
  })

  it("reports the time remaining and whether it ran out short of confirmations", () => {
    const s = start(5, 0)
    expect(s.remaining(4000)).toBe(20_000)
    expect(s.remaining(24_000)).toBe(0)
    expect(s.remaining(30_000)).toBe(-6000)
    expect(s.isDegraded()).toBe(true)
    s.confirm("b")
    s.confirm("c")
    expect(s.isDegraded()).toBe(false)
    expect(s.remaining(4000)).toBe(0)
  })

  it("keeps what it was started with", () => {
    const s = start(5, 77)
    expect({ target: s.target, incarnation: s.incarnation, accuser: s.accuser, startedAt: s.startedAt }).toEqual({
      target: "t",
      incarnation: 3,
      accuser: "a",
      startedAt: 77
    })
    expect({ k: s.k, min: s.min, max: s.max }).toEqual({ k: 2, min: 4000, max: 24_000 })
  })
})
