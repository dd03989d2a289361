/**
 * How a node serves and calls RPCs: its TLS identity, whom it trusts, where
 * it listens, how connections are kept alive and, optionally, the cluster it
 * joins while serving.
 *
 * The PEM files are read and checked when the configuration is made (a
 * certificate that does not parse, a key that does not match its certificate,
 * a file that is missing or unreadable), so a configuration that exists can
 * be served; every rejection is an `InvalidConfiguration` naming the field
 * and the file. The material is kept in memory (the keys `Redacted`); make a
 * new configuration to pick up renewed certificates.
 *
 * Used as a module: `RpcConfig.make({...})`, `RpcConfig.withCluster`, and the
 * type `RpcConfig.RpcConfig`.
 *
 * @module
 * @since 0.1.0
 */
import { readFile } from "node:fs/promises"
import { createSecureContext } from "node:tls"
import * as Config from "effect/Config"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as ClusterConfig from "../cluster/Config.ts"
import { DURATION_SYNTAX, type DurationInput, parseDuration } from "../cluster/DurationText.ts"
import { InvalidConfiguration } from "../cluster/Errors.ts"
import { Address, parseAddress } from "../cluster/Node.ts"

/** PEM text given in memory instead of a path (a certificate or a CA bundle). */
export interface Pem {
  readonly pem: string | Uint8Array
}

/** A certificate or CA as configuration accepts it: a path to a PEM file, or the PEM itself. */
export type CertificateSource = string | Pem

/** A private key as configuration accepts it: a path to a PEM file, or the PEM itself, `Redacted`. */
export type KeySource = string | Redacted.Redacted<string | Uint8Array>

/** PEM material as read: its file (`undefined` when given in memory) and its bytes. */
export interface PemFile {
  readonly path: string | undefined
  readonly pem: Buffer
}

/** A private key as read; the bytes stay redacted so they never reach a log. */
export interface PemKey {
  readonly path: string | undefined
  readonly pem: Redacted.Redacted<Buffer>
}

/** The TLS material of a configuration, read and checked. */
export interface TlsMaterial {
  /** This node's certificate chain, served to clients. */
  readonly certificate: PemFile | undefined
  readonly key: PemKey | undefined
  /** The trust anchors for the other side; `undefined` means Node's default roots. */
  readonly ca: PemFile | undefined
  /** What this node presents when it calls a server (see {@link Input.clientCertificate}). */
  readonly clientCertificate: PemFile | undefined
  readonly clientKey: PemKey | undefined
}

/** What a server does with the cluster it joins: a validated config, or the input to make one at every start. */
export type ClusterSetting = ClusterConfig.ClusterConfig | ClusterConfig.Input

/** The validated values of a configuration (paths as given, `undefined` for PEM given in memory; the contents are in `tls`). */
export interface Fields {
  readonly certificatePath: string | undefined
  readonly keyPath: string | undefined
  readonly caPath: string | undefined
  readonly serverName: string | undefined
  readonly bindAddress: Address
  readonly advertiseAddress: Address | undefined
  readonly keepAlive: Duration.Duration
  readonly keepAliveTimeout: Duration.Duration
  readonly connectTimeout: Duration.Duration
  readonly requireClientCertificate: boolean
  readonly maxConnections: number
  readonly maxFrameBytes: number
  readonly handshakeTimeout: Duration.Duration
  readonly idleTimeout: Duration.Duration
  readonly clientCertificatePath: string | undefined
  readonly clientKeyPath: string | undefined
  readonly streamBufferSize: number
  /** The cluster a server joins, if any. */
  readonly cluster: ClusterSetting | undefined
}

/**
 * A validated RPC configuration. Build it with {@link make}; the constructor
 * trusts its arguments. A plain class rather than a Schema: it holds key
 * material, which has no business being encoded.
 */
