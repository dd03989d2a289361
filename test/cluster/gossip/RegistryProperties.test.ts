/**
 * Properties of the registry under random updates.
 *
 * 1. Concurrent: several fibers apply random claims about a small pool of
 *    members through the `NodeRegistry` service, yielding between operations
 *    so they interleave. The `changes` subscription gives the order in which
 *    the registry applied them; from it we check that no update was lost or
 *    applied against the rules, that every ignored claim deserved it, that the
 *    highest incarnation wins, and that the tag index answers exactly what a
 *    scan of the members answers — at random points during the run, too.
 * 2. Sequential, model-based: `MemberTable` against a naive model (a plain
 *    map scanned for every query), including reaping and tombstone expiry,
 *    compared after every step, index structure included.
 */
import { describe, expect, it } from "@effect/vitest"
import { Arbitrary, Effect, Option, PubSub, Schema } from "effect"
import { type Applied, MemberTable, NodeRegistry, type TagQueryOptions } from "../../../src/cluster/gossip/Registry.ts"
import { Address, ClusterNode, NodeId, NodeState, type Tags } from "../../../src/cluster/Node.ts"
import { type Claim, shouldApply } from "../../../src/cluster/Rules.ts"

const POOL = 5
const ids = Array.from({ length: POOL }, (_, i) => NodeId.make(`00000000-0000-4000-8000-00000000000${i}`))
const tagPool: ReadonlyArray<Tags> = [
  {},
  { role: "worker" },
  { role: "worker", zone: "a" },
  { role: "db", zone: "a" },
  { zone: "b" },
  { role: "worker", zone: "b", gpu: "yes" }
]
const tagPairs: ReadonlyArray<readonly [string, string]> = [
  ["role", "worker"],
  ["role", "db"],
  ["zone", "a"],
  ["zone", "b"],
  ["gpu", "yes"],
  ["gpu", "no"]
]
const queryOptions: ReadonlyArray<TagQueryOptions | undefined> = [undefined, { includeSuspect: true }]

const between = (minimum: number, maximum: number) => Schema.Int.check(Schema.isBetween({ minimum, maximum }))

const Op = Schema.Struct({
  kind: Schema.Literals(["upsert", "upsert", "updateState", "check"]),
  id: between(0, POOL - 1),
  state: NodeState,
  incarnation: between(0, 6),
  tags: between(0, tagPool.length - 1),
  name: between(0, 1),
  lane: between(0, 5),
  yields: between(0, 2)
})
type Op = typeof Op.Type

const claimNode = (op: Pick<Op, "id" | "state" | "incarnation" | "tags" | "name">): ClusterNode =>
  new ClusterNode({
    id: ids[op.id]!,
    name: `n${op.id}-${op.name}`,
    gossipAddress: new Address({ host: "10.0.0.1", port: 7000 + op.id }),
    tags: tagPool[op.tags]!,
    state: op.state,
    incarnation: op.incarnation
  })

const accepts = (node: ClusterNode, options: TagQueryOptions | undefined) =>
  node.state === "Alive" || (node.state === "Suspect" && options?.includeSuspect === true)
const sortedIds = (nodes: ReadonlyArray<ClusterNode>) => nodes.map((n) => n.id).sort()
const byScan = (members: ReadonlyArray<ClusterNode>, tags: Tags, options: TagQueryOptions | undefined) =>
  sortedIds(members.filter((n) => accepts(n, options) && n.hasTags(tags)))

/** Every tag query, answered by the index, next to the same question answered by scanning the members. */
interface Snapshot {
  readonly members: ReadonlyArray<ClusterNode>
  readonly alive: ReadonlyArray<ClusterNode>
  readonly size: number
  readonly answers: ReadonlyArray<{ readonly query: string; readonly index: ReadonlyArray<string> }>
}

const expectIndexAgrees = (snapshot: Snapshot) => {
  const { members } = snapshot
  expect(snapshot.size).toBe(members.length)
  expect(sortedIds(snapshot.alive)).toEqual(sortedIds(members.filter((n) => n.state === "Alive")))
  for (const { query, index } of snapshot.answers) {
    const { tags, options } = JSON.parse(query) as { tags: Tags; options: TagQueryOptions | undefined }
    expect(index, query).toEqual(byScan(members, tags, options))
  }
}

/**
 * All reads in one synchronous block, so no other fiber can change the
 * registry in between (its reads are `Effect.sync`; were one ever to suspend,
 * `runSync` would throw and fail the test rather than pass silently).
 */
