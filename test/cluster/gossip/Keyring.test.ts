import { assert, describe, expect, it } from "@effect/vitest"
import { Result } from "effect"
import * as fc from "fast-check"
import {
  ENVELOPE_OVERHEAD,
  type GossipKey,
  generateKey,
  Keyring,
  keyText,
  makeKey,
  makeKeyring,
  open,
  ReplayGuard,
  seal
} from "../../../src/cluster/gossip/Keyring.ts"

const key = (text = generateKey()): GossipKey => Result.getOrThrow(makeKey(text))
const ring = (...keys: Array<GossipKey>) => new Keyring([keys[0]!, ...keys.slice(1)])
const header = Uint8Array.of(0xd3, 1, 1, 1, 5, 115, 104, 111, 97, 108)
const body = new TextEncoder().encode("a ping and ten updates")
const T = 1_700_000_000_000

describe("Keyring", () => {
  it("keys are 32 bytes of base64, named by a fingerprint; anything else is InvalidConfiguration", () => {
    const text = generateKey()
    const k = key(text)
    expect(k.fingerprint).toMatch(/^[0-9a-f]{16}$/)
    assert.strictEqual(keyText(k), text)
    assert.strictEqual(key(` ${text}\n`).fingerprint, k.fingerprint)
    const short = makeKey(Buffer.alloc(16).toString("base64"))
    assert.isTrue(Result.isFailure(short) && short.failure.field === "keyring")
    assert.isTrue(Result.isFailure(makeKey("not base64!")))
    assert.isTrue(Result.isFailure(makeKeyring([])))
    // the message never quotes the key
    const bad = makeKey(`${text}AAAA`)
    assert.isTrue(Result.isFailure(bad) && !bad.failure.message.includes(text))
  })

  it("seals with the primary under the header as associated data; 28 bytes per packet", () => {
    const keyring = ring(key())
    const sealed = seal(keyring, header, body, T)
    assert.strictEqual(sealed.length, body.length + ENVELOPE_OVERHEAD)
    assert.strictEqual(ENVELOPE_OVERHEAD, 28)
    const opened = open(keyring, header, sealed)
    assert.isDefined(opened)
    assert.deepStrictEqual(new TextDecoder().decode(opened!.plaintext), "a ping and ten updates")
    assert.strictEqual(opened!.sealedAt, T)
  })

  it("any flipped bit — header or body — and any wrong key fails authentication", () => {
    const keyring = ring(key())
    const stranger = ring(key())
    const sealed = seal(keyring, header, body, T)
    assert.isUndefined(open(stranger, header, sealed))
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: header.length + sealed.length - 1 }),
        fc.integer({ min: 0, max: 7 }),
        (at, bit) => {
          const h = header.slice()
          const s = sealed.slice()
          if (at < h.length) h[at]! ^= 1 << bit
          else s[at - h.length]! ^= 1 << bit
          return open(keyring, h, s) === undefined
        }
      ),
      { numRuns: 2000 }
    )
    // truncated
    for (let n = 0; n < sealed.length; n++) assert.isUndefined(open(keyring, header, sealed.subarray(0, n)))
  })

  it("rotation: an installed key decrypts at once, a used one encrypts, the primary cannot be removed", () => {
    const old = key()
    const next = key()
    const a = ring(old)
    const b = ring(old)
    a.install(next)
    // a still seals with the old key, so b (which lacks the new one) reads it
    assert.isDefined(open(b, header, seal(a, header, body, T)))
    b.install(next)
    assert.strictEqual(a.use(next.fingerprint), undefined)
    assert.deepStrictEqual(a.list(), [next.fingerprint, old.fingerprint])
    // b still holds both, so it reads a's packets under the new primary and a reads b's under the old
    assert.isDefined(open(b, header, seal(a, header, body, T)))
    assert.isDefined(open(a, header, seal(b, header, body, T)))
    assert.strictEqual(a.remove(next.fingerprint), "removing the primary key")
    assert.strictEqual(a.remove("0000000000000000"), "unknown key")
    assert.strictEqual(a.use("0000000000000000"), "unknown key")
    assert.strictEqual(a.remove(old.fingerprint), undefined)
    assert.deepStrictEqual(a.list(), [next.fingerprint])
    assert.strictEqual(a.remove(next.fingerprint), "the last key")
    // once a dropped the old key, b's packets under it no longer open at a
    const onlyOld = ring(old)
    assert.isUndefined(open(a, header, seal(onlyOld, header, body, T)))
  })

  it("nonces do not repeat, even for packets sealed in the same millisecond", () => {
    const keyring = ring(key())
    const seen = new Set<string>()
    for (let i = 0; i < 20_000; i++) seen.add(open(keyring, header, seal(keyring, header, body, T))!.nonce)
    assert.strictEqual(seen.size, 20_000)
  })
})

describe("ReplayGuard", () => {
  const keyring = ring(key())
  const packet = (at: number) => open(keyring, header, seal(keyring, header, body, at))!

  it("accepts a packet once, inside the window; refuses a replay, a stale one and one from the future", () => {
    const guard = new ReplayGuard(30_000)
    const p = packet(T)
    assert.strictEqual(guard.check(p, T + 10), "fresh")
    assert.strictEqual(guard.check(p, T + 20), "replayed")
    // waiting until the guard would have forgotten it does not help: it is too old by then
    assert.strictEqual(guard.check(p, T + 31_000), "too old")
    assert.strictEqual(guard.check(packet(T + 40_000), T), "from the future")
    assert.strictEqual(guard.check(packet(T - 40_000), T), "too old")
  })

  it("remembers a bounded number of nonces; past that it narrows its window instead of growing", () => {
    const guard = new ReplayGuard(30_000, 100)
    const packets = Array.from({ length: 300 }, (_, i) => packet(T + i))
    for (const p of packets) assert.strictEqual(guard.check(p, T + 300), "fresh")
    assert.isAtMost(guard.size, 100)
    // a replay of an evicted packet is still refused: its seal time is below the floor now
    assert.notStrictEqual(guard.check(packets[0]!, T + 300), "fresh")
    // and the window empties as time passes
    guard.check(packet(T + 100_000), T + 100_000)
    assert.isAtMost(guard.size, 1)
  })
})
