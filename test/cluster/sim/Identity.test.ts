/**
 * Per-member identity on the simulated network: with identities required, a
 * cluster forms, detects a crash and sees a leave as one without; and a
 * malicious member that holds the gossip key — its packets sealed with the
 * cluster's key, its own certificate valid — forges `Left`, `Dead` and
 * retagged `Alive` claims about a live member, unsigned or signed with its
 * own key, for half a minute: no honest member ever holds the victim Left,
 * Dead or with the forged tags, while an honest crash and an honest leave
 * are still seen. The same attack on a cluster without identities succeeds
 * (so the test can fail).
 */
import { assert, describe, expect, it } from "@effect/vitest"
import { Clock, Effect, Random, Result } from "effect"
import { TestClock } from "effect/testing"
import * as Codec from "../../../src/cluster/gossip/Codec.ts"
import { claimBytes } from "../../../src/cluster/gossip/engine/Claims.ts"
import { generateKey, Keyring, makeKey } from "../../../src/cluster/gossip/Keyring.ts"
import { loadIdentity, signClaim } from "../../../src/cluster/gossip/MemberIdentity.ts"
import { NodeStateUpdate } from "../../../src/cluster/gossip/Messages.ts"
import { sealFrame } from "../../../src/cluster/gossip/SecureTransport.ts"
import { SimNetwork } from "../../../src/cluster/gossip/SimNetwork.ts"
import { Address, type ClusterNode, type NodeId } from "../../../src/cluster/Node.ts"
import * as DevTls from "../../../src/testing/DevTls.ts"
import { advanceUntil, allSee, crash, leave, type SimNode, startNode, stopAll } from "./harness.ts"

const sim = <A, E>(seed: number, effect: Effect.Effect<A, E, SimNetwork>) =>
  effect.pipe(Effect.provide(SimNetwork.layer), Random.withSeed(seed))

const key = generateKey()
const keyring = new Keyring([Result.getOrThrow(makeKey(key))])
const ca = DevTls.makeAuthority()

/** A UUID v4 for member `i` (its certificate binds it; the configuration takes it from there). */
const idOf = (i: number) => `00000000-0000-4000-8000-${String(i).padStart(12, "0")}` as NodeId

const identityOf = (i: number) => {
  const pair = ca.issue({ nodeId: idOf(i) })
  return { identityCertificate: pair.certificate.pem, identityKey: pair.key, identityCa: ca.certificate.pem }
}

const withIdentities = (i: number) => ({ keyring: [key], ...identityOf(i), requireIdentities: true })

const startAll = (count: number, input: (i: number) => Parameters<typeof startNode>[1]) =>
  Effect.gen(function* () {
    const nodes: Array<SimNode> = []
    for (let i = 0; i < count; i++) nodes.push(yield* startNode(i, input(i)))
    assert.isDefined(yield* advanceUntil(allSee(nodes, nodes, "Alive"), 30_000), "the cluster did not form")
    return nodes
  })

/** The forged claims about `victim` at `incarnation`: Left, Dead, retagged Alive — unsigned and signed by `signer`. */
const forgeries = (victim: ClusterNode, incarnation: number, signer: ReturnType<typeof rogueSigner>) => {
  const trusted = { disableChecks: true } as const
  const retagged = new NodeStateUpdate(
    { ...NodeStateUpdate.fromNode(victim.with({ incarnation, tags: { role: "evil" } })) },
    trusted
  )
  const left = new NodeStateUpdate({ nodeId: victim.id, state: "Left", incarnation }, trusted)
  const sign = (update: NodeStateUpdate) =>
    new NodeStateUpdate({ ...update, signature: signer(claimBytes("shoal", update)) }, trusted)
  return [
    left,
    new NodeStateUpdate({ nodeId: victim.id, state: "Dead", incarnation, from: idOf(66) }, trusted),
    retagged,
    sign(left),
    sign(retagged)
  ]
}

/** Member 66's key: a valid identity of the cluster, but not the victim's. */
const rogueSigner = () => {
  const pair = ca.issue({ nodeId: idOf(66) })
  const loaded = Result.getOrThrow(
    loadIdentity({ certificate: pair.certificate.pem, key: pair.key, ca: ca.certificate.pem })
  )
  return (message: Uint8Array) => signClaim(loaded.privateKey, message)
}

