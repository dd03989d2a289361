import * as Net from "node:net"
import { assert, describe, it } from "@effect/vitest"
import { Context, type Duration, Effect, Exit, Layer, Metric, Scope } from "effect"
import { Transport } from "../../src/cluster/gossip/Transport.ts"
import * as UdpTransport from "../../src/cluster/gossip/UdpTransport.ts"
import { Address, formatAddress } from "../../src/cluster/Node.ts"

const loopback = (port = 0) => new Address({ host: "127.0.0.1", port })

/** A transport bound on 127.0.0.1 for the rest of the current scope. */
const open = (port = 0) =>
  Effect.map(Layer.build(UdpTransport.layer({ bind: loopback(port) })), (context) => Context.get(context, Transport))

/** Fails the test (instead of hanging it) when `effect` takes longer than `limit`. */
const within =
  (limit: Duration.Input, what: string) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    Effect.timeoutOrElse(effect, { duration: limit, orElse: () => Effect.die(new Error(`timed out: ${what}`)) })

const text = (s: string) => new TextEncoder().encode(s)
const decode = (b: Uint8Array) => new TextDecoder().decode(b)

/** Resolves when the raw socket is closed by the other side (or errors), with the bytes it received. */
const rawConnection = (port: number, send: (conn: Net.Socket) => void) =>
  Effect.callback<{ readonly received: number }>((resume) => {
    const conn = Net.createConnection({ host: "127.0.0.1", port })
    let received = 0
    conn.on("data", (chunk) => {
      received += chunk.length
    })
    conn.on("error", () => {})
    conn.on("close", () => resume(Effect.succeed({ received })))
    conn.on("connect", () => send(conn))
    return Effect.sync(() => conn.destroy())
  })

const socketHandles = () =>
  process.getActiveResourcesInfo().filter((r) => r === "UDPWrap" || r === "TCPServerWrap" || r === "TCPSocketWrap")
    .length

