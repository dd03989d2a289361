import { assert, describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Layer, Option, PubSub, Stream } from "effect"
import { MemberTable, NodeRegistry, toEvent } from "../../../src/cluster/gossip/Registry.ts"
import { Address, ClusterNode, NodeId, type NodeState, type Tags } from "../../../src/cluster/Node.ts"
import { shouldApply } from "../../../src/cluster/Rules.ts"

const idOf = (i: number) => NodeId.make(`00000000-0000-4000-8000-${i.toString(16).padStart(12, "0")}`)
const A = idOf(1)
const B = idOf(2)
const C = idOf(3)

const node = (
  id: NodeId,
  state: NodeState,
  incarnation: number,
  tags: Tags = {},
  name = `node-${id.slice(-2)}`
): ClusterNode =>
  new ClusterNode({
    id,
    name,
    gossipAddress: new Address({ host: "10.0.0.1", port: 7000 + Number.parseInt(id.slice(-4), 16) }),
    tags,
    state,
    incarnation
  })

const states: ReadonlyArray<NodeState> = ["Alive", "Suspect", "Dead", "Left"]

/** A table holding `id` in `state` at `incarnation`, reached through legal claims. */
const tableWith = (id: NodeId, state: NodeState, incarnation: number, tags: Tags = {}): MemberTable => {
  const table = new MemberTable()
  table.upsert(node(id, "Alive", incarnation, tags))
  if (state !== "Alive") table.updateState(id, state, incarnation)
  expect(table.get(id)?.state).toBe(state)
  return table
}

const ids = (nodes: ReadonlyArray<ClusterNode>) => nodes.map((n) => n.id).sort()

const provide = Effect.provide(NodeRegistry.layer)

describe("MemberTable precedence", () => {
  it("learns unknown members only from Alive", () => {
    const table = new MemberTable()
    for (const state of ["Suspect", "Dead", "Left"] as const) {
      expect(table.upsert(node(A, state, 9))).toBeUndefined()
    }
    expect(table.size).toBe(0)
    expect(table.sequence).toBe(0)
    const change = table.upsert(node(A, "Alive", 0))
    expect(change).toMatchObject({ _tag: "Applied", sequence: 1, previous: undefined })
    expect(table.get(A)).toBe(change?.current)
  })

  it("upsert applies a claim exactly when Rules.shouldApply does, for every state pair and incarnation order", () => {
    for (const from of states) {
      for (const to of states) {
        for (const delta of [-1, 0, 1]) {
          const table = tableWith(A, from, 5)
          const before = table.get(A)!
          const change = table.upsert(node(A, to, 5 + delta))
          const expected = shouldApply({ state: from, incarnation: 5 }, { state: to, incarnation: 5 + delta })
          const label = `${from}@5 <- ${to}@${5 + delta}`
          if (expected) {
            expect(change?.previous, label).toBe(before)
            expect(table.get(A)?.state, label).toBe(to)
            expect(table.get(A)?.incarnation, label).toBe(5 + delta)
          } else {
            expect(change, label).toBeUndefined()
            expect(table.get(A), label).toBe(before)
          }
        }
      }
    }
  })

  it("updateState follows the same rule and keeps the rest of the view", () => {
    for (const from of states) {
      for (const to of states) {
        for (const delta of [-1, 0, 1]) {
          const table = tableWith(A, from, 5, { role: "db" })
          const change = table.updateState(A, to, 5 + delta)
          const expected = shouldApply({ state: from, incarnation: 5 }, { state: to, incarnation: 5 + delta })
          expect(change !== undefined, `${from}@5 <- ${to}@${5 + delta}`).toBe(expected)
          expect(table.get(A)?.tags).toEqual({ role: "db" })
        }
      }
    }
  })

  it("an applied Alive replaces name, addresses and tags; other claims change only state and incarnation", () => {
    const table = new MemberTable()
    table.upsert(node(A, "Alive", 1, { role: "db" }, "old"))
    // an accuser's stale copy must not overwrite what the member announced
    table.upsert(node(A, "Suspect", 1, { role: "stale" }, "stale-name"))
    expect(table.get(A)).toMatchObject({ state: "Suspect", incarnation: 1, name: "old", tags: { role: "db" } })
    const renamed = node(A, "Alive", 2, { role: "cache" }, "new").with({
      rpcAddress: new Address({ host: "10.0.0.9", port: 9000 })
    })
    table.upsert(renamed)
    expect(table.get(A)).toBe(renamed)
  })
})

