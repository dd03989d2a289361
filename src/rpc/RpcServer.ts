/**
 * Serves an effect/rpc group over TLS and, when the configuration names a
 * cluster, makes the server a discoverable member of it.
 *
 * Lifecycle with a cluster. Other members learn the RPC address from the
 * cluster, so the node must know its RPC port (port 0 means "whatever the
 * system gives") before it joins; and it must not serve before it has
 * joined, nor be a member after it stopped serving. So:
 *
 * 1. the TLS listener binds (the port is now known and reserved; connections
 *    that arrive wait in its queue, and nothing reads them yet);
 * 2. the cluster starts with `rpcAddress` = the address this node
 *    advertises, and joins through its seeds — a failure here fails the
 *    start and closes the listener;
 * 3. the RPC server starts taking connections and requests.
 *
 * Closing runs the other way: the RPC server stops (calls in flight are
 * interrupted, connections closed), the listener closes, and only then does
 * the node leave the cluster and release it. Without a cluster, steps 2 and
 * its mirror are skipped and the server is a plain effect/rpc socket server.
 *
 * Streaming handlers are coalesced (see `Streaming`), so a producer that
 * emits one element at a time is not held to one element per round trip.
 *
 * @module
 * @since 0.1.0
 */
import { networkInterfaces } from "node:os"
import * as NodeSocketServer from "@effect/platform-node/NodeSocketServer"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as NetAddress from "effect/net/NetAddress"
import * as Option from "effect/Option"
import type * as Rpc from "effect/rpc/Rpc"
import type * as RpcGroup from "effect/rpc/RpcGroup"
import * as EffectRpcServer from "effect/rpc/RpcServer"
import * as Scope from "effect/Scope"
import * as SocketServer from "effect/socket/SocketServer"
import { Cluster } from "../cluster/Cluster.ts"
import * as ClusterConfig from "../cluster/Config.ts"
import { type ClusterError, InvalidConfiguration, NetworkError } from "../cluster/Errors.ts"
import { Address, type ClusterNode, formatAddress, type Tags } from "../cluster/Node.ts"
import { measureHandlers } from "./CallMetrics.ts"
import { limitConnections, serverSerialization } from "./ConnectionLimits.ts"
import * as RpcConfig from "./RpcConfig.ts"
import { coalesceHandlers } from "./Streaming.ts"
import { serverOptions } from "./Tls.ts"

/** How the server runs, beyond its configuration. */
export interface ServerOptions {
  /**
   * Leave the cluster gracefully when the server stops (default `true`);
   * `false` just goes silent, as a crash would.
   */
  readonly leaveOnClose?: boolean | undefined
  /** Requests handled at once (default unbounded). */
  readonly concurrency?: number | "unbounded" | undefined
  /** No server spans (effect/rpc records one per request by default). */
  readonly disableTracing?: boolean | undefined
  readonly spanPrefix?: string | undefined
  /** Runs when a client connection goes away. */
  readonly onDisconnect?: ((clientId: number) => Effect.Effect<void>) | undefined
}

/** Why a server did not start: a configuration or TLS file problem, a port in use, a cluster that would not form. */
export type StartError = ClusterError

const isUnspecified = (host: string) => host === "0.0.0.0" || host === "::"

/**
 * The RPC address to advertise: the configured one; else the bound address,
 * unless it is a wildcard, in which case the host the cluster advertises for
 * gossip, or the first non-internal IPv4 of this host (loopback when there is
 * none), with the bound port.
 */
export const advertisedRpcAddress = (
  config: RpcConfig.RpcConfig,
  bound: Address,
  cluster?: ClusterConfig.ClusterConfig
): Address => {
  if (config.advertiseAddress !== undefined) return config.advertiseAddress
  if (!isUnspecified(bound.host)) return bound
  const gossipHost = cluster?.advertiseAddress?.host
  if (gossipHost !== undefined) return new Address({ host: gossipHost, port: bound.port })
  for (const list of Object.values(networkInterfaces())) {
    for (const info of list ?? []) {
      if (info.family === "IPv4" && !info.internal) return new Address({ host: info.address, port: bound.port })
    }
  }
  return new Address({ host: "127.0.0.1", port: bound.port })
}

