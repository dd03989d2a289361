/**
 * TLS material in memory (DevTls, PEM text, Redacted keys), durations typed
 * like the cluster's, and the layers that put `Cluster` and a cluster client
 * in the context — over real TLS on 127.0.0.1.
 */
import { assert, describe, expect, it } from "@effect/vitest"
import { Context, Duration, Effect, Layer, Redacted } from "effect"
import type { RpcGroup } from "effect/rpc"
import { Cluster } from "../../src/cluster/Cluster.ts"
import * as ClusterClient from "../../src/rpc/ClusterClient.ts"
import * as RpcConfig from "../../src/rpc/RpcConfig.ts"
import { RpcServer } from "../../src/rpc/RpcServer.ts"
import * as DevTls from "../../src/testing/DevTls.ts"
import { fastCluster, handlers, makeProbe, TestRpcs, waitFor, within } from "./helpers.ts"

class Client extends Context.Service<Client, ClusterClient.ClusterClient<RpcGroup.Rpcs<typeof TestRpcs>>>()(
  "test/Client"
) {}

describe("RpcConfig with PEM in memory", () => {
  it.effect('DevTls material spreads into RpcConfig.make; durations accept "2s"', () =>
    Effect.gen(function* () {
      const tls = DevTls.generate()
      const config = yield* RpcConfig.make({ ...tls, connectTimeout: "2s", keepAlive: "1s", keepAliveTimeout: 3000 })
      assert.isUndefined(config.certificatePath)
      assert.isTrue(Duration.equals(config.connectTimeout, Duration.seconds(2)))
      assert.isTrue(config.tls.key !== undefined && Redacted.isRedacted(config.tls.key.pem))
      // the key never prints
      expect(String(config.tls.key?.pem)).not.toContain("PRIVATE KEY")
    })
  )

  it.effect("bad PEM in memory, or a key of another certificate, is InvalidConfiguration", () =>
    Effect.gen(function* () {
      const a = DevTls.generate()
      const b = DevTls.generate()
      const notPem = yield* Effect.flip(RpcConfig.make({ certificate: { pem: "hello" }, key: a.key }))
      assert.strictEqual(notPem.field, "certificate")
      expect(notPem.reason).toContain("in memory")
      const mismatch = yield* Effect.flip(RpcConfig.make({ certificate: a.certificate, key: b.key }))
      assert.strictEqual(mismatch.field, "key")
      const blank = yield* Effect.flip(RpcConfig.make({ ca: "  " }))
      assert.strictEqual(blank.field, "ca")
    })
  )
})

describe("RpcServer.layer and ClusterClient.layer", () => {
  it.live("RpcServer.layer provides Cluster; ClusterClient.layer calls through it", () =>
    Effect.gen(function* () {
      const tls = DevTls.generate()
      const server = RpcServer.layer(TestRpcs, {
        ...tls,
        serverName: "localhost",
        bindAddress: "127.0.0.1:0",
        cluster: { ...fastCluster, nodeName: "api", tags: { role: "api" } }
      }).pipe(Layer.provide(handlers(makeProbe("api"))))
      const client = ClusterClient.layer(
        Client,
        TestRpcs,
        // with a CA the server requires client certificates: the client presents the node's
        { ...tls, serverName: "localhost", connectTimeout: "2s" },
        {
          tags: { role: "api" }
        }
      )
      const context = yield* Layer.build(Layer.provideMerge(client, server))
      const cluster = Context.get(context, Cluster)
      assert.strictEqual((yield* cluster.localNode).name, "api")
      yield* waitFor(
        "the server is healthy",
        Effect.map(cluster.nodesByTags({ role: "api", healthy: "true" }), (n) => n.length === 1)
      )
      const reply = yield* Context.get(context, Client).client.Echo({ text: "hi" }).pipe(within(5000, "Echo"))
      assert.deepStrictEqual(reply.node, "api")
    }).pipe(Effect.scoped)
  )

  it.live("RpcServer.layer without a cluster is InvalidConfiguration; layerStandalone serves", () =>
    Effect.gen(function* () {
      const tls = DevTls.generate()
      const input = { ...tls, bindAddress: "127.0.0.1:0" }
      const error = yield* Effect.flip(
        Layer.build(RpcServer.layer(TestRpcs, input).pipe(Layer.provide(handlers(makeProbe("x")))))
      )
      assert.strictEqual(error._tag, "InvalidConfiguration")
      if (error._tag === "InvalidConfiguration") assert.strictEqual(error.field, "cluster")
      const standalone = yield* Layer.build(
        RpcServer.layerStandalone(TestRpcs, input).pipe(Layer.provide(handlers(makeProbe("x"))))
      )
      assert.isTrue(Context.get(standalone, RpcServer).address.port > 0)
    }).pipe(Effect.scoped)
  )
})
