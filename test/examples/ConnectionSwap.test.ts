/**
 * The connection_swap example, step by step as the original plan lists them,
 * with the director, workers and client in one process over real TLS and UDP
 * sockets on 127.0.0.1 (short cluster timings), plus the demo script itself.
 */
import { spawn } from "node:child_process"
import { describe, expect, it } from "@effect/vitest"
import { Context, Duration, Effect, Exit, Layer, Option, Ref, Scope, Stream } from "effect"
import { runClient } from "../../examples/connection_swap/client.ts"
import { type Assignment, Director, directorLayer } from "../../examples/connection_swap/director.ts"
import { workerLayer } from "../../examples/connection_swap/worker.ts"
import type * as ClusterConfig from "../../src/cluster/Config.ts"
import { RpcServer } from "../../src/index.ts"
import { certs } from "../fixtures/certs.ts"
import { waitFor } from "../fixtures/live.ts"

const fast: ClusterConfig.Input = {
  probeInterval: "200 millis",
  pingTimeout: "100 millis",
  gossipInterval: "50 millis",
  suspicionMult: 2,
  healthCheckInterval: "200 millis",
  leaveTimeout: "1 second"
}

interface Running<A> {
  readonly service: A
  readonly scope: Scope.Closeable
}

const tlsOf = (material: { readonly ca: string; readonly node: { readonly cert: string; readonly key: string } }) => ({
  certificate: material.node.cert,
  key: material.node.key,
  ca: material.ca,
  serverName: "localhost"
})

type Tls = ReturnType<typeof tlsOf>

const startDirector = (tls: Tls, noWorkerWait = Duration.seconds(5)) =>
  Effect.gen(function* () {
    const scope = yield* Scope.make()
    const context = yield* Layer.buildWithScope(
      directorLayer({ rpcAddress: "127.0.0.1:0", gossipAddress: "127.0.0.1:0", tls, noWorkerWait, cluster: fast }),
      scope
    )
    const rpc = Context.get(context, RpcServer)
    const director = Context.get(context, Director)
    const cluster = Option.getOrThrow(rpc.cluster)
    const gossip = String((yield* cluster.localNode).gossipAddress)
    return { rpc, director, cluster, gossip, scope, address: String(rpc.advertisedAddress) }
  })

type RunningDirector = Effect.Success<ReturnType<typeof startDirector>>

const startWorker = (
  tls: Tls,
  director: RunningDirector,
  label: string,
  options: { readonly capacity?: number; readonly leaveOnClose?: boolean; readonly errorAfter?: Duration.Duration } = {}
) =>
  Effect.gen(function* () {
    const scope = yield* Scope.make()
    const layer = workerLayer({
      label,
      rpcAddress: "127.0.0.1:0",
      gossipAddress: "127.0.0.1:0",
      seeds: [director.gossip],
      tls,
      capacity: options.capacity ?? 4,
      tokenInterval: Duration.millis(10),
      cluster: fast,
      leaveOnClose: options.leaveOnClose,
      errorAfter: options.errorAfter
    })
    const context = yield* Layer.buildWithScope(layer, scope)
    return { service: Context.get(context, RpcServer), scope } satisfies Running<RpcServer["Service"]>
  })

const stop = (running: { readonly scope: Scope.Closeable }) => Scope.close(running.scope, Exit.void)

const healthyWorkers = (director: RunningDirector) =>
  Effect.map(director.cluster.nodesByTags({ role: "worker", healthy: "true" }), (nodes) =>
    nodes.map((n) => n.tags.label).sort()
  )

type WorkerOptions = Parameters<typeof startWorker>[3]

/** A director with worker-a and worker-b, once it holds both healthy. */
const startDirectorAndTwoWorkers = (
  tls: ReturnType<typeof tlsOf>,
  options: { readonly a?: WorkerOptions; readonly b?: WorkerOptions } = {}
) =>
  Effect.gen(function* () {
    const director = yield* startDirector(tls)
    const a = yield* startWorker(tls, director, "worker-a", options.a)
    const b = yield* startWorker(tls, director, "worker-b", options.b)
    yield* waitFor(
      "both workers discovered",
      Effect.map(healthyWorkers(director), (w) => w.length === 2)
    )
    return { director, a, b }
  })

