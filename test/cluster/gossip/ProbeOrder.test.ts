import { describe, expect, it } from "@effect/vitest"
import { Effect, Random } from "effect"
import * as fc from "fast-check"
import { ProbeOrder } from "../../../src/cluster/gossip/ProbeOrder.ts"

/** A seeded `[0, 1)` source, the way the shell gets one: from effect's `Random`. */
const seeded = (seed: number | string): (() => number) => {
  const random = Effect.runSync(Effect.service(Random.Random).pipe(Random.withSeed(seed)))
  return () => random.nextDoubleUnsafe()
}

const ids = (n: number, prefix = "m") => Array.from({ length: n }, (_, i) => `${prefix}${i}`)

const take = (order: ProbeOrder, random: () => number, n: number) => Array.from({ length: n }, () => order.next(random))

describe("ProbeOrder", () => {
  it("probes every member exactly once per pass, in a fresh order each pass", () => {
    const members = ids(10)
    const order = new ProbeOrder(members)
    const random = seeded(1)
    const passes = Array.from({ length: 50 }, () => take(order, random, 10))
    for (const pass of passes) expect([...pass].sort()).toEqual([...members].sort())
    expect(new Set(passes.map((p) => p.join())).size).toBeGreaterThan(45)
  })

  it("never probes the same member twice in a row, across pass boundaries too", () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 8 }), fc.integer(), (n, seed) => {
        const order = new ProbeOrder(ids(n))
        const seen = take(order, seeded(seed), n * 30)
        for (let i = 1; i < seen.length; i++) expect(seen[i]).not.toBe(seen[i - 1])
      })
    )
  })

  it("is deterministic given the random source", () => {
    const run = (seed: number) => {
      const order = new ProbeOrder(ids(20))
      const random = seeded(seed)
      const out = take(order, random, 15)
      order.add("late", random)
      order.remove("m3")
      order.prioritize(["m7"])
      return [...out, ...take(order, random, 40)]
    }
    expect(run(7)).toEqual(run(7))
    expect(run(7)).not.toEqual(run(8))
  })

  it("has nothing to probe when empty, and probes a lone member every time", () => {
    const order = new ProbeOrder<string>()
    const random = seeded(2)
    expect(order.next(random)).toBeUndefined()
    order.prioritize(["x"])
    expect(order.next(random)).toBeUndefined()
    order.add("solo", random)
    expect(take(order, random, 3)).toEqual(["solo", "solo", "solo"])
    order.prioritize(["solo"])
    expect(order.next(random)).toBe("solo")
    order.remove("solo")
    expect(order.next(random)).toBeUndefined()
  })

  it("ignores duplicate members and double adds", () => {
    const order = new ProbeOrder(["a", "b", "a"])
    expect(order.size).toBe(2)
    expect(order.add("a", seeded(3))).toBe(false)
    expect(order.size).toBe(2)
  })

  it("a member added mid-pass is probed before the pass ends", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 30 }), fc.integer({ min: 0, max: 29 }), fc.integer(), (n, done, seed) => {
        const random = seeded(seed)
        const order = new ProbeOrder(ids(n))
        take(order, random, n) // a full first pass
        // part of the second (none: it lands between passes, and joins the next one)
        const before = take(order, random, done % n)
        order.add("new", random)
        const rest = take(order, random, n - before.length + 1)
        expect(rest).toContain("new")
        expect([...before, ...rest].sort()).toEqual([...ids(n), "new"].sort())
      })
    )
  })

  it("a new member lands at a uniformly random place among the rest of the pass", () => {
    const random = seeded("uniform")
    const counts = [0, 0, 0, 0, 0]
    for (let trial = 0; trial < 5000; trial++) {
      const order = new ProbeOrder(ids(8))
      take(order, random, 8 + 4) // a whole pass, then 4 of the next: 4 left
      order.add("new", random)
      counts[take(order, random, 5).indexOf("new")]!++
    }
    // 1000 expected in each of the 5 places
    for (const c of counts) expect(c).toBeGreaterThan(900)
    for (const c of counts) expect(c).toBeLessThan(1100)
  })

  it("every member is equally likely to open a pass", () => {
    const random = seeded("first")
    const order = new ProbeOrder(ids(4))
    const counts = new Map<string, number>()
    for (let pass = 0; pass < 8000; pass++) {
      const first = take(order, random, 4)[0]!
      counts.set(first, (counts.get(first) ?? 0) + 1)
    }
    for (const id of ids(4)) {
      expect(counts.get(id)).toBeGreaterThan(1850)
      expect(counts.get(id)).toBeLessThan(2150)
    }
  })

  it("never returns a removed member, whether or not it was probed in this pass", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 30 }),
        fc.integer({ min: 0, max: 30 }),
        fc.array(fc.nat(), { minLength: 1, maxLength: 10 }),
        fc.integer(),
        (n, done, removals, seed) => {
          const random = seeded(seed)
          const members = ids(n)
          const order = new ProbeOrder(members)
          take(order, random, n)
          const before = take(order, random, Math.min(done, n))
          const removed = new Set(removals.map((r) => members[r % n]!))
          for (const id of removed) expect(order.remove(id)).toBe(true)
          for (const id of removed) expect(order.remove(id)).toBe(false)
          expect(order.size).toBe(n - removed.size)
          // the rest of this pass: exactly the survivors not yet probed
          const left = members.filter((id) => !removed.has(id) && !before.includes(id))
          expect([...take(order, random, left.length)].sort()).toEqual([...left].sort())
          // later passes: every survivor once, no removed member ever
          const survivors = members.filter((id) => !removed.has(id))
          for (let pass = 0; pass < 3; pass++) {
            expect([...take(order, random, survivors.length)].sort()).toEqual([...survivors].sort())
          }
        }
      )
    )
  })

  it("a removed and re-added member is probed once in the pass", () => {
    const random = seeded(4)
    const order = new ProbeOrder(ids(6))
    take(order, random, 6 + 2)
    const target = take(order, random, 1)[0]!
    order.remove(target)
    order.add(target, random)
    const rest = take(order, random, 4)
    expect(rest.filter((id) => id === target)).toEqual([target])
  })

  it("prioritized members come first, in the given order, once each", () => {
    const random = seeded(5)
    const order = new ProbeOrder(ids(10))
    take(order, random, 3)
    order.prioritize(["m8", "m2", "unknown", "m8"])
    order.prioritize(["m2", "m5"])
    expect(order.prioritized).toBe(3)
    expect(take(order, random, 3)).toEqual(["m8", "m2", "m5"])
    expect(order.prioritized).toBe(0)
  })

  it("prioritized members keep their normal turn", () => {
    fc.assert(
      fc.property(fc.integer({ min: 3, max: 20 }), fc.integer(), (n, seed) => {
        const random = seeded(seed)
        const members = ids(n)
        const order = new ProbeOrder(members)
        const last = take(order, random, n).at(-1)
        // the whole next pass, with one member (not the one just probed) bumped to the front
        const bumped = members.find((m) => m !== last)!
        order.prioritize([bumped])
        const pass = take(order, random, n + 1)
        expect(pass[0]).toBe(bumped)
        const normal = pass.slice(1)
        if (normal.includes(bumped)) {
          // its turn came later in the pass: probed again then
          expect([...normal].sort()).toEqual([...members].sort())
        } else {
          // its turn was right after the out-of-turn probe, and counted as done; the pass went on
          expect(normal.slice(0, n - 1).sort()).toEqual(members.filter((m) => m !== bumped).sort())
        }
      })
    )
  })

  it("drops a queued member that was probed just before, and one removed since", () => {
    const random = seeded(6)
    const order = new ProbeOrder(ids(5))
    const first = order.next(random)!
    order.prioritize([first, "m4"])
    order.remove("m4")
    expect(order.prioritized).toBe(1)
    const second = order.next(random)
    expect(second).not.toBe(first)
    expect(second).not.toBe("m4")
  })
})
