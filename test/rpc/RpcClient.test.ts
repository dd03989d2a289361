/**
 * RpcClient.connect over real TLS on 127.0.0.1: the server is verified
 * against the configured CA and server name, connection failures are typed,
 * and with mutual TLS only holders of a certificate from the cluster CA get in.
 */
import * as Net from "node:net"
import { assert, describe, expect, it } from "@effect/vitest"
import { Effect, Stream } from "effect"
import { Address } from "../../src/cluster/Node.ts"
import * as RpcClient from "../../src/rpc/RpcClient.ts"
import * as RpcConfig from "../../src/rpc/RpcConfig.ts"
import { certs } from "../fixtures/certs.ts"
import { clientConfig, makeProbe, nodeConfig, startServer, TestRpcs, within } from "./helpers.ts"

const freePort = Effect.callback<number>((resume) => {
  const server = Net.createServer()
  server.listen(0, "127.0.0.1", () => {
    const port = (server.address() as Net.AddressInfo).port
    server.close(() => resume(Effect.succeed(port)))
  })
})

describe("RpcClient.connect over TLS (127.0.0.1)", () => {
  it.live("connects to an address or a host:port string and calls", () =>
    Effect.gen(function* () {
      const tls = yield* certs
      const running = yield* startServer(yield* nodeConfig(tls), makeProbe("s"))
      const config = yield* clientConfig(tls)
      const byAddress = yield* RpcClient.connect(TestRpcs, running.server.address, config)
      const byText = yield* RpcClient.connect(TestRpcs, `127.0.0.1:${running.server.address.port}`, {
        ca: tls.ca,
        serverName: "localhost",
        clientCertificate: tls.client.cert,
        clientKey: tls.client.key
      })
      assert.strictEqual((yield* byAddress.Echo({ text: "a" })).text, "a")
      assert.strictEqual((yield* byText.Echo({ text: "b" })).text, "b")
      // the IP itself is in the certificate, so no server name is needed either
      const byIp = yield* RpcClient.connect(
        TestRpcs,
        running.server.address,
        yield* RpcConfig.make({ ca: tls.ca, clientCertificate: tls.client.cert, clientKey: tls.client.key })
      )
      assert.deepStrictEqual(yield* Stream.runCollect(byIp.Count({ n: 3 })), [1, 2, 3])
    })
  )

  it.live("connection failures are typed: nothing listening, untrusted CA, wrong server name", () =>
    Effect.gen(function* () {
      const tls = yield* certs
      const running = yield* startServer(yield* nodeConfig(tls), makeProbe("s"))
      const nobody = yield* freePort

      const refused = yield* Effect.flip(
        RpcClient.connect(TestRpcs, new Address({ host: "127.0.0.1", port: nobody }), yield* clientConfig(tls))
      )
      assert.strictEqual(refused._tag, "ConnectionFailed")
      expect(refused.message).toContain("refused")

      const untrusted = yield* Effect.flip(
        RpcClient.connect(TestRpcs, running.server.address, yield* clientConfig(tls, { ca: tls.otherCa }))
      )
      assert.strictEqual(untrusted._tag, "ConnectionFailed")
      expect(untrusted.message).toContain("trusted CA")

      const misnamed = yield* Effect.flip(
        RpcClient.connect(TestRpcs, running.server.address, yield* clientConfig(tls, { serverName: "elsewhere" }))
      )
      assert.strictEqual(misnamed._tag, "ConnectionFailed")
      expect(misnamed.message).toContain("server name")

      const badAddress = yield* Effect.flip(RpcClient.connect(TestRpcs, "not an address", yield* clientConfig(tls)))
      assert.strictEqual(badAddress._tag, "InvalidConfiguration")
      assert.deepStrictEqual(running.probe.calls, [])
    })
  )

  it.live("a connection attempt is bounded by connectTimeout", () =>
    Effect.gen(function* () {
      // a listener that accepts TCP but never speaks TLS
      const silent = Net.createServer(() => {})
      yield* Effect.acquireRelease(
        Effect.callback<void>((resume) => void silent.listen(0, "127.0.0.1", () => resume(Effect.void))),
        () => Effect.sync(() => silent.close())
      )
      const port = (silent.address() as Net.AddressInfo).port
      const tls = yield* certs
      const error = yield* Effect.flip(
        RpcClient.connect(
          TestRpcs,
          new Address({ host: "127.0.0.1", port }),
          yield* clientConfig(tls, { connectTimeout: "200 millis" })
        )
      ).pipe(within(5_000, "connect timeout"))
      assert.strictEqual(error._tag, "ConnectionFailed")
      expect(error.message).toContain("200")
    })
  )

  describe("mutual TLS", () => {
    it.live("a client without a certificate, or with an outsider's, is refused; a cluster certificate gets in", () =>
      Effect.gen(function* () {
        const tls = yield* certs
        // a server with a CA requires client certificates unless told otherwise
        const running = yield* startServer(yield* nodeConfig(tls), makeProbe("guarded"))
        const address = running.server.address

        const anonymous = yield* Effect.flip(
          RpcClient.connect(
            TestRpcs,
            address,
            yield* clientConfig(tls, { clientCertificate: undefined, clientKey: undefined })
          )
        ).pipe(within(5_000, "anonymous client"))
        assert.strictEqual(anonymous._tag, "ConnectionFailed")
        expect(anonymous.message).toContain("refused this client's certificate")

        const outsider = yield* Effect.flip(
          RpcClient.connect(
            TestRpcs,
            address,
            yield* clientConfig(tls, { clientCertificate: tls.outsider.cert, clientKey: tls.outsider.key })
          )
        ).pipe(within(5_000, "outsider client"))
        assert.strictEqual(outsider._tag, "ConnectionFailed")

        const member = yield* RpcClient.connect(
          TestRpcs,
          address,
          yield* clientConfig(tls, { clientCertificate: tls.client.cert, clientKey: tls.client.key })
        )
        assert.strictEqual((yield* member.Echo({ text: "let me in" }).pipe(within(5_000, "echo"))).node, "guarded")

        // a node that requires client certificates presents its own when it calls
        const peer = yield* RpcClient.connect(TestRpcs, address, yield* nodeConfig(tls))
        assert.strictEqual((yield* peer.Echo({ text: "peer" })).text, "peer")
        assert.deepStrictEqual(running.probe.calls, ["Echo", "Echo"])
      })
    )
  })
})
