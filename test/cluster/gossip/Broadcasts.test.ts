import { describe, expect, it } from "@effect/vitest"
import * as fc from "fast-check"
import {
  type Broadcast,
  Broadcasts,
  retransmitLimit,
  SELECT_MAX_SKIPS
} from "../../../src/cluster/gossip/Broadcasts.ts"

const keys = (selected: ReadonlyArray<Broadcast<unknown>>) => selected.map((b) => b.key)
const item = (key: string, size = 100, payload: string = key) => ({ key, payload, size })

describe("retransmitLimit", () => {
  it("is retransmitMult × ⌈log10(N + 1)⌉", () => {
    expect([1, 9, 10, 99, 100, 999, 1000, 2000].map((n) => retransmitLimit(4, n))).toEqual([4, 4, 8, 8, 12, 12, 16, 16])
    expect(retransmitLimit(3, 50)).toBe(6)
  })

  it("treats a nonsensical cluster size as one member", () => {
    for (const n of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) expect(retransmitLimit(4, n)).toBe(4)
  })
})

describe("Broadcasts", () => {
  it("hands out the least-sent first, newest first among equals", () => {
    const q = new Broadcasts<string>(4)
    q.enqueue(item("a"))
    q.enqueue(item("b"))
    expect(keys(q.select(1000, 5, 1))).toEqual(["b"])
    q.enqueue(item("c"))
    // c and a never sent (c newer), then b sent once
    expect(keys(q.select(1000, 5, 3))).toEqual(["c", "a", "b"])
    // c and a sent once (c newer), b twice
    expect(q.select(1000, 5, 3).map((b) => [b.key, b.transmits])).toEqual([
      ["c", 2],
      ["a", 2],
      ["b", 3]
    ])
    q.select(1000, 5, 1) // c
    // a sent twice, then b and c three times (c newer)
    expect(keys(q.select(1000, 5, 3))).toEqual(["a", "c", "b"])
  })

  it("reports each update's transmit count including this send", () => {
    const q = new Broadcasts<string>(4)
    q.enqueue(item("a"))
    expect(q.select(1000, 5).map((b) => b.transmits)).toEqual([1])
    expect(q.select(1000, 5)).toEqual([{ key: "a", payload: "a", size: 100, transmits: 2 }])
  })

  it("a newer update for the same member replaces the older and starts again from zero", () => {
    const q = new Broadcasts<string>(4)
    q.enqueue(item("a", 100, "alive@1"))
    q.enqueue(item("b"))
    q.select(1000, 5)
    q.select(1000, 5)
    expect(q.enqueue(item("a", 120, "suspect@1"))).toBe(true)
    expect(q.pending).toBe(2)
    const [first, second] = q.select(1000, 5)
    expect(first).toEqual({ key: "a", payload: "suspect@1", size: 120, transmits: 1 })
    expect(second?.key).toBe("b")
    expect(second?.transmits).toBe(3)
    // the old one is gone for good: 3 more sends of the new "a" finish it
    for (let i = 0; i < 3; i++) expect(q.select(1000, 5).find((b) => b.key === "a")?.payload).toBe("suspect@1")
    expect(q.has("a")).toBe(false)
  })

  it("sends each update retransmitMult × ⌈log10(N + 1)⌉ times, then drops it", () => {
    const q = new Broadcasts<string>(2)
    q.enqueue(item("a"))
    const counts: Array<number> = []
    for (let i = 0; i < 10; i++) counts.push(...q.select(1000, 10).map((b) => b.transmits))
    expect(counts).toEqual([1, 2, 3, 4]) // limit 2 × ⌈log10 11⌉ = 4
    expect(q.pending).toBe(0)
  })

  it("uses the cluster size of each call: growing extends the limit, shrinking ends updates already sent enough", () => {
    const q = new Broadcasts<string>(4)
    q.enqueue(item("a"))
    q.enqueue(item("b"))
    for (let i = 0; i < 5; i++) q.select(1000, 10, 1) // alternately a, b…: a 3 times, b 2 times
    q.enqueue(item("c"))
    for (let i = 0; i < 2; i++) q.select(1000, 10, 3)
    // a 5, b 4, c 2 sends; at N = 1 the limit is 4
    const out = q.select(1000, 1, 10)
    expect(out.map((b) => [b.key, b.transmits])).toEqual([["c", 3]])
    expect(q.pending).toBe(1)
    // at N = 1000 the limit is 16
    const out2 = q.select(1000, 1000, 10)
    expect(out2.map((b) => [b.key, b.transmits])).toEqual([["c", 4]])
    expect(q.pending).toBe(1)
  })

  it("stops at maxItems (10 by default)", () => {
    const q = new Broadcasts<string>(4)
    for (let i = 0; i < 15; i++) q.enqueue(item(`m${i}`, 10))
    expect(keys(q.select(10_000, 5))).toEqual(["m14", "m13", "m12", "m11", "m10", "m9", "m8", "m7", "m6", "m5"])
    expect(keys(q.select(10_000, 5, 3))).toEqual(["m4", "m3", "m2"])
    expect(q.select(10_000, 5, 0)).toEqual([])
  })

  it("never exceeds the byte budget, passing over what does not fit for smaller updates", () => {
    const q = new Broadcasts<string>(4)
    q.enqueue(item("small1", 100))
    q.enqueue(item("small2", 150))
    q.enqueue(item("big", 900))
    q.enqueue(item("medium", 300))
    // medium (newest) fits, big does not, small2 and small1 do: 550 bytes of 600
    expect(keys(q.select(600, 5))).toEqual(["medium", "small2", "small1"])
    // big kept its place: it is the only one never sent
    expect(keys(q.select(1000, 5, 1))).toEqual(["big"])
    expect(q.select(0, 5)).toEqual([])
    expect(q.select(99, 5)).toEqual([])
  })

  it("an update larger than any packet does not block the others", () => {
    const q = new Broadcasts<string>(4)
    q.enqueue(item("ok", 100))
    q.enqueue(item("huge", 5000))
    for (let i = 0; i < 4; i++) expect(keys(q.select(1400, 5))).toEqual(["ok"])
    expect(keys(q.select(1400, 5))).toEqual([])
    expect(q.pending).toBe(1)
  })

  it(`gives up after ${SELECT_MAX_SKIPS} updates that do not fit`, () => {
    const q = new Broadcasts<string>(4)
    q.enqueue(item("fits", 10))
    for (let i = 0; i < SELECT_MAX_SKIPS; i++) q.enqueue(item(`big${i}`, 500))
    expect(q.select(100, 5)).toEqual([])
    q.remove("big0")
    expect(keys(q.select(100, 5))).toEqual(["fits"])
    expect(q.pending).toBe(SELECT_MAX_SKIPS)
  })

  it("rejects sizes that are not positive numbers", () => {
    const q = new Broadcasts<string>(4)
    for (const size of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) expect(q.enqueue(item("a", size))).toBe(false)
    expect(q.pending).toBe(0)
  })

  it("remove, has, pending and clear", () => {
    const q = new Broadcasts<string>(4)
    q.enqueue(item("a"))
    q.enqueue(item("b"))
    q.enqueue(item("c"))
    q.select(1000, 5, 1)
    expect(q.pending).toBe(3)
    expect(q.remove("c")).toBe(true)
    expect(q.remove("c")).toBe(false)
    expect(q.has("c")).toBe(false)
    expect(keys(q.select(1000, 5))).toEqual(["b", "a"])
    q.clear()
    expect(q.pending).toBe(0)
    expect(q.select(1000, 5)).toEqual([])
    q.enqueue(item("d"))
    expect(keys(q.select(1000, 5))).toEqual(["d"])
  })

  it("prune keeps the least-sent, newest updates", () => {
    const q = new Broadcasts<string>(4)
    for (const k of ["a", "b", "c", "d", "e"]) q.enqueue(item(k))
    q.select(1000, 5, 2) // e, d sent once
    expect(q.prune(10)).toBe(0)
    expect(q.prune(3)).toBe(2)
    expect(["a", "b", "c", "d", "e"].filter((k) => q.has(k))).toEqual(["a", "b", "c"])
    expect(q.prune(1)).toBe(2)
    expect(keys(q.select(1000, 5))).toEqual(["c"])
    expect(q.prune(0)).toBe(1)
    expect(q.pending).toBe(0)
  })
})