export class RpcConfig {
  declare readonly certificatePath: Fields["certificatePath"]
  declare readonly keyPath: Fields["keyPath"]
  declare readonly caPath: Fields["caPath"]
  declare readonly serverName: Fields["serverName"]
  declare readonly bindAddress: Fields["bindAddress"]
  declare readonly advertiseAddress: Fields["advertiseAddress"]
  declare readonly keepAlive: Fields["keepAlive"]
  declare readonly keepAliveTimeout: Fields["keepAliveTimeout"]
  declare readonly connectTimeout: Fields["connectTimeout"]
  declare readonly requireClientCertificate: Fields["requireClientCertificate"]
  declare readonly maxConnections: Fields["maxConnections"]
  declare readonly maxFrameBytes: Fields["maxFrameBytes"]
  declare readonly handshakeTimeout: Fields["handshakeTimeout"]
  declare readonly idleTimeout: Fields["idleTimeout"]
  declare readonly clientCertificatePath: Fields["clientCertificatePath"]
  declare readonly clientKeyPath: Fields["clientKeyPath"]
  declare readonly streamBufferSize: Fields["streamBufferSize"]
  declare readonly cluster: Fields["cluster"]
  readonly tls: TlsMaterial

  constructor(fields: Fields, tls: TlsMaterial) {
    Object.assign(this, fields)
    this.tls = tls
  }

  /** The validated values, for building a changed copy. */
  get fields(): Fields {
    const { tls: _, ...fields } = this
    return fields
  }
}

/** An address as configuration accepts it: `"host:port"` or `{ host, port }`. */
export type AddressInput = ClusterConfig.AddressInput

/**
 * What {@link make} accepts. TLS material is a path to a PEM file or the PEM
 * itself (`{ pem }`; a key as `Redacted`), so `DevTls.generate()` from
 * `shoal/testing` spreads straight in; durations are typed as the cluster's
 * are (`"2s"`, `"500 millis"`, a number of milliseconds, a `Duration`).
 */
export interface Input {
  /** This node's certificate (chain), served to clients. Required to serve. */
  readonly certificate?: CertificateSource | undefined
  /** The private key of `certificate`. */
  readonly key?: KeySource | undefined
  /**
   * The CA certificate(s) to trust: the cluster's private CA, or a
   * self-signed server certificate. Servers use it to check client
   * certificates, clients to check servers. Without it clients trust Node's
   * default roots.
   */
  readonly ca?: CertificateSource | undefined
  /**
   * The name a server's certificate must carry. Without it a client checks
   * the host it dials (an IP address is checked against the certificate's IP
   * entries). A cluster whose node certificates all carry one DNS name sets it
   * here.
   */
  readonly serverName?: string | undefined
  /** Where the RPC listener binds (default `0.0.0.0:7947`; port 0 lets the system choose). */
  readonly bindAddress?: AddressInput | undefined
  /**
   * The RPC address the node advertises to the cluster when the bound one is
   * not what others should dial (NAT, a wildcard bind). Must have a concrete port.
   */
  readonly advertiseAddress?: AddressInput | undefined
  /** How often an idle client pings its server, and the TCP keep-alive delay on both sides (default 5 s). */
  readonly keepAlive?: DurationInput | undefined
  /** How long a client waits for any frame from its server before it drops the connection (default 15 s). */
  readonly keepAliveTimeout?: DurationInput | undefined
  /** How long dialing (TCP and the TLS handshake) may take (default 5 s). */
  readonly connectTimeout?: DurationInput | undefined
  /**
   * Mutual TLS: the server refuses clients without a certificate signed by
   * `ca`. Default: on whenever a `ca` is configured (a cluster with a private
   * CA authenticates both ends); `false` turns it off explicitly.
   */
  readonly requireClientCertificate?: boolean | undefined
  /** Connections a server holds at once; one more is closed at once (default 256). */
  readonly maxConnections?: number | undefined
  /**
   * The largest RPC message (one frame) a server reads, in bytes; a frame
   * that claims more closes the connection (default 4 MiB). Stream large
   * payloads instead.
   */
  readonly maxFrameBytes?: number | undefined
  /** How long a client may take to complete the TLS handshake before the server drops it (default 10 s). */
  readonly handshakeTimeout?: DurationInput | undefined
  /**
   * How long a server keeps a connection on which nothing arrives (default
   * 60 s; shoal's clients ping every `keepAlive`, so only a stalled or
   * hostile peer is ever idle that long).
   */
  readonly idleTimeout?: DurationInput | undefined
  /**
   * The certificate a client presents to servers. Without it, a node that
   * serves with `requireClientCertificate` presents its own `certificate`
   * (one cluster certificate per node, both directions); otherwise none.
   */
  readonly clientCertificate?: CertificateSource | undefined
  /** The private key of `clientCertificate`. */
  readonly clientKey?: KeySource | undefined
  /**
   * How many stream elements may wait between a producer and the wire, and
   * between the wire and a consumer (default {@link DEFAULT_STREAM_BUFFER_SIZE}).
   * See `RpcServer` for why streams are coalesced.
   */
  readonly streamBufferSize?: number | undefined
  /** The cluster to join while serving (see {@link withCluster}). */
  readonly cluster?: ClusterSetting | undefined
}

