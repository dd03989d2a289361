import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { assert, describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Redacted } from "effect"
import * as ClusterConfig from "../../src/cluster/Config.ts"
import * as RpcConfig from "../../src/rpc/RpcConfig.ts"
import { certs } from "../fixtures/certs.ts"

const rejects = (input: RpcConfig.Input) => Effect.flip(RpcConfig.make(input))

describe("RpcConfig", () => {
  it.effect("defaults: wildcard bind on 7947, 5 s keep-alive, no TLS material", () =>
    Effect.gen(function* () {
      const config = yield* RpcConfig.make()
      assert.strictEqual(String(config.bindAddress), "0.0.0.0:7947")
      assert.isTrue(Duration.equals(config.keepAlive, Duration.seconds(5)))
      assert.isTrue(Duration.equals(config.keepAliveTimeout, Duration.seconds(15)))
      assert.isTrue(Duration.equals(config.connectTimeout, Duration.seconds(5)))
      assert.strictEqual(config.streamBufferSize, RpcConfig.DEFAULT_STREAM_BUFFER_SIZE)
      assert.isFalse(config.requireClientCertificate)
      assert.strictEqual(config.maxConnections, 256)
      assert.strictEqual(config.maxFrameBytes, 4 * 1024 * 1024)
      assert.isTrue(Duration.equals(config.handshakeTimeout, Duration.seconds(10)))
      assert.isTrue(Duration.equals(config.idleTimeout, Duration.seconds(60)))
      assert.deepStrictEqual(config.tls, {
        certificate: undefined,
        key: undefined,
        ca: undefined,
        clientCertificate: undefined,
        clientKey: undefined
      })
      assert.isUndefined(config.cluster)
    })
  )

  it.effect("reads the PEM files and keeps the keys redacted", () =>
    Effect.gen(function* () {
      const tls = yield* certs
      const config = yield* RpcConfig.make({
        certificate: tls.node.cert,
        key: tls.node.key,
        ca: tls.ca,
        keepAlive: "2 seconds"
      })
      expect(config.tls.certificate!.pem.toString()).toContain("BEGIN CERTIFICATE")
      expect(Redacted.value(config.tls.key!.pem).toString()).toContain("PRIVATE KEY")
      expect(String(config.tls.key!.pem)).not.toContain("PRIVATE KEY")
      expect(JSON.stringify(config.tls.key)).not.toContain("PRIVATE KEY")
      assert.strictEqual(config.tls.ca!.path, tls.ca)
      assert.isTrue(Duration.equals(config.keepAlive, Duration.seconds(2)))
    })
  )

  it.effect("a missing, unreadable or non-PEM file names the field and the file", () =>
    Effect.gen(function* () {
      const tls = yield* certs
      const missing = join(tls.dir, "nope.pem")
      const notPem = join(tls.dir, "junk.pem")
      writeFileSync(notPem, "hello")
      const a = yield* rejects({ certificate: missing, key: tls.node.key })
      assert.strictEqual(a.field, "certificate")
      expect(a.reason).toContain(missing)
      expect(a.reason).toContain("ENOENT")
      const b = yield* rejects({ ca: notPem })
      assert.strictEqual(b.field, "ca")
      expect(b.reason).toContain(notPem)
      const c = yield* rejects({ certificate: tls.node.cert, key: tls.dir })
      assert.strictEqual(c.field, "key")
      expect(c.reason).toContain(tls.dir)
      const d = yield* rejects({ certificate: tls.node.key, key: tls.node.key })
      assert.strictEqual(d.field, "certificate")
    })
  )

  it.effect("a key that is not the certificate's, or half a pair, is rejected", () =>
    Effect.gen(function* () {
      const tls = yield* certs
      const mismatch = yield* rejects({ certificate: tls.node.cert, key: tls.client.key })
      assert.strictEqual(mismatch.field, "key")
      expect(mismatch.reason).toContain("is not the private key of")
      assert.strictEqual((yield* rejects({ certificate: tls.node.cert })).field, "key")
      assert.strictEqual((yield* rejects({ key: tls.node.key })).field, "certificate")
      assert.strictEqual((yield* rejects({ clientCertificate: tls.client.cert })).field, "clientKey")
      const client = yield* rejects({ clientCertificate: tls.client.cert, clientKey: tls.node.key })
      assert.strictEqual(client.field, "clientKey")
    })
  )

  it.effect("values that cannot work are rejected with their field", () =>
    Effect.gen(function* () {
      assert.strictEqual((yield* rejects({ bindAddress: "nowhere" })).field, "bindAddress")
      assert.strictEqual((yield* rejects({ bindAddress: { host: "127.0.0.1", port: 70000 } })).field, "bindAddress")
      assert.strictEqual((yield* rejects({ advertiseAddress: "10.0.0.1:0" })).field, "advertiseAddress")
      assert.strictEqual((yield* rejects({ keepAlive: "soon" as Duration.Input })).field, "keepAlive")
      assert.strictEqual((yield* rejects({ connectTimeout: 0 })).field, "connectTimeout")
      assert.strictEqual(
        (yield* rejects({ keepAlive: "10 seconds", keepAliveTimeout: "5 seconds" })).field,
        "keepAliveTimeout"
      )
      assert.strictEqual((yield* rejects({ streamBufferSize: 0 })).field, "streamBufferSize")
      assert.strictEqual((yield* rejects({ streamBufferSize: 1.5 })).field, "streamBufferSize")
      assert.strictEqual((yield* rejects({ serverName: " " })).field, "serverName")
      assert.strictEqual((yield* rejects({ certificate: "" })).field, "certificate")
      assert.strictEqual((yield* rejects({ requireClientCertificate: true })).field, "ca")
      assert.strictEqual((yield* rejects({ maxConnections: 0 })).field, "maxConnections")
      assert.strictEqual((yield* rejects({ maxFrameBytes: 100 })).field, "maxFrameBytes")
      assert.strictEqual((yield* rejects({ maxFrameBytes: 2 ** 31 })).field, "maxFrameBytes")
      assert.strictEqual((yield* rejects({ handshakeTimeout: 0 })).field, "handshakeTimeout")
      assert.strictEqual((yield* rejects({ idleTimeout: "never" as Duration.Input })).field, "idleTimeout")
    })
  )

  it.effect("withCluster checks the cluster settings now and keeps the rest", () =>
    Effect.gen(function* () {
      const tls = yield* certs
      const base = yield* RpcConfig.make({ certificate: tls.node.cert, key: tls.node.key, bindAddress: "127.0.0.1:0" })
      const bad = yield* Effect.flip(RpcConfig.withCluster(base, { probeInterval: "never" as Duration.Input }))
      assert.strictEqual(bad.field, "probeInterval")
      const input: ClusterConfig.Input = { nodeName: "n1", tags: { role: "worker" } }
      const joined = yield* RpcConfig.withCluster(input)(base)
      assert.strictEqual(joined.cluster, input)
      assert.strictEqual(joined.tls, base.tls)
      assert.strictEqual(String(joined.bindAddress), "127.0.0.1:0")
      assert.isUndefined(base.cluster)
      const made = yield* ClusterConfig.make(input)
      assert.strictEqual((yield* RpcConfig.withCluster(base, made)).cluster, made)
      assert.strictEqual((yield* Effect.flip(RpcConfig.make({ cluster: { gossipNodes: 0 } }))).field, "gossipNodes")
    })
  )

  it.effect("the client presents its client certificate, or under mTLS the node's own", () =>
    Effect.gen(function* () {
      const tls = yield* certs
      // mutual TLS is on by default with a CA: the node presents its own certificate
      const mutual = yield* RpcConfig.make({ certificate: tls.node.cert, key: tls.node.key, ca: tls.ca })
      assert.isTrue(mutual.requireClientCertificate)
      assert.strictEqual(RpcConfig.clientIdentity(mutual)!.cert.path, tls.node.cert)
      // turned off explicitly, it presents nothing
      const plain = yield* RpcConfig.make({
        certificate: tls.node.cert,
        key: tls.node.key,
        ca: tls.ca,
        requireClientCertificate: false
      })
      assert.isUndefined(RpcConfig.clientIdentity(plain))
      // without a CA there is nothing to check client certificates against
      assert.isFalse(
        (yield* RpcConfig.make({ certificate: tls.node.cert, key: tls.node.key })).requireClientCertificate
      )
      const explicit = yield* RpcConfig.make({
        ca: tls.ca,
        clientCertificate: tls.client.cert,
        clientKey: tls.client.key
      })
      assert.strictEqual(RpcConfig.clientIdentity(explicit)!.cert.path, tls.client.cert)
    })
  )
})
