/**
 * What real nodes cost at scale in one process: N nodes (default 100) on
 * 127.0.0.1 with ephemeral ports, every one seeded with the first node's
 * address and all started at once, with the default timings. Whether and when
 * every node sees all N alive; then, over an idle period, the process's CPU,
 * RSS, heap, event-loop delay and each node's UDP traffic; then one node stops
 * without leaving and the time until the first and the last survivor hold it
 * dead. (The heap per *simulated* node is a column of `bench/sim.ts`.)
 *
 *   npm run bench:scale                          # 100 nodes, 20 s idle
 *   npx node --expose-gc bench/scale.ts --udp=50,100 --idle=30
 *
 * `--expose-gc` makes the heap figure a post-GC one. Results go to
 * `bench/results/scale.json`. A benchmark, not a test.
 */
import { mkdirSync, writeFileSync } from "node:fs"
import { loadavg } from "node:os"
import { monitorEventLoopDelay } from "node:perf_hooks"
import { Context, Effect, Exit, Layer, Option, Scope } from "effect"
import { Cluster } from "../src/cluster/Cluster.ts"
import type { NodeId } from "../src/cluster/Node.ts"
import { describeMachine, revision } from "./machine.ts"
import { seesAlive } from "./sim/cluster.ts"

const args = process.argv.slice(2)
const flag = (name: string): string | undefined =>
  args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? (args.includes(`--${name}`) ? "" : undefined)
const list = (text: string | undefined, fallback: Array<number>) =>
  text === undefined || text === "" ? fallback : text.split(",").map(Number).filter(Number.isFinite)

const udpSizes = list(flag("udp"), [100])
const idleSeconds = Number(flag("idle") ?? 20)
const outFile = flag("out") ?? "bench/results/scale.json"

const gc = (globalThis as { gc?: () => void }).gc
const heapAfterGc = (): number => {
  gc?.()
  gc?.()
  return process.memoryUsage().heapUsed
}
const mib = (bytes: number) => bytes / 2 ** 20
const log = (line: string) => console.error(line)

/** Read at start: the tree may change while a long run goes on. */
const commit = revision()

// --- real UDP nodes ---

interface UdpNode {
  readonly index: number
  readonly cluster: Cluster["Service"]
  readonly scope: Scope.Closeable
  readonly id: NodeId
}

const startUdp = (index: number, seeds: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const scope = yield* Scope.make()
    const context = yield* Layer.buildWithScope(
      Cluster.layer(
        { nodeName: `u${index}`, bindAddress: "127.0.0.1:0", seedNodes: [...seeds] },
        { leaveOnClose: false }
      ),
      scope
    ).pipe(Effect.onError(() => Scope.close(scope, Exit.void)))
    const cluster = Context.get(context, Cluster)
    return { index, cluster, scope, id: (yield* cluster.localNode).id } satisfies UdpNode
  })

/** Real time until `condition` holds for every node (polled every `step` ms), or undefined after `limit` ms. */
const untilAll = (
  nodes: ReadonlyArray<UdpNode>,
  condition: (node: UdpNode) => Effect.Effect<boolean>,
  limit: number,
  step: number
) =>
  Effect.gen(function* () {
    const start = performance.now()
    let first: number | undefined
    while (performance.now() - start <= limit) {
      let ok = 0
      for (const node of nodes) if (yield* condition(node)) ok++
      const t = performance.now() - start
      if (ok > 0 && first === undefined) first = t
      if (ok === nodes.length) return { first, all: t }
      yield* Effect.sleep(step)
    }
    return { first, all: undefined }
  })

interface Percentiles {
  readonly p50: number
  readonly p99: number
  readonly max: number
}

