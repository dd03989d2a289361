import { describe, expect, it } from "@effect/vitest"
import { Effect, HashMap, Random, Schema } from "effect"
import { Address, ClusterNode, formatAddress, makeNodeId, NodeId, parseAddress } from "../../src/cluster/Node.ts"

const node = (id: NodeId, tags: Record<string, string>) =>
  new ClusterNode({
    id,
    name: "n",
    gossipAddress: new Address({ host: "127.0.0.1", port: 7946 }),
    tags,
    state: "Alive",
    incarnation: 0
  })

describe("NodeId", () => {
  it.effect("generated ids are valid UUID v4 and distinct", () =>
    Effect.gen(function* () {
      const ids = new Set<string>()
      for (let i = 0; i < 500; i++) {
        const id = yield* makeNodeId
        expect(Schema.is(NodeId)(id)).toBe(true)
        ids.add(id)
      }
      expect(ids.size).toBe(500)
    }).pipe(Random.withSeed("ids"))
  )

  it("rejects non-v4 and malformed ids", () => {
    expect(Schema.is(NodeId)("123e4567-e89b-12d3-a456-426614174000")).toBe(false) // v1
    expect(Schema.is(NodeId)("not-a-uuid")).toBe(false)
    expect(Schema.is(NodeId)("3b241101-e2bb-4255-8caf-4136c566a962")).toBe(true)
  })

  it.effect("works as a key in HashMap and round-trips through JSON", () =>
    Effect.gen(function* () {
      const id = yield* makeNodeId
      const copy = Schema.decodeUnknownSync(NodeId)(JSON.parse(JSON.stringify(id)))
      const map = HashMap.make([id, 1])
      expect(HashMap.get(map, copy)._tag).toBe("Some")
    }).pipe(Random.withSeed(2))
  )
})

describe("Address", () => {
  it("parses and formats host:port, including IPv6 literals", () => {
    expect(parseAddress("127.0.0.1:7946")).toEqual(new Address({ host: "127.0.0.1", port: 7946 }))
    expect(parseAddress(" seed.svc.cluster.local:80 ")?.host).toBe("seed.svc.cluster.local")
    expect(parseAddress("[::1]:9000")).toEqual(new Address({ host: "::1", port: 9000 }))
    expect(formatAddress({ host: "::1", port: 9000 })).toBe("[::1]:9000")
    for (const bad of ["", "host", "host:", ":80", "host:65536", "host:-1", "::1:80", "a b:1"]) {
      expect(parseAddress(bad), bad).toBeUndefined()
    }
  })
})

describe("ClusterNode", () => {
  it.effect("matches every given tag, and only those", () =>
    Effect.gen(function* () {
      const n = node(yield* makeNodeId, { role: "worker", healthy: "true" })
      expect(n.hasTags({})).toBe(true)
      expect(n.hasTags({ role: "worker" })).toBe(true)
      expect(n.hasTags({ role: "worker", healthy: "true" })).toBe(true)
      expect(n.hasTags({ role: "worker", healthy: "false" })).toBe(false)
      expect(n.hasTags({ zone: "a" })).toBe(false)
      const dead = n.with({ state: "Dead", incarnation: 3 })
      expect([dead.state, dead.incarnation, dead.id, n.state]).toEqual(["Dead", 3, n.id, "Alive"])
    }).pipe(Random.withSeed(3))
  )
})