/** Whether any of `observers` holds `victim` Left, Dead or with the forged tag. */
const fooled = (observers: ReadonlyArray<SimNode>, victim: SimNode) =>
  Effect.gen(function* () {
    const id = (yield* victim.cluster.localNode).id
    for (const observer of observers) {
      const view = (yield* observer.cluster.members).find((m) => m.id === id)
      if (view === undefined || view.state === "Left" || view.state === "Dead" || view.tags.role === "evil") return true
    }
    return false
  })

/** A key holder's attack on `victim` for `millis`, sent to every one of `targets`; whether anyone was ever fooled. */
const attack = (targets: ReadonlyArray<SimNode>, victim: SimNode, millis: number) =>
  Effect.gen(function* () {
    const network = yield* SimNetwork
    const rogue = yield* network.attach(new Address({ host: "10.9.9.66", port: 7946 }))
    const signer = rogueSigner()
    let everFooled = false
    for (let t = 0; t < millis; t += 250) {
      const self = yield* victim.cluster.localNode
      const now = yield* Clock.currentTimeMillis
      for (const update of forgeries(self, self.incarnation + 1, signer)) {
        const frame = Codec.encodePacket({ label: "shoal" }, { messages: [], updates: [update] })
        for (const target of targets) yield* rogue.send(target.address, sealFrame(keyring, frame, now))
      }
      yield* TestClock.adjust(250)
      if (yield* fooled(targets, victim)) everFooled = true
    }
    return everFooled
  }).pipe(Effect.scoped)

describe("per-member identity", () => {
  it.effect(
    "a cluster with identities forms, detects a crash and sees a leave",
    () =>
      sim(
        301,
        Effect.gen(function* () {
          const nodes = yield* startAll(5, withIdentities)
          const ids = yield* Effect.forEach(nodes, (node) => Effect.map(node.cluster.localNode, (n) => n.id))
          expect(ids).toEqual(nodes.map((_, i) => idOf(i)))
          yield* crash(nodes[4]!)
          assert.isDefined(yield* advanceUntil(allSee(nodes.slice(0, 4), [nodes[4]!], "Dead"), 60_000))
          yield* leave(nodes[3]!)
          assert.isDefined(yield* advanceUntil(allSee(nodes.slice(0, 3), [nodes[3]!], "Left"), 30_000))
          const stats = yield* nodes[0]!.cluster.stats
          expect(stats.claimsRefused).toBe(0)
          yield* stopAll(nodes.slice(0, 3))
        })
      ),
    120_000
  )

  it.effect(
    "a gossip-key holder cannot make a live member Left, Dead or retagged; a crash and a leave are still seen",
    () =>
      sim(
        302,
        Effect.gen(function* () {
          const nodes = yield* startAll(6, withIdentities)
          const victim = nodes[1]!
          const honest = nodes.filter((n) => n !== victim)
          expect(yield* attack(honest, victim, 30_000)).toBe(false)
          const refused = yield* Effect.forEach(honest, (n) => Effect.map(n.cluster.stats, (s) => s.claimsRefused))
          for (const count of refused) expect(count).toBeGreaterThan(0)
          // accusations are evidence: the victim may be Suspect right after them, and refutes
          assert.isDefined(yield* advanceUntil(allSee(nodes, nodes, "Alive"), 10_000))
          // honest failures are still seen
          yield* crash(nodes[5]!)
          assert.isDefined(yield* advanceUntil(allSee(nodes.slice(0, 5), [nodes[5]!], "Dead"), 60_000))
          yield* leave(nodes[4]!)
          assert.isDefined(yield* advanceUntil(allSee(nodes.slice(0, 4), [nodes[4]!], "Left"), 30_000))
          expect(yield* fooled(nodes.slice(0, 4), victim)).toBe(false)
          yield* stopAll(nodes.slice(0, 4))
        })
      ),
    120_000
  )

  it.effect(
    "without identities the same key holder does evict the member",
    () =>
      sim(
        303,
        Effect.gen(function* () {
          const nodes = yield* startAll(4, () => ({ keyring: [key] }))
          const victim = nodes[1]!
          expect(
            yield* attack(
              nodes.filter((n) => n !== victim),
              victim,
              5_000
            )
          ).toBe(true)
          yield* stopAll(nodes)
        })
      ),
    60_000
  )
})
