/**
 * Shared pieces of the RPC tests: a small RpcGroup whose handlers say which
 * node answered and can be held open by the test, configurations built from
 * the generated certificates, and servers started in their own scopes so a
 * test can stop one in the middle.
 */

import { Context, Deferred, Effect, Exit, Layer, Schema, Scope, Stream } from "effect"
import { Rpc, RpcGroup } from "effect/rpc"
import type { LayerOptions } from "../../src/cluster/Cluster.ts"
import type * as ClusterConfig from "../../src/cluster/Config.ts"
import { Idempotent } from "../../src/rpc/ClusterClient.ts"
import * as RpcConfig from "../../src/rpc/RpcConfig.ts"
import { RpcServer, type ServerOptions } from "../../src/rpc/RpcServer.ts"
import type { TestCerts } from "../fixtures/certs.ts"

import { fastCluster } from "../fixtures/live.ts"

export { fastCluster, waitFor } from "../fixtures/live.ts"

export class Reply extends Schema.Class<Reply>("test/Reply")({ text: Schema.String, node: Schema.String }) {}

export class Boom extends Schema.TaggedError<Boom>()("Boom", { reason: Schema.String }) {}

export class TestRpcs extends RpcGroup.make(
  Rpc.make("Echo", { payload: { text: Schema.String }, success: Reply }),
  Rpc.make("Count", { payload: { n: Schema.Int }, success: Schema.Int, stream: true }),
  /** Held open until the test releases the node's gate; safe to repeat. */
  Rpc.make("Hold", { payload: { text: Schema.String }, success: Reply }).annotate(Idempotent, true),
  /** Held open like Hold, but not declared idempotent. */
  Rpc.make("HoldOnce", { payload: { text: Schema.String }, success: Reply }),
  Rpc.make("Fail", { payload: { reason: Schema.String }, error: Boom })
) {}

/** What a test node's handlers saw. */
export interface Probe {
  readonly name: string
  /** Tags of the calls that reached this node, in order. */
  readonly calls: Array<string>
  /** Hold / HoldOnce calls wait for this. */
  readonly gate: Deferred.Deferred<void>
  /** Completed when the first Hold / HoldOnce call has started here. */
  readonly holding: Deferred.Deferred<void>
}

export const makeProbe = (name: string): Probe => ({
  name,
  calls: [],
  gate: Deferred.makeUnsafe<void>(),
  holding: Deferred.makeUnsafe<void>()
})

export const handlers = (probe: Probe) =>
  TestRpcs.toLayer(
    Effect.succeed(
      TestRpcs.of({
        Echo: ({ text }) =>
          Effect.sync(() => {
            probe.calls.push("Echo")
            return new Reply({ text, node: probe.name })
          }),
        Count: ({ n }) => {
          probe.calls.push("Count")
          return Stream.range(1, n)
        },
        Hold: ({ text }) =>
          Effect.gen(function* () {
            probe.calls.push("Hold")
            yield* Deferred.succeed(probe.holding, undefined)
            yield* Deferred.await(probe.gate)
            return new Reply({ text, node: probe.name })
          }),
        HoldOnce: ({ text }) =>
          Effect.gen(function* () {
            probe.calls.push("HoldOnce")
            yield* Deferred.succeed(probe.holding, undefined)
            yield* Deferred.await(probe.gate)
            return new Reply({ text, node: probe.name })
          }),
        Fail: ({ reason }) =>
          Effect.suspend(() => {
            probe.calls.push("Fail")
            return Effect.fail(new Boom({ reason }))
          })
      })
    )
  )

/** A server (and client) configuration on 127.0.0.1 with the node certificate. */
export const nodeConfig = (certs: TestCerts, input: RpcConfig.Input = {}) =>
  RpcConfig.make({
    certificate: certs.node.cert,
    key: certs.node.key,
    ca: certs.ca,
    serverName: "localhost",
    bindAddress: "127.0.0.1:0",
    ...input
  })

/**
 * A client-only configuration that trusts the cluster CA and presents the
 * client certificate it signed (servers with a CA require one by default).
 */
export const clientConfig = (certs: TestCerts, input: RpcConfig.Input = {}) =>
  RpcConfig.make({
    ca: certs.ca,
    serverName: "localhost",
    clientCertificate: certs.client.cert,
    clientKey: certs.client.key,
    ...input
  })

export interface RunningServer {
  readonly server: RpcServer["Service"]
  readonly probe: Probe
  readonly scope: Scope.Closeable
}

/** Starts a server in a scope of its own (closed by `stop`, or by the test's scope). */
export const startServer = (
  config: RpcConfig.RpcConfig,
  probe: Probe,
  options: ServerOptions = {}
): Effect.Effect<RunningServer, RpcServerStartError, Scope.Scope> =>
  Effect.gen(function* () {
    const outer = yield* Effect.scope
    const scope = yield* Scope.fork(outer, "sequential")
    const context = yield* Layer.buildWithScope(
      (config.cluster === undefined
        ? RpcServer.layerStandalone(TestRpcs, config, options)
        : RpcServer.layer(TestRpcs, config, options)
      ).pipe(Layer.provide(handlers(probe))),
      scope
    ).pipe(Effect.onError(() => Scope.close(scope, Exit.void)))
    return { server: Context.get(context, RpcServer), probe, scope }
  })

type RpcServerStartError = Effect.Error<ReturnType<typeof RpcServer.make>>

export const stop = (running: RunningServer) => Scope.close(running.scope, Exit.void)

/** A server that is a cluster member, with fast timings. */
export const startMember = (
  certs: TestCerts,
  name: string,
  cluster: ClusterConfig.Input,
  options: ServerOptions & LayerOptions = {}
) =>
  Effect.gen(function* () {
    const config = yield* nodeConfig(certs, { cluster: { ...fastCluster, nodeName: name, ...cluster } })
    return yield* startServer(config, makeProbe(name), options)
  })

/** Fails the test (instead of hanging it) when `effect` takes longer than `limit`. */
export const within =
  (millis: number, what: string) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    Effect.timeoutOrElse(effect, {
      duration: millis,
      orElse: () => Effect.die(new Error(`timed out after ${millis} ms: ${what}`))
    })
