/** `ClusterConfig.config` / `RpcConfig.config` as effect `Config`s, at the default and at another prefix. */
import { assert, describe, expect, it } from "@effect/vitest"
import { Config, ConfigProvider, Duration, Effect, Option } from "effect"
import * as ClusterConfig from "../../src/cluster/Config.ts"
import * as RpcConfig from "../../src/rpc/RpcConfig.ts"

const withEnv =
  (env: Record<string, string>) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    Effect.provideService(effect, ConfigProvider.ConfigProvider, ConfigProvider.fromEnvRecord(env))

describe("ClusterConfig.config", () => {
  it.effect("reads SHOAL_* by default, yielding only what is set", () =>
    Effect.gen(function* () {
      const input = yield* ClusterConfig.config.pipe(
        withEnv({ SHOAL_BIND: "127.0.0.1:7000", SHOAL_TAGS: "role=worker,zone=a", SHOAL_PROBE_INTERVAL: "2s" })
      )
      assert.deepStrictEqual(input.bindAddress, "127.0.0.1:7000")
      assert.deepStrictEqual(input.tags, { role: "worker", zone: "a" })
      assert.isTrue(Duration.equals(input.probeInterval as Duration.Duration, Duration.seconds(2)))
      assert.isUndefined(input.seedNodes)
    })
  )

  it.effect("configUnder reads another prefix, and nests further with Config.nested", () =>
    Effect.gen(function* () {
      const app = yield* ClusterConfig.configUnder("APP").pipe(withEnv({ APP_SEEDS: "a:1,b:2", SHOAL_SEEDS: "x:9" }))
      assert.deepStrictEqual(app.seedNodes, ["a:1", "b:2"])
      const nested = yield* Config.nested(ClusterConfig.configUnder("APP"), "PROD").pipe(
        withEnv({ PROD_APP_NODE_NAME: "n1" })
      )
      assert.strictEqual(nested.nodeName, "n1")
    })
  )

  it.effect("a value that does not parse is a ConfigError naming the variable", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(ClusterConfig.configUnder("APP").pipe(withEnv({ APP_GOSSIP_NODES: "many" })))
      expect(error.message).toContain("APP_GOSSIP_NODES")
    })
  )

  it.effect("fromEnv takes a prefix too, and names the variable in InvalidConfiguration", () =>
    Effect.gen(function* () {
      const config = yield* ClusterConfig.fromEnv({ nodeName: "x" }, "APP").pipe(
        withEnv({ APP_BIND: "127.0.0.1:7001" })
      )
      assert.strictEqual(config.bindAddress.port, 7001)
      const error = yield* Effect.flip(ClusterConfig.fromEnv({}, "APP").pipe(withEnv({ APP_TAGS: "healthy=yes" })))
      assert.strictEqual(error.field, "APP_TAGS")
    })
  )
})

describe("RpcConfig.config", () => {
  it.effect("reads SHOAL_RPC_* (or another prefix) into RpcConfig.Input", () =>
    Effect.gen(function* () {
      const input = yield* RpcConfig.config.pipe(
        withEnv({
          SHOAL_RPC_BIND: "127.0.0.1:0",
          SHOAL_RPC_CONNECT_TIMEOUT: "2s",
          SHOAL_RPC_REQUIRE_CLIENT_CERTIFICATE: "no",
          SHOAL_RPC_STREAM_BUFFER_SIZE: "64"
        })
      )
      assert.deepStrictEqual(input, {
        bindAddress: "127.0.0.1:0",
        connectTimeout: "2s",
        requireClientCertificate: false,
        streamBufferSize: 64
      })
      const made = yield* RpcConfig.make(input)
      assert.isTrue(Duration.equals(made.connectTimeout, Duration.seconds(2)))
      const other = yield* RpcConfig.configUnder("APP_RPC").pipe(withEnv({ APP_RPC_SERVER_NAME: "svc" }))
      assert.strictEqual(other.serverName, "svc")
      const bad = yield* Effect.flip(RpcConfig.config.pipe(withEnv({ SHOAL_RPC_KEEP_ALIVE: "soon" })))
      expect(bad.message).toContain("SHOAL_RPC_KEEP_ALIVE")
      const fromEnv = yield* RpcConfig.fromEnv({ serverName: "a" }).pipe(withEnv({ SHOAL_RPC_KEEP_ALIVE: "1s" }))
      assert.isTrue(Duration.equals(fromEnv.keepAlive, Duration.seconds(1)))
      assert.isTrue(Option.isNone(Option.fromNullishOr(fromEnv.certificatePath)))
    })
  )
})
