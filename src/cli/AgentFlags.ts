/**
 * The flags of `shoal agent` and how they become a `ClusterConfig`.
 *
 * Every cluster setting is an optional flag: what a flag leaves unset comes
 * from the `SHOAL_*` environment variable of the same field (through
 * `ClusterConfig.fromEnv`), and what neither sets takes the library default.
 * Values that do not even parse (`--probe-interval soon`, `--bind nowhere`)
 * are CLI usage errors reported by effect/cli; values that parse but cannot
 * work (`--ping-timeout` not below `--probe-interval`) are configuration
 * errors from `ClusterConfig.make`, renamed here to the flag or variable the
 * user actually wrote.
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import * as ConfigProvider from "effect/ConfigProvider"
import type * as Command from "effect/cli/Command"
import * as Flag from "effect/cli/Flag"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as ClusterConfig from "../cluster/Config.ts"
import { DURATION_SYNTAX, parseDuration } from "../cluster/DurationText.ts"
import { InvalidConfiguration } from "../cluster/Errors.ts"
import { parseAddress } from "../cluster/Node.ts"

/** How events are written to stdout. */
export type OutputFormat = "json" | "human"

type Field = keyof ClusterConfig.Input

/** The flag that sets each configuration field, without the leading `--`. */
export const flagNames = {
  nodeId: "node-id",
  nodeName: "name",
  clusterLabel: "label",
  bindAddress: "bind",
  advertiseAddress: "advertise",
  rpcAddress: "rpc-address",
  seedNodes: "join",
  tags: "tag",
  probeInterval: "probe-interval",
  pingTimeout: "ping-timeout",
  indirectChecks: "indirect-checks",
  gossipInterval: "gossip-interval",
  gossipNodes: "gossip-nodes",
  gossipToTheDeadTime: "gossip-to-the-dead-time",
  suspicionMult: "suspicion-mult",
  suspicionMaxTimeoutMult: "suspicion-max-timeout-mult",
  suspicionConfirmations: "suspicion-confirmations",
  retransmitMult: "retransmit-mult",
  awarenessMaxMultiplier: "awareness-max-multiplier",
  pushPullInterval: "push-pull-interval",
  reconnectInterval: "reconnect-interval",
  reconnectTimeout: "reconnect-timeout",
  reapAfter: "reap-after",
  tombstoneTtl: "tombstone-ttl",
  joinTimeout: "join-timeout",
  retryJoin: "retry-join",
  retryJoinInterval: "retry-join-interval",
  tcpPings: "tcp-pings",
  keyring: "keyring-file",
  encryptOutgoing: "encrypt-outgoing",
  requireEncryption: "require-encryption",
  identityCertificate: "identity-cert",
  identityKey: "identity-key",
  identityCa: "identity-ca",
  requireIdentities: "require-identities",
  replayWindow: "replay-window",
  leaveTimeout: "leave-timeout",
  phiThreshold: "phi-threshold",
  phiWindowSize: "phi-window-size",
  phiMinStdDeviation: "phi-min-std-deviation",
  phiAcceptablePause: "phi-acceptable-pause",
  maxPacketSize: "max-packet-size",
  maxMembers: "max-members",
  healthCheckInterval: "health-check-interval",
  healthCheckTimeout: "health-check-timeout"
} as const satisfies Record<Field, string>

type DurationField = ClusterConfig.DurationField

/** `"<what it does> (default …; env SHOAL_…)"`; `fallback` describes a default that is not a constant. */
const describe = (field: Field, text: string, fallback?: string): string => {
  const value = fallback ?? (ClusterConfig.defaults as Partial<Record<Field, unknown>>)[field]
  const defaultText = value === undefined ? "" : `default ${String(value)}; `
  return `${text} (${defaultText}env ${ClusterConfig.environmentVariables[field]})`
}

const addressFlag = (field: "bindAddress" | "advertiseAddress" | "rpcAddress", text: string, fallback?: string) =>
  Flag.String(flagNames[field]).pipe(
    Flag.filterMap(
      (s) => Option.fromUndefinedOr(parseAddress(s)),
      () => "host:port (IPv6 as [addr]:port)"
    ),
    Flag.withMetavar("host:port"),
    Flag.withDescription(describe(field, text, fallback)),
    Flag.optional
  )