const snapshot = (registry: NodeRegistry["Service"]): Effect.Effect<Snapshot> =>
  Effect.sync(() =>
    Effect.runSync(
      Effect.gen(function* () {
        const answers: Array<Snapshot["answers"][number]> = []
        for (const options of queryOptions) {
          for (const [key, value] of tagPairs) {
            answers.push({
              query: JSON.stringify({ tags: { [key]: value }, options }),
              index: sortedIds(yield* registry.getNodesByTag(key, value, options))
            })
          }
          for (const tags of tagPool) {
            answers.push({
              query: JSON.stringify({ tags, options }),
              index: sortedIds(yield* registry.getNodesByTags(tags, options))
            })
          }
        }
        return {
          members: yield* registry.members,
          alive: yield* registry.getAliveNodes,
          size: yield* registry.size,
          answers
        }
      })
    )
  )

type Result = Applied | undefined | "NotFound"
interface Outcome {
  readonly op: Op
  readonly claim: ClusterNode
  readonly result: Result
}

describe("NodeRegistry under concurrent random updates", () => {
  it.effect.prop(
    "no update is lost, every ignored claim lost by the rules, the highest incarnation wins, the index agrees",
    { ops: Arbitrary.array(Arbitrary.schema(Op), { minLength: 1, maxLength: 150 }) },
    ({ ops }) =>
      Effect.gen(function* () {
        const registry = yield* NodeRegistry
        const subscription = yield* registry.subscribe
        const lanes = Array.from({ length: 6 }, (_, lane) => ops.filter((op) => op.lane === lane))
        let checks = 0

        const run = (op: Op): Effect.Effect<Outcome | undefined> =>
          Effect.gen(function* () {
            for (let i = 0; i < op.yields; i++) yield* Effect.yieldNow
            const claim = claimNode(op)
            switch (op.kind) {
              case "upsert":
                return { op, claim, result: yield* registry.upsert(claim) }
              case "updateState":
                return {
                  op,
                  claim,
                  result: yield* registry
                    .updateState(claim.id, op.state, op.incarnation)
                    .pipe(Effect.catchTag("NodeNotFound", () => Effect.succeed("NotFound" as const)))
                }
              case "check":
                expectIndexAgrees(yield* snapshot(registry))
                checks++
                return undefined
            }
          })

        const outcomes = yield* Effect.forEach(
          lanes,
          (lane) => Effect.forEach(lane, run).pipe(Effect.map((xs) => xs.filter((x) => x !== undefined))),
          { concurrency: "unbounded" }
        )
        expect(checks).toBe(ops.filter((op) => op.kind === "check").length)

        // The registry's order: consecutive sequence numbers, and the very objects the callers got back.
        const published = yield* PubSub.takeUpTo(subscription, Number.MAX_SAFE_INTEGER)
        expect(published.map((c) => c.sequence)).toEqual(published.map((_, i) => i + 1))
        const cause = new Map<Applied, Outcome>()
        for (const outcome of outcomes.flat()) {
          if (typeof outcome.result === "object") cause.set(outcome.result, outcome)
        }
        expect(cause.size).toBe(published.length)
        const applied = published.map((change) => {
          expect(change._tag).toBe("Applied")
          const outcome = cause.get(change as Applied)
          expect(outcome, "published change nobody was told about").toBeDefined()
          return change as Applied
        })

        // Per member: the applied changes form an unbroken chain, each allowed by the rules from the one before.
        const history = new Map<NodeId, Array<Applied>>(ids.map((id) => [id, []]))
        for (const change of applied) history.get(change.current.id)!.push(change)
        const final = yield* snapshot(registry)
        expectIndexAgrees(final)
        for (const id of ids) {
          const chain = history.get(id)!
          let previous: ClusterNode | undefined
          for (const change of chain) {
            const { op, claim } = cause.get(change)!
            expect(change.previous).toBe(previous)
            expect(shouldApply(previous, change.current)).toBe(true)
            expect([change.current.state, change.current.incarnation]).toEqual([op.state, op.incarnation])
            if (op.kind === "upsert" && op.state === "Alive") {
              expect(change.current).toBe(claim)
            } else {
              // not the member's own announcement: the rest of its view is kept
              expect(previous).toBeDefined()
              expect([change.current.name, change.current.tags]).toEqual([previous!.name, previous!.tags])
            }
            previous = change.current
          }
          // nothing was applied that the stream does not show, and nothing shown was overwritten
          const held = final.members.find((n) => n.id === id)
          expect(held).toBe(previous)
          if (held !== undefined) {
            expect(held.incarnation).toBe(Math.max(...chain.map((c) => c.current.incarnation)))
          }

          // the highest incarnation wins: an Alive claim at the top incarnation always lands
          const claims = outcomes
            .flat()
            .filter((o) => o.claim.id === id && o.result !== "NotFound")
            .map((o) => o.op)
          const top = Math.max(-1, ...claims.map((op) => op.incarnation))
          if (claims.some((op) => op.kind === "upsert" && op.state === "Alive" && op.incarnation === top)) {
            expect(held?.incarnation).toBe(top)
          }
          expect(held !== undefined).toBe(claims.some((op) => op.kind === "upsert" && op.state === "Alive"))
        }

        // Every ignored claim lost against a state the member actually had while that claim was in flight:
        // between the previous and the next applied operation of the same fiber.
        const stateAt = (id: NodeId, sequence: number): ClusterNode | undefined => {
          let state: ClusterNode | undefined
          for (const change of history.get(id)!) if (change.sequence <= sequence) state = change.current
          return state
        }
        for (const lane of outcomes) {
          lane.forEach((outcome, i) => {
            if (typeof outcome.result === "object") return
            const before = lane.slice(0, i).findLast((o) => typeof o.result === "object")?.result as Applied | undefined
            const after = lane.slice(i + 1).find((o) => typeof o.result === "object")?.result as Applied | undefined
            const lo = before?.sequence ?? 0
            const hi = after?.sequence ?? Number.POSITIVE_INFINITY
            const id = outcome.claim.id
            const candidates: Array<ClusterNode | undefined> = [
              stateAt(id, lo),
              ...history
                .get(id)!
                .filter((c) => c.sequence > lo && c.sequence < hi)
                .map((c) => c.current)
            ]
            const claim: Claim = outcome.claim
            const justified = candidates.some((state) =>
              outcome.result === "NotFound"
                ? state === undefined
                : outcome.op.kind === "updateState"
                  ? state !== undefined && !shouldApply(state, claim)
                  : !shouldApply(state, claim)
            )
            expect(justified, `ignored ${JSON.stringify(outcome.op)} (${outcome.result})`).toBe(true)
          })
        }
      }).pipe(Effect.scoped, Effect.provide(NodeRegistry.layer)),
    { arbitrary: { seed: 20_251, runs: 150, size: 150 } }
  )
})