const assignments = (director: RunningDirector) => Ref.get(director.director.assignments)

describe("connection_swap", () => {
  it.live("the director discovers workers through the cluster", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const tls = tlsOf(yield* certs)
        const { director, a, b } = yield* startDirectorAndTwoWorkers(tls)
        expect(yield* healthyWorkers(director)).toEqual(["worker-a", "worker-b"])
        const [node] = yield* director.rpc.discoverNodes({ role: "worker", label: "worker-a" })
        expect(node?.rpcAddress?.port).toBe(a.service.advertisedAddress.port)
        yield* Effect.forEach([a, b, director], stop, { discard: true })
      })
    )
  )

  it.live("a worker joins and later leaves, and the director sees both", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const tls = tlsOf(yield* certs)
        const director = yield* startDirector(tls)
        const seen = yield* Ref.make<ReadonlyArray<string>>([])
        const { events } = yield* director.cluster.watch
        yield* events.pipe(
          Stream.filter((event) => event.node.tags.role === "worker"),
          Stream.runForEach((event) => Ref.update(seen, (all) => [...all, `${event._tag} ${event.node.tags.label}`])),
          Effect.forkScoped
        )
        const worker = yield* startWorker(tls, director, "worker-a")
        yield* waitFor(
          "joined",
          Effect.map(Ref.get(seen), (all) => all.includes("NodeJoined worker-a"))
        )
        yield* stop(worker)
        yield* waitFor(
          "left",
          Effect.map(Ref.get(seen), (all) => all.includes("NodeLeft worker-a"))
        )
        expect(yield* Ref.get(seen)).not.toContain("NodeFailed worker-a")
        yield* stop(director)
      })
    )
  )

  it.live("streams are spread round-robin across workers", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const tls = tlsOf(yield* certs)
        const { director, a, b } = yield* startDirectorAndTwoWorkers(tls)
        for (let i = 0; i < 4; i++) {
          const summary = yield* runClient({ director: director.address, tls, prompt: `p${i}`, length: 5 })
          expect(summary.contiguous).toBe(true)
        }
        expect((yield* assignments(director)).map((x: Assignment) => x.worker)).toEqual([
          "worker-a",
          "worker-b",
          "worker-a",
          "worker-b"
        ])
        yield* Effect.forEach([a, b, director], stop, { discard: true })
      })
    )
  )

  it.live(
    "the director moves a stream when its worker fails; the client sees every token once",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const tls = tlsOf(yield* certs)
          const { director, a, b } = yield* startDirectorAndTwoWorkers(tls, {
            a: { leaveOnClose: false },
            b: { leaveOnClose: false }
          })
          const workers = { "worker-a": a, "worker-b": b } as const
          const killed = yield* Ref.make(false)
          const summary = yield* runClient({
            director: director.address,
            tls,
            prompt: "migrate",
            length: 100,
            // After 20 tokens, the worker serving the stream dies (no leave).
            onToken: (token) =>
              token.seq === 20
                ? Effect.gen(function* () {
                    if (yield* Ref.getAndSet(killed, true)) return
                    yield* Effect.forkDetach(stop(workers[token.worker as keyof typeof workers]))
                  })
                : Effect.void
          })
          expect(summary.error).toBeUndefined()
          expect(summary.contiguous).toBe(true)
          expect(summary.tokens).toBe(100)
          expect(summary.switches).toBe(1)
          expect(summary.connectionIds.length).toBe(1)
          const log = yield* assignments(director)
          expect(log.map((x) => x.reason)).toEqual(["new", "moved"])
          expect(log[1]!.worker).not.toBe(log[0]!.worker)
          expect(log[1]!.resumeFrom).toBeGreaterThanOrEqual(21)
          yield* Effect.forEach([a, b, director], stop, { discard: true })
        })
      ),
    30_000
  )

  it.live(
    "a worker's mid-stream error also moves the stream, to a worker that has not failed it",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const tls = tlsOf(yield* certs)
          // worker-a fails every stream 150 ms in; worker-b is fine.
          const { director, a, b } = yield* startDirectorAndTwoWorkers(tls, { a: { errorAfter: Duration.millis(150) } })
          const summary = yield* runClient({ director: director.address, tls, prompt: "flaky", length: 60 })
          expect(summary.contiguous).toBe(true)
          expect(summary.workers).toEqual(["worker-a", "worker-b"])
          expect((yield* assignments(director)).map((x) => `${x.reason} ${x.worker}`)).toEqual([
            "new worker-a",
            "moved worker-b"
          ])
          yield* Effect.forEach([a, b, director], stop, { discard: true })
        })
      ),
    30_000
  )

  it.live(
    "with no healthy worker left, the stream ends with NoHealthyWorker after the bounded wait",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const tls = tlsOf(yield* certs)
          const director = yield* startDirector(tls, Duration.millis(500))
          const only = yield* startWorker(tls, director, "worker-a", { leaveOnClose: false })
          yield* waitFor(
            "the worker",
            Effect.map(healthyWorkers(director), (w) => w.length === 1)
          )
          const summary = yield* runClient({
            director: director.address,
            tls,
            prompt: "alone",
            length: 100,
            onToken: (token) => (token.seq === 10 ? Effect.forkDetach(stop(only)).pipe(Effect.asVoid) : Effect.void)
          })
          expect(summary.contiguous).toBe(false)
          expect(summary.tokens).toBeGreaterThanOrEqual(11)
          expect(summary.error).toMatch(/no healthy worker/)
          yield* stop(director)
        })
      ),
    30_000
  )

  it.live("the director never assigns a stream to a worker whose healthy tag is false", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const tls = tlsOf(yield* certs)
        const director = yield* startDirector(tls)
        const a = yield* startWorker(tls, director, "worker-a")
        // Capacity 0: its availability check always fails, so it publishes healthy=false.
        const busy = yield* startWorker(tls, director, "worker-busy", { capacity: 0 })
        yield* waitFor(
          "worker-busy known as unhealthy",
          Effect.map(director.cluster.nodesByTags({ label: "worker-busy", healthy: "false" }), (n) => n.length === 1)
        )
        for (let i = 0; i < 4; i++) {
          const summary = yield* runClient({ director: director.address, tls, prompt: `q${i}`, length: 3 })
          expect(summary.workers).toEqual(["worker-a"])
        }
        expect(new Set((yield* assignments(director)).map((x) => x.worker))).toEqual(new Set(["worker-a"]))
        yield* Effect.forEach([a, busy, director], stop, { discard: true })
      })
    )
  )

  it.live(
    "run_demo.sh: a SIGKILLed worker's stream continues on another, contiguous, same connection",
    () =>
      Effect.promise(
        () =>
          new Promise<{ code: number | null; output: string }>((resolve) => {
            const child = spawn("bash", ["examples/connection_swap/run_demo.sh"], {
              env: { ...process.env, SWAP_BASE_PORT: "17100", SWAP_TOKENS: "80", SWAP_KILL_AFTER: "20" },
              stdio: ["ignore", "pipe", "pipe"]
            })
            let output = ""
            child.stdout.on("data", (chunk) => (output += chunk))
            child.stderr.on("data", (chunk) => (output += chunk))
            const timer = setTimeout(() => child.kill("SIGINT"), 90_000)
            child.on("close", (code) => {
              clearTimeout(timer)
              resolve({ code, output })
            })
          })
      ).pipe(
        Effect.flatMap(({ code, output }) =>
          Effect.sync(() => {
            expect(output).toMatch(/PASS: 80 tokens, contiguous 0\.\.79/)
            expect(code, output).toBe(0)
          })
        )
      ),
    120_000
  )
})
