/**
 * A client for an RpcGroup that sends each call to a cluster member carrying
 * the given tags (`{ role: "worker", healthy: "true" }`), chosen by a
 * balancing strategy (see `Balancer`).
 *
 * - **Who is eligible.** At every call: the members the cluster reports alive
 *   with all the tags (a suspect member gets no new calls) that advertise an
 *   RPC address, in id order.
 * - **Connections.** One per member, opened on its first call and shared by
 *   all calls to it. It is dropped when the member fails, leaves, is reaped or
 *   moves its RPC address (the client listens to the cluster's events), and
 *   when it breaks; the next call to that member dials again. A member that
 *   refused a connection is skipped for `connectRetryDelay` unless no one
 *   else is left.
 * - **Failures.** A member that cannot be reached costs nothing but time: the
 *   call was never sent, so it goes to the next member. A connection that
 *   breaks while a call is in flight (the member crashed, stopped, or was
 *   dropped) fails that call — unless the RPC is declared idempotent
 *   ({@link Idempotent}, or the `idempotent` option), in which case it is
 *   sent again to another member, at most `retries` times. Errors of the
 *   handler itself are never retried.
 *
 * @module
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Random from "effect/Random"
import * as Result from "effect/Result"
import type * as Rpc from "effect/rpc/Rpc"
import type * as EffectRpcClient from "effect/rpc/RpcClient"
import * as RpcClientError from "effect/rpc/RpcClientError"
import type * as RpcGroup from "effect/rpc/RpcGroup"
import * as RpcSchema from "effect/rpc/RpcSchema"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Socket from "effect/socket/Socket"
import { Cluster } from "../cluster/Cluster.ts"
import type { DurationInput } from "../cluster/DurationText.ts"
import { ClusterClosed, type InvalidConfiguration } from "../cluster/Errors.ts"
import type { ClusterEvent } from "../cluster/Events.ts"
import { type ClusterNode, formatAddress, type NodeId, type Tags } from "../cluster/Node.ts"
import { Balancer, type Strategy } from "./Balancer.ts"
import { type ClusterCallError, ConnectionFailed, NoMemberAvailable } from "./Errors.ts"
import * as RpcClient from "./RpcClient.ts"
import * as RpcConfig from "./RpcConfig.ts"

/**
 * Marks an RPC as safe to run twice: `Rpc.make(...).annotate(Idempotent, true)`.
 * The cluster client retries such a call on another member when its
 * connection breaks mid-call.
 */
export const Idempotent = Context.Reference<boolean>("shoal/rpc/Idempotent", { defaultValue: () => false })

/** How a cluster client picks members and retries; only `tags` is required. */
export interface ClusterClientOptions {
  /** Every tag a member must carry to take calls. */
  readonly tags: Tags
  /** How to choose among them (default `"round-robin"`). */
  readonly strategy?: Strategy | undefined
  /** How many other members an idempotent call may be sent to after its connection broke (default 2). */
  readonly retries?: number | undefined
  /** Tags of RPCs to treat as idempotent besides those annotated with {@link Idempotent}. */
  readonly idempotent?: ReadonlyArray<string> | undefined
  /** How long a member that refused a connection is passed over (default 1 s; `"500ms"`, `"1 second"`, millis). */
  readonly connectRetryDelay?: DurationInput | undefined
  /** Passed to effect/rpc's client: no client spans. */
  readonly disableTracing?: boolean | undefined
  readonly spanPrefix?: string | undefined
}

/** A cluster client: the group's methods, and a view of where calls go. */
export interface ClusterClient<Rpcs extends Rpc.Any> {
  /** The group's methods, as effect/rpc generates them, with the cluster client's errors added. */
  readonly client: RpcClient.Client<Rpcs, ClusterCallError>
  /** The members that would be considered for a call now. */
  readonly members: Effect.Effect<ReadonlyArray<ClusterNode>>
  /** Calls in flight per member id (members with none are absent). */
  readonly inFlight: Effect.Effect<ReadonlyMap<NodeId, number>>
  /** Members with an open (or opening) connection. */
  readonly connected: Effect.Effect<ReadonlyArray<NodeId>>
}

interface Connection {
  readonly node: ClusterNode
  readonly address: string
  readonly scope: Scope.Closeable
  readonly client: Deferred.Deferred<unknown, ConnectionFailed>
  /** The client once connected, for calls that need not wait. */
  ready: Methods | undefined
  /** Counts a call to this member as finished. */
  readonly leave: Effect.Effect<void>
}

/** A connected client seen without its group's types: a method per tag. */
type Methods = Record<string, (payload: unknown, options?: unknown) => unknown>

