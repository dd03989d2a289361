/**
 * Runs inside a throw-away network namespace (see `Blackhole.test.ts`) where
 * nftables drops packets instead of refusing them, and prints one JSON line
 * with what it saw. It is a separate process because a namespace belongs to a
 * process: the test runner itself stays outside.
 *
 *   exchange PORT  — a stream exchange to 127.0.0.1:PORT, whose SYNs the parent
 *                    drops, with a 300 ms deadline: how long until it failed.
 *   cluster        — two members on 127.0.0.1; once formed, every packet to and
 *                    from the second is dropped (UDP and TCP, no reset): when the
 *                    first declares it failed, and how many probe rounds it ran
 *                    meanwhile (a round stuck on a connect would stop them).
 */
import { execFileSync } from "node:child_process"
import { Context, Effect, Exit, Layer, Scope } from "effect"
import { Cluster } from "../../src/cluster/Cluster.ts"
import { Transport } from "../../src/cluster/gossip/Transport.ts"
import * as UdpTransport from "../../src/cluster/gossip/UdpTransport.ts"
import { Address, formatAddress } from "../../src/cluster/Node.ts"
import { fastCluster } from "../fixtures/live.ts"

const print = (value: unknown) => Effect.sync(() => process.stdout.write(`${JSON.stringify(value)}\n`))

const exchange = (port: number) =>
  Effect.gen(function* () {
    const context = yield* Layer.build(UdpTransport.layer({ bind: new Address({ host: "127.0.0.1", port: 0 }) }))
    const transport = Context.get(context, Transport)
    const started = Date.now()
    const result = yield* Effect.result(
      transport.exchange(new Address({ host: "127.0.0.1", port }), Uint8Array.of(1, 2, 3), {
        timeout: "300 millis",
        maxBytes: 1024
      })
    )
    yield* print({
      elapsedMs: Date.now() - started,
      failed: result._tag === "Failure",
      message: result._tag === "Failure" ? result.failure.message : ""
    })
  }).pipe(Effect.scoped)

const start = (input: Parameters<typeof Cluster.layer>[0]) =>
  Effect.gen(function* () {
    const scope = yield* Scope.make()
    const context = yield* Layer.buildWithScope(Cluster.layer(input, { leaveOnClose: false }), scope)
    return { cluster: Context.get(context, Cluster), scope }
  })

const cluster = Effect.gen(function* () {
  const a = yield* start({ ...fastCluster, nodeName: "a" })
  const aAddress = formatAddress((yield* a.cluster.localNode).gossipAddress)
  const b = yield* start({ ...fastCluster, nodeName: "b", seedNodes: [aAddress] })
  const bNode = yield* b.cluster.localNode
  const stateOfB = Effect.map(a.cluster.members, (ms) => ms.find((m) => m.id === bNode.id)?.state)
  for (let i = 0; i < 500 && (yield* stateOfB) !== "Alive"; i++) yield* Effect.sleep("10 millis")
  const port = bNode.gossipAddress.port
  execFileSync("nft", ["-f", "-"], {
    input: `table inet blackhole {
  chain out { type filter hook output priority 0; policy accept;
    udp dport ${port} drop; tcp dport ${port} drop; udp sport ${port} drop; tcp sport ${port} drop; }
}`
  })
  const cut = Date.now()
  const probesBefore = (yield* a.cluster.stats).probes
  let failedAfterMs: number | undefined
  while (Date.now() - cut < 15_000) {
    if ((yield* stateOfB) === "Dead") {
      failedAfterMs = Date.now() - cut
      break
    }
    yield* Effect.sleep("20 millis")
  }
  const elapsed = Date.now() - cut
  const probes = (yield* a.cluster.stats).probes - probesBefore
  yield* print({ failedAfterMs: failedAfterMs ?? null, elapsedMs: elapsed, probes })
  yield* Scope.close(b.scope, Exit.void)
  yield* Scope.close(a.scope, Exit.void)
})

const [mode, arg] = process.argv.slice(2)
const program = mode === "exchange" ? exchange(Number(arg)) : cluster
Effect.runPromise(program).then(
  () => process.exit(0),
  (error) => {
    process.stderr.write(`${String(error)}\n`)
    process.exit(1)
  }
)
