/**
 * How a node joins and runs in a cluster: identity, addresses, seeds, tags and
 * the protocol's timings. Values are validated once, here, so the engine can
 * trust them; every rejection is an `InvalidConfiguration` naming the field as
 * the user wrote it (`probeInterval`, or `SHOAL_PROBE_INTERVAL` when it came
 * from the environment).
 *
 * The defaults are memberlist's LAN profile (probe 1 s, ping timeout 500 ms,
 * 3 indirect checks, gossip every 200 ms to 3 members, suspicion ×4,
 * retransmit ×4, push-pull every 30 s, 1400-byte packets), so shoal and
 * Serf can be compared like with like. The original plan's 1 s direct-ping
 * timeout is `pingTimeout: "1 second"` (with `probeInterval` above it).
 *
 * Used as a module: `ClusterConfig.make({...})`, `ClusterConfig.withTags`,
 * `ClusterConfig.fromEnv`, and the type `ClusterConfig.ClusterConfig`.
 *
 * @module
 * @since 0.1.0
 */

import { readFile } from "node:fs/promises"
import * as Config from "effect/Config"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import { DURATION_SYNTAX, type DurationInput, parseDuration } from "./DurationText.ts"
import { InvalidConfiguration } from "./Errors.ts"
import { loadIdentity } from "./gossip/MemberIdentity.ts"
import { Address, decodeNodeId, formatAddress, makeNodeId, NodeId, parseAddress, Tags } from "./Node.ts"

/** The tag the cluster owns: it publishes the aggregated health check result under it. */
export const HEALTHY_TAG = "healthy"

/** Largest UDP payload over IPv4. */
export const MAX_UDP_PAYLOAD = 65_507

/**
 * The validated configuration. Construct it with {@link make} (or
 * {@link fromEnv}); `new ClusterConfig(...)` is for already-checked values.
 */
export class ClusterConfig extends Schema.Class<ClusterConfig>("shoal/ClusterConfig")({
  nodeId: NodeId,
  nodeName: Schema.String,
  clusterLabel: Schema.String,
  bindAddress: Address,
  advertiseAddress: Schema.optionalKey(Address),
  rpcAddress: Schema.optionalKey(Address),
  seedNodes: Schema.Array(Schema.String),
  tags: Tags,
  probeInterval: Schema.Duration,
  pingTimeout: Schema.Duration,
  indirectChecks: Schema.Int,
  gossipInterval: Schema.Duration,
  gossipNodes: Schema.Int,
  gossipToTheDeadTime: Schema.Duration,
  suspicionMult: Schema.Number,
  suspicionMaxTimeoutMult: Schema.Number,
  suspicionConfirmations: Schema.optionalKey(Schema.Int),
  retransmitMult: Schema.Int,
  awarenessMaxMultiplier: Schema.Int,
  pushPullInterval: Schema.Duration,
  reconnectInterval: Schema.Duration,
  reconnectTimeout: Schema.Duration,
  reapAfter: Schema.Duration,
  tombstoneTtl: Schema.Duration,
  joinTimeout: Schema.Duration,
  retryJoin: Schema.Boolean,
  retryJoinInterval: Schema.Duration,
  tcpPings: Schema.Boolean,
  keyring: Schema.optionalKey(Schema.Array(Schema.Redacted(Schema.String))),
  encryptOutgoing: Schema.Boolean,
  requireEncryption: Schema.Boolean,
  identityCertificate: Schema.optionalKey(Schema.String),
  identityKey: Schema.optionalKey(Schema.Redacted(Schema.String)),
  identityCa: Schema.optionalKey(Schema.String),
  requireIdentities: Schema.Boolean,
  replayWindow: Schema.Duration,
  leaveTimeout: Schema.Duration,
  phiThreshold: Schema.Number,
  phiWindowSize: Schema.Int,
  phiMinStdDeviation: Schema.Duration,
  phiAcceptablePause: Schema.Duration,
  maxPacketSize: Schema.Int,
  maxMembers: Schema.Int,
  healthCheckInterval: Schema.Duration,
  healthCheckTimeout: Schema.Duration
}) {
  /** The address other members use to reach this node's gossip port. */
  get gossipAddress(): Address {
    return this.advertiseAddress ?? this.bindAddress
  }
}

/** An address as configuration accepts it: `"host:port"` or `{ host, port }`. */
export type AddressInput = string | { readonly host: string; readonly port: number }

