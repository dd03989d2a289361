/**
 * One bench/rpc client, in a fresh process so that no contender inherits
 * another's JIT state or garbage:
 *
 *   node bench/rpc/client.ts '<json job>'
 *
 * Runs the job's measurements and prints one JSON line with the results.
 */
import { EventEmitter } from "node:events"
import {
  bareEffect,
  type Contender,
  floor,
  grpc,
  type StreamMode,
  type StreamOptions,
  shoalCluster,
  shoalDirect
} from "./clients.ts"
import type { ServerSettings } from "./protocol.ts"

export type Measurement =
  | { readonly kind: "latency"; readonly millis: number }
  | { readonly kind: "throughput"; readonly millis: number; readonly inFlight: number; readonly size: number }
  | {
      readonly kind: "stream"
      readonly millis: number
      readonly n: number
      readonly mode: StreamMode
      readonly options?: StreamOptions
    }

export interface Job {
  readonly contender: "floor" | "grpc" | "effect" | "shoal" | "shoal-direct"
  readonly port: number
  readonly gossip?: string
  readonly ca: string
  readonly serialization?: ServerSettings["serialization"]
  readonly acks?: boolean
  readonly warmupMillis: number
  /** Each measurement is taken this many times; the best round is reported. */
  readonly rounds: number
  readonly measurements: ReadonlyArray<Measurement>
}

export type Result = { readonly p50: number; readonly p99: number } | { readonly perSecond: number }

EventEmitter.defaultMaxListeners = 0

const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!

const measure = async (c: Contender, m: Measurement, warmupMillis: number): Promise<Result> => {
  switch (m.kind) {
    case "latency": {
      const warmUntil = performance.now() + warmupMillis
      while (performance.now() < warmUntil) await c.latency(100)
      const samples: Array<number> = []
      const until = performance.now() + m.millis
      while (performance.now() < until) samples.push(...(await c.latency(100)))
      samples.sort((a, b) => a - b)
      return { p50: percentile(samples, 0.5) * 1000, p99: percentile(samples, 0.99) * 1000 }
    }
    case "throughput": {
      await c.throughput(warmupMillis, m.inFlight, m.size)
      return { perSecond: ((await c.throughput(m.millis, m.inFlight, m.size)) * 1000) / m.millis }
    }
    case "stream": {
      const warmUntil = performance.now() + warmupMillis
      while (performance.now() < warmUntil) await c.stream(Math.min(m.n, 5_000), m.mode, m.options)
      let received = 0
      const started = performance.now()
      do {
        const got = await c.stream(m.n, m.mode, m.options)
        if (got !== m.n) throw new Error(`${c.name}: a stream of ${m.n} delivered ${got}`)
        received += got
      } while (performance.now() - started < m.millis)
      return { perSecond: (received * 1000) / (performance.now() - started) }
    }
  }
}

const better = (a: Result, b: Result): Result =>
  "perSecond" in a && "perSecond" in b
    ? a.perSecond >= b.perSecond
      ? a
      : b
    : "p50" in a && "p50" in b
      ? { p50: Math.min(a.p50, b.p50), p99: Math.min(a.p99, b.p99) }
      : a

const job = JSON.parse(process.argv[2] ?? "{}") as Job
const certs = { ca: job.ca, cert: "", key: "" }
const contender = await (() => {
  switch (job.contender) {
    case "floor":
      return floor("floor", job.port, certs)
    case "grpc":
      return grpc("grpc-js", job.port, certs)
    case "effect":
      return bareEffect("effect/rpc", job.port, certs, {
        ...(job.serialization === undefined ? {} : { serialization: job.serialization }),
        ...(job.acks === undefined ? {} : { acks: job.acks })
      })
    case "shoal":
      return shoalCluster("shoal", job.gossip!, certs)
    case "shoal-direct":
      return shoalDirect("shoal direct", job.port, certs)
  }
})()
const results: Array<Result> = []
for (const m of job.measurements) {
  let best: Result | undefined
  for (let round = 0; round < job.rounds; round++) {
    const r = await measure(contender, m, round === 0 ? job.warmupMillis : 0)
    best = best === undefined ? r : better(best, r)
  }
  results.push(best!)
}
await contender.close()
process.stdout.write(`${JSON.stringify(results)}\n`)
process.exit(0)