const durationFlag = (field: DurationField, text: string) =>
  Flag.String(flagNames[field]).pipe(
    Flag.filterMap(parseDuration, () => DURATION_SYNTAX),
    Flag.withMetavar("duration"),
    Flag.withDescription(describe(field, text)),
    Flag.optional
  )

const intFlag = (field: Field, text: string) =>
  Flag.Int(flagNames[field]).pipe(Flag.withDescription(describe(field, text)), Flag.optional)

const numberFlag = (field: Field, text: string) =>
  Flag.Finite(flagNames[field]).pipe(Flag.withDescription(describe(field, text)), Flag.optional)

const parseTag = (text: string): Option.Option<readonly [string, string]> => {
  const eq = text.indexOf("=")
  return eq <= 0 ? Option.none() : Option.some([text.slice(0, eq).trim(), text.slice(eq + 1).trim()] as const)
}

/**
 * The flags of `shoal agent`: the cluster settings (all optional, see the
 * module comment) plus the agent's own output settings.
 */
export const agentFlags = {
  nodeId: Flag.String(flagNames.nodeId).pipe(
    Flag.withMetavar("uuid"),
    Flag.withDescription(describe("nodeId", "This node's id, a UUID v4", "a fresh random one")),
    Flag.optional
  ),
  name: Flag.String(flagNames.nodeName).pipe(
    Flag.withDescription(describe("nodeName", "This node's name", "node-<first 8 hex digits of the id>")),
    Flag.optional
  ),
  label: Flag.String(flagNames.clusterLabel).pipe(
    Flag.withDescription(describe("clusterLabel", "Cluster label; packets carrying another label are dropped")),
    Flag.optional
  ),
  bind: addressFlag("bindAddress", "UDP+TCP address to listen on; port 0 picks a free port"),
  advertise: addressFlag(
    "advertiseAddress",
    "Address the others use to reach this node",
    "the bind address; a non-loopback IPv4 when bound to 0.0.0.0"
  ),
  rpcAddress: addressFlag("rpcAddress", "RPC address to advertise in this node's gossip state", "none"),
  join: Flag.String(flagNames.seedNodes).pipe(
    Flag.filterMap(
      (s) => (parseAddress(s) === undefined ? Option.none() : Option.some(s.trim())),
      () => "host:port of a member to join through"
    ),
    Flag.withMetavar("host:port"),
    Flag.withDescription(describe("seedNodes", "Seed member to join through; repeat for several")),
    Flag.atLeast(0)
  ),
  tag: Flag.String(flagNames.tags).pipe(
    Flag.filterMap(parseTag, () => "key=value"),
    Flag.withMetavar("key=value"),
    Flag.withDescription(describe("tags", "Tag to advertise; repeat for several")),
    Flag.atLeast(0)
  ),
  probeInterval: durationFlag("probeInterval", "Time between probes of one member"),
  pingTimeout: durationFlag("pingTimeout", "Wait for a direct ack before asking others; below --probe-interval"),
  indirectChecks: intFlag("indirectChecks", "Members asked to probe indirectly (0..16)"),
  gossipInterval: durationFlag("gossipInterval", "Time between gossip rounds"),
  gossipNodes: intFlag("gossipNodes", "Members gossiped to per round (1..64)"),
  gossipToTheDeadTime: durationFlag("gossipToTheDeadTime", "How long dead members still receive gossip"),
  suspicionMult: numberFlag("suspicionMult", "Suspicion timeout multiplier (≥ 1)"),
  suspicionMaxTimeoutMult: numberFlag("suspicionMaxTimeoutMult", "Upper bound of the suspicion timeout (≥ 1)"),
  suspicionConfirmations: Flag.Int(flagNames.suspicionConfirmations).pipe(
    Flag.withDescription(
      describe(
        "suspicionConfirmations",
        "Independent accusers that shrink a suspicion to its minimum timeout (0..64)",
        "suspicion-mult − 2"
      )
    ),
    Flag.optional
  ),
  retransmitMult: intFlag("retransmitMult", "Retransmissions of each update, times log10(N+1) (1..64)"),
  awarenessMaxMultiplier: intFlag("awarenessMaxMultiplier", "Cap of the local health multiplier (1..64)"),
  pushPullInterval: durationFlag("pushPullInterval", "Time between full-state exchanges"),
  reconnectInterval: durationFlag("reconnectInterval", "Time between attempts to reach failed members"),
  reconnectTimeout: durationFlag(
    "reconnectTimeout",
    "How long a failed member stays a reconnect target, after it is reaped too"
  ),
  reapAfter: durationFlag("reapAfter", "Drop dead or departed members after this long"),
  tombstoneTtl: durationFlag("tombstoneTtl", "Remember reaped members' incarnations this long"),
  joinTimeout: durationFlag("joinTimeout", "Give up joining through the seeds after this long"),
  retryJoin: Flag.Boolean(flagNames.retryJoin).pipe(
    Flag.withDescription(describe("retryJoin", "Keep retrying the seeds in the background instead of failing")),
    Flag.optional
  ),
  retryJoinInterval: durationFlag("retryJoinInterval", "Time between join retries"),
  tcpPings: Flag.Boolean(flagNames.tcpPings).pipe(
    Flag.withDescription(
      describe("tcpPings", "When a UDP probe fails, also ping over TCP (--no-tcp-pings to turn off)")
    ),
    Flag.optional
  ),
  keyring: Flag.FileText(flagNames.keyring).pipe(
    Flag.map((text) =>
      text
        .split(/[\s,]+/)
        .filter((key) => key.length > 0)
        .map((key) => Redacted.make(key))
    ),
    Flag.withMetavar("path"),
    Flag.withDescription(
      describe(
        "keyring",
        "File of gossip keys (base64, one per line; the first is the primary): seals all gossip with AES-256-GCM",
        "none"
      )
    ),
    Flag.optional
  ),
  encryptOutgoing: Flag.Boolean(flagNames.encryptOutgoing).pipe(
    Flag.withDescription(
      describe("encryptOutgoing", "With a keyring, seal what this node sends (--no-encrypt-outgoing while upgrading)")
    ),
    Flag.optional
  ),
  requireEncryption: Flag.Boolean(flagNames.requireEncryption).pipe(
    Flag.withDescription(
      describe("requireEncryption", "With a keyring, refuse unsealed packets (--no-require-encryption while upgrading)")
    ),
    Flag.optional
  ),
  identityCertificate: Flag.String(flagNames.identityCertificate).pipe(
    Flag.withMetavar("path"),
    Flag.withDescription(
      describe(
        "identityCertificate",
        "PEM certificate binding this node's id (SAN URI urn:uuid:<id>), issued by --identity-ca: signs this node's claims",
        "none"
      )
    ),
    Flag.optional
  ),
  identityKey: Flag.String(flagNames.identityKey).pipe(
    Flag.withMetavar("path"),
    Flag.withDescription(describe("identityKey", "PEM private key of --identity-cert (EC P-256)", "none")),
    Flag.optional
  ),
  identityCa: Flag.String(flagNames.identityCa).pipe(
    Flag.withMetavar("path"),
    Flag.withDescription(describe("identityCa", "PEM certificate of the CA that issues member identities", "none")),
    Flag.optional
  ),
  requireIdentities: Flag.Boolean(flagNames.requireIdentities).pipe(
    Flag.withDescription(
      describe(
        "requireIdentities",
        "Apply others' Alive/Left only when signed by their identity; take Dead as Suspect (needs --identity-cert)"
      )
    ),
    Flag.optional
  ),
  replayWindow: durationFlag("replayWindow", "How far a sealed packet's time may be from ours (replay protection)"),
  leaveTimeout: durationFlag("leaveTimeout", "Time allowed to announce a graceful leave"),
  phiThreshold: numberFlag("phiThreshold", "phi above which a member is probed first (> 0)"),
  phiWindowSize: intFlag("phiWindowSize", "Heartbeat intervals the phi detector keeps (2..100000)"),
  phiMinStdDeviation: durationFlag("phiMinStdDeviation", "Floor of the phi detector's standard deviation"),
  phiAcceptablePause: durationFlag("phiAcceptablePause", "Pause the phi detector tolerates"),
  maxPacketSize: intFlag("maxPacketSize", "Largest UDP payload sent (512..65507)"),
  maxMembers: intFlag("maxMembers", "Members held at most; announcements beyond are refused (2..1000000)"),
  healthCheckInterval: durationFlag("healthCheckInterval", "Time between health check runs"),
  healthCheckTimeout: durationFlag("healthCheckTimeout", "Time a health check may take"),
  format: Flag.Literals("format", ["human", "json"]).pipe(
    Flag.withMetavar("human|json"),
    Flag.withDescription("Event output on stdout: aligned text, or one JSON object per line (default human)"),
    Flag.withDefault("human")
  ),
  logFormat: Flag.Literals("log-format", ["human", "json"]).pipe(
    Flag.withMetavar("human|json"),
    Flag.withDescription(
      "Logs on stderr: effect's text lines, or one JSON object per line (default human; json with --format json)"
    ),
    Flag.optional
  ),
  admin: Flag.String("admin").pipe(
    Flag.withMetavar("host:port|path|off"),
    Flag.withDescription(
      "Serve the admin interface the shoal commands use: a loopback host:port (token file) or a Unix socket path; off for none (default 127.0.0.1:7373; env SHOAL_ADMIN)"
    ),
    Flag.withFallbackConfig(Config.String("SHOAL_ADMIN")),
    Flag.withDefault("127.0.0.1:7373")
  ),
  metrics: Flag.String("metrics").pipe(
    Flag.filterMap(
      (s) => Option.fromUndefinedOr(parseAddress(s)),
      () => "host:port"
    ),
    Flag.withMetavar("host:port"),
    Flag.withDescription("Serve Prometheus metrics at http://host:port/metrics (default off)"),
    Flag.optional
  ),
  ui: Flag.String("ui").pipe(
    Flag.filterMap(
      (s) => Option.fromUndefinedOr(parseAddress(s)),
      () => "host:port"
    ),
    Flag.withMetavar("host:port"),
    Flag.withDescription("Serve the live membership page at http://host:port/ (default off)"),
    Flag.optional
  ),
  statsInterval: Flag.String("stats-interval").pipe(
    Flag.filterMap(parseDuration, () => DURATION_SYNTAX),
    Flag.withMetavar("duration"),
    Flag.withDescription("Also print a Stats line on stdout this often (default never)"),
    Flag.optional
  )
} as const

