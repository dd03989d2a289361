import { describe, expect, it } from "@effect/vitest"
import * as fc from "fast-check"
import { Awareness, PROBE_SUCCEEDED, probeFailed, REFUTED } from "../../../src/cluster/gossip/Awareness.ts"

describe("Awareness", () => {
  it("starts healthy and leaves timeouts alone", () => {
    const a = new Awareness()
    expect(a.max).toBe(8)
    expect(a.score).toBe(0)
    expect(a.isHealthy).toBe(true)
    expect(a.scale(500)).toBe(500)
  })

  it("clamps the score to [0, max − 1]", () => {
    const a = new Awareness(8)
    expect(a.apply(-1)).toBe(0)
    expect(a.apply(3)).toBe(3)
    expect(a.apply(10)).toBe(7)
    expect(a.apply(1)).toBe(7)
    expect(a.apply(-2)).toBe(5)
    expect(a.apply(-100)).toBe(0)
  })

  it("scales a timeout by score + 1, at most by max", () => {
    const a = new Awareness(8)
    a.apply(2)
    expect(a.scale(500)).toBe(1500)
    expect(a.isHealthy).toBe(false)
    a.apply(100)
    expect(a.scale(500)).toBe(4000)
  })

  it("ignores deltas that are not numbers", () => {
    const a = new Awareness(8)
    a.apply(2)
    expect(a.apply(Number.NaN)).toBe(2)
    expect(a.apply(Number.POSITIVE_INFINITY)).toBe(2)
  })

  it("a multiplier of 1 disables it; a nonsensical one is treated as 1", () => {
    for (const max of [1, 0, -3, 2.5, Number.NaN]) {
      const a = new Awareness(max)
      expect(a.max).toBe(1)
      expect(a.apply(5)).toBe(0)
      expect(a.scale(500)).toBe(500)
    }
  })

  it("failed probe: +1 with no helpers, +1 per helper when none nacked, 0 once one did", () => {
    expect(probeFailed(0, 0)).toBe(1)
    expect(probeFailed(3, 0)).toBe(3)
    // one helper corroborated the failure: the silent ones are likelier cut off from us (a
    // partition) than a sign of our own ill health
    expect(probeFailed(3, 1)).toBe(0)
    expect(probeFailed(3, 2)).toBe(0)
    // every helper answered "no ack from the target either": the target is the problem, not us
    expect(probeFailed(3, 3)).toBe(0)
    expect(probeFailed(3, 7)).toBe(0)
    expect(probeFailed(-1, 0)).toBe(1)
    expect(probeFailed(Number.NaN, 0)).toBe(1)
    expect(probeFailed(2, Number.NaN)).toBe(2)
  })

  it("a node that keeps missing acks backs off, and recovers one step per successful probe", () => {
    const a = new Awareness(8)
    for (let i = 0; i < 5; i++) a.apply(probeFailed(3, 0))
    expect(a.score).toBe(7)
    expect(a.scale(500)).toBe(4000)
    a.apply(REFUTED)
    expect(a.score).toBe(7)
    for (let i = 0; i < 3; i++) a.apply(PROBE_SUCCEEDED)
    expect(a.score).toBe(4)
    expect(a.scale(500)).toBe(2500)
    for (let i = 0; i < 10; i++) a.apply(PROBE_SUCCEEDED)
    expect(a.isHealthy).toBe(true)
  })

  it("the score is always an integer in [0, max − 1] whatever the deltas", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 64 }), fc.array(fc.integer({ min: -20, max: 20 })), (max, deltas) => {
        const a = new Awareness(max)
        let model = 0
        for (const d of deltas) {
          model = Math.min(max - 1, Math.max(0, model + d))
          expect(a.apply(d)).toBe(model)
        }
        expect(a.scale(1000)).toBe(1000 * (model + 1))
      })
    )
  })
})
