/**
 * A worker: serves `generate` over TLS and is a cluster member tagged
 * `role=worker, label=<name>`. It joins through the director's gossip
 * address; nothing registers it anywhere, and nothing sends heartbeats — the
 * cluster does both.
 *
 * Its `AvailabilityCheck` reports whether it accepts more work: it turns
 * unhealthy while it serves `capacity` streams or more, so the director
 * (which discovers `role=worker, healthy=true`) stops sending it new ones.
 *
 * Simulated failures, for the demo: `SWAP_CRASH_AFTER` (the process kills
 * itself that long after its first stream began — no leave, like a crash)
 * and `SWAP_ERROR_AFTER` (each stream fails with `GenerationFailed` after
 * that long).
 *
 *   SWAP_LABEL=worker-a SWAP_RPC=127.0.0.1:7101 SWAP_GOSSIP=127.0.0.1:7201 npx node examples/connection_swap/worker.ts
 */
import { fileURLToPath } from "node:url"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as Stream from "effect/Stream"
import type * as ClusterConfig from "../../src/cluster/Config.ts"
import { parseDuration } from "../../src/cluster/DurationText.ts"
import { Cluster, HealthCheck, HealthStatus, RpcServer } from "../../src/index.ts"
import { defaults, env, GenerationFailed, SwapRpcs, Token, tlsFromEnv, tokenText } from "./protocol.ts"

export interface WorkerOptions {
  readonly label: string
  /** Where the RPC listener binds (`host:port`; port 0 picks one). */
  readonly rpcAddress: string
  /** Where the gossip port binds. */
  readonly gossipAddress: string
  /** The director's gossip address (or any member's). */
  readonly seeds: ReadonlyArray<string>
  readonly tls: ReturnType<typeof tlsFromEnv>
  /** Streams served at once before the availability check fails. */
  readonly capacity: number
  readonly tokenInterval: Duration.Duration
  /** Fail every stream with `GenerationFailed` after this long. */
  readonly errorAfter?: Duration.Duration | undefined
  /** Extra cluster settings (timings, health-check interval). */
  readonly cluster?: ClusterConfig.Input | undefined
  /** Leave gracefully on close (default `true`); `false` simulates a crash. */
  readonly leaveOnClose?: boolean | undefined
}

/** How many streams this worker is serving, and when it started its first. */
export class WorkerLoad extends Context.Service<
  WorkerLoad,
  { readonly active: Ref.Ref<number>; readonly firstStreamAt: Ref.Ref<Option.Option<number>> }
>()("connection_swap/WorkerLoad") {
  static readonly layer = Layer.effect(
    WorkerLoad,
    Effect.gen(function* () {
      return WorkerLoad.of({ active: yield* Ref.make(0), firstStreamAt: yield* Ref.make(Option.none<number>()) })
    })
  )
}

/** Healthy while the worker serves fewer than `capacity` streams. */
export const availabilityCheck = (active: Ref.Ref<number>, capacity: number) =>
  HealthCheck.make(
    "availability",
    Effect.map(Ref.get(active), (n) =>
      n < capacity
        ? HealthStatus.healthy(`${n}/${capacity} streams`)
        : HealthStatus.unhealthy(`busy: ${n}/${capacity} streams`, { active: String(n) })
    )
  )

