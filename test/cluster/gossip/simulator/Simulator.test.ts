/**
 * The discrete-event simulator: whole clusters of bare engines, with the
 * fault model of the Effect-level SimNetwork. Bounds are derived from the
 * protocol's defaults as in `test/cluster/sim` (P = probe interval 1 s,
 * G = gossip interval 200 ms, retransmitMult 4, suspicionMult 4, ×6 max).
 */
import { describe, expect, it } from "@effect/vitest"
import * as fc from "fast-check"
import type { SimulatedNode } from "../../../../src/cluster/gossip/simulator/SimulatedNode.ts"
import { Simulator } from "../../../../src/cluster/gossip/simulator/Simulator.ts"
import { Address, type NodeState } from "../../../../src/cluster/Node.ts"
import { defaultSettings } from "../engine/harness.ts"

const P = 1000
const G = 200
const retransmits = (n: number) => 4 * Math.ceil(Math.log10(n + 1))
const maxSuspicion = (n: number) => 6 * 4 * Math.max(1, Math.log10(n)) * P
const settings = defaultSettings()
const desAddressOf = (i: number) => new Address({ host: `10.2.${Math.floor(i / 250)}.${(i % 250) + 1}`, port: 7946 })

/** `n` nodes, node 0 first and every other one joining through it. */
const cluster = (seed: number, n: number, options: { readonly latency?: number; readonly jitter?: number } = {}) => {
  const sim = new Simulator({ seed, defaults: { latency: options.latency ?? 1, jitter: options.jitter ?? 0 } })
  const nodes: Array<SimulatedNode> = []
  for (let i = 0; i < n; i++) {
    nodes.push(
      sim.addNode({ name: `n${i}`, address: desAddressOf(i), settings, seeds: i === 0 ? [] : [nodes[0]!.address] })
    )
    sim.advance(5)
  }
  return { sim, nodes }
}

const sees = (observer: SimulatedNode, subject: SimulatedNode): NodeState | undefined =>
  observer.engine.table.get(subject.id)?.state

const allSee = (observers: ReadonlyArray<SimulatedNode>, subjects: ReadonlyArray<SimulatedNode>, state: NodeState) =>
  observers.every((o) => subjects.every((s) => sees(o, s) === state))

