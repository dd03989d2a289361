/**
 * `Transport` on real sockets: UDP datagrams through `effect/socket`
 * `DatagramSocket` (Node adapter), and push-pull exchanges over TCP on the
 * same port number through `effect/socket` `Socket` / `SocketServer`.
 *
 * Stream framing: a 4-byte big-endian length, then that many bytes; one
 * request and one response per connection. The length is checked against
 * `maxBytes` before a single byte of the body is buffered, the body is held
 * only as its bytes arrive (all served connections together within
 * `maxBufferedBytes`), and the whole exchange runs under its timeout, so a
 * peer that sends garbage, trickles bytes or claims a huge length only ever
 * closes its own connection.
 *
 * Everything (UDP socket, TCP server, connections, fibers) belongs to the
 * layer's scope and is closed with it.
 *
 * @since 0.1.0
 */

import * as Net from "node:net"
import * as NodeDatagramSocket from "@effect/platform-node/NodeDatagramSocket"
import * as NodeDns from "@effect/platform-node/NodeDns"
import * as NodeSocket from "@effect/platform-node/NodeSocket"
import * as NodeSocketServer from "@effect/platform-node/NodeSocketServer"
import type { NonEmptyReadonlyArray } from "effect/Array"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as NetAddress from "effect/net/NetAddress"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import * as Scope from "effect/Scope"
import type * as DatagramSocket from "effect/socket/DatagramSocket"
import * as Socket from "effect/socket/Socket"
import type * as SocketServer from "effect/socket/SocketServer"
import { NetworkError } from "../Errors.ts"
import { Address, formatAddress } from "../Node.ts"
import { logPacket, type Packet, type StreamHandler, Transport, type TransportStats } from "./Transport.ts"

/** Options of a UDP transport. */
export interface UdpTransportOptions {
  /** Address to bind UDP and TCP on; port 0 picks a free port (the same number for both). */
  readonly bind: Address
  /** Datagrams buffered between `receive` calls before new ones are dropped (default 4096). */
  readonly receiveCapacity?: number
  /** Exchanges served at once; further connections are closed at once (default 64). */
  readonly maxConnections?: number
  /**
   * Exchanges served at once for one remote IP address (default 8), so that
   * one sender cannot hold every slot; connections from loopback are not
   * counted unless `countLoopback` (a sender on this host is inside already,
   * and a cluster of agents on 127.0.0.1 shares one address).
   */
  readonly maxConnectionsPerSource?: number
  /** Apply `maxConnectionsPerSource` to loopback sources too (default false). */
  readonly countLoopback?: boolean
  /** With port 0: how many ports to try when TCP cannot get the port UDP got (default 5). */
  readonly bindAttempts?: number
  /**
   * Bytes all served exchanges may hold at once (default 32 MiB, and never
   * less than one frame of the served `maxBytes`); a connection whose next
   * chunk would exceed it is closed.
   */
  readonly maxBufferedBytes?: number
}

// -- metrics (process-wide, across transports) ---------------------------------

const packetsSent = Metric.counter("shoal_transport_packets_sent", {
  description: "UDP datagrams sent",
  incremental: true
})
const bytesSent = Metric.counter("shoal_transport_bytes_sent", {
  description: "UDP payload bytes sent",
  incremental: true
})
const packetsReceived = Metric.counter("shoal_transport_packets_received", {
  description: "UDP datagrams received",
  incremental: true
})
const bytesReceived = Metric.counter("shoal_transport_bytes_received", {
  description: "UDP payload bytes received",
  incremental: true
})
const packetsDropped = Metric.counter("shoal_transport_packets_dropped", {
  description: "UDP datagrams dropped because the receive buffer was full",
  incremental: true
})
const sendErrors = Metric.counter("shoal_transport_send_errors", {
  description: "UDP sends that failed",
  incremental: true
})
const exchangesFailed = Metric.counter("shoal_transport_exchanges_failed", {
  description: "stream exchanges (client or server side) that failed or were refused",
  incremental: true
})

// -- helpers ------------------------------------------------------------------

const maxFrame = 0xffff_ffff

const isIpLiteral = (host: string): boolean => Result.isSuccess(NetAddress.ipFromString(host))