/** What a call needs to know about a failure: did the connection break under it? */
const brokeConnection = (cause: Cause.Cause<unknown>): boolean => {
  // an interruption that reaches a caller which was not itself interrupted
  // comes from the other side: the server stopped, or the connection was dropped
  if (Cause.hasInterruptsOnly(cause)) return true
  const error = Cause.findError(cause)
  if (Result.isFailure(error)) return false
  const failure = error.success
  return failure instanceof RpcClientError.RpcClientError && failure.reason._tag !== "RpcClientDefect"
}

/** A call cut off by a connection that went away, as a typed error rather than an interruption. */
const cutOff = (address: string, cause: Cause.Cause<unknown>): Cause.Cause<unknown> =>
  Cause.hasInterruptsOnly(cause)
    ? Cause.fail(
        new RpcClientError.RpcClientError({
          reason: new Socket.SocketCloseError({
            code: 1001,
            closeReason: `the connection to ${address} closed mid-call`
          })
        })
      )
    : cause

/**
 * A client for `group` over the cluster in the context, for the life of the
 * scope. See the module comment for how calls are routed and retried. Fails
 * with `ClusterClosed` when the cluster's scope has closed or this node has
 * left (its view of the members would no longer change), and with
 * `InvalidConfiguration` for a bad configuration or `connectRetryDelay`.
 */
export const make = <Rpcs extends Rpc.Any>(
  group: RpcGroup.RpcGroup<Rpcs>,
  config: RpcConfig.RpcConfig | RpcConfig.Input,
  options: ClusterClientOptions
): Effect.Effect<
  ClusterClient<Rpcs>,
  InvalidConfiguration | ClusterClosed,
  Scope.Scope | Cluster | Rpc.MiddlewareClient<Rpcs>