interface UdpRow {
  readonly n: number
  readonly timings: string
  /** The process before any node existed. */
  readonly rssBeforeMiB: number
  readonly heapBeforeMiB: number
  readonly startMs: number
  readonly convergedMs: number | undefined
  readonly formation: { readonly cpuPercent: number; readonly loopDelayMs: Percentiles }
  readonly idle: {
    readonly seconds: number
    readonly cpuPercent: number
    readonly rssMiB: number
    readonly heapMiB: number
    /** Memory outside the JavaScript heap that V8 knows of (socket buffers among it). */
    readonly externalMiB: number
    readonly arrayBuffersMiB: number
    readonly loopDelayMs: Percentiles
    readonly packetsPerNodePerSec: number
    readonly bytesPerNodePerSec: number
  }
  readonly crashFirstMs: number | undefined
  readonly crashAllMs: number | undefined
  readonly falseSuspicions: number
}

const traffic = (nodes: ReadonlyArray<UdpNode>) =>
  Effect.gen(function* () {
    let packets = 0
    let bytes = 0
    for (const node of nodes) {
      const s = yield* node.cluster.stats
      packets += s.transport.packetsSent
      bytes += s.transport.bytesSent
    }
    return { packets, bytes }
  })

const udp = (n: number) =>
  Effect.gen(function* () {
    // The histogram records the interval of a 10 ms timer: the delay is what exceeds 10 ms.
    const resolution = 10
    const loop = monitorEventLoopDelay({ resolution })
    const excess = (nanos: number) => Math.max(0, nanos / 1e6 - resolution)
    const delays = (): Percentiles => ({
      p50: excess(loop.percentile(50)),
      p99: excess(loop.percentile(99)),
      max: excess(loop.max)
    })
    const rssBeforeMiB = mib(process.memoryUsage().rss)
    const heapBeforeMiB = mib(heapAfterGc())
    loop.enable()
    const wall = performance.now()
    const cpu = process.cpuUsage()
    const first = yield* startUdp(0, [])
    const seed = String((yield* first.cluster.localNode).gossipAddress)
    const others = yield* Effect.forEach(
      Array.from({ length: n - 1 }, (_, i) => i + 1),
      (i) => startUdp(i, [seed]),
      { concurrency: "unbounded" }
    )
    const nodes = [first, ...others]
    const startMs = performance.now() - wall
    const converged = yield* untilAll(nodes, seesAlive(n), 120_000, 100)
    const convergedMs = converged.all === undefined ? undefined : startMs + converged.all
    const formationCpu = process.cpuUsage(cpu)
    const formationWall = performance.now() - wall
    const formation = {
      cpuPercent: (100 * (formationCpu.user + formationCpu.system)) / 1000 / formationWall,
      loopDelayMs: delays()
    }
    log(`udp N=${n}: converged after ${convergedMs?.toFixed(0) ?? "—"} ms`)

    // Idle: let the join backlog drain for a while, then measure.
    yield* Effect.sleep(10_000)
    loop.reset()
    const idleCpu = process.cpuUsage()
    const idleWall = performance.now()
    const before = yield* traffic(nodes)
    yield* Effect.sleep(idleSeconds * 1000)
    const after = yield* traffic(nodes)
    const used = process.cpuUsage(idleCpu)
    const seconds = (performance.now() - idleWall) / 1000
    const memory = process.memoryUsage()
    const idle = {
      seconds,
      cpuPercent: (100 * (used.user + used.system)) / 1e6 / seconds,
      rssMiB: mib(memory.rss),
      heapMiB: mib(heapAfterGc()),
      externalMiB: mib(memory.external),
      arrayBuffersMiB: mib(memory.arrayBuffers),
      loopDelayMs: delays(),
      packetsPerNodePerSec: (after.packets - before.packets) / n / seconds,
      bytesPerNodePerSec: (after.bytes - before.bytes) / n / seconds
    }
    let falseSuspicions = 0
    for (const node of nodes) falseSuspicions += (yield* node.cluster.stats).suspicionsRaised
    log(`udp N=${n}: idle ${idle.cpuPercent.toFixed(0)} % CPU, ${idle.rssMiB.toFixed(0)} MiB RSS`)

    // Crash: stop one node without a leave.
    const victim = nodes[Math.floor(n / 2)]!
    const survivors = nodes.filter((node) => node !== victim)
    yield* Scope.close(victim.scope, Exit.void)
    const crashed = yield* untilAll(
      survivors,
      (node) =>
        Effect.map(Effect.option(node.cluster.member(victim.id)), (m) =>
          Option.match(m, { onNone: () => true, onSome: (member) => member.state === "Dead" })
        ),
      120_000,
      50
    )
    loop.disable()
    yield* Effect.forEach(survivors, (node) => Scope.close(node.scope, Exit.void), {
      concurrency: "unbounded",
      discard: true
    })
    return {
      n,
      timings: "defaults (probe 1 s, ping timeout 500 ms, gossip 200 ms to 3, suspicion ×4, push-pull 30 s)",
      rssBeforeMiB,
      heapBeforeMiB,
      startMs,
      convergedMs,
      formation,
      idle,
      crashFirstMs: crashed.first,
      crashAllMs: crashed.all,
      falseSuspicions
    } satisfies UdpRow
  })

