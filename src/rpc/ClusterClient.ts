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
 * @since 0.1.0
 */
import { Cause, Clock, Context, Deferred, Duration, Effect, Exit, Random, Result, Scope, Stream } from "effect"
import { type RpcClient as EffectRpcClient, type Rpc, RpcClientError, type RpcGroup, RpcSchema } from "effect/rpc"
import { Socket } from "effect/socket"
import { Cluster } from "../cluster/Cluster.ts"
import type { InvalidConfiguration } from "../cluster/Errors.ts"
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

export interface ClusterClientOptions {
  /** Every tag a member must carry to take calls. */
  readonly tags: Tags
  /** How to choose among them (default `"round-robin"`). */
  readonly strategy?: Strategy | undefined
  /** How many other members an idempotent call may be sent to after its connection broke (default 2). */
  readonly retries?: number | undefined
  /** Tags of RPCs to treat as idempotent besides those annotated with {@link Idempotent}. */
  readonly idempotent?: ReadonlyArray<string> | undefined
  /** How long a member that refused a connection is passed over (default 1 s). */
  readonly connectRetryDelay?: Duration.Input | undefined
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
 * scope. See the module comment for how calls are routed and retried.
 */
export const make = <Rpcs extends Rpc.Any>(
  group: RpcGroup.RpcGroup<Rpcs>,
  config: RpcConfig.RpcConfig | RpcConfig.Input,
  options: ClusterClientOptions
): Effect.Effect<ClusterClient<Rpcs>, InvalidConfiguration, Scope.Scope | Cluster | Rpc.MiddlewareClient<Rpcs>> =>
  Effect.gen(function* () {
    const resolved = yield* RpcConfig.resolve(config)
    const cluster = yield* Cluster
    const scope = yield* Effect.scope
    const clock = yield* Clock.Clock
    const random = yield* Random.Random
    const services = yield* Effect.context<Rpc.MiddlewareClient<Rpcs>>()
    const tags = { ...options.tags }
    const balancer = new Balancer(options.strategy ?? "round-robin", () => random.nextDoubleUnsafe())
    const retries = options.retries ?? 2
    const retryDelayMillis = Duration.toMillis(Duration.fromInputUnsafe(options.connectRetryDelay ?? "1 second"))
    const idempotentTags = new Set(options.idempotent ?? [])

    const connections = new Map<NodeId, Connection>()
    const inFlight = new Map<NodeId, number>()
    const refusedUntil = new Map<NodeId, number>()

    const enter = (id: NodeId) => inFlight.set(id, (inFlight.get(id) ?? 0) + 1)
    const leave = (id: NodeId) => {
      const n = (inFlight.get(id) ?? 1) - 1
      if (n <= 0) inFlight.delete(id)
      else inFlight.set(id, n)
    }

    /** Forgets a connection (if it is still the current one) and closes it in the background. */
    const drop = (connection: Connection): Effect.Effect<void> =>
      Effect.suspend(() => {
        if (connections.get(connection.node.id) === connection) connections.delete(connection.node.id)
        return Effect.asVoid(Effect.forkIn(Scope.close(connection.scope, Exit.void), scope))
      })

    const dropNode = (id: NodeId): Effect.Effect<void> =>
      Effect.suspend(() => {
        const connection = connections.get(id)
        return connection === undefined ? Effect.void : drop(connection)
      })

    /** The member's connection, opened on first use; concurrent first calls share one dial. */
    const connectionTo = (node: ClusterNode): Effect.Effect<Connection> =>
      Effect.suspend(() => {
        const address = formatAddress(node.rpcAddress!)
        const existing = connections.get(node.id)
        if (existing !== undefined && existing.address === address) return Effect.succeed(existing)
        if (existing !== undefined) connections.delete(node.id)
        const connection: Connection = {
          node,
          address,
          scope: Scope.forkUnsafe(scope, "sequential"),
          client: Deferred.makeUnsafe()
        }
        connections.set(node.id, connection)
        const open = RpcClient.connect(group, node, resolved, {
          reconnect: false,
          onDisconnect: drop(connection),
          ...(options.disableTracing === undefined ? {} : { disableTracing: options.disableTracing }),
          ...(options.spanPrefix === undefined ? {} : { spanPrefix: options.spanPrefix })
        }).pipe(
          // candidates have an RPC address and the configuration is resolved: only a refusal is left
          Effect.mapError((error) =>
            error._tag === "ConnectionFailed" ? error : new ConnectionFailed({ address, reason: error.message })
          ),
          Effect.provideContext(Context.add(services, Scope.Scope, connection.scope) as Context.Context<any>),
          Effect.exit,
          Effect.flatMap((exit) => {
            if (Exit.isSuccess(exit)) return Deferred.succeed(connection.client, exit.value)
            refusedUntil.set(node.id, clock.currentTimeMillisUnsafe() + retryDelayMillis)
            return Deferred.done(connection.client, exit).pipe(Effect.andThen(drop(connection)))
          })
        )
        return Effect.as(Effect.forkIn(open, scope), connection)
      })

    /** The eligible members not yet tried, in id order; those recently refused only when no one else is left. */
    const candidates = (tried: ReadonlySet<NodeId>): Effect.Effect<ReadonlyArray<ClusterNode>> =>
      Effect.map(cluster.nodesByTags(tags), (nodes) => {
        const now = clock.currentTimeMillisUnsafe()
        const fresh: Array<ClusterNode> = []
        const refused: Array<ClusterNode> = []
        for (const node of nodes) {
          if (node.rpcAddress === undefined || tried.has(node.id)) continue
          const until = refusedUntil.get(node.id)
          if (until !== undefined && until > now) refused.push(node)
          else fresh.push(node)
        }
        const out = fresh.length > 0 ? fresh : refused
        return out.length > 1 ? out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)) : out
      })

