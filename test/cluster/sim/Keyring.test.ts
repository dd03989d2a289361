/**
 * Encrypted gossip on the simulated network: a keyed cluster forms and
 * detects a crash, strangers without the key (or with another) never get in,
 * a key is rotated across ten members without a single suspicion, a cluster
 * moves off plaintext in three rolling stages, and 100,000 hostile packets —
 * forged, wrong-key, mutated and replayed — are all refused and counted.
 */
import { assert, describe, expect, it } from "@effect/vitest"
import { Effect, Random, Result } from "effect"
import { TestClock } from "effect/testing"
import * as Codec from "../../../src/cluster/gossip/Codec.ts"
import { generateKey, Keyring, makeKey } from "../../../src/cluster/gossip/Keyring.ts"
import { NodeStateUpdate, Ping } from "../../../src/cluster/gossip/Messages.ts"
import { sealFrame } from "../../../src/cluster/gossip/SecureTransport.ts"
import { SimNetwork } from "../../../src/cluster/gossip/SimNetwork.ts"
import { Address, type NodeId } from "../../../src/cluster/Node.ts"
import { addressOf, advanceUntil, allSee, crash, runWithClock, type SimNode, startNode, stopAll } from "./harness.ts"

const sim = <A, E>(seed: number, effect: Effect.Effect<A, E, SimNetwork>) =>
  effect.pipe(Effect.provide(SimNetwork.layer), Random.withSeed(seed))

const keyA = generateKey()
const keyB = generateKey()
const keyOf = (text: string) => Result.getOrThrow(makeKey(text))
const fingerprint = (text: string) => keyOf(text).fingerprint

/** Suspicions raised, summed over `nodes`. */
const suspicions = (nodes: ReadonlyArray<SimNode>) =>
  Effect.map(
    Effect.forEach(nodes, (node) => node.cluster.stats),
    (all) => all.reduce((sum, stats) => sum + stats.suspicionsRaised, 0)
  )

const startKeyed = (count: number, input: Parameters<typeof startNode>[1] = { keyring: [keyA] }) =>
  Effect.gen(function* () {
    const nodes: Array<SimNode> = []
    for (let i = 0; i < count; i++) nodes.push(yield* startNode(i, input))
    yield* advanceUntil(allSee(nodes, nodes, "Alive"), 20_000)
    return nodes
  })

