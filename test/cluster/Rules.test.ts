import { describe, expect, it } from "@effect/vitest"
import type { NodeState } from "../../src/cluster/Node.ts"
import { type Claim, canTransition, refute, shouldApply, stateRank, supersedes } from "../../src/cluster/Rules.ts"

const states: ReadonlyArray<NodeState> = ["Alive", "Suspect", "Dead", "Left"]
const claim = (state: NodeState, incarnation: number): Claim => ({ state, incarnation })

describe("Rules", () => {
  it("ranks states Alive < Suspect < Dead < Left", () => {
    expect(states.map((s) => stateRank[s])).toEqual([0, 1, 2, 3])
  })

  it("allows exactly the legal transitions", () => {
    const table: Record<NodeState, Record<NodeState, boolean>> = {
      Alive: { Alive: true, Suspect: true, Dead: true, Left: true },
      Suspect: { Alive: true, Suspect: true, Dead: true, Left: true },
      Dead: { Alive: true, Suspect: false, Dead: false, Left: true },
      Left: { Alive: true, Suspect: false, Dead: false, Left: false }
    }
    for (const from of states) {
      for (const to of states) expect(canTransition(from, to), `${from} -> ${to}`).toBe(table[from][to])
    }
  })

  it("supersedes: a higher incarnation always wins, a lower one never", () => {
    for (const a of states) {
      for (const b of states) {
        expect(supersedes(claim(a, 6), claim(b, 5))).toBe(true)
        expect(supersedes(claim(a, 4), claim(b, 5))).toBe(false)
      }
    }
  })

  it("supersedes: at equal incarnation only a strictly stronger state wins", () => {
    for (const a of states) {
      for (const b of states) {
        expect(supersedes(claim(a, 3), claim(b, 3)), `${a} over ${b}`).toBe(stateRank[a] > stateRank[b])
      }
    }
  })

  it("shouldApply: unknown members are learned only from Alive", () => {
    expect(shouldApply(undefined, claim("Alive", 0))).toBe(true)
    expect(shouldApply(undefined, claim("Suspect", 9))).toBe(false)
    expect(shouldApply(undefined, claim("Dead", 9))).toBe(false)
    expect(shouldApply(undefined, claim("Left", 9))).toBe(false)
  })

  it("shouldApply: every (current, incoming, incarnation order) combination", () => {
    for (const current of states) {
      for (const incoming of states) {
        for (const delta of [-1, 0, 1]) {
          const expected =
            (delta > 0 || (delta === 0 && stateRank[incoming] > stateRank[current])) && canTransition(current, incoming)
          expect(
            shouldApply(claim(current, 5), claim(incoming, 5 + delta)),
            `${current}@5 <- ${incoming}@${5 + delta}`
          ).toBe(expected)
        }
      }
    }
  })

  it("shouldApply: the cases that matter in a running cluster", () => {
    // a refutation clears a suspicion
    expect(shouldApply(claim("Suspect", 2), claim("Alive", 3))).toBe(true)
    // the suspicion's own echo does not clear it
    expect(shouldApply(claim("Suspect", 2), claim("Alive", 2))).toBe(false)
    // a late suspicion cannot revive a dead member, even at a newer incarnation
    expect(shouldApply(claim("Dead", 2), claim("Suspect", 3))).toBe(false)
    // a graceful leave overrides a detected failure at the same incarnation, not the reverse
    expect(shouldApply(claim("Dead", 2), claim("Left", 2))).toBe(true)
    expect(shouldApply(claim("Left", 2), claim("Dead", 2))).toBe(false)
    // stale Alive from before a failure cannot resurrect (tombstones rely on this)
    expect(shouldApply(claim("Dead", 4), claim("Alive", 4))).toBe(false)
    expect(shouldApply(claim("Left", 4), claim("Alive", 3))).toBe(false)
    // but the member itself coming back at a newer incarnation can
    expect(shouldApply(claim("Left", 4), claim("Alive", 5))).toBe(true)
  })

  it("refute: suspect or dead at our incarnation or newer forces a higher one", () => {
    for (const heard of ["Suspect", "Dead", "Left"] as const) {
      expect(refute(claim("Alive", 3), claim(heard, 3))).toBe(4)
      expect(refute(claim("Alive", 3), claim(heard, 7))).toBe(8)
      expect(refute(claim("Alive", 3), claim(heard, 2))).toBeUndefined()
    }
  })

  it("refute: our own Alive echoed back is harmless, a newer Alive is not", () => {
    expect(refute(claim("Alive", 3), claim("Alive", 3))).toBeUndefined()
    expect(refute(claim("Alive", 3), claim("Alive", 2))).toBeUndefined()
    expect(refute(claim("Alive", 3), claim("Alive", 5))).toBe(6)
  })

  it("refute: an Alive at our incarnation with other content is a previous life's, and is refuted", () => {
    expect(refute(claim("Alive", 3), claim("Alive", 3), false)).toBe(4)
    // older news stays harmless whatever it carries
    expect(refute(claim("Alive", 3), claim("Alive", 2), false)).toBeUndefined()
    expect(refute(claim("Left", 3), claim("Alive", 3), false)).toBeUndefined()
  })

  it("refute: a leaving node never announces itself alive again", () => {
    for (const heard of states) expect(refute(claim("Left", 3), claim(heard, 9))).toBeUndefined()
  })
})
