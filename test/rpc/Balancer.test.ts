import { assert, describe, it } from "@effect/vitest"
import { Arbitrary, Schema } from "effect"
import { Balancer } from "../../src/rpc/Balancer.ts"

const int = (minimum: number, maximum: number) =>
  Arbitrary.schema(Schema.Int.check(Schema.isBetween({ minimum, maximum })))

const never = () => {
  throw new Error("round-robin and least-in-flight draw no random numbers")
}

describe("Balancer", () => {
  it("has no candidate to pick from an empty list", () => {
    for (const strategy of ["round-robin", "random", "least-in-flight"] as const) {
      assert.strictEqual(
        new Balancer(strategy, () => 0.5).pick(0, () => 0),
        -1
      )
    }
  })

  it.prop(
    "round-robin gives each of n stable candidates exactly k of k·n picks",
    { n: int(1, 12), k: int(1, 20) },
    ({ n, k }) => {
      const balancer = new Balancer("round-robin", never)
      const counts = new Array<number>(n).fill(0)
      for (let i = 0; i < n * k; i++) counts[balancer.pick(n, () => 0)]!++
      assert.deepStrictEqual(counts, new Array<number>(n).fill(k))
    }
  )

  it("round-robin keeps going when the candidate list shrinks", () => {
    const balancer = new Balancer("round-robin", never)
    assert.deepStrictEqual(
      [0, 1, 2].map(() => balancer.pick(3, () => 0)),
      [0, 1, 2]
    )
    assert.deepStrictEqual(
      [0, 1, 2, 3].map(() => balancer.pick(2, () => 0)),
      [1, 0, 1, 0]
    )
  })

  it.prop(
    "least-in-flight always picks a candidate with the fewest calls in flight",
    { inFlight: Arbitrary.array(int(0, 5), { minLength: 1, maxLength: 10 }), warmup: int(0, 30) },
    ({ inFlight, warmup }) => {
      const balancer = new Balancer("least-in-flight", never)
      for (let i = 0; i < warmup; i++) balancer.pick(inFlight.length, (i) => inFlight[i]!)
      const i = balancer.pick(inFlight.length, (i) => inFlight[i]!)
      assert.strictEqual(inFlight[i], Math.min(...inFlight))
    }
  )

  it("least-in-flight shares ties in turn and avoids a busy candidate", () => {
    const balancer = new Balancer("least-in-flight", never)
    const picks = Array.from({ length: 6 }, () => balancer.pick(3, (i) => [0, 1, 0][i]!))
    assert.deepStrictEqual(picks, [0, 2, 0, 2, 0, 2])
    // simulated load: each pick adds a call that stays in flight
    const load = [0, 0, 0]
    for (let i = 0; i < 9; i++) load[balancer.pick(3, (i) => load[i]!)]!++
    assert.deepStrictEqual(load, [3, 3, 3])
  })

  it("random maps the drawn number onto the candidates", () => {
    const draws = [0, 0.34, 0.99, 0.999999]
    const balancer = new Balancer("random", () => draws.shift()!)
    assert.deepStrictEqual(
      [0, 1, 2, 3].map(() => balancer.pick(3, () => 9)),
      [0, 1, 2, 2]
    )
  })

  it.prop(
    "random stays within the candidates",
    { n: int(1, 20), r: Arbitrary.schema(Schema.Number.check(Schema.isBetween({ minimum: 0, maximum: 0.9999999 }))) },
    ({ n, r }) => {
      const i = new Balancer("random", () => r).pick(n, () => 0)
      assert.isTrue(i >= 0 && i < n)
    }
  )
})
