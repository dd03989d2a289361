/**
 * Throw-away TLS material for development and tests: a private certificate
 * authority and certificates it signs, made in memory with `node:crypto`
 * (EC P-256, ECDSA with SHA-256), so trying the RPC server needs no
 * `openssl` commands and no key ever lands in a repository.
 *
 * **Not for production**: the keys live as long as the process, nothing
 * revokes them, and every call makes a new authority. In production, issue
 * node certificates from your own CA and give `RpcConfig` their paths (or
 * their PEM text, the keys `Redacted`).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { RpcConfig } from "shoal"
 * import { DevTls } from "shoal/testing"
 *
 * const program = Effect.gen(function* () {
 *   // a CA and a node certificate for localhost / 127.0.0.1, valid one day
 *   const tls = DevTls.generate()
 *   return yield* RpcConfig.make({ ...tls, serverName: "localhost", bindAddress: "127.0.0.1:0" })
 * })
 * ```
 *
 * @module
 * @since 0.1.0
 */
import { createHash, createPublicKey, generateKeyPairSync, type KeyObject, randomBytes, sign } from "node:crypto"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"

/** PEM text held in memory, as `RpcConfig` accepts a certificate. */
export interface Pem {
  readonly pem: string
}

/** A certificate and its private key, ready for `RpcConfig.Input`'s `certificate` and `key`. */
export interface CertificatePair {
  readonly certificate: Pem
  readonly key: Redacted.Redacted<string>
}

/** What a certificate may be used for (extended key usage). */
export type Usage = "server" | "client" | "both"

/** How {@link Authority.issue} makes a certificate. */
export interface IssueOptions {
  /** The subject's common name (default `"shoal-node"`). */
  readonly name?: string | undefined
  /** DNS names and IP addresses the certificate is valid for (default `["localhost", "127.0.0.1"]`). */
  readonly hosts?: ReadonlyArray<string> | undefined
  /** Server, client or both (default `"both"`: one certificate per node, both directions). */
  readonly usage?: Usage | undefined
  /** Days of validity from now (default 1). */
  readonly days?: number | undefined
  /**
   * The member id the certificate binds (a UUID v4), as the subjectAltName
   * URI `urn:uuid:<nodeId>`: what makes it a member identity that signs the
   * member's gossip claims (see `docs/SECURITY.md`).
   */
  readonly nodeId?: string | undefined
}

/** A certificate authority that lives in this process. */
export interface Authority extends CertificatePair {
  /** Makes a key pair and a certificate this authority signs. */
  readonly issue: (options?: IssueOptions) => CertificatePair
}

/** What {@link generate} returns: spread it into `RpcConfig.make`. */
export interface DevMaterial extends CertificatePair {
  /** The authority's certificate: what servers and clients trust. */
  readonly ca: Pem
}

// --- DER, as much of it as a certificate needs ---

const length = (n: number): Uint8Array => {
  if (n < 0x80) return Uint8Array.of(n)
  const bytes: Array<number> = []
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff)
  return Uint8Array.of(0x80 | bytes.length, ...bytes)
}

const concat = (parts: ReadonlyArray<Uint8Array>): Uint8Array => {
  const out = new Uint8Array(parts.reduce((sum, p) => sum + p.length, 0))
  let offset = 0
  for (const p of parts) {
    out.set(p, offset)
    offset += p.length
  }
  return out
}

const tlv = (tag: number, ...content: ReadonlyArray<Uint8Array>): Uint8Array => {
  const body = concat(content)
  return concat([Uint8Array.of(tag), length(body.length), body])
}

const sequence = (...items: ReadonlyArray<Uint8Array>) => tlv(0x30, ...items)
const set = (...items: ReadonlyArray<Uint8Array>) => tlv(0x31, ...items)
const explicit = (n: number, item: Uint8Array) => tlv(0xa0 + n, item)
const octets = (bytes: Uint8Array) => tlv(0x04, bytes)
const bitString = (bytes: Uint8Array) => tlv(0x03, Uint8Array.of(0), bytes)
const utf8 = (text: string) => tlv(0x0c, new TextEncoder().encode(text))
const boolean = (value: boolean) => tlv(0x01, Uint8Array.of(value ? 0xff : 0))