describe("MemberTable tombstones", () => {
  it("block stale resurrection and let the member itself return at a newer incarnation", () => {
    const table = tableWith(A, "Dead", 4, { role: "worker" })
    const reaped = table.remove(A, 1000)
    expect(reaped).toMatchObject({ _tag: "Reaped", reapedAt: 1000, node: { state: "Dead", incarnation: 4 } })
    expect(table.get(A)).toBeUndefined()
    expect(table.tombstone(A)).toMatchObject({ reapedAt: 1000, node: { state: "Dead", incarnation: 4 } })
    const sequence = table.sequence

    expect(table.upsert(node(A, "Alive", 4))).toBeUndefined() // the last Alive before the failure
    expect(table.upsert(node(A, "Alive", 3))).toBeUndefined()
    expect(table.upsert(node(A, "Suspect", 9))).toBeUndefined() // only Alive revives
    expect(table.size).toBe(0)
    expect(table.sequence).toBe(sequence)

    const back = table.upsert(node(A, "Alive", 5, { role: "worker" }))
    // it was not a member, so previous is undefined and it reads as a (re)join
    expect(back).toMatchObject({ _tag: "Applied", previous: undefined, current: { incarnation: 5 } })
    expect(toEvent(back!)?._tag).toBe("NodeJoined")
    expect(table.tombstone(A)).toBeUndefined()
    expect(ids(table.getNodesByTag("role", "worker"))).toEqual([A])
  })

  it("a stronger claim about a reaped member strengthens the tombstone without reviving it", () => {
    const table = tableWith(A, "Dead", 4)
    table.remove(A, 0)
    expect(table.upsert(node(A, "Left", 4))).toBeUndefined()
    expect(table.size).toBe(0)
    expect(table.tombstone(A)?.node).toMatchObject({ state: "Left", incarnation: 4 })
    expect(table.tombstone(A)?.reapedAt).toBe(0)
    expect(table.sequence).toBe(3) // Alive, Dead, Reaped: the tombstone update is not a change
  })

  it("remove is idempotent and expireTombstones honours the ttl", () => {
    const table = new MemberTable()
    expect(table.remove(A, 0)).toBeUndefined()
    table.upsert(node(A, "Alive", 1))
    table.upsert(node(B, "Alive", 1))
    table.remove(A, 100)
    table.remove(B, 200)
    expect(table.remove(A, 300)).toBeUndefined()
    expect(table.tombstone(A)?.reapedAt).toBe(100)
    expect(table.expireTombstones(1099, 1000)).toBe(0)
    expect(table.expireTombstones(1100, 1000)).toBe(1)
    expect(table.tombstones().map(([id]) => id)).toEqual([B])
    // with the tombstone gone, the member is unknown again: any Alive is news
    expect(table.upsert(node(A, "Alive", 0))).toBeDefined()
    expect(table.upsert(node(B, "Alive", 1))).toBeUndefined()
  })
})