/** What {@link make} accepts: every field optional, durations as `Duration.Input` (`"500 millis"`, `500`). */
export interface Input {
  readonly nodeId?: string | undefined
  readonly nodeName?: string | undefined
  readonly clusterLabel?: string | undefined
  readonly bindAddress?: AddressInput | undefined
  readonly advertiseAddress?: AddressInput | undefined
  readonly rpcAddress?: AddressInput | undefined
  readonly seedNodes?: ReadonlyArray<string> | undefined
  readonly tags?: Readonly<Record<string, string>> | undefined
  readonly probeInterval?: DurationInput | undefined
  readonly pingTimeout?: DurationInput | undefined
  readonly indirectChecks?: number | undefined
  readonly gossipInterval?: DurationInput | undefined
  readonly gossipNodes?: number | undefined
  readonly gossipToTheDeadTime?: DurationInput | undefined
  readonly suspicionMult?: number | undefined
  readonly suspicionMaxTimeoutMult?: number | undefined
  /**
   * Independent confirmations that bring a suspicion's timeout down to its
   * minimum (Lifeguard's `k`); unset, `suspicionMult − 2` as memberlist ties it.
   * Setting it apart lets a lower `suspicionMult` (a shorter floor) still
   * demand the same evidence before anyone is declared dead.
   */
  readonly suspicionConfirmations?: number | undefined
  readonly retransmitMult?: number | undefined
  readonly awarenessMaxMultiplier?: number | undefined
  readonly pushPullInterval?: DurationInput | undefined
  readonly reconnectInterval?: DurationInput | undefined
  readonly reconnectTimeout?: DurationInput | undefined
  readonly reapAfter?: DurationInput | undefined
  readonly tombstoneTtl?: DurationInput | undefined
  readonly joinTimeout?: DurationInput | undefined
  readonly retryJoin?: boolean | undefined
  readonly retryJoinInterval?: DurationInput | undefined
  /** When a UDP probe fails, also ping over TCP (memberlist's fallback; default true). */
  readonly tcpPings?: boolean | undefined
  /**
   * Gossip keys (32 bytes each, base64; `Redacted` keeps them out of logs),
   * the first the primary: every datagram and stream frame is then sealed
   * with AES-256-GCM (see `docs/SECURITY.md`). Without a keyring gossip is in
   * the clear.
   */
  readonly keyring?: ReadonlyArray<string | Redacted.Redacted<string>> | undefined
  /** With a keyring: seal what this node sends (default true; false only while a cluster moves off plaintext). */
  readonly encryptOutgoing?: boolean | undefined
  /** With a keyring: refuse packets that are not sealed (default true; false while a cluster moves off plaintext). */
  readonly requireEncryption?: boolean | undefined
  /** With a keyring: how far a sealed packet's time may be from ours, and how long its nonce is remembered (default 30 s). */
  readonly replayWindow?: DurationInput | undefined
  /**
   * This node's identity certificate (a path to a PEM file, or the PEM
   * text): issued by `identityCa`, with the subjectAltName URI
   * `urn:uuid:<nodeId>` binding this node's id — usually the RPC TLS
   * certificate. With it the node signs its own `Alive` and `Left` claims,
   * and its id is the certificate's (see `docs/SECURITY.md`).
   */
  readonly identityCertificate?: string | undefined
  /** The identity certificate's EC P-256 private key: a path, or the PEM text `Redacted`. */
  readonly identityKey?: string | Redacted.Redacted<string> | undefined
  /** The cluster CA that issues identity certificates: a path, or the PEM text. */
  readonly identityCa?: string | undefined
  /**
   * Apply another member's `Alive` or `Left` only with its valid signature,
   * and take a `Dead` as a `Suspect` (default false: every member needs an
   * identity first). What makes a gossip-key holder unable to evict or
   * retag another member.
   */
  readonly requireIdentities?: boolean | undefined
  readonly leaveTimeout?: DurationInput | undefined
  readonly phiThreshold?: number | undefined
  readonly phiWindowSize?: number | undefined
  readonly phiMinStdDeviation?: DurationInput | undefined
  readonly phiAcceptablePause?: DurationInput | undefined
  readonly maxPacketSize?: number | undefined
  /**
   * Members (of any state, this node included) a node holds at most; an
   * announcement of one more is refused and counted. A bound on what a
   * stranger can make a node remember (default 10,000).
   */
  readonly maxMembers?: number | undefined
  readonly healthCheckInterval?: DurationInput | undefined
  readonly healthCheckTimeout?: DurationInput | undefined
}

/** The fields of {@link Input} that are durations. */
export type DurationField = {
  [K in keyof Input]-?: NonNullable<Input[K]> extends DurationInput
    ? DurationInput extends NonNullable<Input[K]>
      ? K
      : never
    : never
}[keyof Input]

/** Defaults; see the module comment for where they come from. */
export const defaults = {
  clusterLabel: "shoal",
  bindAddress: "0.0.0.0:7946",
  probeInterval: "1 second",
  pingTimeout: "500 millis",
  indirectChecks: 3,
  gossipInterval: "200 millis",
  gossipNodes: 3,
  gossipToTheDeadTime: "30 seconds",
  suspicionMult: 4,
  suspicionMaxTimeoutMult: 6,
  retransmitMult: 4,
  awarenessMaxMultiplier: 8,
  pushPullInterval: "30 seconds",
  reconnectInterval: "10 seconds",
  reconnectTimeout: "24 hours",
  reapAfter: "15 minutes",
  tombstoneTtl: "1 hour",
  joinTimeout: "10 seconds",
  retryJoin: false,
  retryJoinInterval: "5 seconds",
  tcpPings: true,
  encryptOutgoing: true,
  requireEncryption: true,
  requireIdentities: false,
  replayWindow: "30 seconds",
  leaveTimeout: "5 seconds",
  phiThreshold: 8,
  phiWindowSize: 100,
  phiMinStdDeviation: "100 millis",
  phiAcceptablePause: "0 millis",
  maxPacketSize: 1400,
  maxMembers: 10_000,
  healthCheckInterval: "5 seconds",
  healthCheckTimeout: "2 seconds"
} as const satisfies Input