// A straightforward (sort-per-call) model of the specification, to check the heaps against.
class Model {
  entries: Array<{ key: string; size: number; seq: number; transmits: number; payload: number }> = []
  seq = 0
  readonly mult: number
  constructor(mult: number) {
    this.mult = mult
  }
  enqueue(key: string, size: number, payload: number) {
    this.entries = this.entries.filter((e) => e.key !== key)
    this.entries.push({ key, size, seq: this.seq++, transmits: 0, payload })
  }
  remove(key: string) {
    this.entries = this.entries.filter((e) => e.key !== key)
  }
  select(budget: number, n: number, maxItems: number) {
    const limit = retransmitLimit(this.mult, n)
    this.entries = this.entries.filter((e) => e.transmits < limit)
    const sorted = [...this.entries].sort((a, b) => a.transmits - b.transmits || b.seq - a.seq)
    const picked: typeof sorted = []
    let remaining = budget
    let skips = 0
    for (const e of sorted) {
      if (picked.length >= maxItems || remaining <= 0) break
      if (e.size > remaining) {
        if (++skips >= SELECT_MAX_SKIPS) break
        continue
      }
      picked.push(e)
      remaining -= e.size
    }
    for (const e of picked) e.transmits++
    this.entries = this.entries.filter((e) => e.transmits < limit)
    return picked.map((e) => ({ key: e.key, payload: e.payload, size: e.size, transmits: e.transmits }))
  }
  prune(max: number) {
    const sorted = [...this.entries].sort((a, b) => a.transmits - b.transmits || b.seq - a.seq)
    this.entries = sorted.slice(0, max)
  }
}