/**
 * Stream elements buffered per call on each side. Measured (bench/rpc): with
 * 256 a one-element-at-a-time producer reaches the throughput of a pre-chunked
 * one; smaller values cost throughput, larger ones only memory.
 */
export const DEFAULT_STREAM_BUFFER_SIZE = 256

/** Defaults for everything optional. */
export const defaults = {
  bindAddress: "0.0.0.0:7947",
  keepAlive: "5 seconds",
  keepAliveTimeout: "15 seconds",
  connectTimeout: "5 seconds",
  maxConnections: 256,
  maxFrameBytes: 4 * 1024 * 1024,
  handshakeTimeout: "10 seconds",
  idleTimeout: "60 seconds",
  streamBufferSize: DEFAULT_STREAM_BUFFER_SIZE
} as const

const invalid = (field: string, reason: string) => new InvalidConfiguration({ field, reason })

const toAddress = (field: string, input: AddressInput): Effect.Effect<Address, InvalidConfiguration> => {
  if (typeof input === "string") {
    const parsed = parseAddress(input)
    return parsed === undefined
      ? Effect.fail(invalid(field, `expected host:port, got "${input}"`))
      : Effect.succeed(parsed)
  }
  const { host, port } = input
  if (typeof host !== "string" || host.length === 0 || !Number.isInteger(port) || port < 0 || port > 65535) {
    return Effect.fail(invalid(field, "expected { host, port } with a port in 0..65535"))
  }
  return Effect.succeed(new Address({ host, port }))
}

/**
 * A positive, finite duration from any {@link DurationInput}; the error names
 * `field`. Shared by the RPC settings that take durations.
 */
export const duration = (
  field: string,
  input: DurationInput
): Effect.Effect<Duration.Duration, InvalidConfiguration> => {
  const parsed = typeof input === "string" ? parseDuration(input) : Duration.fromInput(input as Duration.Input)
  if (Option.isNone(parsed)) return Effect.fail(invalid(field, `expected ${DURATION_SYNTAX}`))
  const d = parsed.value
  if (!Duration.isFinite(d) || !Duration.isPositive(d))
    return Effect.fail(invalid(field, "must be positive and finite"))
  return Effect.succeed(d)
}

const describeError = (cause: unknown): string => {
  if (cause instanceof Error) {
    const code = (cause as { code?: unknown }).code
    return typeof code === "string" ? `${code}: ${cause.message}` : cause.message
  }
  return String(cause)
}

const describeSource = (path: string | undefined, field: string) => path ?? `the ${field} given in memory`

/** Reads one PEM file, or takes the PEM given; anything but PEM text names the field (and the file). */
const readPem = (
  field: string,
  source: CertificateSource | KeySource
): Effect.Effect<{ readonly path: string | undefined; readonly pem: Buffer }, InvalidConfiguration> => {
  const check = (path: string | undefined, pem: Buffer) =>
    pem.includes("-----BEGIN ")
      ? Effect.succeed({ path, pem })
      : Effect.fail(invalid(field, `${describeSource(path, field)} is not PEM text`))
  if (typeof source === "string") {
    return Effect.tryPromise({
      try: () => readFile(source),
      catch: (cause) => invalid(field, `cannot read ${source} (${describeError(cause)})`)
    }).pipe(Effect.flatMap((pem) => check(source, pem)))
  }
  if (Redacted.isRedacted(source)) {
    const value = Redacted.value(source)
    return typeof value === "string" || value instanceof Uint8Array
      ? check(undefined, Buffer.from(value))
      : Effect.fail(invalid(field, "expected a path or PEM text (a key as Redacted)"))
  }
  if (
    typeof source === "object" &&
    source !== null &&
    (typeof source.pem === "string" || source.pem instanceof Uint8Array)
  ) {
    return check(undefined, Buffer.from(source.pem))
  }
  return Effect.fail(invalid(field, "expected a path or { pem } (a key as a path or Redacted PEM)"))
}

