/**
 * RPC benchmark over TLS on loopback, all contenders in the same run:
 *
 * - **floor**: a length-prefixed echo on plain `node:tls`, no RPC layer;
 * - **grpc-js**: `@grpc/grpc-js` with identity serializers (no protobuf work);
 * - **effect/rpc**: bare `RpcServer` / `RpcClient` over `NodeSocketServer.layerTls` /
 *   `NodeSocket.layerTls` with SchemaBinary, as effect documents it;
 * - **shoal**: shoal's `RpcServer` (a cluster member) called through shoal's
 *   cluster client from a second member, and through `RpcClient.connect`.
 *
 * Each server runs in a child process (server and client get a core each);
 * the clients take turns in this process. Rows: unary latency with one call
 * in flight (p50, p99), unary calls/s with 64 in flight, server-streaming
 * messages/s from a pre-chunked source and from a producer that emits one
 * element per async step, and 4 KiB echo MB/s (payload bytes one way). Then
 * two sections that back shoal's choices: effect/rpc's serializations, and
 * the streaming settings for one-element-at-a-time producers.
 *
 *   npx node bench/rpc.ts            # everything (about 3 minutes)
 *   npx node bench/rpc.ts --quick    # shorter rounds
 *   npx node bench/rpc.ts --only=main,serializations,streaming
 */
import { type ChildProcess, spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { generateCerts, removeCerts } from "../test/fixtures/certs.ts"
import type { Job, Measurement, Result } from "./rpc/client.ts"
import type { StreamOptions } from "./rpc/clients.ts"
import type { ServerSettings } from "./rpc/protocol.ts"

const args = process.argv.slice(2)
const quick = args.includes("--quick")
const only = args
  .find((a) => a.startsWith("--only="))
  ?.slice("--only=".length)
  .split(",")
const sections = new Set(only ?? ["main", "serializations", "streaming"])

/** Milliseconds per timed round, rounds per measurement (the best is kept), warm-up per client. */
const T = quick
  ? { millis: 1_000, rounds: 1, sectionRounds: 1, warmup: 500 }
  : { millis: 2_000, rounds: 3, sectionRounds: 2, warmup: 1_000 }

interface Certs {
  readonly ca: string
  readonly cert: string
  readonly key: string
}

const script = (name: string) => fileURLToPath(new URL(`./rpc/${name}`, import.meta.url))
const servers: Array<ChildProcess> = []

/** Starts a server process; resolves with what it printed once it listens. */
const startServer = (settings: Omit<ServerSettings, "cert" | "key" | "ca">, certs: Certs) =>
  new Promise<{ readonly port: number; readonly gossip?: string }>((resolve, reject) => {
    const child = spawn(process.execPath, [script("server.ts"), JSON.stringify({ ...settings, ...certs })], {
      stdio: ["ignore", "pipe", "inherit"]
    })
    servers.push(child)
    child.once("error", reject)
    child.once("exit", (code, signal) => {
      if (signal !== "SIGKILL") reject(new Error(`${settings.kind} server exited with ${code ?? signal}`))
    })
    let buffered = ""
    child.stdout!.on("data", (chunk) => {
      buffered += String(chunk)
      const newline = buffered.indexOf("\n")
      if (newline >= 0) resolve(JSON.parse(buffered.slice(0, newline)))
    })
  })

const stopServers = () => {
  for (const child of servers.splice(0)) child.kill("SIGKILL")
}
process.on("exit", stopServers)

/** Runs a client process for `job`; resolves with its results. */
const runClient = (job: Job) =>
  new Promise<Array<Result>>((resolve, reject) => {
    const child = spawn(process.execPath, [script("client.ts"), JSON.stringify(job)], {
      stdio: ["ignore", "pipe", "inherit"]
    })
    let out = ""
    child.stdout!.on("data", (chunk) => void (out += String(chunk)))
    child.once("exit", (code) =>
      code === 0 ? resolve(JSON.parse(out.trim())) : reject(new Error(`${job.contender} client exited with ${code}`))
    )
  })

const perSecond = (r: Result | undefined) => (r !== undefined && "perSecond" in r ? r.perSecond : Number.NaN)
const p = (r: Result | undefined, key: "p50" | "p99") => (r !== undefined && key in r ? (r as never)[key] : Number.NaN)

// --- printing ---

const fmt = (n: number, digits = 0) =>
  Number.isFinite(n) ? n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits }) : "–"