describe("the discrete-event simulator", () => {
  it("forms a cluster, detects a crash and spreads a leave", () => {
    const n = 20
    const { sim, nodes } = cluster(1, n)
    expect(sim.advanceUntil(() => allSee(nodes, nodes, "Alive"), 10_000)).toBeDefined()
    const [victim, leaver] = [nodes[7]!, nodes[11]!]
    sim.crash(victim)
    const rest = nodes.filter((node) => node !== victim)
    const bound = (n - 1) * P + P + maxSuspicion(n) + 2 * retransmits(n) * G
    expect(sim.advanceUntil(() => allSee(rest, [victim], "Dead"), bound)).toBeDefined()
    sim.leave(leaver)
    const others = rest.filter((node) => node !== leaver)
    expect(sim.advanceUntil(() => allSee(others, [leaver], "Left"), 2 * retransmits(n) * G)).toBeDefined()
    // and it stops once its announcement went out (within leaveTimeout)
    expect(sim.advanceUntil(() => !leaver.attached, 5_000)).toBeDefined()
    // nobody else was taken for dead
    expect(allSee(others, others, "Alive")).toBe(true)
  })

  it("replays a run exactly from its seed", () => {
    const run = () => {
      const { sim, nodes } = cluster(42, 12, { jitter: 5 })
      sim.advance(30_000)
      sim.crash(nodes[3]!)
      sim.advance(30_000)
      return { events: sim.events, totals: sim.totals, views: nodes.map((n) => n.engine.table.count("Alive")) }
    }
    expect(run()).toEqual(run())
  })

  it("a 4 | 4 partition: each side fails the other; healed, all see all alive", () => {
    const { sim, nodes } = cluster(7, 8)
    sim.advanceUntil(() => allSee(nodes, nodes, "Alive"), 10_000)
    const [a, b] = [nodes.slice(0, 4), nodes.slice(4)]
    sim.faults.partition([a.map((node) => node.key), b.map((node) => node.key)])
    const split = sim.advanceUntil(
      () => allSee(a, b, "Dead") && allSee(b, a, "Dead"),
      7 * 8 * P + 8 * P + maxSuspicion(8)
    )
    expect(split).toBeDefined()
    sim.faults.heal()
    expect(sim.advanceUntil(() => allSee(nodes, nodes, "Alive"), 2 * P + 4 * retransmits(8) * G)).toBeDefined()
  })

  it("a paused node is suspected, and Alive everywhere soon after it resumes; its probe in flight accuses nobody", () => {
    const { sim, nodes } = cluster(9, 6)
    sim.advanceUntil(() => allSee(nodes, nodes, "Alive"), 10_000)
    const sleeper = nodes[5]!
    const rest = nodes.slice(0, 5)
    const before = sleeper.engine.localNode.incarnation
    const suspicionsBefore = sleeper.engine.stats().suspicionsRaised
    sim.pause(sleeper)
    expect(sim.advanceUntil(() => rest.some((o) => sees(o, sleeper) !== "Alive"), 10_000)).toBeDefined()
    sim.advance(5_000)
    sim.resume(sleeper)
    expect(sim.advanceUntil(() => allSee(rest, [sleeper], "Alive"), 2 * P + 2 * retransmits(6) * G, 50)).toBeDefined()
    expect(sleeper.engine.localNode.incarnation).toBeGreaterThan(before)
    expect(sleeper.engine.stats().suspicionsRaised).toBe(suspicionsBefore)
  })

  it("a blackholed host is failed like a crash: its connects hang until their deadline", () => {
    const { sim, nodes } = cluster(11, 6)
    sim.advanceUntil(() => allSee(nodes, nodes, "Alive"), 10_000)
    const victim = nodes[2]!
    sim.faults.isolate(victim.key)
    const rest = nodes.filter((node) => node !== victim)
    expect(
      sim.advanceUntil(() => allSee(rest, [victim], "Dead"), 5 * P + P + maxSuspicion(6) + 2 * retransmits(6) * G)
    ).toBeDefined()
    // the TCP pings to it timed out (no answer, no refusal)
    expect(rest.some((node) => sim.stats(node).exchangesFailed > 0)).toBe(true)
  })

  it("a live node that receives every message is never declared dead, whatever else happens", () => {
    fc.assert(
      fc.property(
        fc.integer(),
        fc.integer({ min: 3, max: 10 }),
        fc.integer({ min: 0, max: 60 }),
        fc.integer({ min: 0, max: 60 }),
        fc.array(
          fc.record({
            at: fc.integer({ min: 0, max: 60_000 }),
            what: fc.constantFrom("crash", "leave", "setTags", "join"),
            who: fc.nat()
          }),
          { maxLength: 6 }
        ),
        (seed, n, latency, jitter, script) => {
          const { sim, nodes } = cluster(seed, n, { latency, jitter })
          const gone = new Set<SimulatedNode>()
          let next = n
          const watch = () => {
            for (const observer of nodes) {
              if (gone.has(observer)) continue
              for (const subject of nodes) {
                if (gone.has(subject) || subject === observer) continue
                expect(sees(observer, subject), `${observer.name} holds ${subject.name}`).not.toBe("Dead")
              }
            }
          }
          for (const step of [...script].sort((x, y) => x.at - y.at)) {
            while (sim.now < step.at) {
              sim.advance(250)
              watch()
            }
            const who = nodes[step.who % nodes.length]!
            if (gone.has(who)) continue
            if (step.what === "crash") {
              gone.add(who)
              sim.crash(who)
            } else if (step.what === "leave") {
              gone.add(who)
              sim.leave(who)
            } else if (step.what === "setTags") {
              // a tag change is a new announcement at a new incarnation
              sim.setTags(who, { at: String(sim.now) })
            } else {
              nodes.push(
                sim.addNode({ name: `n${next}`, address: desAddressOf(next++), settings, seeds: [who.address] })
              )
            }
          }
          for (let t = 0; t < 30_000; t += 250) {
            sim.advance(250)
            watch()
          }
        }
      ),
      { numRuns: 25 }
    )
  })
})