/**
 * Faster crash detection at the same probe rate: half the suspicion floor
 * (2 s instead of 4 s below 10 members, × log10 N above) while still waiting
 * for two independent accusers before the floor applies (12 s with none).
 * Spread it into {@link make}'s input: `make({ ...fastDetection, nodeName })`.
 *
 * Against Serf at its LAN defaults (bench/README.md, "Membership vs Serf") a
 * crash is known by all in 0.6–0.7 × Serf's time, with no false suspicion or
 * failure at 10 % UDP loss. The price: a member whose process stalls for more
 * than about 2 s is declared failed (and rejoins as soon as it refutes), where
 * the defaults tolerate about 4 s.
 */
export const fastDetection = { suspicionMult: 2, suspicionConfirmations: 2 } as const satisfies Input

/** Every duration field, in declaration order. */
export const durationFields: ReadonlyArray<DurationField> = [
  "probeInterval",
  "pingTimeout",
  "gossipInterval",
  "gossipToTheDeadTime",
  "pushPullInterval",
  "reconnectInterval",
  "reconnectTimeout",
  "reapAfter",
  "tombstoneTtl",
  "joinTimeout",
  "retryJoinInterval",
  "replayWindow",
  "leaveTimeout",
  "phiMinStdDeviation",
  "phiAcceptablePause",
  "healthCheckInterval",
  "healthCheckTimeout"
]

/** Durations that may be zero (everything else must be strictly positive). */
const mayBeZero: ReadonlySet<DurationField> = new Set(["phiAcceptablePause", "gossipToTheDeadTime"])

const textEncoder = new TextEncoder()
const utf8Length = (s: string) => textEncoder.encode(s).length

/**
 * Bytes reserved in every packet for the header, a ping's own fields and one
 * other piggybacked update; what is left is the most an `Alive` announcement
 * (identity, addresses, tags) may take, so it can always ride on a probe.
 */
export const PACKET_OVERHEAD_RESERVE = 256

/**
 * An upper bound on the encoded size of this node's `Alive` announcement:
 * 16 bytes of id, the name, both addresses, the tags and the field framing.
 * The codec's tests check that the real encoding never exceeds it.
 */
export const aliveAnnouncementBound = (config: {
  readonly nodeName: string
  readonly tags: Tags
  readonly bindAddress: Address
  readonly advertiseAddress?: Address | undefined
  readonly rpcAddress?: Address | undefined
}): number => {
  const address = (a: Address | undefined) => (a === undefined ? 0 : utf8Length(a.host) + 8)
  let tagBytes = 0
  for (const key in config.tags) tagBytes += utf8Length(key) + utf8Length(config.tags[key]!) + 10
  return (
    64 +
    utf8Length(config.nodeName) +
    address(config.advertiseAddress ?? config.bindAddress) +
    address(config.rpcAddress) +
    tagBytes
  )
}

const invalid = (field: string, reason: string) => new InvalidConfiguration({ field, reason })

const toAddress = (field: string, input: AddressInput): Address | InvalidConfiguration => {
  if (typeof input === "string") {
    return parseAddress(input) ?? invalid(field, `expected host:port, got "${input}"`)
  }
  return Schema.is(Address)(input)
    ? input
    : Schema.decodeUnknownOption(Address)(input).pipe(
        Option.getOrElse(() => invalid(field, `expected { host, port } with a port in 0..65535`))
      )
}

const toDuration = (field: string, input: DurationInput): Duration.Duration | InvalidConfiguration =>
  Option.match(typeof input === "string" ? parseDuration(input) : Duration.fromInput(input as Duration.Input), {
    onNone: () => invalid(field, `expected ${DURATION_SYNTAX}`),
    onSome: (d) => d
  })

const isError = (u: unknown): u is InvalidConfiguration => u instanceof InvalidConfiguration

/**
 * Tags as JavaScript may pass them: an object whose values are strings and
 * whose keys are neither empty nor contain `=` or `,` (the `key=value,…`
 * form of `SHOAL_TAGS` and `--tag` could not carry them).
 */