/** Whether Node's TLS accepts the material; the error says which part it rejected. */
const checkSecureContext = (
  field: string,
  path: string | undefined,
  options: Parameters<typeof createSecureContext>[0]
): Effect.Effect<void, InvalidConfiguration> =>
  Effect.try({
    try: () => void createSecureContext(options),
    catch: (cause) => invalid(field, `${describeSource(path, field)} was rejected by TLS (${describeError(cause)})`)
  })

const readPair = (
  certField: string,
  keyField: string,
  certSource: CertificateSource | undefined,
  keySource: KeySource | undefined
): Effect.Effect<readonly [PemFile | undefined, PemKey | undefined], InvalidConfiguration> =>
  Effect.gen(function* () {
    if (certSource === undefined && keySource === undefined) return [undefined, undefined] as const
    if (certSource === undefined) return yield* invalid(certField, `is required when ${keyField} is set`)
    if (keySource === undefined) return yield* invalid(keyField, `is required when ${certField} is set`)
    const cert = yield* readPem(certField, certSource)
    const key = yield* readPem(keyField, keySource)
    yield* checkSecureContext(certField, cert.path, { cert: cert.pem })
    yield* checkSecureContext(keyField, key.path, { key: key.pem })
    yield* checkSecureContext(keyField, key.path, { cert: cert.pem, key: key.pem }).pipe(
      Effect.mapError(() =>
        invalid(
          keyField,
          `${describeSource(key.path, keyField)} is not the private key of ${describeSource(cert.path, certField)}`
        )
      )
    )
    return [cert, { path: key.path, pem: Redacted.make(key.pem) }] as const
  })

/** A path must not be blank; PEM given in memory is checked when it is read. */
const nonEmpty = <A>(field: string, value: A): Effect.Effect<A, InvalidConfiguration> =>
  typeof value !== "string" || value.trim().length > 0
    ? Effect.succeed(value)
    : Effect.fail(invalid(field, "must not be empty"))

const pathOf = (source: CertificateSource | KeySource | undefined): string | undefined =>
  typeof source === "string" ? source : undefined

/** Checks a cluster setting once, so a bad one fails when the RPC configuration is made. */
const checkCluster = (cluster: ClusterSetting): Effect.Effect<void, InvalidConfiguration> =>
  cluster instanceof ClusterConfig.ClusterConfig ? Effect.void : Effect.asVoid(ClusterConfig.make(cluster))

/**
 * Builds and validates a configuration and reads its PEM files. Missing
 * fields take the {@link defaults}.
 */
