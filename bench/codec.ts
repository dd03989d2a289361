/**
 * Wire codec benchmark: bytes per message and encode / decode / round-trip
 * throughput for the three shapes gossip sends most — an ack, a ping carrying
 * ten piggybacked Alive updates, and a 50-member push-pull state.
 *
 * "(body)" rows are the SchemaBinary frame of the wire schema alone
 * (`WirePacket` / `WirePushPull`, values already converted), in SchemaBinary's
 * default mode (what `Codec` uses) and in fingerprint mode. "(Codec)" rows are
 * the full path: domain values → wire values → header + body, and back with
 * every check. `Codec` memoizes an update's wire form, so "encode/s" re-sends
 * the same update objects (a retransmission) and "fresh encode/s" sends update
 * objects it has never seen (a first transmission). JSON sizes for comparison.
 * A plain script: warm up, measure, print a table; nothing asserts.
 *
 *   npx node bench/codec.ts
 */
import { Effect, Result, Schema } from "effect"
import { SchemaBinary } from "effect/encoding"
import * as Codec from "../src/cluster/gossip/Codec.ts"
import { claimBytes } from "../src/cluster/gossip/engine/Claims.ts"
import { generateKey, Keyring, makeKey, ReplayGuard } from "../src/cluster/gossip/Keyring.ts"
import { identities, loadIdentity } from "../src/cluster/gossip/MemberIdentity.ts"
import {
  Ack,
  NodeStateUpdate,
  type Packet,
  Ping,
  PushPull,
  packetToWire,
  pushPullToWire,
  WirePacket,
  WirePushPull
} from "../src/cluster/gossip/Messages.ts"
import { openFrame, sealFrame } from "../src/cluster/gossip/SecureTransport.ts"
import { Address, ClusterNode, type NodeId } from "../src/cluster/Node.ts"
import * as DevTls from "../src/testing/DevTls.ts"

const LABEL = "shoal"

const nodeId = (i: number): NodeId => {
  const h = (n: number, w: number) => n.toString(16).padStart(w, "0").slice(-w)
  return `${h(0x1f3a5c7e + i * 7919, 8)}-${h(i * 31, 4)}-4${h(i * 17, 3)}-a${h(i * 13, 3)}-${h(0x5e7f9a0b1c2d + i, 12)}` as NodeId
}

const member = (i: number): ClusterNode =>
  new ClusterNode({
    id: nodeId(i),
    name: `node-${String(i).padStart(2, "0")}`,
    gossipAddress: new Address({ host: `10.0.${i >> 8}.${i & 255}`, port: 7946 }),
    rpcAddress: new Address({ host: `10.0.${i >> 8}.${i & 255}`, port: 9000 }),
    tags: { role: i % 4 === 0 ? "director" : "worker", zone: `eu-west-${(i % 3) + 1}`, version: "1.4.2" },
    state: "Alive",
    incarnation: i * 3
  })

const ping: Packet = {
  messages: [new Ping({ seq: 1_234_567, from: nodeId(1), target: nodeId(2) })],
  updates: Array.from({ length: 10 }, (_, i) => NodeStateUpdate.fromNode(member(i + 10)))
}
const ack: Packet = { messages: [new Ack({ seq: 1_234_567, from: nodeId(2) })], updates: [] }
const pushPull = new PushPull({
  from: nodeId(1),
  join: false,
  nodes: Array.from({ length: 50 }, (_, i) => NodeStateUpdate.fromNode(member(i)))
})

/** New update objects with the same content, which `Codec` has never converted. */
const freshUpdates = (updates: ReadonlyArray<NodeStateUpdate>) =>
  updates.map((u) => new NodeStateUpdate(u, { disableChecks: true }))

/**
 * Calls per second of `f`: a warm-up, then `rounds` timed rounds of about
 * `ms` each, reporting the best round (the one least disturbed by GC or by
 * other processes on the machine).
 */
const opsPerSecond = (f: () => unknown, rounds = 5, ms = 200): number => {
  const warmUntil = performance.now() + 150
  while (performance.now() < warmUntil) f()
  let best = 0
  for (let round = 0; round < rounds; round++) {
    let n = 0
    const start = performance.now()
    let now = start
    while (now - start < ms) {
      for (let i = 0; i < 20; i++) f()
      n += 20
      now = performance.now()
    }
    best = Math.max(best, (n * 1000) / (now - start))
  }
  return best
}

/**
 * Like {@link opsPerSecond}, for `f` applied to inputs used once each: every
 * round builds `count` inputs untimed, then times one pass over them.
 */
