/**
 * How a node talks to the others: unreliable datagrams for the protocol's
 * pings, acks and gossip, and a reliable request/response byte exchange for
 * push-pull anti-entropy (full state does not fit a datagram).
 *
 * The engine only ever sees bytes and `Address`es; `UdpTransport` puts them on
 * real sockets, `SimNetwork` on an in-memory network with latency, loss and
 * partitions that a test controls. Both log sends and receives at Debug.
 *
 * @module
 * @since 0.1.0
 */

import type { NonEmptyReadonlyArray } from "effect/Array"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as LogLevel from "effect/LogLevel"
import * as References from "effect/References"
import type * as Scope from "effect/Scope"
import type { NetworkError } from "../Errors.ts"
import { type Address, formatAddress } from "../Node.ts"

/** A datagram as received: who sent it (the source address of the packet) and its bytes. */
export interface Packet {
  readonly from: Address
  readonly payload: Uint8Array
}

/**
 * Serves one push-pull exchange: given the peer's request bytes, produce the
 * response bytes. A failure closes the exchange without a response.
 *
 * `from` is the stream's remote end: the peer's host, but an ephemeral port,
 * not its gossip port. Identify the peer from the request's contents.
 */
export type StreamHandler = (from: Address, request: Uint8Array) => Effect.Effect<Uint8Array, NetworkError>

/**
 * Cheap running totals for one transport, for tests, benchmarks and the CLI
 * (the process-wide `shoal_transport_*` metrics aggregate all transports).
 */
export interface TransportStats {
  readonly packetsSent: number
  readonly bytesSent: number
  readonly packetsReceived: number
  readonly bytesReceived: number
  /** Datagrams that arrived but were discarded because the receive buffer was full. */
  readonly dropped: number
}

/**
 * The service the engine sends and receives through: datagrams, one
 * request/response exchange per stream, name resolution and counters.
 * `UdpTransport.layer` (shoal/protocol) is the real one, `SimNetwork` the
 * in-memory one; implement it to run shoal over something else.
 */
export class Transport extends Context.Service<
  Transport,
  {
    /** The address this transport is bound to (with the real port when bound to port 0). */
    readonly localAddress: Address
    /** Sends one datagram. Never blocks on the peer; a datagram may be lost. */
    readonly send: (to: Address, payload: Uint8Array) => Effect.Effect<void, NetworkError>
    /**
     * Waits for the next datagrams (at least one). A single fiber consumes
     * them; packets that arrive faster than they are taken are dropped and counted.
     */
    readonly receive: Effect.Effect<NonEmptyReadonlyArray<Packet>>
    /**
     * One reliable exchange: opens a stream to `to`, writes `request`, reads the
     * whole response, closes. Fails with `NetworkError` on refusal, timeout, a
     * response over `maxBytes`, or a broken stream.
     */
    readonly exchange: (
      to: Address,
      request: Uint8Array,
      options: { readonly timeout: Duration.Input; readonly maxBytes: number }
    ) => Effect.Effect<Uint8Array, NetworkError>
    /**
     * Serves incoming exchanges with `handler` until the scope closes. Requests
     * over `maxBytes` are refused before they are read into memory.
     */
    readonly serve: (
      handler: StreamHandler,
      options: { readonly maxBytes: number; readonly timeout: Duration.Input }
    ) => Effect.Effect<void, never, Scope.Scope>
    /**
     * Resolves a host name to the addresses to send to (IP literals resolve to
     * themselves). Called at every join attempt, so DNS changes are followed.
     */
    readonly resolve: (address: Address) => Effect.Effect<ReadonlyArray<Address>, NetworkError>
    /** Datagram counters since this transport opened. */
    readonly stats: Effect.Effect<TransportStats>
  }
>()("shoal/cluster/gossip/Transport") {}

/**
 * Logs one datagram at Debug with `peer` and `bytes` annotations. The level is
 * checked first, so the hot path pays nothing for the annotations when Debug
 * is off (the default).
 *
 * @internal for transport implementations
 */
export const logPacket = (message: string, peer: Address, bytes: number): Effect.Effect<void> =>
  Effect.withFiber((fiber) =>
    LogLevel.isGreaterThan(fiber.getRef(References.MinimumLogLevel), "Debug")
      ? Effect.void
      : Effect.logDebug(message).pipe(Effect.annotateLogs({ peer: formatAddress(peer), bytes }))
  )