> =>
  Effect.gen(function* () {
    const resolved = yield* RpcConfig.resolve(config)
    const cluster = yield* Cluster
    const status = yield* cluster.status
    if (status !== "open") return yield* new ClusterClosed({ operation: "ClusterClient.make", reason: status })
    const retryDelay = yield* RpcConfig.duration("connectRetryDelay", options.connectRetryDelay ?? "1 second")
    const scope = yield* Effect.scope
    const clock = yield* Clock.Clock
    const random = yield* Random.Random
    const services = yield* Effect.context<Rpc.MiddlewareClient<Rpcs>>()
    const tags = { ...options.tags }
    const balancer = new Balancer(options.strategy ?? "round-robin", () => random.nextDoubleUnsafe())
    const retries = options.retries ?? 2
    const retryDelayMillis = Duration.toMillis(retryDelay)
    const idempotentTags = new Set(options.idempotent ?? [])

    const connections = new Map<NodeId, Connection>()
    const inFlight = new Map<NodeId, number>()
    const refusedUntil = new Map<NodeId, number>()

    // The members that may take calls, kept from the cluster's snapshot and
    // events (so a call reads a cached array instead of querying the registry).
    const eligible = new Map<NodeId, ClusterNode>()
    let ordered: Array<ClusterNode> | undefined
    const consider = (node: ClusterNode) => {
      if (node.state === "Alive" && node.rpcAddress !== undefined && node.hasTags(tags)) eligible.set(node.id, node)
      else eligible.delete(node.id)
      ordered = undefined
    }
    const byId = (a: ClusterNode, b: ClusterNode) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
    const members = () => (ordered ??= Array.from(eligible.values()).sort(byId))

    const enter = (id: NodeId) => inFlight.set(id, (inFlight.get(id) ?? 0) + 1)
    const leave = (id: NodeId) => {
      const n = (inFlight.get(id) ?? 1) - 1
      if (n <= 0) inFlight.delete(id)
      else inFlight.set(id, n)
    }
    const load = (nodes: ReadonlyArray<ClusterNode>) => (i: number) => inFlight.get(nodes[i]!.id) ?? 0

    /** Forgets a connection (if it is still the current one) and closes it in the background. */
    const drop = (connection: Connection): Effect.Effect<void> =>
      Effect.suspend(() => {
        if (connections.get(connection.node.id) === connection) connections.delete(connection.node.id)
        connection.ready = undefined
        return Effect.asVoid(Effect.forkIn(Scope.close(connection.scope, Exit.void), scope))
      })

    const dropNode = (id: NodeId): Effect.Effect<void> =>
      Effect.suspend(() => {
        const connection = connections.get(id)
        return connection === undefined ? Effect.void : drop(connection)
      })

    /** The member's current connection, if it is for the address the member advertises now. */
    const currentConnection = (node: ClusterNode): Connection | undefined => {
      const existing = connections.get(node.id)
      if (existing === undefined) return undefined
      if (existing.node === node || existing.address === formatAddress(node.rpcAddress!)) return existing
      return undefined
    }

    /** Opens a connection to the member in the background; concurrent first calls share it. */
    const openConnection = (node: ClusterNode): Effect.Effect<Connection> =>
      Effect.suspend(() => {
        const address = formatAddress(node.rpcAddress!)
        const previous = connections.get(node.id)
        if (previous !== undefined) connections.delete(node.id)
        const connection: Connection = {
          node,
          address,
          scope: Scope.forkUnsafe(scope, "sequential"),
          client: Deferred.makeUnsafe(),
          ready: undefined,
          leave: Effect.sync(() => leave(node.id))
        }
        connections.set(node.id, connection)
        const open = RpcClient.connect(group, node, resolved, {
          reconnect: false,
          onDisconnect: drop(connection),
          ...(options.disableTracing === undefined ? {} : { disableTracing: options.disableTracing }),
          ...(options.spanPrefix === undefined ? {} : { spanPrefix: options.spanPrefix })
        }).pipe(
          // eligible members have an RPC address and the configuration is resolved: only a refusal is left
          Effect.mapError((error) =>
            error._tag === "ConnectionFailed" ? error : new ConnectionFailed({ address, reason: error.message })
          ),
          Effect.provideContext(Context.add(services, Scope.Scope, connection.scope) as Context.Context<any>),
          Effect.exit,
          Effect.flatMap((exit) => {
            if (Exit.isSuccess(exit)) {
              if (connections.get(node.id) === connection) connection.ready = exit.value as Methods
              return Deferred.succeed(connection.client, exit.value)
            }
            refusedUntil.set(node.id, clock.currentTimeMillisUnsafe() + retryDelayMillis)
            return Deferred.done(connection.client, exit).pipe(Effect.andThen(drop(connection)))
          })
        )
        return Effect.as(Effect.forkIn(open, scope), connection)
      })

    /**
     * The member for the next call: among the eligible ones not yet tried,
     * passing over those that recently refused a connection unless no one
     * else is left.
     */
    const choose = (tried: ReadonlySet<NodeId> | undefined): ClusterNode | undefined => {
      const all = members()
      if (tried === undefined && refusedUntil.size === 0) {
        const index = balancer.pick(all.length, load(all))
        return index < 0 ? undefined : all[index]
      }
      const now = clock.currentTimeMillisUnsafe()
      const fresh: Array<ClusterNode> = []
      const refused: Array<ClusterNode> = []
      for (const node of all) {
        if (tried?.has(node.id)) continue
        const until = refusedUntil.get(node.id)
        if (until === undefined || until <= now) {
          if (until !== undefined) refusedUntil.delete(node.id)
          fresh.push(node)
        } else refused.push(node)
      }
      const pool = fresh.length > 0 ? fresh : refused
      const index = balancer.pick(pool.length, load(pool))
      return index < 0 ? undefined : pool[index]
    }

    const unavailable = (tried: ReadonlySet<NodeId> | undefined, refusal: ConnectionFailed | undefined) =>
      Effect.fail(
        refusal ??
          new NoMemberAvailable({ tags, reason: tried === undefined ? "none is alive" : "every one was tried" })
      )

    /**
     * Runs `use` with a chosen member's connected client, moving on to the
     * next member while connections are refused (nothing was sent to them).
     */
    const withMember = <A, E>(
      use: (
        node: ClusterNode,
        connection: Connection,
        client: Methods,
        tried: Set<NodeId> | undefined
      ) => Effect.Effect<A, E>,
      tried: Set<NodeId> | undefined = undefined,
      refusal: ConnectionFailed | undefined = undefined
    ): Effect.Effect<A, E | ClusterCallError> =>
      Effect.suspend(() => {
        const node = choose(tried)
        if (node === undefined) return unavailable(tried, refusal)
        const connection = currentConnection(node)
        if (connection?.ready !== undefined) return use(node, connection, connection.ready, tried)
        const next = tried ?? new Set<NodeId>()
        next.add(node.id)
        return Effect.flatMap(connection === undefined ? openConnection(node) : Effect.succeed(connection), (c) =>
          Effect.matchEffect(Deferred.await(c.client), {
            onFailure: (failure) => withMember(use, next, failure),
            onSuccess: (client) => use(node, c, client as Methods, next)
          })
        )
      })

    const isIdempotent = (rpc: Rpc.AnyWithProps) =>
      idempotentTags.has(rpc._tag) || Context.get(rpc.annotations, Idempotent)

    const unary = (rpc: Rpc.AnyWithProps) => {
      const tag = rpc._tag
      const idempotent = isIdempotent(rpc)
      return (payload: unknown, callOptions?: unknown) => {
        const run = (attemptsLeft: number, tried: Set<NodeId> | undefined): Effect.Effect<unknown, unknown> =>
          withMember((node, connection, client, triedNow) => {
            enter(node.id)
            return (client[tag]!(payload, callOptions) as Effect.Effect<unknown, unknown>).pipe(
              Effect.ensuring(connection.leave),
              Effect.catchCause((cause) => {
                if (!brokeConnection(cause)) return Effect.failCause(cause)
                if (attemptsLeft <= 1) {
                  return Effect.andThen(drop(connection), Effect.failCause(cutOff(connection.address, cause)))
                }
                const next = triedNow ?? new Set<NodeId>()
                next.add(node.id)
                return drop(connection).pipe(
                  Effect.andThen(
                    Effect.logDebug("retrying an idempotent call on another member").pipe(
                      Effect.annotateLogs({ rpc: tag, member: node.name })
                    )
                  ),
                  Effect.andThen(run(attemptsLeft - 1, next))
                )
              })
            )
          }, tried)
        return run(idempotent ? retries + 1 : 1, undefined)
      }
    }

    const streaming = (rpc: Rpc.AnyWithProps) => {
      const tag = rpc._tag
      return (payload: unknown, callOptions?: unknown) =>
        Stream.unwrap(
          withMember((node, connection, client) => {
            enter(node.id)
            return Effect.succeed(
              (client[tag]!(payload, callOptions) as Stream.Stream<unknown, unknown>).pipe(
                Stream.onError((cause) => (brokeConnection(cause) ? drop(connection) : Effect.void)),
                Stream.ensuring(connection.leave)
              )
            )
          })
        )
    }

    const client: Record<string, unknown> = {}
    for (const value of group.requests.values()) {
      const rpc = value as unknown as Rpc.AnyWithProps
      client[rpc._tag] = RpcSchema.isStreamSchema(rpc.successSchema) ? streaming(rpc) : unary(rpc)
    }

    // The members now, then every change: keep the eligible set, and close
    // connections to members that are gone or moved.
    const { members: snapshot, events } = yield* cluster.watch
    for (const node of snapshot) consider(node)
    yield* events.pipe(
      Stream.runForEach((event: ClusterEvent) => {
        if (event._tag === "NodeReaped") {
          eligible.delete(event.node.id)
          ordered = undefined
        } else {
          consider(event.node)
        }
        switch (event._tag) {
          case "NodeFailed":
          case "NodeLeft":
          case "NodeReaped":
            return dropNode(event.node.id)
          case "NodeJoined":
          case "NodeUpdated":
          case "NodeRecovered": {
            const connection = connections.get(event.node.id)
            return connection !== undefined && currentConnection(event.node) === undefined
              ? drop(connection)
              : Effect.void
          }
          case "NodeSuspected":
            return Effect.void
        }
      }),
      Effect.forkScoped
    )

    return {
      client: client as unknown as RpcClient.Client<Rpcs, ClusterCallError>,
      members: Effect.sync(() => [...members()]),
      inFlight: Effect.sync(() => new Map(inFlight)),
      connected: Effect.sync(() => Array.from(connections.keys()))
    } satisfies ClusterClient<Rpcs>
  })