const integer = (bytes: Uint8Array): Uint8Array => {
  let start = 0
  while (start < bytes.length - 1 && bytes[start] === 0 && bytes[start + 1]! < 0x80) start++
  const trimmed = bytes.subarray(start)
  return tlv(0x02, trimmed[0]! >= 0x80 ? concat([Uint8Array.of(0), trimmed]) : trimmed)
}

const oid = (dotted: string): Uint8Array => {
  const [first, second, ...rest] = dotted.split(".").map(Number)
  const out: Array<number> = [first! * 40 + second!]
  for (const arc of rest) {
    const chunk: Array<number> = []
    for (let v = arc; ; v = Math.floor(v / 128)) {
      chunk.unshift((v & 0x7f) | (chunk.length === 0 ? 0 : 0x80))
      if (v < 128) break
    }
    out.push(...chunk)
  }
  return tlv(0x06, Uint8Array.from(out))
}

const time = (date: Date): Uint8Array => {
  const iso = date.toISOString().replace(/[-:T]/g, "").slice(0, 14) // YYYYMMDDHHMMSS
  const year = date.getUTCFullYear()
  return year >= 1950 && year < 2050
    ? tlv(0x17, new TextEncoder().encode(`${iso.slice(2)}Z`))
    : tlv(0x18, new TextEncoder().encode(`${iso}Z`))
}

const name = (commonName: string) => sequence(set(sequence(oid("2.5.4.3"), utf8(commonName))))

const extension = (id: string, critical: boolean, value: Uint8Array) =>
  critical ? sequence(oid(id), boolean(true), octets(value)) : sequence(oid(id), octets(value))

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/

const generalName = (host: string): Uint8Array => {
  const v4 = IPV4.exec(host)
  if (v4 !== null) return tlv(0x87, Uint8Array.from(v4.slice(1).map(Number)))
  if (host.includes(":")) {
    const [head = "", tail = ""] = host.split("::")
    const words = (part: string) => (part === "" ? [] : part.split(":").map((w) => Number.parseInt(w, 16)))
    const left = words(head)
    const right = host.includes("::") ? words(tail) : []
    const all = [...left, ...Array(8 - left.length - right.length).fill(0), ...right]
    return tlv(0x87, Uint8Array.from(all.flatMap((w) => [w >> 8, w & 0xff])))
  }
  return tlv(0x82, new TextEncoder().encode(host))
}

const ECDSA_SHA256 = sequence(oid("1.2.840.10045.4.3.2"))

const spki = (key: KeyObject): Uint8Array =>
  new Uint8Array(createPublicKey(key).export({ type: "spki", format: "der" }))

/** The key identifier of RFC 5280 §4.2.1.2 (1): SHA-1 of the public key's bits. */
const keyId = (publicKeyInfo: Uint8Array): Uint8Array => {
  // SubjectPublicKeyInfo = SEQUENCE { AlgorithmIdentifier, BIT STRING }: a P-256 point is its last 65 bytes.
  const bits = publicKeyInfo.subarray(publicKeyInfo.length - 65)
  return new Uint8Array(createHash("sha1").update(bits).digest())
}