const ratio = (a: number, b: number) =>
  Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}×` : "–"

const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>) => {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (cells: ReadonlyArray<string>) =>
    `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(" | ")} |`
  console.log(line(header))
  console.log(`| ${widths.map((w, i) => (i === 0 ? "-".repeat(w) : `${"-".repeat(w - 1)}:`)).join(" | ")} |`)
  for (const row of rows) console.log(line(row))
  console.log()
}

const STREAM_CHUNKED = 200_000
const STREAM_SINGLE = 50_000
const KIB4 = 4096

const latency: Measurement = { kind: "latency", millis: T.millis }
const calls64: Measurement = { kind: "throughput", millis: T.millis, inFlight: 64, size: 16 }
const bytes4k: Measurement = { kind: "throughput", millis: T.millis, inFlight: 64, size: KIB4 }
const stream = (n: number, mode: "chunked" | "single", options?: StreamOptions) =>
  ({ kind: "stream", millis: T.millis, n, mode, ...(options === undefined ? {} : { options }) }) as const

interface Row {
  readonly p50: number
  readonly p99: number
  readonly calls64: number
  readonly chunked: number
  readonly single: number
  readonly mb4k: number
}

/** The best of two rounds, row by row. */
const best = (a: Row | undefined, b: Row): Row =>
  a === undefined
    ? b
    : {
        p50: Math.min(a.p50, b.p50),
        p99: Math.min(a.p99, b.p99),
        calls64: Math.max(a.calls64, b.calls64),
        chunked: Math.max(a.chunked, b.chunked),
        single: Math.max(a.single, b.single),
        mb4k: Math.max(a.mb4k, b.mb4k)
      }

const main = async (certs: Certs) => {
  console.log("## RPC over TLS on loopback\n")
  const [floorServer, grpcServer, effectServer, shoalServer] = await Promise.all([
    startServer({ kind: "floor" }, certs),
    startServer({ kind: "grpc" }, certs),
    startServer({ kind: "effect" }, certs),
    startServer({ kind: "shoal" }, certs)
  ])
  const contenders: ReadonlyArray<readonly [string, Job["contender"], number, string | undefined]> = [
    ["floor", "floor", floorServer.port, undefined],
    ["grpc-js", "grpc", grpcServer.port, undefined],
    ["effect/rpc", "effect", effectServer.port, undefined],
    ["shoal", "shoal", shoalServer.port, shoalServer.gossip],
    ["shoal direct", "shoal-direct", shoalServer.port, undefined]
  ]
  // Rounds go round the contenders, so each one samples the same stretches of machine noise.
  const results: Record<string, Row> = {}
  for (let round = 0; round < T.rounds; round++) {
    for (const [name, contender, port, gossip] of contenders) {
      process.stderr.write(`  round ${round + 1}: ${name}\n`)
      const r = await runClient({
        contender,
        port,
        ...(gossip === undefined ? {} : { gossip }),
        ca: certs.ca,
        warmupMillis: T.warmup,
        rounds: 1,
        measurements: [latency, calls64, stream(STREAM_CHUNKED, "chunked"), stream(STREAM_SINGLE, "single"), bytes4k]
      })
      results[name] = best(results[name], {
        p50: p(r[0], "p50"),
        p99: p(r[0], "p99"),
        calls64: perSecond(r[1]),
        chunked: perSecond(r[2]),
        single: perSecond(r[3]),
        mb4k: (perSecond(r[4]) * KIB4) / 1e6
      })
    }
  }
  stopServers()
  const names = contenders.map(([name]) => name)
  const rows: Array<[string, keyof Row, number, boolean]> = [
    ["unary p50 latency, 1 in flight (µs)", "p50", 0, true],
    ["unary p99 latency, 1 in flight (µs)", "p99", 0, true],
    ["unary calls/s, 64 in flight", "calls64", 0, false],
    ["stream msgs/s, pre-chunked source", "chunked", 0, false],
    ["stream msgs/s, one element at a time", "single", 0, false],
    ["4 KiB echo MB/s, 64 in flight", "mb4k", 1, false]
  ]
  const shoal = results.shoal!
  const direct = results["shoal direct"]!
  const bare = results["effect/rpc"]!
  const g = results["grpc-js"]!
  table(
    ["row", ...names, "shoal / effect", "direct / effect", "shoal / grpc", "effect / grpc"],
    rows.map(([label, key, digits, lowerIsBetter]) => {
      const r = (a: Row, b: Row) => (lowerIsBetter ? ratio(b[key], a[key]) : ratio(a[key], b[key]))
      return [
        label,
        ...names.map((n) => fmt(results[n]![key], digits)),
        r(shoal, bare),
        r(direct, bare),
        r(shoal, g),
        r(bare, g)
      ]
    })
  )
  console.log("Ratios are speed-ups: above 1× the first is faster (latency rows are inverted).\n")
}

const serializations = async (certs: Certs) => {
  console.log("## effect/rpc serializations on this transport (bare effect/rpc, TLS loopback)\n")
  const kinds = ["binary", "binary-fingerprint", "ndjson", "ndjson-rpc"] as const
  const ports = await Promise.all(kinds.map((serialization) => startServer({ kind: "effect", serialization }, certs)))
  const found = new Map<string, ReadonlyArray<number>>()
  for (let round = 0; round < T.sectionRounds; round++) {
    for (const [i, serialization] of kinds.entries()) {
      process.stderr.write(`  round ${round + 1}: ${serialization}\n`)
      const r = await runClient({
        contender: "effect",
        port: ports[i]!.port,
        serialization,
        ca: certs.ca,
        warmupMillis: T.warmup,
        rounds: 1,
        measurements: [latency, calls64, stream(STREAM_CHUNKED, "chunked"), bytes4k]
      })
      const now = [p(r[0], "p50"), perSecond(r[1]), perSecond(r[2]), (perSecond(r[3]) * KIB4) / 1e6]
      const before = found.get(serialization)
      found.set(
        serialization,
        before === undefined ? now : now.map((v, j) => (j === 0 ? Math.min(v, before[j]!) : Math.max(v, before[j]!)))
      )
    }
  }
  stopServers()
  table(
    ["serialization", "p50 µs", "calls/s, 64 in flight", "stream msgs/s (chunked)", "4 KiB MB/s"],
    kinds.map((k) => {
      const [p50, calls, chunked, mb] = found.get(k)!
      return [k, fmt(p50!), fmt(calls!), fmt(chunked!), fmt(mb!, 1)]
    })
  )
}

const streaming = async (certs: Certs) => {
  console.log("## Streaming settings: one element per async step vs a pre-chunked source\n")
  const [effectServer, noAcks, grpcServer] = await Promise.all([
    startServer({ kind: "effect" }, certs),
    startServer({ kind: "effect", acks: false }, certs),
    startServer({ kind: "grpc" }, certs)
  ])
  const variants: ReadonlyArray<readonly [string, Job["contender"], number, boolean, StreamOptions | undefined]> = [
    ["grpc-js (reference)", "grpc", grpcServer.port, true, undefined],
    ["effect/rpc defaults (ack per chunk, client queue 16)", "effect", effectServer.port, true, undefined],
    ["client streamBufferSize 256 only", "effect", effectServer.port, true, { streamBufferSize: 256 }],
    ...[16, 64, 256, 1024].map(
      (size) =>
        [
          `producer Stream.buffer(${size}), client queue ${size}${size === 256 ? " (shoal)" : ""}`,
          "effect",
          effectServer.port,
          true,
          { buffer: `buffer:${size}`, streamBufferSize: size }
        ] as const
    ),
    ["acks off on both sides, no buffer", "effect", noAcks.port, false, undefined]
  ]
  const found = new Map<string, readonly [number, number]>()
  for (let round = 0; round < T.sectionRounds; round++) {
    for (const [label, contender, port, acks, options] of variants) {
      process.stderr.write(`  round ${round + 1}: ${label}\n`)
      const r = await runClient({
        contender,
        port,
        ...(acks ? {} : { acks: false }),
        ca: certs.ca,
        warmupMillis: T.warmup,
        rounds: 1,
        measurements: [stream(STREAM_SINGLE, "single", options), stream(STREAM_CHUNKED, "chunked", options)]
      })
      const before = found.get(label) ?? [0, 0]
      found.set(label, [Math.max(before[0], perSecond(r[0])), Math.max(before[1], perSecond(r[1]))])
    }
  }
  const rows = variants.map(([label]) => [label, fmt(found.get(label)![0]), fmt(found.get(label)![1])])
  stopServers()
  table(["setting", "msgs/s, one at a time", "msgs/s, pre-chunked"], rows)
}

const certs = generateCerts()
const paths: Certs = { ca: certs.ca, cert: certs.node.cert, key: certs.node.key }
try {
  console.log(`node ${process.version}, ${quick ? "quick" : "full"} rounds\n`)
  if (sections.has("main")) await main(paths)
  if (sections.has("serializations")) await serializations(paths)
  if (sections.has("streaming")) await streaming(paths)
} finally {
  stopServers()
  removeCerts(certs)
}
process.exit(0)