const isLoopback = (host: string): boolean => host === "::1" || host.startsWith("127.")

const lengthPrefix = (length: number): Uint8Array => {
  const header = new Uint8Array(4)
  new DataView(header.buffer).setUint32(0, length)
  return header
}

const networkError = (message: string, address: string, cause?: unknown): NetworkError =>
  cause === undefined ? new NetworkError({ message, address }) : new NetworkError({ message, address, cause })

/**
 * Bytes that served streams may hold at once, shared by every connection: a
 * peer that claims a large frame and sends it slowly holds only what it sent,
 * and all of them together no more than the limit.
 */
interface ByteBudget {
  used: number
  readonly limit: number
}

/**
 * Reads one length-prefixed frame. A claimed length above `maxBytes` is
 * refused at once (NaN refuses everything); the body grows as its bytes
 * arrive — nothing is allocated from the claim — and each chunk is charged
 * to `budget` (when given) through `held`, which the caller gives back when
 * the exchange ends. Bytes after the frame are ignored.
 */
const readFrame = (
  pull: Effect.Effect<NonEmptyReadonlyArray<Uint8Array>, Socket.SocketError>,
  maxBytes: number,
  peer: string,
  budget?: { readonly shared: ByteBudget; held: number }
): Effect.Effect<Uint8Array, NetworkError> =>
  Effect.gen(function* () {
    const header = new Uint8Array(4)
    let headerFilled = 0
    let length = -1
    const parts: Array<Uint8Array> = []
    let bodyFilled = 0
    while (true) {
      const chunks = yield* Effect.mapError(pull, (cause) =>
        networkError("stream closed before a complete frame", peer, cause)
      )
      for (const chunk of chunks) {
        let offset = 0
        while (offset < chunk.length) {
          if (length < 0) {
            const n = Math.min(4 - headerFilled, chunk.length - offset)
            header.set(chunk.subarray(offset, offset + n), headerFilled)
            headerFilled += n
            offset += n
            if (headerFilled < 4) continue
            length = new DataView(header.buffer).getUint32(0)
            if (!(length <= maxBytes)) {
              return yield* networkError(`frame of ${length} bytes exceeds the limit of ${maxBytes}`, peer)
            }
            if (length === 0) return new Uint8Array(0)
          } else {
            const n = Math.min(length - bodyFilled, chunk.length - offset)
            if (budget !== undefined) {
              // one frame of the largest size always fits on its own
              const limit = Math.max(budget.shared.limit, maxBytes)
              if (budget.shared.used + n > limit) {
                return yield* networkError(
                  `served streams already hold ${budget.shared.used} bytes (limit ${limit})`,
                  peer
                )
              }
              budget.shared.used += n
              budget.held += n
            }
            parts.push(chunk.subarray(offset, offset + n))
            bodyFilled += n
            offset += n
            if (bodyFilled === length) return concat(parts, length)
          }
        }
      }
    }
  })

const concat = (parts: ReadonlyArray<Uint8Array>, length: number): Uint8Array => {
  if (parts.length === 1) return parts[0]!
  const body = new Uint8Array(length)
  let at = 0
  for (const part of parts) {
    body.set(part, at)
    at += part.length
  }
  return body
}

/**
 * A TCP connection whose socket is destroyed (not half-closed) when the scope
 * ends. The socket is created and its finalizer registered synchronously; the
 * wait for the handshake is an ordinary interruptible callback, so a deadline
 * ends a connect whose SYNs are dropped at once. (Waiting inside an
 * `acquireRelease` acquisition would be uninterruptible: the caller's timeout
 * would wait for the kernel to give up, about two minutes.)
 */
const connect = (host: string, port: number) =>
  NodeSocket.fromDuplex(
    Effect.gen(function* () {
      const conn = Net.createConnection({ host, port, noDelay: true })
      // a late error after the reader detached its listener must never crash the process
      conn.on("error", () => {})
      yield* Effect.addFinalizer(() => Effect.sync(() => conn.destroy()))
      return yield* Effect.callback<Net.Socket, Socket.SocketError>((resume) => {
        const onError = (cause: Error) =>
          resume(
            Effect.fail(new Socket.SocketError({ reason: new Socket.SocketOpenError({ kind: "Unknown", cause }) }))
          )
        const onConnect = () => {
          conn.off("error", onError)
          resume(Effect.succeed(conn))
        }
        conn.once("error", onError)
        conn.once("connect", onConnect)
        return Effect.sync(() => {
          conn.off("error", onError)
          conn.off("connect", onConnect)
          conn.destroy()
        })
      })
    })
  )