describe("MemberTable tag index", () => {
  const indexOf = (table: MemberTable) => {
    const out: Record<string, Record<string, Array<string>>> = {}
    for (const [key, values] of table.tagIndex) {
      out[key] = {}
      for (const [value, set] of values) out[key][value] = [...set].sort()
    }
    return out
  }

  it("follows tag changes, suspicion, death, reaping and return", () => {
    const table = new MemberTable()
    table.upsert(node(A, "Alive", 1, { role: "worker", zone: "a" }))
    table.upsert(node(B, "Alive", 1, { role: "worker", zone: "b" }))
    expect(ids(table.getNodesByTag("role", "worker"))).toEqual([A, B])

    // A republishes its tags at a new incarnation
    table.upsert(node(A, "Alive", 2, { role: "db", zone: "a" }))
    expect(ids(table.getNodesByTag("role", "worker"))).toEqual([B])
    expect(ids(table.getNodesByTag("role", "db"))).toEqual([A])
    expect(indexOf(table)).toEqual({ role: { worker: [B], db: [A] }, zone: { a: [A], b: [B] } })

    // suspects stay indexed but are returned only on request
    table.updateState(B, "Suspect", 1)
    expect(table.getNodesByTag("role", "worker")).toEqual([])
    expect(ids(table.getNodesByTag("role", "worker", { includeSuspect: true }))).toEqual([B])

    // the dead leave the index, and empty entries are pruned
    table.updateState(B, "Dead", 1)
    expect(table.getNodesByTag("role", "worker", { includeSuspect: true })).toEqual([])
    expect(indexOf(table)).toEqual({ role: { db: [A] }, zone: { a: [A] } })

    // a return re-indexes with the announced tags
    table.upsert(node(B, "Alive", 2, { role: "worker", zone: "c" }))
    expect(indexOf(table)).toEqual({ role: { worker: [B], db: [A] }, zone: { a: [A], c: [B] } })

    // reaping an indexed member removes it too
    table.remove(B, 0)
    table.updateState(A, "Left", 2)
    table.remove(A, 0)
    expect(indexOf(table)).toEqual({})
  })

  it("getNodesByTags intersects, with no tags meaning every callable member", () => {
    const table = new MemberTable()
    table.upsert(node(idOf(1), "Alive", 0, { role: "worker", zone: "a", gpu: "yes" }))
    table.upsert(node(idOf(2), "Alive", 0, { role: "worker", zone: "a" }))
    table.upsert(node(idOf(3), "Alive", 0, { role: "worker", zone: "b", gpu: "yes" }))
    table.upsert(node(idOf(4), "Alive", 0, { role: "db", zone: "a", gpu: "yes" }))
    table.upsert(node(idOf(5), "Alive", 0, { role: "worker", zone: "a", gpu: "yes" }))
    table.updateState(idOf(5), "Suspect", 0)
    table.upsert(node(idOf(6), "Alive", 0, { role: "worker", zone: "a", gpu: "yes" }))
    table.updateState(idOf(6), "Dead", 0)

    expect(ids(table.getNodesByTags({ role: "worker", zone: "a" }))).toEqual([idOf(1), idOf(2)])
    expect(ids(table.getNodesByTags({ role: "worker", gpu: "yes" }))).toEqual([idOf(1), idOf(3)])
    expect(ids(table.getNodesByTags({ role: "worker", zone: "a", gpu: "yes" }))).toEqual([idOf(1)])
    expect(ids(table.getNodesByTags({ role: "worker", zone: "a", gpu: "yes" }, { includeSuspect: true }))).toEqual([
      idOf(1),
      idOf(5)
    ])
    expect(table.getNodesByTags({ role: "worker", zone: "c" })).toEqual([])
    expect(table.getNodesByTags({ role: "worker", missing: "x" })).toEqual([])
    expect(ids(table.getNodesByTags({}))).toEqual([1, 2, 3, 4].map(idOf))
    expect(ids(table.getNodesByTags({}, { includeSuspect: true }))).toEqual([1, 2, 3, 4, 5].map(idOf))
  })

  it("treats keys like __proto__ and constructor as ordinary tags", () => {
    const table = new MemberTable()
    const tags = JSON.parse('{"__proto__":"x","constructor":"y"}') as Tags
    table.upsert(node(A, "Alive", 0, tags))
    table.upsert(node(B, "Alive", 0, {}))
    expect(ids(table.getNodesByTag("__proto__", "x"))).toEqual([A])
    expect(ids(table.getNodesByTags(tags))).toEqual([A])
    expect(table.getNodesByTag("constructor", "Object")).toEqual([])
    table.upsert(node(A, "Alive", 1, {}))
    expect(table.getNodesByTag("constructor", "y")).toEqual([])
    expect(table.tagIndex.size).toBe(0)
  })
})

