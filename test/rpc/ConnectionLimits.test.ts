/**
 * What a peer may cost an RPC server (127.0.0.1, real TLS): a frame that
 * claims more than `maxFrameBytes` closes its connection, a connection past
 * `maxConnections` is closed on accept, one that sends nothing is closed after
 * `idleTimeout`, one that never finishes its handshake after
 * `handshakeTimeout` — and a real client that pings keeps its connection.
 * Every wait is bounded; none is a timing assertion.
 */
import { readFileSync } from "node:fs"
import * as Net from "node:net"
import * as Tls from "node:tls"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Metric } from "effect"
import * as RpcClient from "../../src/rpc/RpcClient.ts"
import { certs, type TestCerts } from "../fixtures/certs.ts"
import { clientConfig, makeProbe, nodeConfig, startServer, TestRpcs, waitFor } from "./helpers.ts"

/** A process-wide counter's value (other tests in the file may add to it). */
const counter = (id: string) =>
  Effect.map(Metric.snapshot, (all) => Number((all.find((m) => m.id === id)?.state as { count?: number })?.count ?? 0))

/** A raw TLS connection presenting the test client certificate; `closed` turns true when the server closes it. */
const rawTls = (tls: TestCerts, port: number) =>
  Effect.acquireRelease(
    Effect.callback<{ readonly socket: Tls.TLSSocket; readonly closed: () => boolean }>((resume) => {
      let closed = false
      const socket = Tls.connect({
        host: "127.0.0.1",
        port,
        servername: "localhost",
        ca: readFileSync(tls.ca),
        cert: readFileSync(tls.client.cert),
        key: readFileSync(tls.client.key)
      })
      socket.on("error", () => {})
      socket.on("close", () => (closed = true))
      socket.once("secureConnect", () => resume(Effect.succeed({ socket, closed: () => closed })))
    }),
    ({ socket }) => Effect.sync(() => socket.destroy())
  )

/** A raw TCP connection that never starts TLS. */
const rawTcp = (port: number) =>
  Effect.acquireRelease(
    Effect.callback<{ readonly socket: Net.Socket; readonly closed: () => boolean }>((resume) => {
      let closed = false
      const socket = Net.createConnection({ host: "127.0.0.1", port })
      socket.on("error", () => {})
      socket.on("close", () => (closed = true))
      socket.once("connect", () => resume(Effect.succeed({ socket, closed: () => closed })))
    }),
    ({ socket }) => Effect.sync(() => socket.destroy())
  )

describe("RPC connection limits (127.0.0.1)", () => {
  it.live("a frame claiming 2^31 bytes closes its connection, counted as a failed connection", () =>
    Effect.gen(function* () {
      const tls = yield* certs
      const running = yield* startServer(yield* nodeConfig(tls, { maxFrameBytes: 1024 * 1024 }), makeProbe("s"))
      const failedBefore = yield* counter("shoal_rpc_connections_failed")
      const conn = yield* rawTls(tls, running.server.address.port)
      // a SchemaBinary frame header: the uvarint length 2^31, then nothing
      conn.socket.write(Uint8Array.of(0x80, 0x80, 0x80, 0x80, 0x08))
      yield* waitFor("the server closed the connection", Effect.sync(conn.closed), 5_000)
      // the peer's doing: counted (and logged at Debug), not the server's error
      yield* waitFor(
        "the failed connection counted",
        Effect.map(counter("shoal_rpc_connections_failed"), (n) => n > failedBefore),
        5_000
      )
    }).pipe(Effect.scoped)
  )

  it.live("a connection past maxConnections is closed at once; the ones before stay", () =>
    Effect.gen(function* () {
      const tls = yield* certs
      const running = yield* startServer(
        yield* nodeConfig(tls, { maxConnections: 2, idleTimeout: "1 minute" }),
        makeProbe("s")
      )
      const port = running.server.address.port
      const first = yield* rawTls(tls, port)
      const second = yield* rawTls(tls, port)
      const third = yield* rawTls(tls, port)
      yield* waitFor("the third connection closed", Effect.sync(third.closed), 5_000)
      assert.isFalse(first.closed())
      assert.isFalse(second.closed())
    }).pipe(Effect.scoped)
  )

  it.live("a connection on which nothing arrives is closed after idleTimeout", () =>
    Effect.gen(function* () {
      const tls = yield* certs
      const running = yield* startServer(yield* nodeConfig(tls, { idleTimeout: "300 millis" }), makeProbe("s"))
      const conn = yield* rawTls(tls, running.server.address.port)
      yield* waitFor("the idle connection closed", Effect.sync(conn.closed), 5_000)
    }).pipe(Effect.scoped)
  )

  it.live("a connection that never completes its TLS handshake is closed after handshakeTimeout", () =>
    Effect.gen(function* () {
      const tls = yield* certs
      const running = yield* startServer(yield* nodeConfig(tls, { handshakeTimeout: "300 millis" }), makeProbe("s"))
      const conn = yield* rawTcp(running.server.address.port)
      yield* waitFor("the silent connection closed", Effect.sync(conn.closed), 5_000)
    }).pipe(Effect.scoped)
  )

  it.live("a client that pings keeps its connection past idleTimeout", () =>
    Effect.gen(function* () {
      const tls = yield* certs
      const running = yield* startServer(yield* nodeConfig(tls, { idleTimeout: "300 millis" }), makeProbe("s"))
      const client = yield* RpcClient.connect(
        TestRpcs,
        running.server.address,
        yield* clientConfig(tls, { keepAlive: "50 millis", keepAliveTimeout: "2 seconds" }),
        { reconnect: false }
      )
      assert.strictEqual((yield* client.Echo({ text: "first" })).text, "first")
      yield* Effect.sleep("1 second")
      // the same connection: the client does not redial
      assert.strictEqual((yield* client.Echo({ text: "later" })).text, "later")
    }).pipe(Effect.scoped)
  )
})