const checkTags = (tags: unknown): InvalidConfiguration | undefined => {
  if (typeof tags !== "object" || tags === null || Array.isArray(tags)) {
    return invalid("tags", "expected an object of string keys and string values")
  }
  for (const [key, value] of Object.entries(tags)) {
    if (key.length === 0) return invalid("tags", "tag keys must not be empty")
    if (key.includes("=") || key.includes(",")) {
      return invalid("tags", `tag key "${key}" contains "=" or ",", which the key=value,… form cannot carry`)
    }
    if (typeof value !== "string") {
      return invalid("tags", `tag "${key}" must be a string, got ${value === null ? "null" : typeof value}`)
    }
  }
  return undefined
}

/**
 * The checks that need more than one field, or knowledge of the protocol.
 * Returns the first problem, in field order.
 */
/** Bytes of a gossip key (AES-256); the keyring module (gossip/Keyring.ts) makes keys of these. */
const GOSSIP_KEY_BYTES = 32

const checkKeyring = (keys: ReadonlyArray<Redacted.Redacted<string>>): InvalidConfiguration | undefined => {
  if (keys.length === 0) return invalid("keyring", "holds at least one key (or leave it out for plaintext gossip)")
  for (const [index, key] of keys.entries()) {
    const text = Redacted.value(key).trim()
    // never quote the key: say which one and why
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text)) return invalid("keyring", `key ${index + 1} is not base64 text`)
    const bytes = Buffer.from(text, "base64").length
    if (bytes !== GOSSIP_KEY_BYTES) {
      return invalid("keyring", `key ${index + 1} is ${bytes} bytes; a key is ${GOSSIP_KEY_BYTES} (AES-256)`)
    }
  }
  return undefined
}

const checkFields = (c: ClusterConfig): InvalidConfiguration | undefined => {
  if (c.keyring !== undefined) {
    const problem = checkKeyring(c.keyring)
    if (problem !== undefined) return problem
  }
  if (c.nodeName.length === 0) return invalid("nodeName", "must not be empty")
  if (utf8Length(c.nodeName) > 128) return invalid("nodeName", "must be at most 128 bytes")
  if (c.clusterLabel.length === 0) return invalid("clusterLabel", "must not be empty")
  if (utf8Length(c.clusterLabel) > 64) return invalid("clusterLabel", "must be at most 64 bytes")
  if (c.advertiseAddress !== undefined && c.advertiseAddress.port === 0) {
    return invalid("advertiseAddress", "must name a concrete port, not 0")
  }
  for (const seed of c.seedNodes) {
    const address = parseAddress(seed)
    if (address === undefined) return invalid("seedNodes", `expected host:port, got "${seed}"`)
    if (address.port === 0) return invalid("seedNodes", `"${seed}" has port 0`)
  }
  const tagProblem = checkTags(c.tags)
  if (tagProblem !== undefined) return tagProblem
  for (const key in c.tags) {
    if (key === HEALTHY_TAG) {
      return invalid("tags", `"${HEALTHY_TAG}" is reserved: the cluster publishes its health checks' result under it`)
    }
  }
  for (const field of durationFields) {
    const d = c[field]
    if (!Duration.isFinite(d)) return invalid(field, "must be finite")
    if (mayBeZero.has(field) ? Duration.isNegative(d) : !Duration.isPositive(d)) {
      return invalid(field, mayBeZero.has(field) ? "must not be negative" : "must be positive")
    }
  }
  if (Duration.isGreaterThanOrEqualTo(c.pingTimeout, c.probeInterval)) {
    return invalid(
      "pingTimeout",
      "must be shorter than probeInterval (the indirect probe needs the rest of the interval)"
    )
  }
  if (Duration.isGreaterThan(c.healthCheckTimeout, c.healthCheckInterval)) {
    return invalid("healthCheckTimeout", "must not be longer than healthCheckInterval")
  }
  const ints: ReadonlyArray<readonly [keyof ClusterConfig & string, number, number]> = [
    ["indirectChecks", 0, 16],
    ["gossipNodes", 1, 64],
    ["retransmitMult", 1, 64],
    ["awarenessMaxMultiplier", 1, 64],
    ["phiWindowSize", 2, 100_000],
    ["maxPacketSize", 512, MAX_UDP_PAYLOAD],
    ["maxMembers", 2, 1_000_000]
  ]
  for (const [field, min, max] of ints) {
    const n = c[field] as number
    if (!Number.isInteger(n) || n < min || n > max) return invalid(field, `must be an integer in ${min}..${max}`)
  }
  if (!(Number.isFinite(c.suspicionMult) && c.suspicionMult >= 1)) return invalid("suspicionMult", "must be ≥ 1")
  if (!(Number.isFinite(c.suspicionMaxTimeoutMult) && c.suspicionMaxTimeoutMult >= 1)) {
    return invalid("suspicionMaxTimeoutMult", "must be ≥ 1")
  }
  if (
    c.suspicionConfirmations !== undefined &&
    !(Number.isInteger(c.suspicionConfirmations) && c.suspicionConfirmations >= 0 && c.suspicionConfirmations <= 64)
  ) {
    return invalid("suspicionConfirmations", "must be an integer in 0..64")
  }
  if (!(Number.isFinite(c.phiThreshold) && c.phiThreshold > 0)) return invalid("phiThreshold", "must be > 0")
  const bound = aliveAnnouncementBound(c)
  if (bound > c.maxPacketSize - PACKET_OVERHEAD_RESERVE) {
    return invalid(
      "tags",
      `name, addresses and tags take up to ${bound} bytes; at most ${
        c.maxPacketSize - PACKET_OVERHEAD_RESERVE
      } fit a ${c.maxPacketSize}-byte packet`
    )
  }
  return undefined
}

