/**
 * Live key rotation on real sockets: ten members on 127.0.0.1 with a gossip
 * keyring (AES-256-GCM on every datagram and push-pull), a new key installed,
 * made primary and the old one removed — each step acknowledged by all nine
 * others — with not one suspicion raised anywhere, and a member holding only
 * the old key unable to join afterwards. Default probe timings (1 s interval,
 * 500 ms ping timeout), so the box's load is not mistaken for failure.
 */
import { assert, describe, expect, it } from "@effect/vitest"
import { Context, Effect, Exit, Layer, Result, Scope } from "effect"
import { Cluster } from "../../src/cluster/Cluster.ts"
import type * as ClusterConfig from "../../src/cluster/Config.ts"
import { generateKey, makeKey } from "../../src/cluster/gossip/Keyring.ts"
import { type ClusterNode, formatAddress } from "../../src/cluster/Node.ts"
import { waitFor } from "../fixtures/live.ts"

interface Member {
  readonly cluster: Cluster["Service"]
  readonly scope: Scope.Closeable
  readonly self: ClusterNode
}

const timings: ClusterConfig.Input = {
  bindAddress: "127.0.0.1:0",
  gossipInterval: "100 millis",
  pushPullInterval: "5 seconds",
  leaveTimeout: "1 second",
  joinTimeout: "5 seconds"
}

const start = (input: ClusterConfig.Input) =>
  Effect.gen(function* () {
    const scope = yield* Scope.make()
    const context = yield* Layer.buildWithScope(Cluster.layer({ ...timings, ...input }), scope).pipe(
      Effect.onError(() => Scope.close(scope, Exit.void))
    )
    const cluster = Context.get(context, Cluster)
    return { cluster, scope, self: yield* cluster.localNode } satisfies Member
  })

const fingerprint = (text: string) => Result.getOrThrow(makeKey(text)).fingerprint

const suspicions = (members: ReadonlyArray<Member>) =>
  Effect.map(
    Effect.forEach(members, (m) => m.cluster.stats),
    (all) => all.reduce((sum, s) => sum + s.suspicionsRaised, 0)
  )

const allAlive = (members: ReadonlyArray<Member>) =>
  Effect.gen(function* () {
    for (const m of members) {
      const view = yield* m.cluster.members
      const alive = view.filter((n) => n.state === "Alive").length
      if (alive !== members.length) return false
    }
    return true
  })

describe("gossip key rotation on 127.0.0.1", () => {
  it.live(
    "ten members rotate a key — install, use, remove — acknowledged by all, zero suspicions, the old key locked out",
    () =>
      Effect.gen(function* () {
        const keyA = generateKey()
        const keyB = generateKey()
        const members: Array<Member> = []
        yield* Effect.addFinalizer(() =>
          Effect.forEach(members, (m) => Scope.close(m.scope, Exit.void), { discard: true, concurrency: "unbounded" })
        )
        const first = yield* start({ nodeName: "k0", keyring: [keyA] })
        members.push(first)
        const seed = formatAddress(first.self.gossipAddress)
        for (let i = 1; i < 10; i++)
          members.push(yield* start({ nodeName: `k${i}`, keyring: [keyA], seedNodes: [seed] }))
        yield* waitFor("ten members see ten alive", allAlive(members), 30_000)
        const before = yield* suspicions(members)

        const operator = members[4]!.cluster
        const installed = yield* operator.keys.install(keyB)
        assert.strictEqual(installed.acknowledged, 9)
        assert.strictEqual(installed.failed, 0)
        const used = yield* operator.keys.use(fingerprint(keyB))
        assert.strictEqual(used.acknowledged, 9)
        // a few probe rounds under the new primary before the old key goes
        const probesAtUse = (yield* members[0]!.cluster.stats).probes
        yield* waitFor(
          "three probe rounds under the new primary",
          Effect.map(Effect.orDie(members[0]!.cluster.stats), (s) => s.probes >= probesAtUse + 3),
          15_000
        )
        const removed = yield* operator.keys.remove(fingerprint(keyA))
        assert.strictEqual(removed.acknowledged, 9)
        for (const member of removed.members) expect(member.keys).toEqual([fingerprint(keyB)])

        // the cluster keeps probing and gossiping under keyB alone: still one view, no suspicion
        const probesBefore = (yield* members[0]!.cluster.stats).probes
        yield* waitFor(
          "ten more probe rounds after the rotation",
          Effect.map(Effect.orDie(members[0]!.cluster.stats), (s) => s.probes >= probesBefore + 10),
          30_000
        )
        assert.isTrue(yield* allAlive(members))
        expect(yield* suspicions(members)).toBe(before)

        // a member that holds only the old key cannot get in
        const stale = yield* Effect.flip(
          start({ nodeName: "stale", keyring: [keyA], seedNodes: [seed], joinTimeout: "2 seconds" })
        )
        assert.strictEqual(stale._tag, "JoinFailed")
        for (const m of members) {
          expect((yield* m.cluster.members).some((n) => n.name === "stale")).toBe(false)
        }
      }),
    90_000
  )
})