describe("encrypted gossip", () => {
  it.effect(
    "a keyed cluster forms and detects a crash; nodes without the key, or with another, never get in",
    () =>
      sim(
        201,
        Effect.gen(function* () {
          const nodes = yield* startKeyed(5)
          assert.isTrue(yield* allSee(nodes, nodes, "Alive"))
          const victim = nodes[4]!
          yield* crash(victim)
          assert.isDefined(yield* advanceUntil(allSee(nodes.slice(0, 4), [victim], "Dead"), 60_000))
          for (const input of [{}, { keyring: [keyB] }]) {
            const stranger = yield* Effect.flip(startNode(9, { ...input, joinTimeout: "2 seconds" }))
            assert.strictEqual(stranger._tag, "JoinFailed")
          }
          yield* TestClock.adjust(10_000)
          for (const node of nodes.slice(0, 4)) {
            expect((yield* node.cluster.members).some((m) => m.name === "n9")).toBe(false)
          }
          const refused = (yield* nodes[0]!.cluster.stats).envelopeRejected
          assert.isAbove(refused.plaintext + refused.unauthentic, 0)
          yield* stopAll(nodes.slice(0, 4))
        })
      ),
    60_000
  )

  it.effect(
    "a key is rotated across ten members — install, use, remove — each step acknowledged by all, no suspicion",
    () =>
      sim(
        202,
        Effect.gen(function* () {
          const nodes = yield* startKeyed(10)
          const before = yield* suspicions(nodes)
          const operator = nodes[3]!.cluster
          const installed = yield* runWithClock(operator.keys.install(keyB))
          assert.strictEqual(installed.acknowledged, 9)
          assert.strictEqual(installed.failed, 0)
          yield* TestClock.adjust(5_000)
          const used = yield* runWithClock(operator.keys.use(fingerprint(keyB)))
          assert.strictEqual(used.acknowledged, 9)
          yield* TestClock.adjust(5_000)
          const removed = yield* runWithClock(operator.keys.remove(fingerprint(keyA)))
          assert.strictEqual(removed.acknowledged, 9)
          for (const member of removed.members) expect(member.keys).toEqual([fingerprint(keyB)])
          yield* TestClock.adjust(30_000)
          assert.isTrue(yield* allSee(nodes, nodes, "Alive"))
          expect(yield* suspicions(nodes)).toBe(before)
          // the old key no longer gets anyone in
          const stale = yield* Effect.flip(startNode(10, { keyring: [keyA], joinTimeout: "2 seconds" }))
          assert.strictEqual(stale._tag, "JoinFailed")
          // refusals are reported, not thrown
          const refusal = yield* runWithClock(operator.keys.remove(fingerprint(keyB)))
          assert.strictEqual(refusal.refused, "the last key")
          yield* stopAll(nodes)
        })
      ),
    60_000
  )

  it.effect(
    "a cluster moves off plaintext in three rolling stages without a suspicion",
    () =>
      sim(
        203,
        Effect.gen(function* () {
          const stage1 = { keyring: [keyA], encryptOutgoing: false, requireEncryption: false }
          const stage2 = { keyring: [keyA], encryptOutgoing: true, requireEncryption: false }
          const stage3 = { keyring: [keyA], encryptOutgoing: true, requireEncryption: true }
          // each stage meets the one before it: plaintext and stage 1, 1 and 2, 2 and 3
          for (const [index, [older, newer]] of [
            [{}, stage1],
            [stage1, stage2],
            [stage2, stage3]
          ].entries()) {
            const network = yield* SimNetwork
            const nodes = [
              yield* startNode(0, older),
              yield* startNode(1, newer),
              yield* startNode(2, older),
              yield* startNode(3, newer)
            ]
            const formed = yield* advanceUntil(allSee(nodes, nodes, "Alive"), 20_000)
            assert.isDefined(formed, `stage ${index + 1} did not form`)
            yield* TestClock.adjust(30_000)
            assert.isTrue(yield* allSee(nodes, nodes, "Alive"))
            expect(yield* suspicions(nodes), `stage ${index + 1}`).toBe(0)
            yield* stopAll(nodes)
            yield* network.heal
          }
        })
      ),
    60_000
  )

  it.effect(
    "100,000 hostile packets — plaintext forgeries, wrong-key, mutated and replayed — are all refused and counted",
    () =>
      sim(
        204,
        Effect.gen(function* () {
          const network = yield* SimNetwork
          const captured: Array<Uint8Array> = []
          const target = yield* startNode(0, { keyring: [keyA] })
          const others: Array<SimNode> = []
          for (let i = 1; i < 4; i++) {
            others.push(
              yield* startNode(i, { keyring: [keyA] }, [0], (transport) => ({
                ...transport,
                send: (to, payload) =>
                  Effect.suspend(() => {
                    if (String(to) === String(addressOf(0)) && captured.length < 200) captured.push(payload.slice())
                    return transport.send(to, payload)
                  })
              }))
            )
          }
          const nodes = [target, ...others]
          yield* advanceUntil(allSee(nodes, nodes, "Alive"), 20_000)
          yield* TestClock.adjust(5_000)
          assert.isAtLeast(captured.length, 10)
          const membersBefore = (yield* target.cluster.members).length
          const suspicionsBefore = yield* suspicions(nodes)
          const wrongKey = new Keyring([keyOf(keyB)])
          const self = yield* target.cluster.localNode
          const forged = Codec.encodePacket(
            { label: "shoal" },
            {
              messages: [new Ping({ seq: 1, from: "0b3f5a0e-2c4d-4e8f-9a1b-3c5d7e9f1a2b" as NodeId, target: self.id })],
              updates: [
                new NodeStateUpdate(
                  {
                    nodeId: self.id,
                    state: "Dead",
                    incarnation: 1_000,
                    from: "0b3f5a0e-2c4d-4e8f-9a1b-3c5d7e9f1a2b" as NodeId
                  },
                  { disableChecks: true }
                )
              ]
            }
          )
          const rogue = yield* network.attach(new Address({ host: "10.9.9.66", port: 7946 }))
          const total = 100_000
          let sent = 0
          for (let i = 0; sent < total; i++) {
            const kind = i % 4
            const capture = captured[i % captured.length]!
            let bytes: Uint8Array
            if (kind === 0) bytes = forged
            else if (kind === 1) bytes = sealFrame(wrongKey, forged, 0)
            else if (kind === 2) {
              bytes = capture.slice()
              const at = (i * 7919) % bytes.length
              bytes[at] = bytes[at]! ^ (1 << (i % 8))
            } else bytes = capture
            yield* rogue.send(target.address, bytes)
            sent++
            if (sent % 1000 === 0) yield* TestClock.adjust(1)
          }
          yield* TestClock.adjust(1_000)
          const refused = (yield* target.cluster.stats).envelopeRejected
          const counted = Object.values(refused).reduce((a, b) => a + b, 0)
          console.log("refused by reason:", JSON.stringify(refused))
          expect(counted).toBeGreaterThanOrEqual(total)
          expect(refused.plaintext).toBeGreaterThanOrEqual(total / 4)
          expect(refused.replayed + refused["too old"]).toBeGreaterThanOrEqual(total / 4)
          // none of it reached the engine: no member added, nobody suspected, the target not dead anywhere
          expect((yield* target.cluster.members).length).toBe(membersBefore)
          expect(yield* suspicions(nodes)).toBe(suspicionsBefore)
          assert.isTrue(yield* allSee(nodes, nodes, "Alive"))
          yield* stopAll(nodes)
        }).pipe(Effect.scoped)
      ),
    120_000
  )
})