/** What effect/cli hands the agent: {@link agentFlags}, parsed. */
export type AgentFlags = Command.Command.Config.Infer<typeof agentFlags>

/** Every flag absent: what `shoal agent` with no arguments parses to (handy in tests). */
export const emptyAgentFlags: AgentFlags = {
  nodeId: Option.none(),
  name: Option.none(),
  label: Option.none(),
  bind: Option.none(),
  advertise: Option.none(),
  rpcAddress: Option.none(),
  join: [],
  tag: [],
  probeInterval: Option.none(),
  pingTimeout: Option.none(),
  indirectChecks: Option.none(),
  gossipInterval: Option.none(),
  gossipNodes: Option.none(),
  gossipToTheDeadTime: Option.none(),
  suspicionMult: Option.none(),
  suspicionMaxTimeoutMult: Option.none(),
  suspicionConfirmations: Option.none(),
  retransmitMult: Option.none(),
  awarenessMaxMultiplier: Option.none(),
  pushPullInterval: Option.none(),
  reconnectInterval: Option.none(),
  reconnectTimeout: Option.none(),
  reapAfter: Option.none(),
  tombstoneTtl: Option.none(),
  joinTimeout: Option.none(),
  retryJoin: Option.none(),
  retryJoinInterval: Option.none(),
  tcpPings: Option.none(),
  keyring: Option.none(),
  encryptOutgoing: Option.none(),
  requireEncryption: Option.none(),
  identityCertificate: Option.none(),
  identityKey: Option.none(),
  identityCa: Option.none(),
  requireIdentities: Option.none(),
  replayWindow: Option.none(),
  leaveTimeout: Option.none(),
  phiThreshold: Option.none(),
  phiWindowSize: Option.none(),
  phiMinStdDeviation: Option.none(),
  phiAcceptablePause: Option.none(),
  maxPacketSize: Option.none(),
  maxMembers: Option.none(),
  healthCheckInterval: Option.none(),
  healthCheckTimeout: Option.none(),
  format: "human",
  logFormat: Option.none(),
  admin: "127.0.0.1:7373",
  metrics: Option.none(),
  ui: Option.none(),
  statsInterval: Option.none()
}

