/**
 * The gossip keyring and the AES-256-GCM envelope every datagram and stream
 * frame travels in when it is configured.
 *
 * - **Keys.** 32 random bytes each, written as base64. The *primary* key
 *   encrypts; every installed key decrypts (primary first), so a rotation is
 *   install everywhere → use everywhere → remove the old one everywhere, and
 *   no member is ever unable to read another's packets. A key is named by its
 *   fingerprint (the first 8 bytes of its SHA-256, hex), never shown itself.
 * - **Envelope.** `nonce (12) ‖ ciphertext ‖ tag (16)`: 28 bytes per packet.
 *   The packet header (magic, version, flags with the envelope bit, kind,
 *   label) stays in the clear and is the associated data, so a flipped bit
 *   anywhere — header or body — fails authentication.
 * - **Nonces** are the sender's clock in milliseconds (6 bytes) then 6 bytes
 *   from the operating system's CSPRNG. Two packets share a nonce only if
 *   they are sealed in the same millisecond and draw the same 48 random bits
 *   (about one in 10¹⁴ for a pair); a nonce never depends on a count of
 *   packets sealed, so a key's safe lifetime is not a budget of messages. The
 *   time in the nonce also dates the packet, which is what lets a receiver
 *   refuse a replay (see {@link ReplayGuard}). The nonce's random half is the
 *   one place shoal reads randomness outside `Random`: a seeded generator
 *   would hand every node the same nonces.
 *
 * Pure apart from `node:crypto`: no Effect, no clock (callers pass the time).
 *
 * @module
 * @since 0.1.0
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createSecretKey,
  type KeyObject,
  randomBytes,
  randomFillSync
} from "node:crypto"
import * as Redacted from "effect/Redacted"
import * as Result from "effect/Result"
import { InvalidConfiguration } from "../Errors.ts"

/** Bytes of an AES-256 key. */
export const KEY_BYTES = 32

/** Bytes the envelope adds to a packet: the nonce and the authentication tag. */
export const ENVELOPE_OVERHEAD = 12 + 16

const NONCE_BYTES = 12
const TAG_BYTES = 16

/** One key of a keyring. */
export interface GossipKey {
  /** First 8 bytes of the key's SHA-256, hex: how commands and logs name it. */
  readonly fingerprint: string
  /** The key itself, for writing a keyring file; never logged. */
  readonly secret: Redacted.Redacted<Uint8Array>
  readonly object: KeyObject
}

/** What a key is given as: its 32 bytes, or their base64 text (either possibly `Redacted`). */
export type KeyInput = string | Uint8Array | Redacted.Redacted<string | Uint8Array>

/**
 * Makes a key from 32 bytes, or their base64 text. A wrong length or text
 * that is not base64 is an `InvalidConfiguration` naming `field` (never
 * quoting the key).
 */
export const makeKey = (input: KeyInput, field = "keyring"): Result.Result<GossipKey, InvalidConfiguration> => {
  const value = Redacted.isRedacted(input) ? Redacted.value(input) : input
  let bytes: Uint8Array
  if (typeof value === "string") {
    const text = value.trim()
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text)) {
      return Result.fail(new InvalidConfiguration({ field, reason: "a key is base64 text" }))
    }
    bytes = Buffer.from(text, "base64")
  } else if (value instanceof Uint8Array) {
    bytes = Uint8Array.from(value)
  } else {
    return Result.fail(new InvalidConfiguration({ field, reason: "a key is base64 text or bytes" }))
  }
  if (bytes.length !== KEY_BYTES) {
    return Result.fail(
      new InvalidConfiguration({ field, reason: `a key is ${KEY_BYTES} bytes (AES-256), got ${bytes.length}` })
    )
  }
  return Result.succeed({
    fingerprint: createHash("sha256").update(bytes).digest("hex").slice(0, 16),
    secret: Redacted.make(bytes),
    object: createSecretKey(bytes)
  })
}