/**
 * Builds and validates a configuration. Missing fields take the
 * {@link defaults}; a missing `nodeId` is drawn from `Random` and a missing
 * `nodeName` derived from it.
 */
export const make = Effect.fnUntraced(function* (input: Input = {}) {
  const identity = yield* readIdentity(input)
  const configured =
    input.nodeId === undefined
      ? undefined
      : yield* decodeNodeId(input.nodeId.trim().toLowerCase()).pipe(
          Effect.mapError(() => invalid("nodeId", `expected a UUID v4, got "${input.nodeId}"`))
        )
  if (identity !== undefined && configured !== undefined && configured !== identity.nodeId) {
    return yield* invalid(
      "nodeId",
      `is ${configured}, but the identity certificate binds ${identity.nodeId} (leave nodeId out to take the certificate's)`
    )
  }
  const nodeId = identity?.nodeId ?? configured ?? (yield* makeNodeId)
  if ((input.requireIdentities ?? defaults.requireIdentities) && identity === undefined) {
    return yield* invalid(
      "requireIdentities",
      "needs this node's identity (identityCertificate, identityKey, identityCa)"
    )
  }
  const addresses: Partial<Record<"bindAddress" | "advertiseAddress" | "rpcAddress", Address>> = {}
  for (const field of ["bindAddress", "advertiseAddress", "rpcAddress"] as const) {
    const value = field === "bindAddress" ? (input.bindAddress ?? defaults.bindAddress) : input[field]
    if (value === undefined) continue
    const address = toAddress(field, value)
    if (isError(address)) return yield* address
    addresses[field] = address
  }
  if (input.tags !== undefined) {
    const tagProblem = checkTags(input.tags)
    if (tagProblem !== undefined) return yield* tagProblem
  }
  const durations = {} as Record<DurationField, Duration.Duration>
  for (const field of durationFields) {
    const d = toDuration(field, input[field] ?? defaults[field])
    if (isError(d)) return yield* d
    durations[field] = d
  }
  // Defaults that depend on a field the user did set: a shorter probe or
  // health interval pulls the matching timeout's default down with it
  // (to half the interval), instead of failing on a value nobody wrote.
  if (input.pingTimeout === undefined) {
    durations.pingTimeout = Duration.min(durations.pingTimeout, Duration.divideUnsafe(durations.probeInterval, 2))
  }
  if (input.healthCheckTimeout === undefined) {
    durations.healthCheckTimeout = Duration.min(
      durations.healthCheckTimeout,
      Duration.divideUnsafe(durations.healthCheckInterval, 2)
    )
  }
  const config = new ClusterConfig(
    {
      nodeId,
      nodeName: input.nodeName ?? `node-${nodeId.slice(0, 8)}`,
      clusterLabel: input.clusterLabel ?? defaults.clusterLabel,
      bindAddress: addresses.bindAddress!,
      ...(addresses.advertiseAddress === undefined ? {} : { advertiseAddress: addresses.advertiseAddress }),
      ...(addresses.rpcAddress === undefined ? {} : { rpcAddress: addresses.rpcAddress }),
      seedNodes: [...(input.seedNodes ?? [])],
      tags: { ...input.tags },
      ...durations,
      indirectChecks: input.indirectChecks ?? defaults.indirectChecks,
      gossipNodes: input.gossipNodes ?? defaults.gossipNodes,
      suspicionMult: input.suspicionMult ?? defaults.suspicionMult,
      suspicionMaxTimeoutMult: input.suspicionMaxTimeoutMult ?? defaults.suspicionMaxTimeoutMult,
      ...(input.suspicionConfirmations === undefined ? {} : { suspicionConfirmations: input.suspicionConfirmations }),
      retransmitMult: input.retransmitMult ?? defaults.retransmitMult,
      awarenessMaxMultiplier: input.awarenessMaxMultiplier ?? defaults.awarenessMaxMultiplier,
      retryJoin: input.retryJoin ?? defaults.retryJoin,
      tcpPings: input.tcpPings ?? defaults.tcpPings,
      ...(input.keyring === undefined
        ? {}
        : { keyring: input.keyring.map((key) => (Redacted.isRedacted(key) ? key : Redacted.make(key))) }),
      encryptOutgoing: input.encryptOutgoing ?? defaults.encryptOutgoing,
      requireEncryption: input.requireEncryption ?? defaults.requireEncryption,
      ...(identity === undefined
        ? {}
        : {
            identityCertificate: identity.material.certificate,
            identityKey: identity.material.key,
            identityCa: identity.material.ca
          }),
      requireIdentities: input.requireIdentities ?? defaults.requireIdentities,
      phiThreshold: input.phiThreshold ?? defaults.phiThreshold,
      phiWindowSize: input.phiWindowSize ?? defaults.phiWindowSize,
      maxPacketSize: input.maxPacketSize ?? defaults.maxPacketSize,
      maxMembers: input.maxMembers ?? defaults.maxMembers
    },
    { disableChecks: true }
  )
  const problem = checkFields(config)
  if (problem !== undefined) return yield* problem
  return config
})