const finiteMillis = (input: Duration.Input): number | undefined => {
  const duration = Duration.fromInput(input)
  if (duration._tag === "None") return undefined
  const millis = Duration.toMillis(duration.value)
  return Number.isFinite(millis) && millis > 0 ? millis : undefined
}

interface Serving {
  readonly handler: StreamHandler
  readonly maxBytes: number
  readonly timeout: Duration.Input
}

interface Bound {
  readonly reader: DatagramSocket.Reader
  readonly writer: DatagramSocket.Writer
  readonly server: SocketServer.SocketServer["Service"]
  readonly port: number
}

type BindFailure = { readonly retry: boolean; readonly error: NetworkError }

/** Opens UDP on `host:port`, then TCP on the port UDP got. */
const bindBoth = (
  host: string,
  port: number,
  receiveCapacity: number,
  shown: string
): Effect.Effect<Bound, BindFailure, Scope.Scope> =>
  Effect.gen(function* () {
    const socket = yield* NodeDatagramSocket.make({
      bind: { address: host, port },
      receiveBuffer: { capacity: receiveCapacity, strategy: "dropping" }
    })
    const reader = yield* Effect.mapError(socket.reader, (cause) => ({
      retry: false,
      error: networkError(`cannot bind UDP on ${shown}: ${describeSocketError(cause)}`, shown, cause)
    }))
    const writer = yield* socket.writer
    const udpPort = reader.address.port
    const server = yield* Effect.mapError(NodeSocketServer.make({ host, port: udpPort }), (cause) => {
      const code = (cause.reason.cause as NodeJS.ErrnoException | undefined)?.code
      return {
        retry: port === 0 && code === "EADDRINUSE",
        error: networkError(
          `cannot listen on TCP ${formatAddress({ host, port: udpPort })}: ${code ?? cause.message}`,
          shown,
          cause
        )
      }
    })
    return { reader, writer, server, port: udpPort }
  })

/**
 * A transport on real sockets, closed with the scope.
 */