// ---------------------------------------------------------------------------------------------------------------
// Sequential model

const Step = Schema.Struct({
  kind: Schema.Literals(["upsert", "upsert", "upsert", "updateState", "remove", "expire"]),
  id: between(0, POOL - 1),
  state: NodeState,
  incarnation: between(0, 6),
  tags: between(0, tagPool.length - 1),
  name: between(0, 1),
  advance: between(0, 300)
})

interface ModelEntry {
  readonly node: ClusterNode
  /** Defined for a tombstone. */
  readonly reapedAt?: number
}

/** The rules applied by brute force: a map of entries, with every query a scan. */
class Model {
  readonly entries = new Map<NodeId, ModelEntry>()
  changes = 0

  upsert(claim: ClusterNode): boolean {
    const entry = this.entries.get(claim.id)
    if (!shouldApply(entry?.node, claim)) return false
    if (entry?.reapedAt !== undefined && claim.state !== "Alive") {
      this.entries.set(claim.id, {
        node: entry.node.with({ state: claim.state, incarnation: claim.incarnation }),
        reapedAt: entry.reapedAt
      })
      return false
    }
    const node =
      claim.state === "Alive" || entry === undefined
        ? claim
        : entry.node.with({ state: claim.state, incarnation: claim.incarnation })
    this.entries.set(claim.id, { node })
    this.changes++
    return true
  }

  updateState(id: NodeId, state: NodeState, incarnation: number): boolean {
    const entry = this.entries.get(id)
    if (entry === undefined || entry.reapedAt !== undefined || !shouldApply(entry.node, { state, incarnation })) {
      return false
    }
    this.entries.set(id, { node: entry.node.with({ state, incarnation }) })
    this.changes++
    return true
  }

  remove(id: NodeId, now: number): boolean {
    const entry = this.entries.get(id)
    if (entry === undefined || entry.reapedAt !== undefined) return false
    this.entries.set(id, { node: entry.node, reapedAt: now })
    this.changes++
    return true
  }