const IDENTITY_FIELDS = ["identityCertificate", "identityKey", "identityCa"] as const

/** PEM text or a path to it: the file is read; `Redacted` text stays redacted. */
const readPemSource = (
  field: (typeof IDENTITY_FIELDS)[number],
  source: string | Redacted.Redacted<string>
): Effect.Effect<string, InvalidConfiguration> => {
  const text = Redacted.isRedacted(source) ? Redacted.value(source) : source
  if (text.includes("-----BEGIN ")) return Effect.succeed(text)
  if (Redacted.isRedacted(source)) return Effect.fail(invalid(field, "the key given in memory is not PEM text"))
  return Effect.tryPromise({
    try: () => readFile(text.trim(), "utf8"),
    catch: (cause) =>
      invalid(field, `cannot read ${text.trim()} (${cause instanceof Error ? cause.message : String(cause)})`)
  }).pipe(
    Effect.flatMap((pem) =>
      pem.includes("-----BEGIN ") ? Effect.succeed(pem) : Effect.fail(invalid(field, `${text.trim()} is not PEM text`))
    )
  )
}

/** The identity the input names, read and checked (all three fields, or none). */
const readIdentity = Effect.fnUntraced(function* (input: Input) {
  const given = IDENTITY_FIELDS.filter((field) => input[field] !== undefined)
  if (given.length === 0) return undefined
  const missing = IDENTITY_FIELDS.find((field) => input[field] === undefined)
  if (missing !== undefined) return yield* invalid(missing, `is needed with ${given.join(" and ")}`)
  const certificate = yield* readPemSource("identityCertificate", input.identityCertificate!)
  const key = Redacted.make(yield* readPemSource("identityKey", input.identityKey!))
  const ca = yield* readPemSource("identityCa", input.identityCa!)
  const material = { certificate, key, ca }
  const loaded = loadIdentity(material)
  if (Result.isFailure(loaded)) return yield* invalid("identityCertificate", loaded.failure)
  return { nodeId: loaded.success.nodeId, material }
})

/** The configuration's fields back in {@link Input} form, for building a changed copy. */
export const toInput = (config: ClusterConfig): Input => ({ ...config })

/** A copy with some fields changed, validated again. */
export const update: {
  (patch: Input): (self: ClusterConfig) => Effect.Effect<ClusterConfig, InvalidConfiguration>
  (self: ClusterConfig, patch: Input): Effect.Effect<ClusterConfig, InvalidConfiguration>
} = dual(2, (self: ClusterConfig, patch: Input) => make({ ...toInput(self), ...patch }))

/** A copy with these tags added (replacing same-named ones), validated again. */
export const withTags: {
  (tags: Readonly<Record<string, string>>): (self: ClusterConfig) => Effect.Effect<ClusterConfig, InvalidConfiguration>
  (self: ClusterConfig, tags: Readonly<Record<string, string>>): Effect.Effect<ClusterConfig, InvalidConfiguration>
} = dual(2, (self: ClusterConfig, tags: Readonly<Record<string, string>>) =>
  update(self, { tags: { ...self.tags, ...tags } })
)

/** A copy with these seeds added, validated again. */
export const withSeedNodes: {
  (seeds: ReadonlyArray<string>): (self: ClusterConfig) => Effect.Effect<ClusterConfig, InvalidConfiguration>
  (self: ClusterConfig, seeds: ReadonlyArray<string>): Effect.Effect<ClusterConfig, InvalidConfiguration>
} = dual(2, (self: ClusterConfig, seeds: ReadonlyArray<string>) =>
  update(self, { seedNodes: [...self.seedNodes, ...seeds] })
)