/**
 * The configuration fields the flags set, and only those: an absent flag is
 * an absent key, so the environment and then the defaults can fill it.
 * Repeated `--tag` keys keep the last value.
 */
export const toConfigInput = (flags: AgentFlags): ClusterConfig.Input => {
  const input: Record<string, unknown> = {}
  const set = (field: Field, value: Option.Option<unknown>) => {
    if (Option.isSome(value)) input[field] = value.value
  }
  set("nodeName", flags.name)
  set("clusterLabel", flags.label)
  set("bindAddress", flags.bind)
  set("advertiseAddress", flags.advertise)
  if (flags.join.length > 0) input.seedNodes = [...flags.join]
  if (flags.tag.length > 0) input.tags = Object.fromEntries(flags.tag)
  // Every other field's flag is parsed under the field's own name.
  for (const field of Object.keys(flagNames) as Array<Field>) {
    if (field in flags) set(field, flags[field as keyof AgentFlags] as Option.Option<unknown>)
  }
  return input as ClusterConfig.Input
}

const fieldOfVariable: ReadonlyMap<string, Field> = new Map<string, Field>(
  (Object.keys(ClusterConfig.environmentVariables) as Array<Field>).map((field) => [
    ClusterConfig.environmentVariables[field],
    field
  ])
)