describe("NodeRegistry", () => {
  it.effect("serves reads and fails updateState on an unknown or reaped member", () =>
    Effect.gen(function* () {
      const registry = yield* NodeRegistry
      yield* registry.upsert(node(A, "Alive", 1, { role: "worker" }))
      yield* registry.upsert(node(B, "Alive", 1, { role: "worker" }))
      yield* registry.upsert(node(C, "Alive", 1, { role: "db" }))
      yield* registry.updateState(B, "Suspect", 1)
      expect(yield* registry.size).toBe(3)
      expect(ids(yield* registry.members)).toEqual([A, B, C])
      expect(ids(yield* registry.getAliveNodes)).toEqual([A, C])
      expect(ids(yield* registry.getNodesByTag("role", "worker"))).toEqual([A])
      expect(ids(yield* registry.getNodesByTags({ role: "worker" }, { includeSuspect: true }))).toEqual([A, B])
      expect(Option.map(yield* registry.get(C), (n) => n.tags)).toEqual(Option.some({ role: "db" }))
      expect(yield* registry.get(idOf(99))).toEqual(Option.none())

      const unknown = yield* Effect.flip(registry.updateState(idOf(99), "Dead", 1))
      expect(unknown._tag).toBe("NodeNotFound")
      expect(unknown.nodeId).toBe(idOf(99))

      yield* registry.updateState(C, "Dead", 1)
      const reaped = yield* registry.remove(C, 5000)
      expect(reaped?.node.state).toBe("Dead")
      expect(yield* registry.remove(C, 6000)).toBeUndefined()
      expect(Option.map(yield* registry.getTombstone(C), (t) => t.reapedAt)).toEqual(Option.some(5000))
      const gone = yield* Effect.exit(registry.updateState(C, "Alive", 2))
      expect(Exit.isFailure(gone)).toBe(true)
      expect(yield* registry.expireTombstones(6000, "1 second")).toBe(1)
      expect(yield* registry.getTombstone(C)).toEqual(Option.none())
    }).pipe(provide)
  )

  it.effect("publishes every applied change, in order, and nothing for ignored claims", () =>
    Effect.gen(function* () {
      const registry = yield* NodeRegistry
      const subscription = yield* registry.subscribe
      const returned: Array<unknown> = []
      const record = <A>(a: A) => {
        if (a !== undefined) returned.push(a)
        return a
      }
      record(yield* registry.upsert(node(A, "Alive", 1)))
      record(yield* registry.upsert(node(A, "Alive", 1))) // echo: ignored
      record(yield* registry.upsert(node(B, "Alive", 0)))
      record(yield* registry.updateState(A, "Suspect", 1))
      record(yield* registry.upsert(node(A, "Dead", 0))) // stale: ignored
      record(yield* registry.upsert(node(A, "Alive", 2))) // refutation
      record(yield* registry.updateState(B, "Left", 0))
      record(yield* registry.remove(B, 10))
      const published = yield* PubSub.takeAll(subscription)
      expect(published).toEqual(returned)
      published.forEach((change, i) => {
        expect(change).toBe(returned[i]) // the very same objects
        expect(change.sequence).toBe(i + 1)
      })
      expect(published.map((c) => toEvent(c)?._tag)).toEqual([
        "NodeJoined",
        "NodeJoined",
        "NodeSuspected",
        "NodeRecovered",
        "NodeLeft",
        "NodeReaped"
      ])
      expect(yield* PubSub.remaining(subscription)).toBe(0)
    }).pipe(provide)
  )

  it.effect("watch gives a snapshot and exactly the changes after it", () =>
    Effect.gen(function* () {
      const registry = yield* NodeRegistry
      yield* registry.upsert(node(A, "Alive", 1))
      const { changes, members } = yield* registry.watch
      yield* registry.upsert(node(B, "Alive", 1))
      yield* registry.updateState(A, "Dead", 1)
      expect(ids(members)).toEqual([A])
      const seen = yield* changes.pipe(Stream.take(2), Stream.runCollect)
      expect(seen.map((c) => (c._tag === "Applied" ? [c.current.id, c.current.state] : []))).toEqual([
        [B, "Alive"],
        [A, "Dead"]
      ])
    }).pipe(provide)
  )

  it.effect("the changes stream sees changes once it runs", () =>
    Effect.gen(function* () {
      const registry = yield* NodeRegistry
      const ready = yield* registry.subscribe // proves publication works while the stream starts
      const fiber = yield* registry.changes.pipe(Stream.take(3), Stream.runCollect, Effect.forkChild)
      // keep publishing until the lazily subscribed stream has caught three changes
      let incarnation = 0
      while (fiber.pollUnsafe() === undefined && incarnation < 1000) {
        yield* registry.upsert(node(A, "Alive", incarnation++))
        yield* Effect.yieldNow
      }
      const seen = yield* Fiber.join(fiber)
      assert.strictEqual(seen.length, 3)
      const sequences = seen.map((c) => c.sequence)
      expect(sequences).toEqual([sequences[0]!, sequences[0]! + 1, sequences[0]! + 2])
      expect((yield* PubSub.takeAll(ready)).length).toBe(incarnation)
    }).pipe(provide)
  )

  it.effect("each layer build is a separate, empty registry", () =>
    Effect.gen(function* () {
      const one = yield* Layer.build(NodeRegistry.layer)
      const two = yield* Layer.build(NodeRegistry.layer)
      yield* NodeRegistry.use((r) => r.upsert(node(A, "Alive", 0))).pipe(Effect.provideContext(one))
      expect(yield* NodeRegistry.use((r) => r.size).pipe(Effect.provideContext(two))).toBe(0)
      expect(yield* NodeRegistry.use((r) => r.size).pipe(Effect.provideContext(one))).toBe(1)
    })
  )
})