const handlers = (options: WorkerOptions) =>
  SwapRpcs.toLayer(
    Effect.gen(function* () {
      const load = yield* WorkerLoad
      return SwapRpcs.of({
        generate: ({ prompt, resumeFrom, connectionId, length }) =>
          Stream.unwrap(
            Effect.gen(function* () {
              const start = resumeFrom ?? 0
              const total = length ?? defaults.tokens
              const began = yield* Clock.currentTimeMillis
              yield* Ref.update(load.active, (n) => n + 1)
              yield* Ref.update(load.firstStreamAt, (first) => (Option.isSome(first) ? first : Option.some(began)))
              const tokens = Stream.range(start, Math.max(start, total) - 1).pipe(
                Stream.mapEffect((seq) =>
                  Effect.gen(function* () {
                    yield* Effect.sleep(options.tokenInterval)
                    const now = yield* Clock.currentTimeMillis
                    if (options.errorAfter !== undefined && now - began >= Duration.toMillis(options.errorAfter)) {
                      return yield* new GenerationFailed({ worker: options.label, seq, reason: "simulated error" })
                    }
                    return new Token({
                      connectionId: connectionId ?? "direct",
                      worker: options.label,
                      seq,
                      text: tokenText(prompt, seq)
                    })
                  })
                )
              )
              return (start >= total ? Stream.empty : tokens).pipe(
                Stream.ensuring(Ref.update(load.active, (n) => n - 1))
              )
            })
          )
      })
    })
  )

/** The worker: its RPC server (a cluster member) with its availability check installed. */
export const workerLayer = (options: WorkerOptions) => {
  const server = RpcServer.layer(
    SwapRpcs,
    {
      ...options.tls,
      bindAddress: options.rpcAddress,
      cluster: {
        nodeName: options.label,
        bindAddress: options.gossipAddress,
        seedNodes: options.seeds,
        tags: { role: "worker", label: options.label },
        healthCheckInterval: "1 second",
        ...options.cluster
      }
    },
    { leaveOnClose: options.leaveOnClose ?? true }
  ).pipe(Layer.provide(handlers(options)))
  const checks = Layer.effectDiscard(
    Effect.gen(function* () {
      const rpc = yield* RpcServer
      const load = yield* WorkerLoad
      // RpcServer.layer provides the server's cluster too
      const cluster = yield* Cluster
      yield* cluster.addHealthCheck(availabilityCheck(load.active, options.capacity))
      const self = yield* cluster.localNode
      yield* Effect.logInfo(
        `worker ${options.label} serving on ${rpc.advertisedAddress}, gossip ${self.gossipAddress}, capacity ${options.capacity}`
      )
    })
  )
  return Layer.provideMerge(checks, server).pipe(Layer.provideMerge(WorkerLoad.layer))
}

const durationFromEnv = (name: string): Duration.Duration | undefined => {
  const text = process.env[name]
  if (text === undefined || text.trim() === "") return undefined
  return Option.getOrThrowWith(parseDuration(text), () => new Error(`${name}: not a duration: ${text}`))
}

/** Reads the worker's options from `SWAP_*` variables. */
export const optionsFromEnv = (): WorkerOptions => ({
  label: env("SWAP_LABEL", "worker"),
  rpcAddress: env("SWAP_RPC", "127.0.0.1:0"),
  gossipAddress: env("SWAP_GOSSIP", "127.0.0.1:0"),
  seeds: env("SWAP_SEEDS", defaults.directorGossip).split(","),
  tls: tlsFromEnv(),
  capacity: Number(env("SWAP_CAPACITY", String(defaults.capacity))),
  tokenInterval: durationFromEnv("SWAP_TOKEN_INTERVAL") ?? defaults.tokenInterval,
  errorAfter: durationFromEnv("SWAP_ERROR_AFTER")
})

/** Kills this process (no leave, no cleanup) `after` its first stream began. */
const crashAfter = (after: Duration.Duration) =>
  Effect.gen(function* () {
    const load = yield* WorkerLoad
    while (Option.isNone(yield* Ref.get(load.firstStreamAt))) yield* Effect.sleep("20 millis")
    yield* Effect.sleep(after)
    yield* Effect.logWarning("simulated crash")
    process.kill(process.pid, "SIGKILL")
  })

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const options = optionsFromEnv()
  const crash = durationFromEnv("SWAP_CRASH_AFTER")
  const main = crash === undefined ? Layer.empty : Layer.effectDiscard(Effect.forkScoped(crashAfter(crash)))
  Layer.launch(main.pipe(Layer.provideMerge(workerLayer(options)))).pipe(NodeRuntime.runMain)
}