/** A keyring from keys given as text or bytes, the first the primary; none is an `InvalidConfiguration`. */
export const makeKeyring = (
  inputs: ReadonlyArray<KeyInput>,
  field = "keyring"
): Result.Result<Keyring, InvalidConfiguration> => {
  const keys: Array<GossipKey> = []
  for (const input of inputs) {
    const key = makeKey(input, field)
    if (Result.isFailure(key)) return Result.fail(key.failure)
    keys.push(key.success)
  }
  const [first, ...rest] = keys
  return first === undefined
    ? Result.fail(new InvalidConfiguration({ field, reason: "a keyring holds at least one key" }))
    : Result.succeed(new Keyring([first, ...rest]))
}

/** A fresh random key, as base64 text (what `shoal keygen` prints). */
export const generateKey = (): string => randomBytes(KEY_BYTES).toString("base64")

/** The base64 text of a key, for a keyring file. */
export const keyText = (key: GossipKey): string => Buffer.from(Redacted.value(key.secret)).toString("base64")

/** What a keyring command may refuse. */
export type KeyringRefusal = "unknown key" | "removing the primary key" | "the last key"

/**
 * The keys a node holds: the primary first, then the others in the order
 * they were installed. Mutable; one node's keyring, changed only by its
 * own rotation commands.
 */
export class Keyring {
  #keys: Array<GossipKey>

  /** `keys`, the first the primary, duplicates dropped; at least one (see {@link makeKeyring}). */
  constructor(keys: readonly [GossipKey, ...Array<GossipKey>]) {
    const seen = new Set<string>()
    this.#keys = []
    for (const key of keys) {
      if (seen.has(key.fingerprint)) continue
      seen.add(key.fingerprint)
      this.#keys.push(key)
    }
  }

  get primary(): GossipKey {
    return this.#keys[0]!
  }

  /** Every key, primary first. */
  get keys(): ReadonlyArray<GossipKey> {
    return this.#keys
  }

  /** Fingerprints, primary first. */
  list(): ReadonlyArray<string> {
    return this.#keys.map((key) => key.fingerprint)
  }