// --- output ---

const fmtMs = (ms: number | undefined) => (ms === undefined ? "—" : `${(ms / 1000).toFixed(2)} s`)
const fmtDelay = (p: Percentiles) => `${p.p50.toFixed(1)} / ${p.p99.toFixed(1)} / ${p.max.toFixed(0)} ms`

const main = Effect.gen(function* () {
  if (gc === undefined) log("warning: run with --expose-gc, or the heap figure includes garbage")
  const loadBefore = loadavg()
  const real: Array<UdpRow> = []
  for (const n of udpSizes) real.push(yield* udp(n))
  const machine = describeMachine(loadBefore, commit)
  for (const r of real) {
    console.log("")
    console.log(`${r.n} real UDP nodes in one process on 127.0.0.1, ${r.timings}:`)
    console.log("")
    console.log("| figure | value |")
    console.log("| --- | ---: |")
    console.log(`| all ${r.n} started (joins answered) | ${fmtMs(r.startMs)} |`)
    console.log(`| every node sees all ${r.n} alive | ${fmtMs(r.convergedMs)} |`)
    console.log(`| CPU during formation (of one core) | ${r.formation.cpuPercent.toFixed(0)} % |`)
    console.log(`| event-loop delay during formation p50 / p99 / max | ${fmtDelay(r.formation.loopDelayMs)} |`)
    console.log(`| idle CPU over ${r.idle.seconds.toFixed(0)} s (of one core) | ${r.idle.cpuPercent.toFixed(1)} % |`)
    console.log(
      `| idle RSS / heap after GC (before any node: ${r.rssBeforeMiB.toFixed(0)} / ${r.heapBeforeMiB.toFixed(0)} MiB) | ${r.idle.rssMiB.toFixed(0)} MiB / ${r.idle.heapMiB.toFixed(0)} MiB |`
    )
    console.log(
      `| idle external / ArrayBuffer memory | ${r.idle.externalMiB.toFixed(0)} MiB / ${r.idle.arrayBuffersMiB.toFixed(0)} MiB |`
    )
    console.log(`| idle event-loop delay p50 / p99 / max | ${fmtDelay(r.idle.loopDelayMs)} |`)
    console.log(
      `| UDP per node per s (idle) | ${r.idle.packetsPerNodePerSec.toFixed(1)} packets, ${Math.round(r.idle.bytesPerNodePerSec)} bytes |`
    )
    console.log(`| false suspicions before the crash | ${r.falseSuspicions} |`)
    console.log(
      `| crash (stopped, no leave): first / all survivors hold it dead | ${fmtMs(r.crashFirstMs)} / ${fmtMs(r.crashAllMs)} |`
    )
  }
  console.log("")
  console.log(
    `Machine: ${machine.cpus} × ${machine.cpu}, Node ${machine.node}, load ${machine.loadBefore.join(" ")} → ${machine.loadAfter.join(" ")}`
  )
  mkdirSync("bench/results", { recursive: true })
  writeFileSync(outFile, `${JSON.stringify({ machine, udp: real }, null, 2)}\n`)
  log(`wrote ${outFile}`)
})

Effect.runPromise(main).catch((error) => {
  console.error(error)
  process.exit(1)
})