    const choose = (tried: ReadonlySet<NodeId>): Effect.Effect<ClusterNode | undefined> =>
      Effect.map(candidates(tried), (nodes) => {
        const index = balancer.pick(nodes.map((node) => inFlight.get(node.id) ?? 0))
        return index < 0 ? undefined : nodes[index]
      })

    const unavailable = (reason: string) => Effect.fail(new NoMemberAvailable({ tags, reason }))

    /**
     * Picks a member and its connected client, moving on to the next member
     * while connections are refused (nothing was sent to them).
     */
    const acquire = (
      tried: Set<NodeId>
    ): Effect.Effect<
      { readonly node: ClusterNode; readonly connection: Connection; readonly client: Methods },
      ClusterCallError
    > =>
      Effect.gen(function* () {
        let refusal: ConnectionFailed | undefined
        while (true) {
          const node = yield* choose(tried)
          if (node === undefined) {
            if (refusal !== undefined) return yield* Effect.fail(refusal)
            return yield* unavailable(tried.size === 0 ? "none is alive" : "every one was tried")
          }
          tried.add(node.id)
          const connection = yield* connectionTo(node)
          const client = yield* Effect.result(Deferred.await(connection.client))
          if (Result.isSuccess(client)) return { node, connection, client: client.success as Methods }
          refusal = client.failure
        }
      })

    const isIdempotent = (rpc: Rpc.AnyWithProps) =>
      idempotentTags.has(rpc._tag) || Context.get(rpc.annotations, Idempotent)

    const unary = (rpc: Rpc.AnyWithProps) => {
      const tag = rpc._tag
      const idempotent = isIdempotent(rpc)
      return (payload: unknown, callOptions?: unknown) =>
        Effect.gen(function* () {
          const tried = new Set<NodeId>()
          let attemptsLeft = idempotent ? retries + 1 : 1
          while (true) {
            const { node, connection, client } = yield* acquire(tried)
            enter(node.id)
            const exit = yield* Effect.exit(client[tag]!(payload, callOptions) as Effect.Effect<unknown, unknown>).pipe(
              Effect.ensuring(Effect.sync(() => leave(node.id)))
            )
            if (Exit.isSuccess(exit)) return exit.value
            if (!brokeConnection(exit.cause)) return yield* Effect.failCause(exit.cause)
            yield* drop(connection)
            if (--attemptsLeft <= 0) return yield* Effect.failCause(cutOff(connection.address, exit.cause))
            yield* Effect.logDebug("retrying an idempotent call on another member").pipe(
              Effect.annotateLogs({ rpc: tag, member: node.name })
            )
          }
        })
    }

    const streaming = (rpc: Rpc.AnyWithProps) => {
      const tag = rpc._tag
      return (payload: unknown, callOptions?: unknown) =>
        Stream.unwrap(
          Effect.map(acquire(new Set()), ({ node, connection, client }) => {
            enter(node.id)
            return (client[tag]!(payload, callOptions) as Stream.Stream<unknown, unknown>).pipe(
              Stream.onError((cause) => (brokeConnection(cause) ? drop(connection) : Effect.void)),
              Stream.ensuring(Effect.sync(() => leave(node.id)))
            )
          })
        )
    }

    const client: Record<string, unknown> = {}
    for (const value of group.requests.values()) {
      const rpc = value as unknown as Rpc.AnyWithProps
      client[rpc._tag] = RpcSchema.isStreamSchema(rpc.successSchema) ? streaming(rpc) : unary(rpc)
    }

    // Membership changes close connections to members that are gone.
    const { events } = yield* cluster.watch
    yield* events.pipe(
      Stream.runForEach((event: ClusterEvent) => {
        switch (event._tag) {
          case "NodeFailed":
          case "NodeLeft":
          case "NodeReaped":
            return dropNode(event.node.id)
          case "NodeJoined":
          case "NodeUpdated":
          case "NodeRecovered": {
            const connection = connections.get(event.node.id)
            const address = event.node.rpcAddress === undefined ? undefined : formatAddress(event.node.rpcAddress)
            return connection !== undefined && connection.address !== address ? drop(connection) : Effect.void
          }
          case "NodeSuspected":
            return Effect.void
        }
      }),
      Effect.forkScoped
    )

    return {
      client: client as unknown as RpcClient.Client<Rpcs, ClusterCallError>,
      members: candidates(new Set()),
      inFlight: Effect.sync(() => new Map(inFlight)),
      connected: Effect.sync(() => Array.from(connections.keys()))
    } satisfies ClusterClient<Rpcs>
  })

/** The client type of {@link ClusterClient.client}, for service definitions. */
export type Client<Rpcs extends Rpc.Any> = EffectRpcClient.RpcClient<
  Rpcs,
  RpcClientError.RpcClientError | ClusterCallError
>