  expire(now: number, ttl: number): void {
    for (const [id, entry] of this.entries) {
      if (entry.reapedAt !== undefined && now - entry.reapedAt >= ttl) this.entries.delete(id)
    }
  }

  members(): Array<ClusterNode> {
    return [...this.entries.values()].filter((e) => e.reapedAt === undefined).map((e) => e.node)
  }
}

const TTL = 500

const expectTableMatches = (table: MemberTable, model: Model) => {
  const members = model.members()
  expect(table.size).toBe(members.length)
  for (const id of ids) {
    const entry = model.entries.get(id)
    const member = entry?.reapedAt === undefined ? entry?.node : undefined
    expect(table.get(id), `member ${id}`).toEqual(member)
    const tombstone = entry?.reapedAt === undefined ? undefined : entry
    expect(table.tombstone(id), `tombstone ${id}`).toEqual(tombstone)
  }
  expect(table.sequence).toBe(model.changes)
  expect(sortedIds(table.aliveNodes())).toEqual(sortedIds(members.filter((n) => n.state === "Alive")))
  for (const options of queryOptions) {
    for (const [key, value] of tagPairs) {
      expect(sortedIds(table.getNodesByTag(key, value, options))).toEqual(byScan(members, { [key]: value }, options))
    }
    for (const tags of tagPool) {
      expect(sortedIds(table.getNodesByTags(tags, options))).toEqual(byScan(members, tags, options))
    }
  }
  // the index itself: exactly the Alive and Suspect members' tags, and no empty entries
  const expected = new Map<string, Map<string, Array<string>>>()
  for (const node of members) {
    if (node.state !== "Alive" && node.state !== "Suspect") continue
    for (const [key, value] of Object.entries(node.tags)) {
      if (!expected.has(key)) expected.set(key, new Map())
      const values = expected.get(key)!
      if (!values.has(value)) values.set(value, [])
      values.get(value)!.push(node.id)
    }
  }
  const actual = new Map<string, Map<string, Array<string>>>()
  for (const [key, values] of table.tagIndex) {
    actual.set(key, new Map([...values].map(([value, set]) => [value, [...set]])))
  }
  const normalise = (index: Map<string, Map<string, Array<string>>>) =>
    [...index]
      .map(([key, values]) => [key, [...values].map(([value, set]) => [value, [...set].sort()]).sort()] as const)
      .sort()
  expect(normalise(actual)).toEqual(normalise(expected))
}

describe("MemberTable against a brute-force model", () => {
  it.prop(
    "agrees after every step, through reaping and tombstone expiry",
    { steps: Arbitrary.array(Arbitrary.schema(Step), { minLength: 1, maxLength: 200 }) },
    ({ steps }) => {
      const table = new MemberTable()
      const model = new Model()
      let now = 0
      for (const step of steps) {
        now += step.advance
        const id = ids[step.id]!
        switch (step.kind) {
          case "upsert": {
            const claim = claimNode(step)
            const change = table.upsert(claim)
            expect(change !== undefined).toBe(model.upsert(claim))
            break
          }
          case "updateState": {
            const change = table.updateState(id, step.state, step.incarnation)
            expect(change !== undefined).toBe(model.updateState(id, step.state, step.incarnation))
            break
          }
          case "remove": {
            const change = table.remove(id, now)
            expect(change !== undefined).toBe(model.remove(id, now))
            break
          }
          case "expire": {
            table.expireTombstones(now, TTL)
            model.expire(now, TTL)
            break
          }
        }
        expectTableMatches(table, model)
      }
    },
    { arbitrary: { seed: 7, runs: 200, size: 200 } }
  )
})

it.effect("the snapshot helper sees the registry (so the index checks above are not vacuous)", () =>
  Effect.gen(function* () {
    const registry = yield* NodeRegistry
    yield* registry.upsert(claimNode({ id: 1, state: "Alive", incarnation: 0, tags: 2, name: 0 }))
    const snap = yield* snapshot(registry)
    expect(snap.size).toBe(1)
    expect(snap.answers.find((a) => a.query === JSON.stringify({ tags: { zone: "a" } }))?.index).toEqual([ids[1]])
    expect(Option.isSome(yield* registry.get(ids[1]!))).toBe(true)
  }).pipe(Effect.provide(NodeRegistry.layer))
)