const opsPerSecondOnce = <A>(make: () => A, f: (a: A) => unknown, count: number, rounds = 5): number => {
  for (let i = 0; i < Math.min(count, 200); i++) f(make())
  let best = 0
  for (let round = 0; round < rounds; round++) {
    const inputs = Array.from({ length: count }, make)
    const start = performance.now()
    for (const input of inputs) f(input)
    best = Math.max(best, (count * 1000) / (performance.now() - start))
  }
  return best
}

interface Row {
  readonly case: string
  readonly mode: string
  readonly bytes: number
  readonly json: number
  readonly encode: number
  readonly fresh: number | undefined
  readonly decode: number
  readonly roundTrip: number
}

const rows: Array<Row> = []

const bodyRows = <S extends Schema.Top & { readonly DecodingServices: never; readonly EncodingServices: never }>(
  name: string,
  schema: S,
  value: S["Type"],
  json: number
) => {
  for (const fingerprint of [false, true]) {
    const codec = SchemaBinary.toCodec(schema, { fingerprint })
    const encode = Schema.encodeSync(codec as any) as (v: unknown) => Uint8Array
    const decode = Schema.decodeSync(codec as any) as (b: Uint8Array) => unknown
    const bytes = encode(value).slice()
    rows.push({
      case: `${name} (body)`,
      mode: fingerprint ? "fingerprint" : "default",
      bytes: bytes.length,
      json,
      encode: opsPerSecond(() => encode(value)),
      fresh: undefined,
      decode: opsPerSecond(() => decode(bytes)),
      roundTrip: opsPerSecond(() => decode(encode(value)))
    })
  }
}

bodyRows("ack", WirePacket, packetToWire(ack), JSON.stringify(ack).length)
bodyRows("ping + 10 updates", WirePacket, packetToWire(ping), JSON.stringify(ping).length)
bodyRows("push-pull, 50 members", WirePushPull, pushPullToWire(pushPull), JSON.stringify(pushPull).length)

// The full path `Codec` exposes (conversion, checks, header, owned bytes).
const packetRow = (name: string, packet: Packet) => {
  const bytes = Codec.encodePacket({ label: LABEL }, packet)
  const encode = opsPerSecond(() => Codec.encodePacket({ label: LABEL }, packet))
  rows.push({
    case: `${name} (Codec)`,
    mode: "default",
    bytes: bytes.length,
    json: JSON.stringify(packet).length,
    encode,
    fresh: opsPerSecondOnce(
      () => ({ messages: packet.messages, updates: freshUpdates(packet.updates) }),
      (p) => Codec.encodePacket({ label: LABEL }, p),
      Math.max(200, Math.round(encode / 10))
    ),
    decode: opsPerSecond(() => Codec.decodePacketResult(LABEL, bytes)),
    roundTrip: opsPerSecond(() => Codec.decodePacketResult(LABEL, Codec.encodePacket({ label: LABEL }, packet)))
  })
}
packetRow("ack", ack)
packetRow("ping + 10 updates", ping)
{
  const encodeOf = (message: PushPull) => Effect.runSync(Codec.encodePushPull(LABEL, message))
  const bytes = encodeOf(pushPull)
  const encode = opsPerSecond(() => encodeOf(pushPull))
  rows.push({
    case: "push-pull, 50 members (Codec)",
    mode: "default",
    bytes: bytes.length,
    json: JSON.stringify(pushPull).length,
    encode,
    fresh: opsPerSecondOnce(
      () => new PushPull({ ...pushPull, nodes: freshUpdates(pushPull.nodes) }, { disableChecks: true }),
      encodeOf,
      Math.max(200, Math.round(encode / 10))
    ),
    decode: opsPerSecond(() => Effect.runSync(Codec.decodePushPull(LABEL, bytes))),
    roundTrip: opsPerSecond(() => Effect.runSync(Codec.decodePushPull(LABEL, encodeOf(pushPull))))
  })
}

