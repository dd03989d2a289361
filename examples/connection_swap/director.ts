/**
 * The director: a cluster member tagged `role=director` that serves
 * `generate` to clients by relaying a worker's stream — and moves the stream
 * to another worker when that one fails, so the client never notices.
 *
 * Workers are whatever the cluster says: members tagged `role=worker` whose
 * health checks pass (`healthy=true`). There is no management port, no
 * register call, no heartbeat loop and no worker table here.
 *
 * A stream moves when its worker's stream breaks (a crash closes the
 * connection at once, an error arrives as an error) or when the cluster
 * reports the worker Suspect, Failed or Left — whichever comes first. The
 * replacement is another healthy worker (never the one that failed), asked
 * to resume from the last sequence number relayed + 1, so the client sees
 * every token exactly once. With no healthy worker the director waits (at
 * most `noWorkerWait`), then ends the stream with `NoHealthyWorker`.
 *
 *   SWAP_RPC=127.0.0.1:7100 SWAP_GOSSIP=127.0.0.1:7200 npx node examples/connection_swap/director.ts
 */
import { fileURLToPath } from "node:url"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import * as Ref from "effect/Ref"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import type * as ClusterConfig from "../../src/cluster/Config.ts"
import { parseDuration } from "../../src/cluster/DurationText.ts"
import { Cluster, type ClusterEvent, type ClusterNode, type NodeId, RpcClient, RpcServer } from "../../src/index.ts"
import { defaults, env, NoHealthyWorker, SwapRpcs, type Token, tlsFromEnv } from "./protocol.ts"

export interface DirectorOptions {
  readonly rpcAddress: string
  readonly gossipAddress: string
  readonly tls: ReturnType<typeof tlsFromEnv>
  /** How long a stream waits for a healthy worker before failing with `NoHealthyWorker`. */
  readonly noWorkerWait: Duration.Duration
  readonly cluster?: ClusterConfig.Input | undefined
}

/** One assignment of a stream to a worker: the first, or a move after a failure. */
export interface Assignment {
  readonly connectionId: string
  readonly worker: string
  readonly resumeFrom: number
  readonly reason: "new" | "moved"
}

/** The tags that make a member eligible for new work. */
export const WORKER_TAGS = { role: "worker", healthy: "true" } as const

/**
 * The director's own state: the cluster (known once the server has joined),
 * the round-robin position, and a log of assignments (for tests and the logs).
 */
export class Director extends Context.Service<
  Director,
  {
    readonly cluster: Deferred.Deferred<Cluster["Service"]>
    readonly next: Ref.Ref<number>
    readonly assignments: Ref.Ref<ReadonlyArray<Assignment>>
  }
>()("connection_swap/Director") {
  static readonly layer = Layer.effect(
    Director,
    Effect.gen(function* () {
      return Director.of({
        cluster: yield* Deferred.make<Cluster["Service"]>(),
        next: yield* Ref.make(0),
        assignments: yield* Ref.make<ReadonlyArray<Assignment>>([])
      })
    })
  )
}

const labelOf = (node: ClusterNode) => node.tags.label ?? node.name

/**
 * The next worker in round-robin order among the healthy ones, skipping
 * `excluded` (the ones that already failed this stream); `None` when there is
 * none. Ordered by label so the rotation is stable as members come and go.
 */
export const assignWorker = (excluded: ReadonlySet<NodeId>) =>
  Effect.gen(function* () {
    const director = yield* Director
    const cluster = yield* Deferred.await(director.cluster)
    const candidates = (yield* cluster.nodesByTags(WORKER_TAGS))
      .filter((node) => !excluded.has(node.id) && node.rpcAddress !== undefined)
      .sort((a, b) => labelOf(a).localeCompare(labelOf(b)))
    if (candidates.length === 0) return Option.none<ClusterNode>()
    const turn = yield* Ref.getAndUpdate(director.next, (n) => n + 1)
    return Option.some(candidates[turn % candidates.length]!)
  })

/** Completes when the cluster reports `worker` Suspect, Failed or Left. */
const lostInCluster = (cluster: Cluster["Service"], worker: NodeId) =>
  cluster.events.pipe(
    Stream.filter(
      (event: ClusterEvent) =>
        event.node.id === worker &&
        (event._tag === "NodeSuspected" || event._tag === "NodeFailed" || event._tag === "NodeLeft")
    ),
    Stream.take(1),
    Stream.runHead
  )

/** The cluster reported the worker gone before its stream broke. */
class WorkerLost extends Schema.TaggedError<WorkerLost>()("WorkerLost", { reason: Schema.String }) {}