/** The environment variable each field is read from by {@link fromEnv}. */
export const environmentVariables = {
  nodeId: "SHOAL_NODE_ID",
  nodeName: "SHOAL_NODE_NAME",
  clusterLabel: "SHOAL_CLUSTER_LABEL",
  bindAddress: "SHOAL_BIND",
  advertiseAddress: "SHOAL_ADVERTISE",
  rpcAddress: "SHOAL_RPC_ADDRESS",
  seedNodes: "SHOAL_SEEDS",
  tags: "SHOAL_TAGS",
  probeInterval: "SHOAL_PROBE_INTERVAL",
  pingTimeout: "SHOAL_PING_TIMEOUT",
  indirectChecks: "SHOAL_INDIRECT_CHECKS",
  gossipInterval: "SHOAL_GOSSIP_INTERVAL",
  gossipNodes: "SHOAL_GOSSIP_NODES",
  gossipToTheDeadTime: "SHOAL_GOSSIP_TO_THE_DEAD_TIME",
  suspicionMult: "SHOAL_SUSPICION_MULT",
  suspicionMaxTimeoutMult: "SHOAL_SUSPICION_MAX_TIMEOUT_MULT",
  suspicionConfirmations: "SHOAL_SUSPICION_CONFIRMATIONS",
  retransmitMult: "SHOAL_RETRANSMIT_MULT",
  awarenessMaxMultiplier: "SHOAL_AWARENESS_MAX_MULTIPLIER",
  pushPullInterval: "SHOAL_PUSH_PULL_INTERVAL",
  reconnectInterval: "SHOAL_RECONNECT_INTERVAL",
  reconnectTimeout: "SHOAL_RECONNECT_TIMEOUT",
  reapAfter: "SHOAL_REAP_AFTER",
  tombstoneTtl: "SHOAL_TOMBSTONE_TTL",
  joinTimeout: "SHOAL_JOIN_TIMEOUT",
  retryJoin: "SHOAL_RETRY_JOIN",
  retryJoinInterval: "SHOAL_RETRY_JOIN_INTERVAL",
  tcpPings: "SHOAL_TCP_PINGS",
  keyring: "SHOAL_KEYRING",
  encryptOutgoing: "SHOAL_ENCRYPT_OUTGOING",
  requireEncryption: "SHOAL_REQUIRE_ENCRYPTION",
  identityCertificate: "SHOAL_IDENTITY_CERT",
  identityKey: "SHOAL_IDENTITY_KEY",
  identityCa: "SHOAL_IDENTITY_CA",
  requireIdentities: "SHOAL_REQUIRE_IDENTITIES",
  replayWindow: "SHOAL_REPLAY_WINDOW",
  leaveTimeout: "SHOAL_LEAVE_TIMEOUT",
  phiThreshold: "SHOAL_PHI_THRESHOLD",
  phiWindowSize: "SHOAL_PHI_WINDOW_SIZE",
  phiMinStdDeviation: "SHOAL_PHI_MIN_STD_DEVIATION",
  phiAcceptablePause: "SHOAL_PHI_ACCEPTABLE_PAUSE",
  maxPacketSize: "SHOAL_MAX_PACKET_SIZE",
  maxMembers: "SHOAL_MAX_MEMBERS",
  healthCheckInterval: "SHOAL_HEALTH_CHECK_INTERVAL",
  healthCheckTimeout: "SHOAL_HEALTH_CHECK_TIMEOUT"
} as const satisfies Record<keyof Input, string>

const numberFields: ReadonlySet<keyof Input> = new Set([
  "indirectChecks",
  "gossipNodes",
  "suspicionMult",
  "suspicionMaxTimeoutMult",
  "suspicionConfirmations",
  "retransmitMult",
  "awarenessMaxMultiplier",
  "phiThreshold",
  "phiWindowSize",
  "maxPacketSize",
  "maxMembers"
])

const splitList = (text: string) =>
  text
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0)

/** Parses one environment value into its {@link Input} form; the error names the variable. */
const parseEnvValue = (
  field: keyof Input,
  variable: string,
  text: string
): Input[keyof Input] | InvalidConfiguration => {
  if (field === "seedNodes") return splitList(text)
  if (field === "keyring") return splitList(text).map((key) => Redacted.make(key))
  if (field === "tags") {
    const tags: Record<string, string> = {}
    for (const pair of splitList(text)) {
      const eq = pair.indexOf("=")
      if (eq <= 0) return invalid(variable, `expected key=value pairs separated by commas, got "${pair}"`)
      tags[pair.slice(0, eq).trim()] = pair.slice(eq + 1).trim()
    }
    return tags
  }
  if (field === "identityKey") return Redacted.make(text.trim())
  if (
    field === "retryJoin" ||
    field === "tcpPings" ||
    field === "encryptOutgoing" ||
    field === "requireEncryption" ||
    field === "requireIdentities"
  ) {
    const lower = text.trim().toLowerCase()
    if (["true", "1", "yes"].includes(lower)) return true
    if (["false", "0", "no"].includes(lower)) return false
    return invalid(variable, `expected true or false, got "${text}"`)
  }
  if (numberFields.has(field)) {
    const n = Number(text.trim())
    return text.trim().length === 0 || Number.isNaN(n) ? invalid(variable, `expected a number, got "${text}"`) : n
  }
  if ((durationFields as ReadonlyArray<string>).includes(field)) {
    return Option.match(parseDuration(text), {
      onNone: () => invalid(variable, `expected ${DURATION_SYNTAX}, got "${text}"`),
      onSome: (d) => d
    })
  }
  return text.trim()
}

const fieldsOfInput = Object.keys(environmentVariables) as ReadonlyArray<keyof Input>