type Op =
  | { readonly op: "enqueue"; readonly key: number; readonly size: number }
  | { readonly op: "remove"; readonly key: number }
  | { readonly op: "select"; readonly budget: number; readonly n: number; readonly maxItems: number }
  | { readonly op: "prune"; readonly max: number }

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    arbitrary: fc.record({
      op: fc.constant("enqueue" as const),
      key: fc.integer({ min: 0, max: 40 }),
      size: fc.integer({ min: 1, max: 600 })
    }),
    weight: 5
  },
  { arbitrary: fc.record({ op: fc.constant("remove" as const), key: fc.integer({ min: 0, max: 40 }) }), weight: 1 },
  {
    arbitrary: fc.record({
      op: fc.constant("select" as const),
      budget: fc.integer({ min: 0, max: 2000 }),
      n: fc.integer({ min: 1, max: 2000 }),
      maxItems: fc.integer({ min: 0, max: 12 })
    }),
    weight: 5
  },
  { arbitrary: fc.record({ op: fc.constant("prune" as const), max: fc.integer({ min: 0, max: 30 }) }), weight: 1 }
)

describe("Broadcasts (properties)", () => {
  it("behaves exactly like the sort-per-call specification", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4 }), fc.array(opArb, { maxLength: 300 }), (mult, ops) => {
        const q = new Broadcasts<number>(mult)
        const model = new Model(mult)
        ops.forEach((o, i) => {
          switch (o.op) {
            case "enqueue":
              q.enqueue({ key: `k${o.key}`, size: o.size, payload: i })
              model.enqueue(`k${o.key}`, o.size, i)
              break
            case "remove":
              q.remove(`k${o.key}`)
              model.remove(`k${o.key}`)
              break
            case "select":
              expect(q.select(o.budget, o.n, o.maxItems)).toEqual(model.select(o.budget, o.n, o.maxItems))
              break
            case "prune":
              q.prune(o.max)
              model.prune(o.max)
              break
          }
          expect(q.pending).toBe(model.entries.length)
        })
      }),
      { numRuns: 300 }
    )
  })

  it("keeps newest-first order within a transmit count through arbitrary removals", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 400 }), { minLength: 2, maxLength: 60 }),
        fc.array(fc.integer({ min: 1, max: 400 }), { maxLength: 60 }),
        fc.array(fc.nat(), { maxLength: 40 }),
        (sizes, budgets, removals) => {
          const q = new Broadcasts<number>(4)
          sizes.forEach((size, i) => {
            q.enqueue({ key: `m${i}`, payload: i, size })
          })
          // single-item sends with varying room move updates to the next count out of insertion order
          for (const budget of budgets) q.select(budget, 1000, 1)
          const removed = new Set(removals.map((r) => `m${r % sizes.length}`))
          for (const key of removed) q.remove(key)
          const out = q.select(1_000_000, 1000, sizes.length)
          expect(out.length).toBe(sizes.length - removed.size)
          for (let i = 1; i < out.length; i++) {
            const [a, b] = [out[i - 1]!, out[i]!]
            expect(a.transmits < b.transmits || (a.transmits === b.transmits && a.payload > b.payload)).toBe(true)
          }
        }
      ),
      { numRuns: 500 }
    )
  })

  it("never exceeds the budget or maxItems", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 1500 }), { minLength: 1, maxLength: 200 }),
        fc.array(fc.record({ budget: fc.integer({ min: 0, max: 3000 }), maxItems: fc.integer({ min: 0, max: 20 }) }), {
          minLength: 1,
          maxLength: 50
        }),
        (sizes, calls) => {
          const q = new Broadcasts<null>(4)
          sizes.forEach((size, i) => {
            q.enqueue({ key: `m${i}`, payload: null, size })
          })
          for (const { budget, maxItems } of calls) {
            const out = q.select(budget, 100, maxItems)
            expect(out.length).toBeLessThanOrEqual(maxItems)
            expect(out.reduce((sum, b) => sum + b.size, 0)).toBeLessThanOrEqual(budget)
            expect(new Set(out.map((b) => b.key)).size).toBe(out.length)
          }
        }
      )
    )
  })

  it("with room to spare, every update is sent exactly `limit` times, counting 1, 2, … limit", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 150 }),
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 1, max: 3000 }),
        fc.integer({ min: 1, max: 10 }),
        (items, mult, clusterSize, maxItems) => {
          const q = new Broadcasts<null>(mult)
          for (let i = 0; i < items; i++) q.enqueue({ key: `m${i}`, payload: null, size: 50 })
          const limit = retransmitLimit(mult, clusterSize)
          const seen = new Map<string, Array<number>>()
          let calls = 0
          while (q.pending > 0) {
            const pending = q.pending
            const out = q.select(1_000_000, clusterSize, maxItems)
            expect(out.length).toBe(Math.min(maxItems, pending))
            for (const b of out) seen.set(b.key, [...(seen.get(b.key) ?? []), b.transmits])
            if (++calls > items * limit + 1) throw new Error("did not drain")
          }
          expect(seen.size).toBe(items)
          const expected = Array.from({ length: limit }, (_, i) => i + 1)
          for (const counts of seen.values()) expect(counts).toEqual(expected)
        }
      )
    )
  })
})