export const make = Effect.fn("UdpTransport.make")(function* (
  options: UdpTransportOptions
): Effect.fn.Return<Transport["Service"], NetworkError, Scope.Scope> {
  const shown = formatAddress(options.bind)
  const receiveCapacity = options.receiveCapacity ?? 4096
  const maxConnections = options.maxConnections ?? 64
  const maxPerSource = options.maxConnectionsPerSource ?? 8
  const bindAttempts = options.bindAttempts ?? 5
  const streamBytes: ByteBudget = { used: 0, limit: options.maxBufferedBytes ?? 32 * 1024 * 1024 }
  if (!Number.isSafeInteger(receiveCapacity) || receiveCapacity < 1) {
    return yield* networkError("receiveCapacity must be a positive integer", shown)
  }
  if (!Number.isSafeInteger(maxConnections) || maxConnections < 1) {
    return yield* networkError("maxConnections must be a positive integer", shown)
  }
  if (!Number.isSafeInteger(maxPerSource) || maxPerSource < 1) {
    return yield* networkError("maxConnectionsPerSource must be a positive integer", shown)
  }
  if (!Number.isSafeInteger(streamBytes.limit) || streamBytes.limit < 1) {
    return yield* networkError("maxBufferedBytes must be a positive integer", shown)
  }

  const dns = yield* NodeDns.make().pipe(
    Effect.mapError((cause) => networkError("cannot create a DNS resolver", shown, cause))
  )

  // the bind host: an IP literal, or a name resolved once
  let host = options.bind.host
  if (!isIpLiteral(host)) {
    const ips = yield* dns
      .lookup(host)
      .pipe(Effect.mapError((cause) => networkError(`cannot resolve bind address ${shown}`, shown, cause)))
    host = NetAddress.formatIp(ips[0])
  }

  const scope = yield* Effect.scope
  let bound: Bound | undefined
  for (let attempt = 1; bound === undefined; attempt++) {
    const attemptScope = yield* Scope.fork(scope)
    const result = yield* Effect.result(
      bindBoth(host, options.bind.port, receiveCapacity, shown).pipe(Scope.provide(attemptScope))
    )
    if (Result.isSuccess(result)) {
      bound = result.success
    } else {
      yield* Scope.close(attemptScope, Exit.void)
      if (!result.failure.retry || attempt >= bindAttempts) return yield* result.failure.error
      yield* Effect.logDebug("TCP port taken, binding again").pipe(Effect.annotateLogs({ attempt }))
    }
  }
  const { reader, writer, server } = bound
  const localAddress = new Address({ host: NetAddress.formatHost(reader.address), port: bound.port })

  // -- datagrams --------------------------------------------------------------

  const stats = { packetsSent: 0, bytesSent: 0, packetsReceived: 0, bytesReceived: 0 }
  let droppedSeen = 0

  // the engine sends to the same member objects over and over
  const inetCache = new WeakMap<Address, NetAddress.InetAddress>()
  const inetOf = (to: Address): NetAddress.InetAddress | undefined => {
    let inet = inetCache.get(to)
    if (inet === undefined) {
      const parsed = NetAddress.inetAddressFromIpString(to.host, to.port)
      if (Result.isFailure(parsed)) return undefined
      inet = parsed.success
      inetCache.set(to, inet)
    }
    return inet
  }

  // after close, a write would wait forever for a reader that never comes back
  let closed = false
  yield* Effect.addFinalizer(() => Effect.sync(() => (closed = true)))

  const send = (to: Address, payload: Uint8Array): Effect.Effect<void, NetworkError> =>
    Effect.suspend(() => {
      if (closed) return Effect.fail(networkError("transport is closed", formatAddress(to)))
      const target = inetOf(to)
      if (target === undefined) {
        return Effect.fail(networkError("destination must be an IP address (resolve it first)", formatAddress(to)))
      }
      return writer.write({ payload, address: target }).pipe(
        Effect.matchEffect({
          onFailure: (cause) =>
            Effect.andThen(
              Metric.update(sendErrors, 1),
              Effect.fail(
                networkError(`cannot send to ${formatAddress(to)}: ${cause.message}`, formatAddress(to), cause)
              )
            ),
          onSuccess: () => {
            stats.packetsSent++
            stats.bytesSent += payload.length
            return Metric.update(packetsSent, 1).pipe(
              Effect.andThen(Metric.update(bytesSent, payload.length)),
              Effect.andThen(logPacket("sent datagram", to, payload.length))
            )
          }
        })
      )
    })

  // received addresses repeat too; the map is cleared when it grows large
  const addressCache = new Map<string, Address>()
  const addressOf = (datagram: DatagramSocket.Datagram): Address => {
    const inet = datagram.address
    const host = NetAddress.formatHost(inet)
    const key = `${host}|${inet.port}`
    let address = addressCache.get(key)
    if (address === undefined) {
      if (addressCache.size >= 4096) addressCache.clear()
      address = new Address({ host, port: inet.port }, { disableChecks: true })
      addressCache.set(key, address)
    }
    return address
  }

  // Node reports read errors through `onError`, so `pull` fails only when the
  // socket closes; the receiving fiber then ends by interruption.
  const receive: Effect.Effect<NonEmptyReadonlyArray<Packet>> = reader.pull.pipe(
    Effect.catch(() => Effect.interrupt),
    Effect.flatMap((datagrams) => {
      let bytes = 0
      const packets = datagrams.map((datagram): Packet => {
        bytes += datagram.payload.length
        return { from: addressOf(datagram), payload: datagram.payload }
      }) as unknown as NonEmptyReadonlyArray<Packet>
      stats.packetsReceived += packets.length
      stats.bytesReceived += bytes
      const dropped = reader.dropped()
      const newlyDropped = dropped - droppedSeen
      droppedSeen = dropped
      return Metric.update(packetsReceived, packets.length).pipe(
        Effect.andThen(Metric.update(bytesReceived, bytes)),
        Effect.andThen(newlyDropped > 0 ? Metric.update(packetsDropped, newlyDropped) : Effect.void),
        Effect.andThen(
          Effect.forEach(packets, (p) => logPacket("received datagram", p.from, p.payload.length), { discard: true })
        ),
        Effect.as(packets)
      )
    })
  )

  // -- streams ----------------------------------------------------------------

  let serving: Serving | undefined
  let active = 0
  const connections = new Set<Net.Socket>()
  /** Exchanges in flight per remote IP (loopback not counted unless asked). */
  const perSource = new Map<string, number>()

  const serveConnection = (socket: Socket.Socket) =>
    Effect.gen(function* () {
      // the server provides each connection's node socket (not visible in the handler's type)
      const netSocket = yield* Effect.serviceOption(NodeSocket.NetSocket)
      if (Option.isNone(netSocket)) return
      const conn = netSocket.value
      const current = serving
      if (current === undefined || active >= maxConnections || conn.remoteAddress === undefined) {
        conn.destroy()
        return yield* Metric.update(exchangesFailed, 1)
      }
      const peer = new Address(
        { host: conn.remoteAddress.replace(/^::ffff:(?=\d+\.)/, ""), port: conn.remotePort ?? 0 },
        { disableChecks: true }
      )
      const shownPeer = formatAddress(peer)
      const source = options.countLoopback !== true && isLoopback(peer.host) ? undefined : peer.host
      const fromSource = source === undefined ? 0 : (perSource.get(source) ?? 0)
      if (fromSource >= maxPerSource) {
        conn.destroy()
        yield* Effect.logDebug("refused a connection: its address holds every slot it may").pipe(
          Effect.annotateLogs({ peer: shownPeer, maxConnectionsPerSource: maxPerSource })
        )
        return yield* Metric.update(exchangesFailed, 1)
      }
      if (source !== undefined) perSource.set(source, fromSource + 1)
      conn.setNoDelay(true)
      // backstop: a connection idle for the whole timeout is destroyed even if no fiber watches it
      const idle = finiteMillis(current.timeout)
      if (idle !== undefined) {
        conn.setTimeout(idle)
        conn.once("timeout", () => conn.destroy())
      }
      active++
      connections.add(conn)
      const held = { shared: streamBytes, held: 0 }
      yield* Effect.gen(function* () {
        const pull = yield* Effect.mapError(Socket.readerBytes(socket), (cause) =>
          networkError("cannot read the stream", shownPeer, cause)
        )
        const out = yield* socket.writer
        const request = yield* readFrame(pull, current.maxBytes, shownPeer, held)
        const response = yield* current.handler(peer, request)
        if (response.length > maxFrame) return yield* networkError("response too large to frame", shownPeer)
        yield* Effect.mapError(out.writeAll([lengthPrefix(response.length), response]), (cause) =>
          networkError("cannot write the response", shownPeer, cause)
        )
        yield* Effect.logDebug("served exchange").pipe(
          Effect.annotateLogs({ peer: shownPeer, bytes: request.length, responseBytes: response.length })
        )
      }).pipe(
        Effect.scoped,
        Effect.timeoutOrElse({
          duration: current.timeout,
          orElse: () => Effect.fail(networkError("exchange timed out", shownPeer))
        }),
        Effect.catchCause((cause) =>
          Effect.sync(() => conn.destroy()).pipe(
            Effect.andThen(Metric.update(exchangesFailed, 1)),
            Effect.andThen(Effect.logDebug("exchange failed", cause)),
            Effect.annotateLogs({ peer: shownPeer })
          )
        ),
        Effect.ensuring(
          Effect.sync(() => {
            active--
            connections.delete(conn)
            streamBytes.used -= held.held
            if (source !== undefined) {
              const left = (perSource.get(source) ?? 1) - 1
              if (left === 0) perSource.delete(source)
              else perSource.set(source, left)
            }
          })
        )
      )
    })

  yield* Effect.forkScoped(
    server.run(serveConnection).pipe(Effect.catch((error) => Effect.logError("TCP server stopped", error))),
    { startImmediately: true }
  )
  // runs first on close: nothing may keep the server's close waiting
  yield* Effect.addFinalizer(() =>
    Effect.sync(() => {
      serving = undefined
      for (const conn of connections) conn.destroy()
      connections.clear()
    })
  )

  const serve = (
    handler: StreamHandler,
    serveOptions: { readonly maxBytes: number; readonly timeout: Duration.Input }
  ): Effect.Effect<void, never, Scope.Scope> =>
    Effect.gen(function* () {
      const entry: Serving = { handler, maxBytes: serveOptions.maxBytes, timeout: serveOptions.timeout }
      serving = entry
      yield* Effect.addFinalizer(() =>
        Effect.sync(() => {
          if (serving === entry) serving = undefined
        })
      )
    })

  const exchange = (
    to: Address,
    request: Uint8Array,
    exchangeOptions: { readonly timeout: Duration.Input; readonly maxBytes: number }
  ): Effect.Effect<Uint8Array, NetworkError> => {
    const shownPeer = formatAddress(to)
    return Effect.gen(function* () {
      if (!isIpLiteral(to.host)) return yield* networkError("destination must be an IP address", shownPeer)
      if (request.length > maxFrame) return yield* networkError("request too large to frame", shownPeer)
      const socket = yield* connect(to.host, to.port)
      const pull = yield* Effect.mapError(Socket.readerBytes(socket), (cause) =>
        networkError(`cannot connect to ${shownPeer}`, shownPeer, cause)
      )
      const out = yield* socket.writer
      yield* Effect.mapError(out.writeAll([lengthPrefix(request.length), request]), (cause) =>
        networkError("cannot write the request", shownPeer, cause)
      )
      const response = yield* readFrame(pull, exchangeOptions.maxBytes, shownPeer)
      yield* Effect.logDebug("exchanged").pipe(
        Effect.annotateLogs({ peer: shownPeer, bytes: request.length, responseBytes: response.length })
      )
      return response
    }).pipe(
      Effect.scoped,
      Effect.timeoutOrElse({
        duration: exchangeOptions.timeout,
        orElse: () => Effect.fail(networkError("exchange timed out", shownPeer))
      }),
      Effect.tapError(() => Metric.update(exchangesFailed, 1))
    )
  }

  // -- names ------------------------------------------------------------------

  const resolve = (address: Address): Effect.Effect<ReadonlyArray<Address>, NetworkError> => {
    if (isIpLiteral(address.host)) return Effect.succeed([address])
    const shownAddress = formatAddress(address)
    return dns.lookup(address.host).pipe(
      Effect.mapError((cause) => networkError(`cannot resolve ${address.host}`, shownAddress, cause)),
      Effect.map((ips) => {
        const seen = new Set<string>()
        const out: Array<Address> = []
        for (const ip of ips) {
          const host = NetAddress.formatIp(ip)
          if (seen.has(host)) continue
          seen.add(host)
          out.push(new Address({ host, port: address.port }, { disableChecks: true }))
        }
        return out
      })
    )
  }

  yield* Effect.logDebug("transport bound").pipe(Effect.annotateLogs({ address: formatAddress(localAddress) }))

  return Transport.of({
    localAddress,
    send,
    receive,
    exchange,
    serve,
    resolve,
    stats: Effect.sync(
      (): TransportStats => ({
        packetsSent: stats.packetsSent,
        bytesSent: stats.bytesSent,
        packetsReceived: stats.packetsReceived,
        bytesReceived: stats.bytesReceived,
        dropped: reader.dropped()
      })
    )
  })
})

/** A `Transport` on real UDP/TCP sockets bound to `options.bind`. */
export const layer = (options: UdpTransportOptions): Layer.Layer<Transport, NetworkError> =>
  Layer.effect(Transport, make(options))

/**
 * A readable reason for a datagram socket error: the library's message is
 * empty for open errors, so name the kind ("AddressInUse") and the system
 * error code (EADDRINUSE) instead.
 */
const describeSocketError = (error: { readonly message: string; readonly reason?: unknown }): string => {
  const reason = error.reason as
    | { readonly _tag?: string; readonly kind?: string; readonly cause?: unknown }
    | undefined
  const code = (reason?.cause as { readonly code?: unknown } | undefined)?.code
  const parts = [reason?.kind ?? reason?._tag, typeof code === "string" ? code : undefined, error.message].filter(
    (part): part is string => typeof part === "string" && part.length > 0
  )
  return parts.length === 0 ? "unknown socket error" : parts.join(" ")
}