/**
 * The active config provider, seen through the flags: variables of fields
 * a flag set are hidden, so flags win over the environment.
 */
const shadowed = (provider: ConfigProvider.ConfigProvider, input: ClusterConfig.Input) => {
  const hidden: ReadonlySet<string> = new Set(
    (Object.keys(input) as Array<Field>)
      .filter((field) => input[field] !== undefined)
      .map((field) => ClusterConfig.environmentVariables[field])
  )
  return ConfigProvider.make((path) => {
    // `ClusterConfig.fromEnv` reads each variable as the path ["SHOAL", "PROBE_INTERVAL"]
    const variable = path.every((segment) => typeof segment === "string") ? path.join("_") : undefined
    return variable !== undefined && hidden.has(variable) ? Effect.succeed(undefined) : provider.load(path)
  })
}

/** Whether the active config provider has a value for `variable`. */
const isSet = (provider: ConfigProvider.ConfigProvider, variable: string) =>
  provider.load([variable]).pipe(
    Effect.map((node) => node !== undefined),
    Effect.orElseSucceed(() => false)
  )

/**
 * The validated configuration: flags first, then `SHOAL_*` variables from the
 * active `ConfigProvider` (the process environment unless a test provides
 * another), then defaults. A rejection names what the user wrote: `--flag`
 * when a flag set the field, the variable when the environment did, and the
 * field's flag when neither did (a default that a cross-field check refuses).
 */
export const resolveConfig = Effect.fnUntraced(function* (input: ClusterConfig.Input) {
  const provider = yield* ConfigProvider.ConfigProvider
  return yield* ClusterConfig.fromEnv(input).pipe(
    Effect.provideService(ConfigProvider.ConfigProvider, shadowed(provider, input)),
    Effect.catchTag("InvalidConfiguration", (error) =>
      Effect.gen(function* () {
        const fromVariable = fieldOfVariable.get(error.field)
        if (fromVariable !== undefined && (yield* isSet(provider, error.field))) return yield* error
        const field = fromVariable ?? (error.field in flagNames ? (error.field as Field) : undefined)
        if (field === undefined) return yield* error
        return yield* new InvalidConfiguration({ field: `--${flagNames[field]}`, reason: error.reason })
      })
    )
  )
})