const boundAddress = (server: SocketServer.SocketServer["Service"], configured: Address): Address =>
  NetAddress.isInetAddress(server.address)
    ? new Address({ host: NetAddress.formatHost(server.address), port: server.address.port })
    : configured

const listenError = (address: Address) => (error: SocketServer.SocketServerError) => {
  const cause = (error.reason as { cause?: unknown }).cause
  const code = (cause as { code?: unknown } | undefined)?.code
  const detail = code === "EADDRINUSE" ? "the address is in use (EADDRINUSE)" : String(cause ?? error.reason)
  return new NetworkError({
    message: `cannot listen for RPC on ${formatAddress(address)}: ${detail}`,
    address: formatAddress(address),
    cause: error
  })
}

/** The cluster config a server starts with: `rpcAddress` filled in unless the user set it. */
const withRpcAddress = (config: ClusterConfig.ClusterConfig, rpcAddress: Address) =>
  config.rpcAddress === undefined ? ClusterConfig.update(config, { rpcAddress }) : Effect.succeed(config)

/**
 * A running RPC server: where it listens, what it advertises, and the cluster
 * it is a member of. Build it with {@link RpcServer.layer} (a server that is a
 * cluster member, providing `Cluster` too), {@link RpcServer.layerStandalone}
 * or {@link RpcServer.make}.
 */
export class RpcServer extends Context.Service<
  RpcServer,
  {
    /** Where the listener is bound (the real port when the configuration said 0). */
    readonly address: Address
    /** The RPC address this node gives the cluster. */
    readonly advertisedAddress: Address
    /** The cluster this server is a member of, if it was configured with one. */
    readonly cluster: Option.Option<Cluster["Service"]>
    /**
     * Alive members carrying every one of `tags` (this node included); empty
     * without a cluster, and the last view once the cluster closed.
     */
    readonly discoverNodes: (tags: Tags) => Effect.Effect<ReadonlyArray<ClusterNode>>
  }