/** The director's `generate`: relays one worker at a time, moving on failure. */
export const relay = (
  options: DirectorOptions,
  request: { readonly prompt: string; readonly length?: number | undefined; readonly connectionId?: string | undefined }
): Stream.Stream<Token, NoHealthyWorker, Director> =>
  Stream.unwrap(
    Effect.gen(function* () {
      const director = yield* Director
      const cluster = yield* Deferred.await(director.cluster)
      const connectionId = request.connectionId ?? `c-${(yield* Random.nextIntBetween(0, 0xffffff)).toString(16)}`
      let next = 0
      const excluded = new Set<NodeId>()

      const waitForWorker = Effect.gen(function* () {
        const started = yield* Clock.currentTimeMillis
        while (true) {
          const worker = yield* assignWorker(excluded)
          if (Option.isSome(worker)) return worker.value
          const waited = (yield* Clock.currentTimeMillis) - started
          if (waited >= Duration.toMillis(options.noWorkerWait)) {
            return yield* new NoHealthyWorker({ connectionId, waitedMillis: waited })
          }
          yield* Effect.sleep("100 millis")
        }
      })

      const attempt = (reason: Assignment["reason"]): Stream.Stream<Token, NoHealthyWorker, Director> =>
        Stream.unwrap(
          Effect.gen(function* () {
            const worker = yield* waitForWorker
            const assignment: Assignment = { connectionId, worker: labelOf(worker), resumeFrom: next, reason }
            yield* Ref.update(director.assignments, (all) => [...all, assignment])
            yield* Effect.logInfo(
              reason === "new"
                ? `stream ${connectionId} -> ${assignment.worker}`
                : `stream ${connectionId} moved -> ${assignment.worker}, resuming at ${next}`
            )
            const tokens = Stream.unwrap(
              Effect.map(RpcClient.connect(SwapRpcs, worker, options.tls, { reconnect: false }), (client) =>
                client.generate({ prompt: request.prompt, resumeFrom: next, connectionId, ...lengthOf(request) })
              )
            )
            return tokens.pipe(
              Stream.tap((token) => Effect.sync(() => void (next = token.seq + 1))),
              Stream.interruptWhen(
                Effect.flatMap(lostInCluster(cluster, worker.id), () =>
                  Effect.fail(new WorkerLost({ reason: `${assignment.worker} is no longer alive in the cluster` }))
                )
              ),
              // Any end but success moves the stream: a failure (broken connection, the worker's
              // error, the cluster's verdict) or the worker interrupting the call as it shuts down.
              // Our own interruption (the client went away) is not recoverable and ends here.
              Stream.catchCause((cause) =>
                Effect.logWarning(
                  `stream ${connectionId}: worker ${assignment.worker} failed at ${next}: ${describeCause(cause)}`
                ).pipe(
                  Effect.andThen(Effect.sync(() => excluded.add(worker.id))),
                  Effect.as(attempt("moved")),
                  Stream.unwrap
                )
              )
            )
          })
        )

      return attempt("new")
    })
  )

const lengthOf = (request: { readonly length?: number | undefined }) =>
  request.length === undefined ? {} : { length: request.length }

const describe = (error: unknown): string => {
  if (typeof error !== "object" || error === null) return String(error)
  if ("message" in error && typeof error.message === "string" && error.message.length > 0) return error.message
  if ("reason" in error && typeof error.reason === "string") return error.reason
  return "_tag" in error ? String(error._tag) : String(error)
}

const describeCause = (cause: Cause.Cause<unknown>): string =>
  Cause.hasInterruptsOnly(cause)
    ? "the worker interrupted the call"
    : Option.match(Cause.findErrorOption(cause), { onNone: () => Cause.pretty(cause), onSome: describe })

/** The director: its RPC server (a cluster member tagged `role=director`) relaying to workers. */
export const directorLayer = (options: DirectorOptions) => {
  const handlers = SwapRpcs.toLayer(
    Effect.gen(function* () {
      const director = yield* Director
      return SwapRpcs.of({
        generate: (request) => relay(options, request).pipe(Stream.provideService(Director, director))
      })
    })
  )
  const server = RpcServer.layer(SwapRpcs, {
    ...options.tls,
    bindAddress: options.rpcAddress,
    cluster: {
      nodeName: "director",
      bindAddress: options.gossipAddress,
      tags: { role: "director" },
      ...options.cluster
    }
  }).pipe(Layer.provide(handlers))
  // Once the server has joined, hand its cluster to the handlers, and log who comes and goes.
  const ready = Layer.effectDiscard(
    Effect.gen(function* () {
      const rpc = yield* RpcServer
      const director = yield* Director
      // RpcServer.layer provides the server's cluster too
      const cluster = yield* Cluster
      yield* Deferred.succeed(director.cluster, cluster)
      const { events, members } = yield* cluster.watch
      const workers = members.filter((m) => m.tags.role === "worker" && m.state === "Alive")
      yield* Effect.logInfo(
        `director serving on ${rpc.advertisedAddress}, gossip ${(yield* cluster.localNode).gossipAddress}; workers: ${
          workers.map(labelOf).join(", ") || "none yet"
        }`
      )
      yield* events.pipe(
        Stream.filter((event) => event.node.tags.role === "worker"),
        Stream.runForEach((event) =>
          Effect.logInfo(
            `worker ${labelOf(event.node)} ${event._tag.replace("Node", "").toLowerCase()} (${event.node.state}, healthy=${event.node.tags.healthy ?? "?"})`
          )
        ),
        Effect.forkScoped
      )
    })
  )
  return Layer.provideMerge(ready, server).pipe(Layer.provideMerge(Director.layer))
}

/** Reads the director's options from `SWAP_*` variables. */
export const optionsFromEnv = (): DirectorOptions => ({
  rpcAddress: env("SWAP_RPC", defaults.directorRpc),
  gossipAddress: env("SWAP_GOSSIP", defaults.directorGossip),
  tls: tlsFromEnv(),
  noWorkerWait: Option.getOrElse(parseDuration(env("SWAP_NO_WORKER_WAIT", "10s")), () => defaults.noWorkerWait)
})

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  Layer.launch(directorLayer(optionsFromEnv())).pipe(NodeRuntime.runMain)
}
