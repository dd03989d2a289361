/**
 * A typed effect/rpc client over TLS to one server: an address, or a cluster
 * member's advertised RPC address (never its gossip address).
 *
 * `connect` dials before it returns, so an unreachable server, an untrusted
 * or misnamed certificate, or a server that refuses this client's certificate
 * is a `ConnectionFailed` from `connect` itself; the client lives until its
 * scope closes. A connection that breaks later fails the calls in flight with
 * effect/rpc's `RpcClientError` and, by default, is redialed with backoff.
 *
 * Used as a module: `RpcClient.connect(group, address, config)`.
 *
 * @module
 * @since 0.1.0
 */
import type * as Tls from "node:tls"
import * as NodeSocket from "@effect/platform-node/NodeSocket"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Rpc from "effect/rpc/Rpc"
import * as EffectRpcClient from "effect/rpc/RpcClient"
import type * as RpcClientError from "effect/rpc/RpcClientError"
import type * as RpcGroup from "effect/rpc/RpcGroup"
import * as RpcSchema from "effect/rpc/RpcSchema"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Socket from "effect/socket/Socket"
import { InvalidConfiguration } from "../cluster/Errors.ts"
import { Address, ClusterNode, parseAddress } from "../cluster/Node.ts"
import { type ConnectionFailed, NoRpcAddress } from "./Errors.ts"
import * as RpcConfig from "./RpcConfig.ts"
import * as Serialization from "./Serialization.ts"
import { dial } from "./Tls.ts"

/** The client of a group, as effect/rpc generates it. */
export type Client<Rpcs extends Rpc.Any, E = never> = EffectRpcClient.RpcClient<Rpcs, RpcClientError.RpcClientError | E>

/** Where to connect: an address (`"host:port"`, `{ host, port }`) or a cluster member. */
export type Target = Address | RpcConfig.AddressInput | ClusterNode

/** How a client behaves beyond its configuration: reconnection, disconnect hook, tracing. */
export interface ConnectOptions {
  /**
   * Redial after the connection breaks (default `true`), with effect/rpc's
   * backoff; calls made while it is down fail at once. `false` leaves the
   * client broken, for callers that keep a pool and open a new one.
   */
  readonly reconnect?: boolean | undefined
  /** Runs whenever the connection goes down. */
  readonly onDisconnect?: Effect.Effect<void> | undefined
  /** Passed to effect/rpc's client: no client spans. */
  readonly disableTracing?: boolean | undefined
  readonly spanPrefix?: string | undefined
}

/** The RPC address of a target; a member without one is a `NoRpcAddress`. */
export const targetAddress = (target: Target): Effect.Effect<Address, NoRpcAddress | InvalidConfiguration> => {
  if (target instanceof ClusterNode) {
    return target.rpcAddress === undefined
      ? Effect.fail(new NoRpcAddress({ nodeId: target.id, nodeName: target.name }))
      : Effect.succeed(target.rpcAddress)
  }
  if (target instanceof Address) return Effect.succeed(target)
  if (typeof target === "string") {
    const parsed = parseAddress(target)
    return parsed === undefined || parsed.port === 0
      ? Effect.fail(new InvalidConfiguration({ field: "address", reason: `expected host:port, got "${target}"` }))
      : Effect.succeed(parsed)
  }
  const { host, port } = target
  return typeof host === "string" && host.length > 0 && Number.isInteger(port) && port > 0 && port <= 65535
    ? Effect.succeed(new Address({ host, port }))
    : Effect.fail(
        new InvalidConfiguration({ field: "address", reason: "expected { host, port } with a port in 1..65535" })
      )
}

const toSocketError = (error: ConnectionFailed) =>
  new Socket.SocketError({
    reason: new Socket.SocketOpenError({
      kind: error.reason.startsWith("no TLS connection") ? "Timeout" : "Unknown",
      cause: error
    })
  })