export const make = Effect.fnUntraced(function* (input: Input = {}) {
  const certificateSource = yield* nonEmpty("certificate", input.certificate)
  const keySource = yield* nonEmpty("key", input.key)
  const caSource = yield* nonEmpty("ca", input.ca)
  const clientCertificateSource = yield* nonEmpty("clientCertificate", input.clientCertificate)
  const clientKeySource = yield* nonEmpty("clientKey", input.clientKey)
  const serverName = yield* nonEmpty("serverName", input.serverName)
  const bindAddress = yield* toAddress("bindAddress", input.bindAddress ?? defaults.bindAddress)
  const advertiseAddress =
    input.advertiseAddress === undefined ? undefined : yield* toAddress("advertiseAddress", input.advertiseAddress)
  if (advertiseAddress !== undefined && advertiseAddress.port === 0) {
    return yield* invalid("advertiseAddress", "must name a concrete port, not 0")
  }
  const keepAlive = yield* duration("keepAlive", input.keepAlive ?? defaults.keepAlive)
  const keepAliveTimeout = yield* duration("keepAliveTimeout", input.keepAliveTimeout ?? defaults.keepAliveTimeout)
  if (Duration.isLessThan(keepAliveTimeout, keepAlive)) {
    return yield* invalid("keepAliveTimeout", "must not be shorter than keepAlive")
  }
  const connectTimeout = yield* duration("connectTimeout", input.connectTimeout ?? defaults.connectTimeout)
  const streamBufferSize = input.streamBufferSize ?? defaults.streamBufferSize
  if (!Number.isInteger(streamBufferSize) || streamBufferSize < 1 || streamBufferSize > 1_000_000) {
    return yield* invalid("streamBufferSize", "must be an integer in 1..1000000")
  }
  const requireClientCertificate = input.requireClientCertificate ?? caSource !== undefined
  if (requireClientCertificate && caSource === undefined) {
    return yield* invalid(
      "ca",
      "is required with requireClientCertificate (client certificates are checked against it)"
    )
  }
  const maxConnections = input.maxConnections ?? defaults.maxConnections
  if (!Number.isInteger(maxConnections) || maxConnections < 1 || maxConnections > 1_000_000) {
    return yield* invalid("maxConnections", "must be an integer in 1..1000000")
  }
  const maxFrameBytes = input.maxFrameBytes ?? defaults.maxFrameBytes
  if (!Number.isInteger(maxFrameBytes) || maxFrameBytes < 1024 || maxFrameBytes > 1024 * 1024 * 1024) {
    return yield* invalid("maxFrameBytes", "must be an integer from 1024 (1 KiB) to 1073741824 (1 GiB)")
  }
  const handshakeTimeout = yield* duration("handshakeTimeout", input.handshakeTimeout ?? defaults.handshakeTimeout)
  const idleTimeout = yield* duration("idleTimeout", input.idleTimeout ?? defaults.idleTimeout)
  if (input.cluster !== undefined) yield* checkCluster(input.cluster)

  const [certificate, key] = yield* readPair("certificate", "key", certificateSource, keySource)
  const [clientCertificate, clientKey] = yield* readPair(
    "clientCertificate",
    "clientKey",
    clientCertificateSource,
    clientKeySource
  )
  const ca = caSource === undefined ? undefined : yield* readPem("ca", caSource)
  if (ca !== undefined) yield* checkSecureContext("ca", ca.path, { ca: ca.pem })

  return new RpcConfig(
    {
      certificatePath: pathOf(certificateSource),
      keyPath: pathOf(keySource),
      caPath: pathOf(caSource),
      serverName,
      bindAddress,
      advertiseAddress,
      keepAlive,
      keepAliveTimeout,
      connectTimeout,
      requireClientCertificate,
      maxConnections,
      maxFrameBytes,
      handshakeTimeout,
      idleTimeout,
      clientCertificatePath: pathOf(clientCertificateSource),
      clientKeyPath: pathOf(clientKeySource),
      streamBufferSize,
      cluster: input.cluster
    },
    { certificate, key, ca, clientCertificate, clientKey }
  )
})

/** A configuration as given: validated already, or the input to {@link make}. */
export const resolve = (config: RpcConfig | Input): Effect.Effect<RpcConfig, InvalidConfiguration> =>
  config instanceof RpcConfig ? Effect.succeed(config) : make(config)

/**
 * A copy that joins this cluster while serving. A `ClusterConfig.Input` is
 * checked now and made again at every server start, so each start draws a
 * fresh node id unless the input fixes one; a `ClusterConfig` is used as it is.
 * Either way the server fills in `rpcAddress` (unless it is set) with the
 * address it advertises.
 */
export const withCluster: {
  (cluster: ClusterSetting): (self: RpcConfig) => Effect.Effect<RpcConfig, InvalidConfiguration>
  (self: RpcConfig, cluster: ClusterSetting): Effect.Effect<RpcConfig, InvalidConfiguration>
} = dual(2, (self: RpcConfig, cluster: ClusterSetting) =>
  Effect.as(checkCluster(cluster), new RpcConfig({ ...self.fields, cluster }, self.tls))
)

/**
 * The certificate a client presents: the configured client certificate, or,
 * on a node that requires client certificates, its own.
 */
export const clientIdentity = (config: RpcConfig): { readonly cert: PemFile; readonly key: PemKey } | undefined => {
  const { clientCertificate, clientKey, certificate, key } = config.tls
  if (clientCertificate !== undefined && clientKey !== undefined) return { cert: clientCertificate, key: clientKey }
  if (config.requireClientCertificate && certificate !== undefined && key !== undefined) {
    return { cert: certificate, key }
  }
  return undefined
}