  /** Adds a key (a no-op if held); it decrypts at once, encrypts once made primary. */
  install(key: GossipKey): void {
    if (!this.#keys.some((k) => k.fingerprint === key.fingerprint)) this.#keys.push(key)
  }

  /** Makes a held key the primary. */
  use(fingerprint: string): KeyringRefusal | undefined {
    const index = this.#keys.findIndex((k) => k.fingerprint === fingerprint)
    if (index < 0) return "unknown key"
    const [key] = this.#keys.splice(index, 1)
    this.#keys.unshift(key!)
    return undefined
  }

  /** Removes a key that is not the primary. */
  remove(fingerprint: string): KeyringRefusal | undefined {
    const index = this.#keys.findIndex((k) => k.fingerprint === fingerprint)
    if (index < 0) return "unknown key"
    if (index === 0) return this.#keys.length === 1 ? "the last key" : "removing the primary key"
    this.#keys.splice(index, 1)
    return undefined
  }
}

// -- nonces ---------------------------------------------------------------------

/** Random bytes drawn from the OS in blocks: one syscall per 4096 nonces rather than one each. */
const pool = Buffer.alloc(6 * 4096)
let poolOffset = pool.length

const nonceAt = (nowMillis: number): Buffer => {
  if (poolOffset >= pool.length) {
    randomFillSync(pool)
    poolOffset = 0
  }
  const nonce = Buffer.allocUnsafe(NONCE_BYTES)
  nonce.writeUIntBE(Math.max(0, Math.floor(nowMillis)) % 2 ** 48, 0, 6)
  pool.copy(nonce, 6, poolOffset, poolOffset + 6)
  poolOffset += 6
  return nonce
}

/** When a nonce says its packet was sealed (the sender's clock, ms). */
export const sealedAt = (nonce: Uint8Array): number => Buffer.from(nonce.buffer, nonce.byteOffset, 6).readUIntBE(0, 6)

// -- the envelope -----------------------------------------------------------------

/**
 * Encrypts `body` under the primary key with `header` as associated data:
 * `nonce ‖ ciphertext ‖ tag`, in a buffer the caller owns — after `header`
 * itself when `withHeader` (a sealed frame is the header, then the envelope:
 * one buffer, no second copy of the ciphertext).
 */
export const seal = (
  keyring: Keyring,
  header: Uint8Array,
  body: Uint8Array,
  nowMillis: number,
  withHeader = false
): Uint8Array => {
  const nonce = nonceAt(nowMillis)
  const cipher = createCipheriv("aes-256-gcm", keyring.primary.object, nonce)
  cipher.setAAD(header)
  const start = withHeader ? header.length : 0
  const out = Buffer.allocUnsafe(start + NONCE_BYTES + body.length + TAG_BYTES)
  if (withHeader) out.set(header, 0)
  nonce.copy(out, start)
  let written = start + NONCE_BYTES
  written += cipher.update(body).copy(out, written)
  written += cipher.final().copy(out, written)
  cipher.getAuthTag().copy(out, written)
  return out
}

/** A body that opened: its plaintext, when it was sealed, and its nonce (for replay checks). */
export interface Opened {
  readonly plaintext: Uint8Array
  readonly sealedAt: number
  readonly nonce: string
}

/**
 * Decrypts an envelope with any key of the ring (primary first); `undefined`
 * when it is too short or no key authenticates it — forged, mutated, or
 * sealed with a key this node does not hold.
 */
export const open = (keyring: Keyring, header: Uint8Array, sealed: Uint8Array): Opened | undefined => {
  if (sealed.length < ENVELOPE_OVERHEAD) return undefined
  const nonce = sealed.subarray(0, NONCE_BYTES)
  const tag = sealed.subarray(sealed.length - TAG_BYTES)
  const ciphertext = sealed.subarray(NONCE_BYTES, sealed.length - TAG_BYTES)
  for (const key of keyring.keys) {
    try {
      const decipher = createDecipheriv("aes-256-gcm", key.object, nonce)
      decipher.setAAD(header)
      decipher.setAuthTag(tag)
      const first = decipher.update(ciphertext)
      const last = decipher.final()
      return {
        plaintext: last.length === 0 ? first : Buffer.concat([first, last]),
        sealedAt: sealedAt(nonce),
        nonce: Buffer.from(nonce).toString("base64")
      }
    } catch {
      // not this key: try the next
    }
  }
  return undefined
}

// -- replays -------------------------------------------------------------------------

/** Why the replay guard refused an authentic packet. */
export type ReplayVerdict = "fresh" | "replayed" | "too old" | "from the future"

/**
 * Refuses an authentic packet that was seen before, or whose seal time is
 * further than `windowMillis` from the receiver's clock (so a replay cannot
 * simply wait until the guard forgot it). Remembers the nonces of the last
 * window, at most `capacity` of them; past that it narrows its window (the
 * oldest nonces go, and packets as old as they are refused) rather than
 * grow — a flood of authentic packets costs a bounded amount of memory.
 *
 * Members' clocks must agree within the window (NTP does; the default window
 * is 30 s).
 */
export class ReplayGuard {
  readonly windowMillis: number
  readonly capacity: number
  /** nonce → seal time, in the order seen. */
  readonly #seen = new Map<string, number>()
  /** Seal times older than this are refused even inside the window (after the cache was trimmed). */
  #floor = Number.NEGATIVE_INFINITY

  constructor(windowMillis: number, capacity = 65_536) {
    this.windowMillis = windowMillis
    this.capacity = capacity
  }

  get size(): number {
    return this.#seen.size
  }

  check(opened: Opened, nowMillis: number): ReplayVerdict {
    if (opened.sealedAt > nowMillis + this.windowMillis) return "from the future"
    if (opened.sealedAt < nowMillis - this.windowMillis || opened.sealedAt < this.#floor) return "too old"
    if (this.#seen.has(opened.nonce)) return "replayed"
    this.#prune(nowMillis)
    if (this.#seen.size >= this.capacity) {
      const [oldest, at] = this.#seen.entries().next().value!
      this.#seen.delete(oldest)
      this.#floor = Math.max(this.#floor, at + 1)
    }
    this.#seen.set(opened.nonce, opened.sealedAt)
    return "fresh"
  }

  #prune(nowMillis: number): void {
    const horizon = nowMillis - this.windowMillis
    for (const [nonce, at] of this.#seen) {
      // roughly in seal order: stop at the first one still inside the window
      if (at >= horizon) break
      this.#seen.delete(nonce)
    }
  }
}