/** The client type of {@link ClusterClient.client}, for service definitions. */
export type Client<Rpcs extends Rpc.Any> = EffectRpcClient.RpcClient<
  Rpcs,
  RpcClientError.RpcClientError | ClusterCallError
>

/**
 * {@link make} as a layer, for a service of your own that holds the client:
 *
 * ```ts
 * class Workers extends Context.Service<Workers, ClusterClient.ClusterClient<RpcGroup.Rpcs<typeof WorkerRpcs>>>()(
 *   "app/Workers"
 * ) {}
 * const WorkersLive = ClusterClient.layer(Workers, WorkerRpcs, rpcConfig, { tags: { role: "worker" } })
 * ```
 *
 * The client lives as long as the layer; it needs `Cluster` (from
 * `Cluster.layer`, or `RpcServer.layer`, which provides its own).
 */
export const layer = <Self, Rpcs extends Rpc.Any>(
  tag: Context.Key<Self, ClusterClient<Rpcs>>,
  group: RpcGroup.RpcGroup<Rpcs>,
  config: RpcConfig.RpcConfig | RpcConfig.Input,
  options: ClusterClientOptions
): Layer.Layer<Self, InvalidConfiguration | ClusterClosed, Cluster | Rpc.MiddlewareClient<Rpcs>> =>
  Layer.effect(tag, make(group, config, options))