/** The environment variable each field is read from by {@link config} (and {@link fromEnv}). */
export const environmentVariables = {
  certificate: "SHOAL_RPC_CERTIFICATE",
  key: "SHOAL_RPC_KEY",
  ca: "SHOAL_RPC_CA",
  serverName: "SHOAL_RPC_SERVER_NAME",
  bindAddress: "SHOAL_RPC_BIND",
  advertiseAddress: "SHOAL_RPC_ADVERTISE",
  keepAlive: "SHOAL_RPC_KEEP_ALIVE",
  keepAliveTimeout: "SHOAL_RPC_KEEP_ALIVE_TIMEOUT",
  connectTimeout: "SHOAL_RPC_CONNECT_TIMEOUT",
  requireClientCertificate: "SHOAL_RPC_REQUIRE_CLIENT_CERTIFICATE",
  maxConnections: "SHOAL_RPC_MAX_CONNECTIONS",
  maxFrameBytes: "SHOAL_RPC_MAX_FRAME_BYTES",
  handshakeTimeout: "SHOAL_RPC_HANDSHAKE_TIMEOUT",
  idleTimeout: "SHOAL_RPC_IDLE_TIMEOUT",
  clientCertificate: "SHOAL_RPC_CLIENT_CERTIFICATE",
  clientKey: "SHOAL_RPC_CLIENT_KEY",
  streamBufferSize: "SHOAL_RPC_STREAM_BUFFER_SIZE"
} as const satisfies Partial<Record<keyof Input, string>>

type EnvField = keyof typeof environmentVariables

const envFields = Object.keys(environmentVariables) as ReadonlyArray<EnvField>

const suffixOf = (field: EnvField) => environmentVariables[field].slice("SHOAL_RPC_".length)

const parseEnvField = (field: EnvField, variable: string, text: string): unknown => {
  const trimmed = text.trim()
  if (field === "requireClientCertificate") {
    if (["true", "1", "yes"].includes(trimmed.toLowerCase())) return true
    if (["false", "0", "no"].includes(trimmed.toLowerCase())) return false
    return invalid(variable, `expected true or false, got "${text}"`)
  }
  if (field === "streamBufferSize" || field === "maxConnections" || field === "maxFrameBytes") {
    const n = Number(trimmed)
    return trimmed.length === 0 || Number.isNaN(n) ? invalid(variable, `expected a number, got "${text}"`) : n
  }
  if (
    field === "keepAlive" ||
    field === "keepAliveTimeout" ||
    field === "connectTimeout" ||
    field === "handshakeTimeout" ||
    field === "idleTimeout"
  ) {
    return Option.isNone(parseDuration(trimmed))
      ? invalid(variable, `expected ${DURATION_SYNTAX}, got "${text}"`)
      : trimmed
  }
  return trimmed
}

/**
 * The RPC settings as an effect `Config` read under `prefix`:
 * `configUnder("APP_RPC")` reads `APP_RPC_CERTIFICATE`, `APP_RPC_KEY`,
 * `APP_RPC_CA`, `APP_RPC_BIND`, … (the names of {@link environmentVariables}
 * with `APP_RPC` for `SHOAL_RPC`). TLS material comes as file paths. It
 * yields the {@link Input} the variables set (spread it over your own and
 * pass it to {@link make}) and fails with a `ConfigError` naming the variable
 * when a value does not parse.
 */
export const configUnder = (prefix: string): Config.Config<Input> =>
  Config.all(
    Object.fromEntries(envFields.map((field) => [field, Config.option(Config.String(suffixOf(field)))])) as Record<
      EnvField,
      Config.Config<Option.Option<string>>
    >
  ).pipe(
    Config.nested(prefix),
    Config.mapEffect((raw) => {
      const input: Record<string, unknown> = {}
      for (const field of envFields) {
        const value = raw[field]
        if (Option.isNone(value)) continue
        const parsed = parseEnvField(field, `${prefix}_${suffixOf(field)}`, value.value)
        if (parsed instanceof InvalidConfiguration) {
          return Effect.fail(
            new Config.ConfigError(new ConfigProvider.SourceError({ message: parsed.message, cause: parsed }))
          )
        }
        input[field] = parsed
      }
      return Effect.succeed(input as Input)
    })
  )

/** {@link configUnder} with the default prefix: `SHOAL_RPC_CERTIFICATE`, `SHOAL_RPC_BIND`, … */
export const config: Config.Config<Input> = /*#__PURE__*/ configUnder("SHOAL_RPC")

/**
 * Reads the RPC settings from the environment (`SHOAL_RPC_*`, see
 * {@link environmentVariables}) over `base` and makes the configuration;
 * errors are `InvalidConfiguration`s.
 */
export const fromEnv = (base: Input = {}, prefix = "SHOAL_RPC"): Effect.Effect<RpcConfig, InvalidConfiguration> =>
  configUnder(prefix).pipe(
    Effect.mapError((error) => invalid(prefix, error.message)),
    Effect.flatMap((input) => make({ ...base, ...input }))
  )