/** The variable name of `field` under `prefix`: `SHOAL` + `probeInterval` → `SHOAL_PROBE_INTERVAL`. */
const variableOf = (prefix: string, field: keyof Input): string =>
  `${prefix}_${environmentVariables[field].slice("SHOAL_".length)}`

/** Every variable as text, if set, under `prefix` (the names of {@link environmentVariables} past `SHOAL_`). */
const rawUnder = (prefix: string) =>
  Config.all(
    Object.fromEntries(
      fieldsOfInput.map((field) => [
        field,
        Config.option(Config.String(environmentVariables[field].slice("SHOAL_".length)))
      ])
    ) as Record<keyof Input, Config.Config<Option.Option<string>>>
  ).pipe(Config.nested(prefix))

/** The set variables parsed into {@link Input}; the error names the variable. */
const parseRaw = (
  prefix: string,
  raw: Readonly<Record<keyof Input, Option.Option<string>>>
): { readonly input: Input; readonly fields: ReadonlySet<keyof Input> } | InvalidConfiguration => {
  const input: Record<string, unknown> = {}
  const fields = new Set<keyof Input>()
  for (const field of fieldsOfInput) {
    const value = raw[field]
    if (Option.isNone(value)) continue
    const parsed = parseEnvValue(field, variableOf(prefix, field), value.value)
    if (isError(parsed)) return parsed
    input[field] = parsed
    fields.add(field)
  }
  return { input: input as Input, fields }
}

/**
 * The configuration's fields as an effect `Config` read under `prefix`:
 * `configUnder("APP")` reads `APP_BIND`, `APP_SEEDS`, `APP_TAGS`, … (the
 * names of {@link environmentVariables} with `APP` for `SHOAL`), from
 * whatever `ConfigProvider` is in force (the environment by default). It
 * yields the {@link Input} the variables set — unset ones are absent, so
 * spread it over your own input — and fails with a `ConfigError` naming the
 * variable when a value does not parse. Nest it further with `Config.nested`.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { Cluster, ClusterConfig } from "shoal"
 *
 * // APP_BIND=0.0.0.0:7946 APP_SEEDS=10.0.0.1:7946 APP_TAGS=role=worker …
 * const ClusterLive = Layer.unwrap(
 *   Effect.gen(function* () {
 *     const input = yield* ClusterConfig.configUnder("APP")
 *     return Cluster.layer({ nodeName: "worker", ...input })
 *   })
 * )
 * ```
 */
export const configUnder = (prefix: string): Config.Config<Input> =>
  rawUnder(prefix).pipe(
    Config.mapEffect((raw) => {
      const parsed = parseRaw(prefix, raw)
      return isError(parsed)
        ? Effect.fail(
            new Config.ConfigError(new ConfigProvider.SourceError({ message: parsed.message, cause: parsed }))
          )
        : Effect.succeed(parsed.input)
    })
  )

/** {@link configUnder} with the default prefix: `SHOAL_BIND`, `SHOAL_SEEDS`, … */
export const config: Config.Config<Input> = /*#__PURE__*/ configUnder("SHOAL")

/**
 * Reads the configuration from the environment (through effect `Config`, so
 * a `ConfigProvider` can supply it instead) and makes it:
 * `SHOAL_BIND=0.0.0.0:7946`, `SHOAL_SEEDS=a:7946,b:7946`,
 * `SHOAL_TAGS=role=worker,zone=a`, `SHOAL_PROBE_INTERVAL=1s`, … (see
 * {@link environmentVariables}; another `prefix` reads `PREFIX_BIND`, …).
 * Fields set in `base` are used where the environment says nothing. Errors
 * are `InvalidConfiguration`s naming the variable.
 */
export const fromEnv = Effect.fnUntraced(function* (base: Input = {}, prefix = "SHOAL") {
  // The same variables `configUnder(prefix)` reads, asked of the provider directly: building 35 `Config`
  // values (a schema codec each) cost the agent several milliseconds of start-up.
  const provider = yield* ConfigProvider.ConfigProvider
  const raw = {} as Record<keyof Input, Option.Option<string>>
  for (const field of fieldsOfInput) {
    const variable = environmentVariables[field].slice("SHOAL_".length)
    const node = yield* provider
      .load([prefix, variable])
      .pipe(Effect.mapError((error) => invalid(variableOf(prefix, field), error.message)))
    raw[field] =
      node !== undefined && node._tag !== "Array" && node.value !== undefined ? Option.some(node.value) : Option.none()
  }
  const parsed = parseRaw(prefix, raw)
  if (isError(parsed)) return yield* parsed
  return yield* make({ ...base, ...parsed.input }).pipe(
    Effect.mapError((error) =>
      parsed.fields.has(error.field as keyof Input)
        ? invalid(variableOf(prefix, error.field as keyof Input), error.reason)
        : error
    )
  )
})

/** `host:port` of the gossip address, for logs. */
export const describe = (config: ClusterConfig): string =>
  `${config.nodeName} (${config.nodeId}) at ${formatAddress(config.gossipAddress)}`