describe("UdpTransport (127.0.0.1)", () => {
  it.live("exchanges datagrams both ways", () =>
    Effect.gen(function* () {
      const a = yield* open()
      const b = yield* open()
      assert.notStrictEqual(a.localAddress.port, 0)
      assert.strictEqual(a.localAddress.host, "127.0.0.1")

      yield* a.send(b.localAddress, text("ping"))
      const [atB] = yield* b.receive.pipe(within("5 seconds", "datagram at b"))
      assert.strictEqual(decode(atB.payload), "ping")
      assert.strictEqual(formatAddress(atB.from), formatAddress(a.localAddress))

      // reply to the address the datagram came from
      yield* b.send(atB.from, text("pong"))
      const [atA] = yield* a.receive.pipe(within("5 seconds", "datagram at a"))
      assert.strictEqual(decode(atA.payload), "pong")
      assert.strictEqual(atA.from.port, b.localAddress.port)

      assert.deepStrictEqual(yield* a.stats, {
        packetsSent: 1,
        bytesSent: 4,
        packetsReceived: 1,
        bytesReceived: 4,
        dropped: 0
      })
      // the process-wide counters saw both datagrams (other tests may add more)
      const counters = new Map((yield* Metric.snapshot).map((m) => [m.id, m.state] as const))
      const count = (id: string) => Number((counters.get(id) as { count: number } | undefined)?.count ?? 0)
      assert.isAtLeast(count("shoal_transport_packets_sent"), 2)
      assert.isAtLeast(count("shoal_transport_bytes_received"), 8)
    })
  )

  it.live("counts datagrams dropped by a full receive buffer", () =>
    Effect.gen(function* () {
      const a = yield* open()
      const context = yield* Layer.build(UdpTransport.layer({ bind: loopback(), receiveCapacity: 4 }))
      const b = Context.get(context, Transport)
      for (let i = 0; i < 10; i++) yield* a.send(b.localAddress, Uint8Array.of(i))
      // wait (bounded) until all ten arrived or were dropped
      const deadline = Date.now() + 5_000
      let stats = yield* b.stats
      while (stats.dropped < 6 && Date.now() < deadline) {
        yield* Effect.sleep("10 millis")
        stats = yield* b.stats
      }
      assert.strictEqual(stats.dropped, 6)
      const batch = yield* b.receive
      assert.deepStrictEqual(
        batch.map((p) => p.payload[0]),
        [0, 1, 2, 3]
      )
    })
  )

  it.live("send after the transport closed fails instead of waiting forever", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const a = yield* open().pipe(Scope.provide(scope))
      yield* Scope.close(scope, Exit.void)
      const error = yield* a.send(loopback(9), text("x")).pipe(Effect.flip, within("5 seconds", "send after close"))
      assert.match(error.message, /closed/)
    })
  )

  it.live("send to a host name fails with NetworkError instead of guessing", () =>
    Effect.gen(function* () {
      const a = yield* open()
      const error = yield* a.send(new Address({ host: "localhost", port: 9 }), text("x")).pipe(Effect.flip)
      assert.strictEqual(error._tag, "NetworkError")
      assert.strictEqual(error.address, "localhost:9")
    })
  )

  it.live("exchange / serve round trip over TCP on the same port", () =>
    Effect.gen(function* () {
      const a = yield* open()
      const b = yield* open()
      const peers: Array<string> = []
      yield* b.serve(
        (from, request) =>
          Effect.sync(() => {
            peers.push(from.host)
            return Uint8Array.from(request).reverse()
          }),
        { maxBytes: 4 << 20, timeout: "5 seconds" }
      )
      const small = yield* a.exchange(b.localAddress, text("abc"), { timeout: "5 seconds", maxBytes: 1024 })
      assert.strictEqual(decode(small), "cba")

      // large enough to arrive in many chunks
      const big = new Uint8Array(3 << 20)
      for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff
      const reversed = yield* a.exchange(b.localAddress, big, { timeout: "10 seconds", maxBytes: 4 << 20 })
      assert.strictEqual(reversed.length, big.length)
      assert.strictEqual(reversed[0], big[big.length - 1])
      assert.strictEqual(reversed[big.length - 1], big[0])

      const empty = yield* a.exchange(b.localAddress, new Uint8Array(0), { timeout: "5 seconds", maxBytes: 10 })
      assert.strictEqual(empty.length, 0)
      assert.deepStrictEqual(peers, ["127.0.0.1", "127.0.0.1", "127.0.0.1"])

      // a response over the caller's limit
      const tooBig = yield* a
        .exchange(b.localAddress, text("0123456789"), { timeout: "5 seconds", maxBytes: 4 })
        .pipe(Effect.flip)
      assert.match(tooBig.message, /exceeds the limit of 4/)
    })
  )

  it.live("exchange fails with NetworkError: nobody serving, nobody listening, handler failure", () =>
    Effect.gen(function* () {
      const a = yield* open()
      const b = yield* open()
      const options = { timeout: "5 seconds", maxBytes: 1024 } as const

      // b is bound but serves nothing: the connection is closed at once
      const unserved = yield* a.exchange(b.localAddress, text("x"), options).pipe(Effect.flip)
      assert.strictEqual(unserved._tag, "NetworkError")
      assert.strictEqual(unserved.address, formatAddress(b.localAddress))

      // a closed port
      const scope = yield* Scope.make()
      const gone = yield* open().pipe(Scope.provide(scope))
      const goneAddress = gone.localAddress
      yield* Scope.close(scope, Exit.void)
      const refused = yield* a.exchange(goneAddress, text("x"), options).pipe(Effect.flip)
      assert.match(refused.message, /cannot connect/)

      // the handler fails: closed without a response
      yield* b.serve(() => Effect.die("boom"), options)
      const failed = yield* a.exchange(b.localAddress, text("x"), options).pipe(Effect.flip)
      assert.strictEqual(failed._tag, "NetworkError")
    })
  )

  it.live("a slow handler times out the caller", () =>
    Effect.gen(function* () {
      const a = yield* open()
      const b = yield* open()
      yield* b.serve(() => Effect.never, { maxBytes: 1024, timeout: "10 seconds" })
      const error = yield* a
        .exchange(b.localAddress, text("x"), { timeout: "200 millis", maxBytes: 1024 })
        .pipe(Effect.flip, within("5 seconds", "caller timeout"))
      assert.match(error.message, /timed out/)
    })
  )

  it.live("misbehaving peers only close their own connection", () =>
    Effect.gen(function* () {
      const a = yield* open()
      const b = yield* open()
      const port = b.localAddress.port
      yield* b.serve((_, request) => Effect.succeed(request), { maxBytes: 1024, timeout: "300 millis" })

      // a huge length prefix: refused before any body is read
      const huge = yield* rawConnection(port, (conn) => conn.write(Uint8Array.of(0xff, 0xff, 0xff, 0xf0))).pipe(
        within("5 seconds", "huge prefix connection closed")
      )
      assert.strictEqual(huge.received, 0)

      // just over the limit
      const over = yield* rawConnection(port, (conn) => conn.write(Uint8Array.of(0, 0, 4, 1, 1, 2, 3))).pipe(
        within("5 seconds", "over-limit connection closed")
      )
      assert.strictEqual(over.received, 0)

      // slow loris: half a header, then silence, closed by the server's timeout
      const started = Date.now()
      const loris = yield* rawConnection(port, (conn) => conn.write(Uint8Array.of(0, 0))).pipe(
        within("5 seconds", "slow loris closed")
      )
      assert.strictEqual(loris.received, 0)
      assert.isAtLeast(Date.now() - started, 250)

      // garbage then EOF
      yield* rawConnection(port, (conn) => conn.end(text("GET / HTTP/1.1\r\n\r\n"))).pipe(
        within("5 seconds", "garbage connection closed")
      )

      // the server still serves
      const echo = yield* a.exchange(b.localAddress, text("still here"), { timeout: "5 seconds", maxBytes: 1024 })
      assert.strictEqual(decode(echo), "still here")
      // and datagrams still flow
      yield* a.send(b.localAddress, text("dgram"))
      const [packet] = yield* b.receive.pipe(within("5 seconds", "datagram after abuse"))
      assert.strictEqual(decode(packet.payload), "dgram")
    })
  )

  it.live("served streams together hold at most maxBufferedBytes: a claim costs only the bytes sent", () =>
    Effect.gen(function* () {
      const a = yield* open()
      const b = yield* Effect.map(
        Layer.build(UdpTransport.layer({ bind: loopback(), maxBufferedBytes: 1000 })),
        (context) => Context.get(context, Transport)
      )
      const port = b.localAddress.port
      yield* b.serve((_, request) => Effect.succeed(request), { maxBytes: 600, timeout: "10 seconds" })
      const frame = (length: number, bytes: number) => {
        const out = new Uint8Array(4 + bytes)
        new DataView(out.buffer).setUint32(0, length)
        return out
      }

      // slow: claims 600 bytes, sends 500 and holds on
      let slowReceived = 0
      const slow = Net.createConnection({ host: "127.0.0.1", port })
      slow.on("data", (chunk) => {
        slowReceived += chunk.length
      })
      slow.on("error", () => {})
      const slowClosed = Effect.callback<void>((resume) => {
        slow.on("close", () => resume(Effect.void))
        return Effect.sync(() => slow.destroy())
      })
      slow.write(frame(600, 500))
      // a whole exchange later, the server has read the slow connection's bytes
      const small = yield* a.exchange(b.localAddress, text("small"), { timeout: "5 seconds", maxBytes: 1024 })
      assert.strictEqual(decode(small), "small")

      // another full frame would take the held bytes past the limit: that connection is closed
      const greedy = yield* rawConnection(port, (conn) => conn.write(frame(600, 600))).pipe(
        within("5 seconds", "over-budget connection closed")
      )
      assert.strictEqual(greedy.received, 0)

      // the slow one completes and is answered
      slow.end(new Uint8Array(100))
      yield* slowClosed.pipe(within("5 seconds", "slow connection answered"))
      assert.strictEqual(slowReceived, 604)

      // and what it held is given back: a full frame fits again
      const full = yield* a.exchange(b.localAddress, new Uint8Array(600), { timeout: "5 seconds", maxBytes: 1024 })
      assert.strictEqual(full.length, 600)
    })
  )

  it.live("one source holds at most maxConnectionsPerSource exchanges; another address is still served", () =>
    Effect.gen(function* () {
      const b = yield* Effect.map(
        Layer.build(UdpTransport.layer({ bind: loopback(), maxConnectionsPerSource: 3, countLoopback: true })),
        (context) => Context.get(context, Transport)
      )
      const port = b.localAddress.port
      yield* b.serve((_, request) => Effect.succeed(request), { maxBytes: 1024, timeout: "10 seconds" })
      const idle: Array<Net.Socket> = []
      yield* Effect.addFinalizer(() =>
        Effect.sync(() => {
          for (const conn of idle) conn.destroy()
        })
      )
      // three idle connections from 127.0.0.1, each with half a length prefix
      for (let i = 0; i < 3; i++) {
        yield* Effect.callback<void>((resume) => {
          const conn = Net.createConnection({ host: "127.0.0.1", port, localAddress: "127.0.0.1" }, () => {
            conn.write(Uint8Array.of(0, 0))
            resume(Effect.void)
          })
          conn.on("error", () => {})
          idle.push(conn)
        })
      }
      const echo = (localAddress: string) =>
        Effect.callback<{ readonly received: number }>((resume) => {
          const conn = Net.createConnection({ host: "127.0.0.1", port, localAddress }, () =>
            conn.write(Uint8Array.of(0, 0, 0, 2, 7, 7))
          )
          let received = 0
          conn.on("data", (chunk) => {
            received += chunk.length
          })
          conn.on("error", () => {})
          conn.on("close", () => resume(Effect.succeed({ received })))
          return Effect.sync(() => conn.destroy())
        }).pipe(within("5 seconds", `echo from ${localAddress}`))
      // a fourth from the same address is closed unanswered; one from 127.0.0.2 is answered
      assert.strictEqual((yield* echo("127.0.0.1")).received, 0)
      assert.strictEqual((yield* echo("127.0.0.2")).received, 6)
      // once the idle ones go, 127.0.0.1 is served again
      for (const conn of idle) conn.destroy()
      let served = 0
      for (let attempt = 0; attempt < 50 && served === 0; attempt++) {
        served = (yield* echo("127.0.0.1")).received
        if (served === 0) yield* Effect.sleep("20 millis")
      }
      assert.strictEqual(served, 6)
    })
  )

  it.live("binding a port in use fails with NetworkError naming the address", () =>
    Effect.gen(function* () {
      const a = yield* open()
      const taken = a.localAddress.port
      const udpTaken = yield* open(taken).pipe(Effect.flip)
      assert.strictEqual(udpTaken._tag, "NetworkError")
      assert.strictEqual(udpTaken.address, `127.0.0.1:${taken}`)

      // TCP taken, UDP free: a fixed port is not retried elsewhere
      const server = Net.createServer()
      const tcpPort = yield* Effect.callback<number>((resume) => {
        server.listen({ host: "127.0.0.1", port: 0 }, () =>
          resume(Effect.succeed((server.address() as Net.AddressInfo).port))
        )
      })
      yield* Effect.addFinalizer(() => Effect.callback<void>((resume) => void server.close(() => resume(Effect.void))))
      const tcpTaken = yield* open(tcpPort).pipe(Effect.flip)
      assert.strictEqual(tcpTaken.address, `127.0.0.1:${tcpPort}`)
      assert.match(tcpTaken.message, /TCP/)

      // an address that is not ours
      const foreign = yield* Layer.build(
        UdpTransport.layer({ bind: new Address({ host: "192.0.2.1", port: 0 }) })
      ).pipe(Effect.flip)
      assert.strictEqual(foreign.address, "192.0.2.1:0")
    })
  )

  it.live("resolve: IP literals to themselves, localhost through DNS", () =>
    Effect.gen(function* () {
      const a = yield* open()
      assert.deepStrictEqual((yield* a.resolve(loopback(7946))).map(formatAddress), ["127.0.0.1:7946"])
      const local = (yield* a.resolve(new Address({ host: "localhost", port: 7946 }))).map(formatAddress)
      assert.isTrue(
        local.some((s) => s === "127.0.0.1:7946" || s === "[::1]:7946"),
        local.join(", ")
      )
      const bad = yield* a
        .resolve(new Address({ host: "no-such-host.invalid", port: 1 }))
        .pipe(Effect.flip, within("20 seconds", "failed lookup"))
      assert.strictEqual(bad._tag, "NetworkError")
      assert.strictEqual(bad.address, "no-such-host.invalid:1")
    })
  )

  it.live("20 open/close cycles leave no socket handles behind", () =>
    Effect.gen(function* () {
      // earlier tests' sockets close asynchronously: let them settle first
      const settle = (target: number) =>
        Effect.gen(function* () {
          const deadline = Date.now() + 5_000
          while (socketHandles() > target && Date.now() < deadline) yield* Effect.sleep("20 millis")
          return socketHandles()
        })
      const baseline = yield* settle(0)
      for (let i = 0; i < 20; i++) {
        const scope = yield* Scope.make()
        const [a, b] = yield* Effect.all([open(), open()]).pipe(Scope.provide(scope))
        // the count does see our handles: two UDP sockets and two TCP servers
        if (i === 0) assert.isAtLeast(socketHandles(), baseline + 4)
        yield* b.serve((_, r) => Effect.succeed(r), { maxBytes: 64, timeout: "5 seconds" }).pipe(Scope.provide(scope))
        yield* a.send(b.localAddress, text("x"))
        yield* b.receive.pipe(within("5 seconds", "datagram in cycle"))
        yield* a.exchange(b.localAddress, text("y"), { timeout: "5 seconds", maxBytes: 64 })
        yield* Scope.close(scope, Exit.void).pipe(within("5 seconds", "layer close"))
      }
      // handles close asynchronously: poll with a deadline
      assert.strictEqual(yield* settle(baseline), baseline, process.getActiveResourcesInfo().join(","))
    })
  )
})