const pem = (label: string, der: Uint8Array): string => {
  const base64 = Buffer.from(der).toString("base64")
  const lines = base64.match(/.{1,64}/g) ?? []
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`
}

interface Signer {
  readonly name: string
  readonly key: KeyObject
  readonly keyId: Uint8Array
}

/** Key usage BIT STRING contents: unused bits, then the bits. */
const KEY_USAGE_CA = Uint8Array.of(0x01, 0x06) // keyCertSign, cRLSign
const KEY_USAGE_LEAF = Uint8Array.of(0x05, 0xa0) // digitalSignature, keyEncipherment
const SERVER_AUTH = "1.3.6.1.5.5.7.3.1"
const CLIENT_AUTH = "1.3.6.1.5.5.7.3.2"

const certificate = (options: {
  readonly subject: string
  readonly publicKey: Uint8Array
  readonly issuer: Signer
  readonly days: number
  readonly extensions: ReadonlyArray<Uint8Array>
}): string => {
  const now = Date.now()
  const serial = randomBytes(16)
  serial[0] = serial[0]! & 0x7f
  const tbs = sequence(
    explicit(0, integer(Uint8Array.of(2))),
    integer(serial),
    ECDSA_SHA256,
    name(options.issuer.name),
    sequence(time(new Date(now - 60 * 60 * 1000)), time(new Date(now + options.days * 24 * 60 * 60 * 1000))),
    name(options.subject),
    options.publicKey,
    explicit(
      3,
      sequence(
        ...options.extensions,
        extension("2.5.29.14", false, octets(keyId(options.publicKey))),
        extension("2.5.29.35", false, sequence(tlv(0x80, options.issuer.keyId)))
      )
    )
  )
  const signature = new Uint8Array(sign("sha256", tbs, options.issuer.key))
  return pem("CERTIFICATE", sequence(tbs, ECDSA_SHA256, bitString(signature)))
}

const newKey = () => generateKeyPairSync("ec", { namedCurve: "prime256v1" }).privateKey

const privatePem = (key: KeyObject) => Redacted.make(key.export({ type: "pkcs8", format: "pem" }).toString())

const checkDays = (days: number) => {
  if (!(Number.isFinite(days) && days > 0 && days <= 3650))
    throw new RangeError(`days must be in (0, 3650], got ${days}`)
  return days
}

/**
 * A new certificate authority named `name` (default `"shoal-dev-ca"`), valid
 * for `days` (default 1). Synchronous: an EC key pair takes well under a
 * millisecond.
 */
export const makeAuthority = (options: { readonly name?: string; readonly days?: number } = {}): Authority => {
  const caName = options.name ?? "shoal-dev-ca"
  const days = checkDays(options.days ?? 1)
  const key = newKey()
  const publicKey = spki(key)
  const signer: Signer = { name: caName, key, keyId: keyId(publicKey) }
  const caCertificate = certificate({
    subject: caName,
    publicKey,
    issuer: signer,
    days,
    extensions: [
      extension("2.5.29.19", true, sequence(boolean(true))),
      extension("2.5.29.15", true, tlv(0x03, KEY_USAGE_CA))
    ]
  })
  const issue = (issued: IssueOptions = {}): CertificatePair => {
    const leafKey = newKey()
    const usage = issued.usage ?? "both"
    const hosts = issued.hosts ?? ["localhost", "127.0.0.1"]
    const purposes =
      usage === "server" ? [SERVER_AUTH] : usage === "client" ? [CLIENT_AUTH] : [SERVER_AUTH, CLIENT_AUTH]
    const extensions = [
      extension("2.5.29.19", true, sequence()),
      extension("2.5.29.15", true, tlv(0x03, KEY_USAGE_LEAF)),
      extension("2.5.29.37", false, sequence(...purposes.map(oid)))
    ]
    const altNames = hosts.map(generalName)
    if (issued.nodeId !== undefined) altNames.push(tlv(0x86, new TextEncoder().encode(`urn:uuid:${issued.nodeId}`)))
    if (altNames.length > 0) extensions.push(extension("2.5.29.17", false, sequence(...altNames)))
    return {
      certificate: {
        pem: certificate({
          subject: issued.name ?? "shoal-node",
          publicKey: spki(leafKey),
          issuer: signer,
          days: checkDays(issued.days ?? days),
          extensions
        })
      },
      key: privatePem(leafKey)
    }
  }
  return { certificate: { pem: caCertificate }, key: privatePem(key), issue }
}

/**
 * A fresh CA and one node certificate it signed, for `localhost` and
 * `127.0.0.1` (or `options.hosts`), usable as server and as client
 * certificate, valid for a day: `{ ca, certificate, key }`, the shape
 * `RpcConfig.make` takes.
 */
export const generate = (options: IssueOptions = {}): DevMaterial => {
  const authority = makeAuthority(options.days === undefined ? {} : { days: options.days })
  return { ca: authority.certificate, ...authority.issue(options) }
}

/** {@link generate} as an Effect. */
export const make = (options: IssueOptions = {}): Effect.Effect<DevMaterial> => Effect.sync(() => generate(options))