const closeSocket = (socket: Tls.TLSSocket) => {
  if (socket.destroyed) return
  if (socket.writable) socket.destroySoon()
  else socket.destroy()
}

/**
 * Every streaming method of `client` with `streamBufferSize` as its default
 * (effect/rpc's is 16): a client queue as deep as the server's coalescing
 * buffer takes a whole chunk without stalling the connection's read loop.
 */
const withStreamBufferSize = <Rpcs extends Rpc.Any, E>(
  group: RpcGroup.RpcGroup<Rpcs>,
  client: EffectRpcClient.RpcClient<Rpcs, E>,
  streamBufferSize: number
): EffectRpcClient.RpcClient<Rpcs, E> => {
  const out: Record<string, unknown> = { ...(client as Record<string, unknown>) }
  for (const value of group.requests.values()) {
    const rpc = value as unknown as Rpc.AnyWithProps
    if (!RpcSchema.isStreamSchema(rpc.successSchema)) continue
    const method = out[rpc._tag] as (payload: unknown, options?: { readonly streamBufferSize?: number }) => unknown
    out[rpc._tag] = (payload: unknown, options?: { readonly streamBufferSize?: number }) =>
      method(payload, options?.streamBufferSize === undefined ? { ...options, streamBufferSize } : options)
  }
  return out as EffectRpcClient.RpcClient<Rpcs, E>
}

/**
 * Connects to the RPC server at `target` and returns a client for `group`,
 * open until the scope closes. Fails with `ConnectionFailed` when the first
 * connection cannot be made (see the module comment), `NoRpcAddress` for a
 * member that advertises none, and `InvalidConfiguration` for a bad address
 * or configuration.
 */
export const connect = <Rpcs extends Rpc.Any>(
  group: RpcGroup.RpcGroup<Rpcs>,
  target: Target,
  config: RpcConfig.RpcConfig | RpcConfig.Input,
  options: ConnectOptions = {}
): Effect.Effect<
  Client<Rpcs>,
  ConnectionFailed | NoRpcAddress | InvalidConfiguration,
  Scope.Scope | Rpc.MiddlewareClient<Rpcs>
> =>
  Effect.gen(function* () {
    const resolved = yield* RpcConfig.resolve(config)
    const address = yield* targetAddress(target)

    // The first connection is made here, so its failure is this effect's; the
    // socket's reader takes it over, and redials (if allowed) go through `dial` too.
    let pending: Tls.TLSSocket | undefined = yield* dial(address, resolved)
    yield* Effect.addFinalizer(() => Effect.sync(() => pending && closeSocket(pending)))
    const open = Effect.gen(function* () {
      const socket = pending ?? (yield* Effect.mapError(dial(address, resolved), toSocketError))
      pending = undefined
      yield* Effect.addFinalizer(() => Effect.sync(() => closeSocket(socket)))
      return socket
    })

    const socket = yield* NodeSocket.fromDuplex(open)
    const serialization = yield* Layer.build(Serialization.layer)
    const protocol = yield* EffectRpcClient.makeProtocolSocket({
      pingInterval: resolved.keepAlive,
      pingTimeout: resolved.keepAliveTimeout,
      ...(options.reconnect === false ? { retryPolicy: Schedule.recurs(0) } : {})
    }).pipe(
      Effect.provideService(Socket.Socket, socket),
      Effect.provideService(EffectRpcClient.ConnectionHooks, {
        onConnect: Effect.void,
        onDisconnect: options.onDisconnect ?? Effect.void
      }),
      Effect.provide(serialization)
    )
    const client = yield* EffectRpcClient.make(group, {
      ...(options.disableTracing === undefined ? {} : { disableTracing: options.disableTracing }),
      ...(options.spanPrefix === undefined ? {} : { spanPrefix: options.spanPrefix })
    }).pipe(Effect.provideService(EffectRpcClient.Protocol, protocol))
    return withStreamBufferSize(group, client, resolved.streamBufferSize)
  })