>()("shoal/rpc/RpcServer") {
  /**
   * Starts serving `group` with the handlers found in the context (from
   * `group.toLayer(...)`), for the life of the scope; see the module comment
   * for the order of things.
   */
  static readonly make = <Rpcs extends Rpc.Any>(
    group: RpcGroup.RpcGroup<Rpcs>,
    config: RpcConfig.RpcConfig | RpcConfig.Input,
    options: ServerOptions = {}
  ): Effect.Effect<
    RpcServer["Service"],
    StartError,
    Scope.Scope | Rpc.ToHandler<Rpcs> | Rpc.Middleware<Rpcs> | Rpc.ServicesServer<Rpcs>
  > =>
    Effect.gen(function* () {
      const resolved = yield* RpcConfig.resolve(config)
      if (resolved.tls.certificate === undefined || resolved.tls.key === undefined) {
        return yield* new InvalidConfiguration({
          field: "certificate",
          reason: "a certificate and its key are required to serve"
        })
      }
      const outer = yield* Effect.scope
      const listenerScope = yield* Scope.fork(outer, "sequential")
      const clusterScope = yield* Scope.fork(outer, "sequential")
      // Listener first, cluster last on the way out, whatever the order of acquisition.
      yield* Effect.addFinalizer(() =>
        Scope.close(listenerScope, Exit.void).pipe(
          Effect.andThen(Effect.logDebug("rpc: listener closed")),
          Effect.andThen(Scope.close(clusterScope, Exit.void)),
          Effect.andThen(Effect.logDebug("rpc: cluster released"))
        )
      )

      // 1. bind
      const listener = yield* NodeSocketServer.makeTls(serverOptions(resolved)).pipe(
        Scope.provide(listenerScope),
        Effect.mapError(listenError(resolved.bindAddress))
      )
      const socketServer = limitConnections(listener, resolved)
      const address = boundAddress(socketServer, resolved.bindAddress)
      yield* Effect.logDebug("rpc: listener bound").pipe(Effect.annotateLogs({ address: formatAddress(address) }))

      // 2. join
      let cluster: Option.Option<Cluster["Service"]> = Option.none()
      let advertisedAddress = advertisedRpcAddress(resolved, address)
      if (resolved.cluster !== undefined) {
        const base =
          resolved.cluster instanceof ClusterConfig.ClusterConfig
            ? resolved.cluster
            : yield* ClusterConfig.make(resolved.cluster)
        advertisedAddress = advertisedRpcAddress(resolved, address, base)
        const clusterConfig = yield* withRpcAddress(base, advertisedAddress)
        const context = yield* Layer.buildWithScope(
          Cluster.layer(clusterConfig, { leaveOnClose: options.leaveOnClose ?? true }),
          clusterScope
        )
        cluster = Option.some(Context.get(context, Cluster))
        yield* Effect.logDebug("rpc: cluster joined").pipe(
          Effect.annotateLogs({ node: ClusterConfig.describe(clusterConfig) })
        )
      }

      // 3. serve
      const serialization = yield* Layer.build(serverSerialization(resolved))
      const protocol = yield* EffectRpcServer.makeProtocolSocketServer.pipe(
        Effect.provideService(SocketServer.SocketServer, socketServer),
        Effect.provide(serialization),
        Scope.provide(listenerScope)
      )
      const handlers = measureHandlers(
        group,
        coalesceHandlers(group, yield* Effect.context<never>(), resolved.streamBufferSize)
      )
      yield* EffectRpcServer.make(group, {
        ...(options.concurrency === undefined ? {} : { concurrency: options.concurrency }),
        ...(options.disableTracing === undefined ? {} : { disableTracing: options.disableTracing }),
        ...(options.spanPrefix === undefined ? {} : { spanPrefix: options.spanPrefix }),
        ...(options.onDisconnect === undefined ? {} : { onDisconnect: options.onDisconnect })
      }).pipe(
        Effect.provideContext(Context.add(handlers, EffectRpcServer.Protocol, protocol) as Context.Context<any>),
        Effect.forkIn(listenerScope, { startImmediately: true })
      )
      yield* Effect.logDebug("rpc: serving").pipe(
        Effect.annotateLogs({ address: formatAddress(address), advertised: formatAddress(advertisedAddress) })
      )

      const found = cluster
      return RpcServer.of({
        address,
        advertisedAddress,
        cluster: found,
        discoverNodes: (tags) => (Option.isSome(found) ? found.value.nodesByTags(tags) : Effect.succeed([]))
      })
    })

  /**
   * {@link RpcServer.make} as a layer that also provides the server's
   * `Cluster`, so what is built on the server (health checks, a
   * `ClusterClient`, your own services) reads it from the context:
   * `RpcServer.layer(group, config).pipe(Layer.provide(handlers))`. The
   * configuration must name a cluster (`cluster` in the input, or
   * `RpcConfig.withCluster`); without one the layer fails with
   * `InvalidConfiguration` — a server outside any cluster is
   * {@link RpcServer.layerStandalone}.
   */
  static readonly layer = <Rpcs extends Rpc.Any>(
    group: RpcGroup.RpcGroup<Rpcs>,
    config: RpcConfig.RpcConfig | RpcConfig.Input,
    options: ServerOptions = {}
  ): Layer.Layer<
    RpcServer | Cluster,
    StartError,
    Rpc.ToHandler<Rpcs> | Rpc.Middleware<Rpcs> | Rpc.ServicesServer<Rpcs>
  > =>
    Layer.effectContext(
      Effect.gen(function* () {
        const resolved = yield* RpcConfig.resolve(config)
        if (resolved.cluster === undefined) {
          return yield* new InvalidConfiguration({
            field: "cluster",
            reason:
              "RpcServer.layer provides the server's Cluster, so it needs one; RpcServer.layerStandalone serves without"
          })
        }
        const server = yield* RpcServer.make(group, resolved, options)
        return Context.make(RpcServer, server).pipe(Context.add(Cluster, Option.getOrThrow(server.cluster)))
      })
    )

  /** {@link RpcServer.make} as a layer, for a server that joins no cluster (its `cluster` is `None`). */
  static readonly layerStandalone = <Rpcs extends Rpc.Any>(
    group: RpcGroup.RpcGroup<Rpcs>,
    config: RpcConfig.RpcConfig | RpcConfig.Input,
    options: ServerOptions = {}
  ): Layer.Layer<RpcServer, StartError, Rpc.ToHandler<Rpcs> | Rpc.Middleware<Rpcs> | Rpc.ServicesServer<Rpcs>> =>
    Layer.effect(RpcServer, RpcServer.make(group, config, options))
}
