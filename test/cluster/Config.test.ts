import { assert, describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Random } from "effect"
import * as ClusterConfig from "../../src/cluster/Config.ts"
import { InvalidConfiguration } from "../../src/cluster/Errors.ts"
import * as DevTls from "../../src/testing/DevTls.ts"

const devCa = DevTls.makeAuthority()
const boundId = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
const issued = devCa.issue({ nodeId: boundId })
const identity = {
  identityCertificate: issued.certificate.pem,
  identityKey: issued.key,
  identityCa: devCa.certificate.pem
}

const rejects = (input: ClusterConfig.Input) => ClusterConfig.make(input).pipe(Effect.flip, Random.withSeed(1))

const fromEnv = (env: Record<string, string>, base: ClusterConfig.Input = {}) =>
  ClusterConfig.fromEnv(base).pipe(
    Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromEnvRecord(env)),
    Random.withSeed(1)
  )

describe("ClusterConfig.make", () => {
  it.effect("applies memberlist's LAN defaults", () =>
    Effect.gen(function* () {
      const c = yield* ClusterConfig.make()
      expect(Duration.toMillis(c.probeInterval)).toBe(1000)
      expect(Duration.toMillis(c.pingTimeout)).toBe(500)
      expect(c.indirectChecks).toBe(3)
      expect(Duration.toMillis(c.gossipInterval)).toBe(200)
      expect(c.gossipNodes).toBe(3)
      expect(c.suspicionMult).toBe(4)
      expect(c.retransmitMult).toBe(4)
      expect(Duration.toMillis(c.pushPullInterval)).toBe(30_000)
      expect(c.maxPacketSize).toBe(1400)
      expect(c.phiThreshold).toBe(8)
      expect(String(c.bindAddress)).toBe("0.0.0.0:7946")
      expect(c.gossipAddress).toBe(c.bindAddress)
      expect(c.nodeName).toBe(`node-${c.nodeId.slice(0, 8)}`)
    }).pipe(Random.withSeed(7))
  )

  it.effect("fastDetection halves the suspicion floor and keeps two confirmations; update can undo it", () =>
    Effect.gen(function* () {
      const fast = yield* ClusterConfig.make({ ...ClusterConfig.fastDetection, nodeName: "f" })
      expect(fast.suspicionMult).toBe(2)
      expect(fast.suspicionConfirmations).toBe(2)
      expect(Duration.toMillis(fast.probeInterval)).toBe(1000)
      const back = yield* ClusterConfig.update(fast, { suspicionMult: 4, suspicionConfirmations: undefined })
      expect(back.suspicionMult).toBe(4)
      expect(back.suspicionConfirmations).toBeUndefined()
    }).pipe(Random.withSeed(7))
  )

  it.effect("draws the node id from Random, so a seed replays it", () =>
    Effect.gen(function* () {
      const a = yield* ClusterConfig.make().pipe(Random.withSeed(3))
      const b = yield* ClusterConfig.make().pipe(Random.withSeed(3))
      const c = yield* ClusterConfig.make().pipe(Random.withSeed(4))
      expect(a.nodeId).toBe(b.nodeId)
      expect(a.nodeId).not.toBe(c.nodeId)
      expect(a.nodeId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    })
  )

  it.effect("accepts addresses as text or objects and durations as text or millis", () =>
    Effect.gen(function* () {
      const c = yield* ClusterConfig.make({
        bindAddress: { host: "127.0.0.1", port: 7000 },
        advertiseAddress: "10.0.0.5:7000",
        rpcAddress: "[::1]:9000",
        probeInterval: 2000,
        pingTimeout: "1 second"
      })
      expect(String(c.gossipAddress)).toBe("10.0.0.5:7000")
      expect(String(c.rpcAddress)).toBe("[::1]:9000")
      expect(Duration.toMillis(c.probeInterval)).toBe(2000)
      expect(Duration.toMillis(c.pingTimeout)).toBe(1000)
    }).pipe(Random.withSeed(1))
  )

  it.effect("builder helpers add tags and seeds and validate again", () =>
    Effect.gen(function* () {
      const c = yield* ClusterConfig.make({ tags: { role: "worker" } }).pipe(
        Effect.flatMap(ClusterConfig.withTags({ zone: "a" })),
        Effect.flatMap(ClusterConfig.withSeedNodes(["10.0.0.1:7946", "seed.local:7946"]))
      )
      expect(c.tags).toEqual({ role: "worker", zone: "a" })
      expect(c.seedNodes).toEqual(["10.0.0.1:7946", "seed.local:7946"])
      const error = yield* ClusterConfig.withTags(c, { healthy: "true" }).pipe(Effect.flip)
      expect(error.field).toBe("tags")
      const error2 = yield* ClusterConfig.withSeedNodes(c, ["nope"]).pipe(Effect.flip)
      expect(error2.field).toBe("seedNodes")
    }).pipe(Random.withSeed(1))
  )

  // One rejection per field: the error must name the field the user wrote.
  const cases: ReadonlyArray<readonly [string, ClusterConfig.Input]> = [
    ["nodeId", { nodeId: "not-a-uuid" }],
    ["nodeName", { nodeName: "" }],
    ["nodeName", { nodeName: "x".repeat(129) }],
    ["clusterLabel", { clusterLabel: "" }],
    ["clusterLabel", { clusterLabel: "l".repeat(65) }],
    ["bindAddress", { bindAddress: "localhost" }],
    ["bindAddress", { bindAddress: "127.0.0.1:70000" }],
    ["bindAddress", { bindAddress: { host: "127.0.0.1", port: -1 } }],
    ["advertiseAddress", { advertiseAddress: "1.2.3.4" }],
    ["advertiseAddress", { advertiseAddress: "1.2.3.4:0" }],
    ["rpcAddress", { rpcAddress: "::1" }],
    ["seedNodes", { seedNodes: ["10.0.0.1"] }],
    ["seedNodes", { seedNodes: ["10.0.0.1:0"] }],
    ["tags", { tags: { "": "x" } }],
    ["tags", { tags: { healthy: "true" } }],
    ["tags", { tags: { blob: "x".repeat(1300) } }],
    ["probeInterval", { probeInterval: 0 }],
    ["probeInterval", { probeInterval: "soon" as Duration.Input }],
    ["probeInterval", { probeInterval: "Infinity" }],
    ["pingTimeout", { pingTimeout: -5 }],
    ["pingTimeout", { pingTimeout: "1 second" }],
    ["indirectChecks", { indirectChecks: -1 }],
    ["indirectChecks", { indirectChecks: 1.5 }],
    ["gossipInterval", { gossipInterval: 0 }],
    ["gossipNodes", { gossipNodes: 0 }],
    ["gossipToTheDeadTime", { gossipToTheDeadTime: -1 }],
    ["suspicionMult", { suspicionMult: 0.5 }],
    ["suspicionMaxTimeoutMult", { suspicionMaxTimeoutMult: 0 }],
    ["suspicionConfirmations", { suspicionConfirmations: -1 }],
    ["suspicionConfirmations", { suspicionConfirmations: 1.5 }],
    ["retransmitMult", { retransmitMult: 0 }],
    ["awarenessMaxMultiplier", { awarenessMaxMultiplier: 0 }],
    ["pushPullInterval", { pushPullInterval: 0 }],
    ["reconnectInterval", { reconnectInterval: 0 }],
    ["reconnectTimeout", { reconnectTimeout: 0 }],
    ["keyring", { keyring: [] }],
    ["keyring", { keyring: ["not base64!"] }],
    ["keyring", { keyring: [Buffer.alloc(16).toString("base64")] }],
    ["replayWindow", { replayWindow: 0 }],
    ["maxMembers", { maxMembers: 1 }],
    ["reapAfter", { reapAfter: 0 }],
    ["tombstoneTtl", { tombstoneTtl: 0 }],
    ["joinTimeout", { joinTimeout: 0 }],
    ["retryJoinInterval", { retryJoinInterval: 0 }],
    ["leaveTimeout", { leaveTimeout: 0 }],
    ["phiThreshold", { phiThreshold: 0 }],
    ["phiThreshold", { phiThreshold: Number.NaN }],
    ["phiWindowSize", { phiWindowSize: 1 }],
    ["phiMinStdDeviation", { phiMinStdDeviation: 0 }],
    ["phiAcceptablePause", { phiAcceptablePause: -1 }],
    ["maxPacketSize", { maxPacketSize: 100 }],
    ["maxPacketSize", { maxPacketSize: 70_000 }],
    ["healthCheckInterval", { healthCheckInterval: 0 }],
    ["healthCheckTimeout", { healthCheckTimeout: 0 }],
    ["healthCheckTimeout", { healthCheckTimeout: "10 seconds" }],
    ["identityKey", { identityCertificate: issued.certificate.pem, identityCa: devCa.certificate.pem }],
    ["identityCa", { identityCertificate: issued.certificate.pem, identityKey: issued.key }],
    ["identityCertificate", { identityCertificate: "/nonexistent/cert.pem", identityKey: issued.key, identityCa: "x" }],
    ["identityCertificate", { ...identity, identityCertificate: devCa.issue().certificate.pem }],
    ["identityCertificate", { ...identity, identityCa: DevTls.makeAuthority().certificate.pem }],
    ["identityCertificate", { ...identity, identityKey: devCa.issue({ nodeId: boundId }).key }],
    ["nodeId", { ...identity, nodeId: "7c9e6679-7425-40de-944b-e07fc1f90ae7" }],
    ["requireIdentities", { requireIdentities: true }]
  ]
  for (const [field, input] of cases) {
    it.effect(`rejects ${field}: ${JSON.stringify(input).slice(0, 60)}`, () =>
      Effect.gen(function* () {
        const error = yield* rejects(input)
        assert.instanceOf(error, InvalidConfiguration)
        expect(error.field).toBe(field)
        expect(error.message).toContain(field)
      })
    )
  }

  it.effect("with an identity, the node id is the certificate's, and the key stays redacted", () =>
    Effect.gen(function* () {
      const config = yield* ClusterConfig.make({ ...identity, requireIdentities: true })
      expect(config.nodeId).toBe(boundId)
      expect(config.requireIdentities).toBe(true)
      expect(String(config.identityKey)).not.toContain("PRIVATE KEY")
      const same = yield* ClusterConfig.make({ ...identity, nodeId: boundId.toUpperCase() })
      expect(same.nodeId).toBe(boundId)
      // a changed copy reads the PEM text back, not as paths
      const copy = yield* ClusterConfig.make({ ...ClusterConfig.toInput(config), nodeName: "other" })
      expect(copy.nodeId).toBe(boundId)
    })
  )

  it("has a rejection test for every field", () => {
    const covered = new Set(cases.map(([field]) => field))
    const optionalOrBoolean = new Set(["retryJoin", "tcpPings", "encryptOutgoing", "requireEncryption"])
    covered.add("identityCertificate")
    for (const field of Object.keys(ClusterConfig.environmentVariables)) {
      if (!optionalOrBoolean.has(field)) expect(covered.has(field), field).toBe(true)
    }
  })
})

describe("ClusterConfig.fromEnv", () => {
  it.effect("reads the twelve-factor variables", () =>
    Effect.gen(function* () {
      const c = yield* fromEnv({
        SHOAL_BIND: "0.0.0.0:8000",
        SHOAL_ADVERTISE: "10.1.2.3:8000",
        SHOAL_SEEDS: "seed-0.shoal:8000, seed-1.shoal:8000",
        SHOAL_TAGS: "role=worker,zone=eu-1",
        SHOAL_PROBE_INTERVAL: "2 seconds",
        SHOAL_PING_TIMEOUT: "800",
        SHOAL_GOSSIP_INTERVAL: "150ms",
        SHOAL_PUSH_PULL_INTERVAL: "1m30s",
        SHOAL_RETRY_JOIN: "true",
        SHOAL_INDIRECT_CHECKS: "5",
        SHOAL_SUSPICION_CONFIRMATIONS: "3",
        SHOAL_NODE_NAME: "w1"
      })
      expect(String(c.bindAddress)).toBe("0.0.0.0:8000")
      expect(String(c.gossipAddress)).toBe("10.1.2.3:8000")
      expect(c.seedNodes).toEqual(["seed-0.shoal:8000", "seed-1.shoal:8000"])
      expect(c.tags).toEqual({ role: "worker", zone: "eu-1" })
      expect(Duration.toMillis(c.probeInterval)).toBe(2000)
      expect(Duration.toMillis(c.pingTimeout)).toBe(800)
      expect(Duration.toMillis(c.gossipInterval)).toBe(150)
      expect(Duration.toMillis(c.pushPullInterval)).toBe(90_000)
      expect(c.retryJoin).toBe(true)
      expect(c.indirectChecks).toBe(5)
      expect(c.suspicionConfirmations).toBe(3)
      expect(c.nodeName).toBe("w1")
    })
  )

  it.effect("uses the base input where the environment is silent", () =>
    Effect.gen(function* () {
      const c = yield* fromEnv({ SHOAL_TAGS: "role=director" }, { nodeName: "d", bindAddress: "127.0.0.1:9" })
      expect(c.nodeName).toBe("d")
      expect(String(c.bindAddress)).toBe("127.0.0.1:9")
      expect(c.tags).toEqual({ role: "director" })
    })
  )

  it.effect("names the variable in errors", () =>
    Effect.gen(function* () {
      for (const [env, variable] of [
        [{ SHOAL_PROBE_INTERVAL: "sometimes" }, "SHOAL_PROBE_INTERVAL"],
        [{ SHOAL_TAGS: "role" }, "SHOAL_TAGS"],
        [{ SHOAL_RETRY_JOIN: "perhaps" }, "SHOAL_RETRY_JOIN"],
        [{ SHOAL_INDIRECT_CHECKS: "three" }, "SHOAL_INDIRECT_CHECKS"],
        [{ SHOAL_BIND: "nowhere" }, "SHOAL_BIND"],
        [{ SHOAL_PING_TIMEOUT: "5000" }, "SHOAL_PING_TIMEOUT"],
        [{ SHOAL_PROBE_INTERVAL: "300ms", SHOAL_PING_TIMEOUT: "300ms" }, "SHOAL_PING_TIMEOUT"]
      ] as const) {
        const error = yield* fromEnv(env).pipe(Effect.flip)
        expect(error.field, JSON.stringify(env)).toBe(variable)
      }
    })
  )
})

describe("ClusterConfig derived defaults", () => {
  it.effect("a short probe or health interval pulls the unset timeout's default down to half of it", () =>
    Effect.gen(function* () {
      const c = yield* ClusterConfig.make({ probeInterval: "200 millis", healthCheckInterval: "1 second" })
      expect(Duration.toMillis(c.pingTimeout)).toBe(100)
      expect(Duration.toMillis(c.healthCheckTimeout)).toBe(500)
      const d = yield* ClusterConfig.make({ probeInterval: "5 seconds" })
      expect(Duration.toMillis(d.pingTimeout)).toBe(500)
      const explicit = yield* ClusterConfig.make({ probeInterval: "200 millis", pingTimeout: "300 millis" }).pipe(
        Effect.flip
      )
      expect(explicit.field).toBe("pingTimeout")
    }).pipe(Random.withSeed(1))
  )
})