const fmt = (n: number | undefined) => (n === undefined ? "" : Math.round(n).toLocaleString("en-US"))
const table = [
  ["case", "mode", "bytes", "json bytes", "encode/s", "fresh encode/s", "decode/s", "round trips/s"],
  ...rows.map((r) => [
    r.case,
    r.mode,
    String(r.bytes),
    String(r.json),
    fmt(r.encode),
    fmt(r.fresh),
    fmt(r.decode),
    fmt(r.roundTrip)
  ])
]
const widths = table[0]!.map((_, c) => Math.max(...table.map((row) => row[c]!.length)))
for (const [i, row] of table.entries()) {
  console.log(row.map((cell, c) => (c < 2 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join("  "))
  if (i === 0) console.log(widths.map((w) => "-".repeat(w)).join("  "))
}
console.log(`\nupdateSize(one Alive update) = ${Codec.updateSize(ping.updates[0]!)} bytes`)
console.log(`node ${process.version}`)

// The keyring's envelope (AES-256-GCM, the header as associated data): what sealing adds to
// each packet, in bytes and in time, measured on the same packets.
{
  const keyring = new Keyring([Result.getOrThrow(makeKey(generateKey()))])
  const settings = { keyring, encryptOutgoing: true, requireEncryption: true, replayGuard: new ReplayGuard(30_000) }
  console.log("\nenvelope (AES-256-GCM, sealed and opened per packet):")
  for (const [name, packet] of [
    ["ack", ack],
    ["ping + 10 updates", ping]
  ] as const) {
    const plain = Codec.encodePacket({ label: LABEL }, packet)
    const sealed = sealFrame(keyring, plain, Date.now())
    const sealRate = opsPerSecond(() => sealFrame(keyring, plain, Date.now()))
    // a fresh guard per batch: opening the same packet twice is a replay
    let guard = new ReplayGuard(30_000)
    let opened = 0
    const openRate = opsPerSecond(() => {
      if (++opened % 50_000 === 0) guard = new ReplayGuard(30_000)
      openFrame({ ...settings, replayGuard: guard }, sealFrame(keyring, plain, Date.now()), Date.now())
    })
    console.log(
      `  ${name}: ${plain.length} → ${sealed.length} bytes (+${sealed.length - plain.length}); seal ${(1e6 / sealRate).toFixed(2)} µs, seal + open ${(1e6 / openRate).toFixed(2)} µs`
    )
  }
}

// Signed claims (per-member identity, ECDSA P-256 with SHA-256, IEEE P1363): what a member pays
// to sign its own announcement (once per incarnation), what a receiver pays to check one it has
// not seen (once per announcement; repeats hit the verdict cache), and what signatures and
// certificates add on the wire — per gossiped update and per push-pull entry.
{
  const ca = DevTls.makeAuthority()
  const subject = member(10)
  const pair = ca.issue({ nodeId: subject.id })
  const loaded = Result.getOrThrow(
    loadIdentity({ certificate: pair.certificate.pem, key: pair.key, ca: ca.certificate.pem })
  )
  const identity = identities(loaded, { required: true })
  const update = NodeStateUpdate.fromNode(subject)
  const message = claimBytes(LABEL, update)
  const signature = identity.sign(message)
  const verify = identity.certify(subject.id, loaded.certificate)!
  const signRate = opsPerSecond(() => identity.sign(claimBytes(LABEL, update)))
  const verifyRate = opsPerSecond(() => verify(claimBytes(LABEL, update), signature))
  const certifyRate = opsPerSecond(() => identity.certify(subject.id, loaded.certificate))
  const signed = new NodeStateUpdate({ ...update, signature }, { disableChecks: true })
  const entry = new NodeStateUpdate({ ...signed, certificate: loaded.certificate }, { disableChecks: true })
  const plainSize = Codec.updateSize(update)
  const plainPushPull = Result.getOrThrow(Codec.encodePushPullResult(LABEL, pushPull)).length
  const signedPushPull = Result.getOrThrow(
    Codec.encodePushPullResult(
      LABEL,
      new PushPull({
        from: pushPull.from,
        join: false,
        nodes: pushPull.nodes.map(
          (n) => new NodeStateUpdate({ ...n, signature, certificate: loaded.certificate }, { disableChecks: true })
        )
      })
    )
  ).length
  console.log("\nsigned claims (ECDSA P-256, 64-byte signatures; certificates in push-pull only):")
  console.log(
    `  sign ${(1e6 / signRate).toFixed(1)} µs per own announcement (once per incarnation), verify ${(1e6 / verifyRate).toFixed(1)} µs per new announcement, certificate check ${(1e6 / certifyRate).toFixed(1)} µs per member (once)`
  )
  console.log(
    `  gossiped Alive update: ${plainSize} → ${Codec.updateSize(signed)} bytes (+${Codec.updateSize(signed) - plainSize}); push-pull entry with certificate: +${Codec.updateSize(entry) - plainSize} bytes (certificate ${loaded.certificate.length} bytes DER)`
  )
  console.log(
    `  50-member push-pull: ${plainPushPull} → ${signedPushPull} bytes (+${((signedPushPull - plainPushPull) / pushPull.nodes.length).toFixed(0)} per entry)`
  )
}
