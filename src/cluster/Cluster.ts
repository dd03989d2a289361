/**
 * The cluster as an application sees it: who is a member, what they
 * advertise, and a stream of what changes — plus this node's own tags and
 * health checks. `Cluster.layer(config)` is all an application provides:
 * it binds the sockets, starts the protocol, joins through the seeds, and on
 * scope close leaves gracefully and closes everything.
 *
 * Health becomes discovery: the aggregated result of this node's health
 * checks is published as its own tag `healthy=true|false`, so any member can
 * ask for `{ role: "worker", healthy: "true" }` and get only members that
 * are both alive and passing their checks.
 *
 * @module
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as ClusterConfig from "./Config.ts"
import {
  ClusterClosed,
  type ClusterError,
  type InvalidConfiguration,
  type JoinFailed,
  NodeNotFound,
  NotFailed
} from "./Errors.ts"
import type { ClusterEvent } from "./Events.ts"
import * as Codec from "./gossip/Codec.ts"
import { GossipKeys, type KeyringReport } from "./gossip/GossipKeys.ts"
import { GossipService } from "./gossip/GossipService.ts"
import { installCommand, KeyringCommand } from "./gossip/KeyringCommand.ts"
import { NodeStateUpdate } from "./gossip/Messages.ts"
import { PhiDetector, type PhiReading } from "./gossip/PhiDetector.ts"
import { NodeRegistry, type TagQueryOptions, toEvent } from "./gossip/Registry.ts"
import type { EnvelopeRejections } from "./gossip/SecureTransport.ts"
import { Swim, type SwimStats } from "./gossip/Swim.ts"
import { type Transport, Transport as TransportService, type TransportStats } from "./gossip/Transport.ts"
import * as UdpTransport from "./gossip/UdpTransport.ts"
import type { AggregatedHealth } from "./health/Health.ts"
import { Health } from "./health/Health.ts"
import type { HealthCheck } from "./health/HealthCheck.ts"
import type { ClusterNode, NodeId, Tags } from "./Node.ts"
import { MemberReachability } from "./Reachability.ts"

/** What `Cluster.stats` reports: the engine's counters and the transport's. */
export interface ClusterStats extends SwimStats {
  readonly transport: TransportStats
  readonly awareness: number
  /** Packets and frames the gossip keyring refused, by reason (all zero without a keyring). */
  readonly envelopeRejected: EnvelopeRejections
}

/**
 * A merge into this node's tags: `set` adds or replaces keys, `remove`
 * deletes keys (a key in both is set). Keys not named keep their values.
 */
export interface TagChanges {
  readonly set?: Tags | undefined
  readonly remove?: ReadonlyArray<string> | undefined
}

/** How the layer behaves beyond the configuration. */
export interface LayerOptions {
  /**
   * Leave gracefully when the layer's scope closes (default `true`). `false`
   * just stops — the others detect a failure — which is what tests of crash
   * detection want.
   */
  readonly leaveOnClose?: boolean | undefined
}

/**
 * The cluster service: membership, events, this node's tags and health
 * checks. Provide it with {@link Cluster.layer} (real sockets),
 * {@link Cluster.layerWithTransport} (any `Transport`, e.g. `SimNetwork`), or
 * `RpcServer.layer`, whose server is a member.
 *
 * @example
 * ```ts
 * import { Effect, Stream } from "effect"
 * import { Cluster } from "shoal"
 *
 * // print healthy workers, then every membership change
 * const program = Effect.gen(function* () {
 *   const cluster = yield* Cluster
 *   const workers = yield* cluster.nodesByTags({ role: "worker", healthy: "true" })
 *   yield* Effect.log(`workers: ${workers.map((node) => node.name).join(", ")}`)
 *   yield* cluster.events.pipe(Stream.runForEach((event) => Effect.log(`${event._tag} ${event.node.name}`)))
 * }).pipe(Effect.provide(Cluster.layer({ nodeName: "watcher", seedNodes: ["10.0.0.1:7946"] })))
 * ```
 */
export class Cluster extends Context.Service<
  Cluster,
  {
    readonly config: ClusterConfig.ClusterConfig
    /**
     * This node as the cluster sees it. Like the other snapshot reads
     * (`members`, `aliveMembers`, `member`, `nodesByTags`), it keeps
     * answering after `leave` and after the scope closed, with the last view
     * (this node `Left`, or as it was when it stopped); every other operation
     * then fails with `ClusterClosed`.
     */
    readonly localNode: Effect.Effect<ClusterNode>
    /** Every known member, this node included, in any state. */
    readonly members: Effect.Effect<ReadonlyArray<ClusterNode>>
    /** Members in state `Alive`, this node included. */
    readonly aliveMembers: Effect.Effect<ReadonlyArray<ClusterNode>>
    /** One member by id, in any state; `NodeNotFound` when it is not held (never known, or reaped). */
    readonly member: (id: NodeId) => Effect.Effect<ClusterNode, NodeNotFound>
    /**
     * Alive members carrying every one of `tags` (answered from the tag
     * index). `{ role: "worker", healthy: "true" }` is "healthy workers".
     */
    readonly nodesByTags: (tags: Tags, options?: TagQueryOptions) => Effect.Effect<ReadonlyArray<ClusterNode>>
    /** Membership changes from the moment the stream starts; it ends when the cluster closes. */
    readonly events: Stream.Stream<ClusterEvent, ClusterClosed>
    /**
     * The members now and every event after that snapshot, with nothing
     * missed in between; the subscription is live when this returns.
     */
    readonly watch: Effect.Effect<
      { readonly members: ReadonlyArray<ClusterNode>; readonly events: Stream.Stream<ClusterEvent> },
      ClusterClosed,
      Scope.Scope
    >
    /**
     * Replaces this node's tags (the `healthy` tag stays the cluster's) and
     * gossips them. Tags are checked as configured tags are: string values,
     * keys neither empty nor containing `=` or `,`, room in a packet.
     */
    readonly setTags: (tags: Tags) => Effect.Effect<ClusterNode, InvalidConfiguration | ClusterClosed>
    /**
     * Merges into this node's tags (see {@link TagChanges}) and gossips the
     * result, checked as {@link setTags} checks; the reserved `healthy` tag
     * cannot be set or removed. Serf's `tags -set/-delete`.
     */
    readonly updateTags: (changes: TagChanges) => Effect.Effect<ClusterNode, InvalidConfiguration | ClusterClosed>
    /**
     * Joins through more members now (`host:port` each, as seeds are
     * written): one push-pull with each, within `joinTimeout`. Succeeds with
     * how many answered; `JoinFailed` when none did.
     */
    readonly join: (addresses: ReadonlyArray<string>) => Effect.Effect<number, JoinFailed | ClusterClosed>
    /**
     * Marks a failed member `Left`, as Serf's `force-leave` does: it stops
     * being a reconnect target, is reaped `reapAfter` from now, and the claim
     * is gossiped so every member does the same. `member` is an id or a name.
     * Fails with `NodeNotFound` for a member not held and `NotFailed` for one
     * that is not `Dead` (an alive member would refute the claim at once).
     */
    readonly forceLeave: (member: string) => Effect.Effect<ClusterNode, NodeNotFound | NotFailed | ClusterClosed>
    /**
     * The failure detector's view of every member it has heard from: phi
     * now and when the last packet arrived (`Clock` milliseconds).
     */
    readonly phiReadings: Effect.Effect<ReadonlyArray<PhiReading>, ClusterClosed>
    /**
     * Probes every member now (every one held, except this node and those that
     * left) as a probe round would — a direct ping, then ping-reqs through
     * helpers and the ping over TCP — and reports how each answered first,
     * with the round trip (see {@link MemberReachability}). It only measures:
     * an unreachable member is reported, not suspected, and the probe rounds
     * go on as before. Every check has a probe's budget, the probe interval
     * stretched by the health score, at most `timeout` when given; the answer
     * comes by then. Members come in the registry's order.
     */
    readonly reachability: (options?: {
      readonly timeout?: Duration.Input | undefined
    }) => Effect.Effect<ReadonlyArray<MemberReachability>, ClusterClosed>
    /** Adds a health check and runs the checks at once; the returned effect removes it again. */
    readonly addHealthCheck: (check: HealthCheck) => Effect.Effect<Effect.Effect<void>, ClusterClosed>
    /** The latest aggregated health of this node's checks. */
    readonly health: Effect.Effect<AggregatedHealth, ClusterClosed>
    /** The phi suspicion level of a member (0 when nothing is known). */
    readonly phi: (id: NodeId) => Effect.Effect<number, ClusterClosed>
    /**
     * Leaves the cluster gracefully now (the layer does this on close
     * anyway). A second `leave` does nothing; after the scope closed it
     * fails with `ClusterClosed`.
     */
    readonly leave: Effect.Effect<void, ClusterClosed>
    readonly stats: Effect.Effect<ClusterStats, ClusterClosed>
    /**
     * `"open"`, `"left"` after `leave`, or `"closed"` once the scope has
     * closed: which operations will fail with `ClusterClosed`.
     */
    readonly status: Effect.Effect<"open" | "left" | "closed">
    /**
     * The gossip keyring (see `docs/SECURITY.md`): each command runs here,
     * then on every live member, and reports who acknowledged. A rotation is
     * `install(newKey)`, `use(fingerprint)`, `remove(oldFingerprint)`, each
     * acknowledged everywhere before the next. Without a configured keyring
     * every command fails with `InvalidConfiguration`.
     */
    readonly keys: {
      /** This node's fingerprints, primary first, asking no one (empty without a keyring). Never the keys. */
      readonly fingerprints: Effect.Effect<ReadonlyArray<string>>
      readonly list: Effect.Effect<KeyringReport, InvalidConfiguration | ClusterClosed>
      /** Installs a key (32 bytes, base64): it decrypts at once, encrypts once `use`d. */
      readonly install: (
        key: string | Redacted.Redacted<string>
      ) => Effect.Effect<KeyringReport, InvalidConfiguration | ClusterClosed>
      /** Makes the key with this fingerprint the primary (the one that encrypts). */
      readonly use: (fingerprint: string) => Effect.Effect<KeyringReport, InvalidConfiguration | ClusterClosed>
      /** Removes a key that is not the primary. */
      readonly remove: (fingerprint: string) => Effect.Effect<KeyringReport, InvalidConfiguration | ClusterClosed>
    }
  }
>()("shoal/cluster/Cluster") {
  /**
   * Builds the cluster on a given Transport: starts the protocol, publishes
   * the initial health, joins (or, with `retryJoin`, keeps trying in the
   * background), and leaves on close.
   */
  static readonly make = (
    config: ClusterConfig.ClusterConfig,
    options: LayerOptions = {}
  ): Effect.Effect<
    Cluster["Service"],
    ClusterError,
    Swim | GossipService | Health | NodeRegistry | PhiDetector | Transport | GossipKeys | Scope.Scope
  > =>
    Effect.gen(function* () {
      const swim = yield* Swim
      const gossip = yield* GossipService
      const health = yield* Health
      const registry = yield* NodeRegistry
      const phi = yield* PhiDetector
      const transport = yield* TransportService
      const gossipKeys = yield* GossipKeys

      let userTags: Tags = { ...config.tags }
      let healthy = (yield* health.runChecks).healthy
      const publish = () => swim.setTags({ ...userTags, [ClusterConfig.HEALTHY_TAG]: String(healthy) })
      yield* publish()

      yield* gossip.start
      yield* Effect.addFinalizer(() =>
        (options.leaveOnClose === false
          ? Effect.void
          : swim.leave.pipe(Effect.timeout(Duration.sum(config.leaveTimeout, Duration.seconds(1))), Effect.ignore)
        ).pipe(Effect.andThen(gossip.stop))
      )

      if (config.seedNodes.length > 0) {
        const joined = yield* swim.join(config.seedNodes).pipe(
          Effect.map(() => true),
          Effect.catchTag("JoinFailed", (error) => (config.retryJoin ? Effect.succeed(false) : Effect.fail(error)))
        )
        if (!joined) {
          yield* Effect.logWarning("no seed answered; running alone and retrying in the background")
          yield* swim
            .join(config.seedNodes)
            .pipe(Effect.retry({ while: () => true }), Effect.delay(config.retryJoinInterval), Effect.forkScoped)
        }
      }

      // Health → the `healthy` tag: only a flip costs an incarnation and a broadcast.
      yield* health.changes.pipe(
        Stream.runForEach((status) => {
          if (status.healthy === healthy) return Effect.void
          healthy = status.healthy
          return Effect.logInfo(`health is now ${healthy ? "passing" : "failing"}`).pipe(Effect.andThen(publish()))
        }),
        Effect.forkScoped
      )

      const events = (changes: Stream.Stream<Parameters<typeof toEvent>[0]>) =>
        changes.pipe(
          Stream.map(toEvent),
          Stream.filter((event): event is ClusterEvent => event !== undefined)
        )

      // Open until `leave` (then "left") or the scope's close (then "closed"). Registered last,
      // so it is the first finalizer to run: nothing gets in while the cluster shuts down.
      let state: "open" | "left" | "closed" = "open"
      yield* Effect.addFinalizer(() => Effect.sync(() => void (state = "closed")))
      const closed = (operation: string) => new ClusterClosed({ operation, reason: "closed" })
      /** `effect` while the scope is open. */
      const open = <A, E, R>(operation: string, effect: Effect.Effect<A, E, R>) =>
        Effect.suspend(
          (): Effect.Effect<A, E | ClusterClosed, R> => (state === "closed" ? Effect.fail(closed(operation)) : effect)
        )
      /** `effect` while the scope is open and this node has not left. */
      const member = <A, E, R>(operation: string, effect: Effect.Effect<A, E, R>) =>
        Effect.suspend(
          (): Effect.Effect<A, E | ClusterClosed, R> =>
            state === "open" ? effect : Effect.fail(new ClusterClosed({ operation, reason: state }))
        )

      return Cluster.of({
        config,
        localNode: swim.localNode,
        members: registry.members,
        aliveMembers: registry.getAliveNodes,
        member: (id) =>
          registry.get(id).pipe(
            Effect.flatMap(
              Option.match({
                onNone: () => Effect.fail(new NodeNotFound({ nodeId: id })),
                onSome: Effect.succeed
              })
            )
          ),
        nodesByTags: (tags, options) => registry.getNodesByTags(tags, options),
        events: Stream.unwrap(open("Cluster.events", Effect.succeed(events(registry.changes)))),
        watch: open(
          "Cluster.watch",
          registry.watch.pipe(Effect.map(({ changes, members }) => ({ members, events: events(changes) })))
        ),
        setTags: Effect.fn("Cluster.setTags")(function* (tags: Tags) {
          return yield* member(
            "Cluster.setTags",
            Effect.gen(function* () {
              // The same checks as configured tags: strings, well-formed keys, the reserved key, room in a packet.
              yield* ClusterConfig.update(config, { tags })
              userTags = { ...tags }
              return yield* publish()
            })
          )
        }),
        updateTags: Effect.fn("Cluster.updateTags")(function* (changes: TagChanges) {
          return yield* member(
            "Cluster.updateTags",
            Effect.gen(function* () {
              const tags: Record<string, string> = { ...userTags }
              for (const key of changes.remove ?? []) delete tags[key]
              Object.assign(tags, changes.set ?? {})
              yield* ClusterConfig.update(config, { tags })
              userTags = tags
              return yield* publish()
            })
          )
        }),
        join: Effect.fn("Cluster.join")(function* (addresses: ReadonlyArray<string>) {
          return yield* member("Cluster.join", swim.join(addresses))
        }),
        forceLeave: Effect.fn("Cluster.forceLeave")(function* (nameOrId: string) {
          return yield* member(
            "Cluster.forceLeave",
            Effect.gen(function* () {
              const held = yield* registry.members
              const target = held.find((node) => node.id === nameOrId) ?? held.find((node) => node.name === nameOrId)
              if (target === undefined) return yield* new NodeNotFound({ nodeId: nameOrId })
              if (target.state === "Left") return target
              if (target.state !== "Dead") {
                return yield* new NotFailed({ nodeId: target.id, name: target.name, state: target.state })
              }
              // The engine takes the claim as if a member had gossiped it: it applies it (Left outranks
              // Dead at the same incarnation), drops the reconnect target, restarts the reap clock and
              // re-broadcasts it, so the whole cluster follows. No engine change needed.
              const self = yield* swim.localNode
              const claim = new NodeStateUpdate(
                { nodeId: target.id, state: "Left", incarnation: target.incarnation, from: self.id },
                { disableChecks: true }
              )
              const payload = Codec.encodePacket({ label: config.clusterLabel }, { messages: [], updates: [claim] })
              yield* swim.handlePackets([{ from: self.gossipAddress, payload }])
              yield* Effect.logInfo(`forced ${target.name} (${target.id}) to leave`)
              return Option.getOrElse(yield* registry.get(target.id), () => target.with({ state: "Left" }))
            })
          )
        }),
        phiReadings: open("Cluster.phiReadings", phi.readings),
        reachability: Effect.fn("Cluster.reachability")(function* (options?: {
          readonly timeout?: Duration.Input | undefined
        }) {
          return yield* member(
            "Cluster.reachability",
            Effect.gen(function* () {
              const self = yield* swim.localNode
              const targets = (yield* registry.members).filter((node) => node.id !== self.id && node.state !== "Left")
              const max = options?.timeout === undefined ? undefined : Duration.toMillis(options.timeout)
              const results = yield* swim.reach(
                targets.map((node) => node.id),
                max
              )
              return results.flatMap((result, i) => {
                if (result.route === "unknown") return []
                return [
                  new MemberReachability({
                    node: targets[i]!,
                    outcome: result.route === "none" ? "unreachable" : result.route,
                    ...(result.rtt === undefined ? {} : { rtt: result.rtt }),
                    helpers: result.helpers,
                    nacks: result.nacks
                  })
                ]
              })
            })
          )
        }),
        addHealthCheck: Effect.fn("Cluster.addHealthCheck")(function* (check: HealthCheck) {
          return yield* member(
            "Cluster.addHealthCheck",
            Effect.gen(function* () {
              const remove = yield* health.addCheck(check)
              yield* health.refresh
              return remove.pipe(Effect.andThen(health.refresh))
            })
          )
        }),
        health: open("Cluster.health", health.status),
        phi: (id) => open("Cluster.phi", phi.phi(id)),
        leave: open(
          "Cluster.leave",
          Effect.suspend(() => {
            if (state === "left") return Effect.void
            state = "left"
            return swim.leave
          })
        ),
        status: Effect.sync(() => state),
        keys: (() => {
          /** The command here, then on every live member but this node. */
          const run = (operation: string, command: KeyringCommand) =>
            member(
              operation,
              Effect.gen(function* () {
                const self = yield* swim.localNode
                const others = (yield* registry.members).filter(
                  (node) => node.id !== self.id && (node.state === "Alive" || node.state === "Suspect")
                )
                return yield* gossipKeys.run(command, others)
              })
            )
          return {
            fingerprints: gossipKeys.local,
            list: run("Cluster.keys.list", new KeyringCommand({ op: "list" })),
            install: (key: string | Redacted.Redacted<string>) =>
              run("Cluster.keys.install", installCommand(Redacted.isRedacted(key) ? key : Redacted.make(key))),
            use: (fingerprint: string) => run("Cluster.keys.use", new KeyringCommand({ op: "use", key: fingerprint })),
            remove: (fingerprint: string) =>
              run("Cluster.keys.remove", new KeyringCommand({ op: "remove", key: fingerprint }))
          }
        })(),
        stats: open(
          "Cluster.stats",
          Effect.gen(function* () {
            return {
              ...(yield* swim.stats),
              transport: yield* transport.stats,
              awareness: yield* swim.awareness,
              envelopeRejected: yield* gossipKeys.rejections
            }
          })
        )
      })
    })

  /**
   * The cluster over a Transport the caller provides (the in-memory
   * `SimNetwork` in tests and simulations).
   */
  static readonly layerWithTransport = (
    config: ClusterConfig.ClusterConfig,
    options: LayerOptions = {}
  ): Layer.Layer<Cluster, ClusterError, Transport> => {
    const base = Layer.mergeAll(NodeRegistry.layer, PhiDetector.layerFromConfig(config), Health.layerFromConfig(config))
    const swim = Swim.layer(config).pipe(Layer.provideMerge(base))
    const gossip = GossipService.layer.pipe(Layer.provideMerge(swim))
    return Layer.effect(Cluster, Cluster.make(config, options)).pipe(
      Layer.provide(gossip),
      Layer.provide(labelGuard(config.clusterLabel)),
      // sealed (with a keyring) below the label guard, so the guard and the engine see plaintext
      Layer.provide(GossipKeys.layer(config))
    )
  }

  /**
   * The cluster on real sockets: UDP (and TCP for push-pull) on the
   * configured bind address. Accepts a validated config or the input to
   * `ClusterConfig.make`; bad configuration fails the layer with
   * `InvalidConfiguration`, a port in use with `NetworkError`, a failed join
   * with `JoinFailed`.
   */
  static readonly layer = (
    config: ClusterConfig.ClusterConfig | ClusterConfig.Input,
    options: LayerOptions = {}
  ): Layer.Layer<Cluster, ClusterError> =>
    Layer.unwrap(
      Effect.map(
        config instanceof ClusterConfig.ClusterConfig ? Effect.succeed(config) : ClusterConfig.make(config),
        (config) =>
          Cluster.layerWithTransport(config, options).pipe(
            Layer.provide(UdpTransport.layer({ bind: config.bindAddress }))
          )
      )
    )
}

/**
 * The transport as the engine sees it, with one addition: a push-pull request
 * from another cluster (a different label in its header) is answered with
 * {@link Codec.labelRefusal} instead of a closed stream, so the joining node's
 * `JoinFailed` names both labels. Everything else passes through.
 */
const labelGuard = (label: string): Layer.Layer<Transport, never, Transport> =>
  Layer.effect(
    TransportService,
    Effect.map(Effect.service(TransportService), (transport) =>
      TransportService.of({
        ...transport,
        serve: (handler, options) =>
          transport.serve((from, request) => {
            const header = Codec.peekHeader(request)
            return header !== undefined && header.kind === Codec.KIND_PUSH_PULL && header.label !== label
              ? Effect.logDebug("refused a push-pull from another cluster").pipe(
                  Effect.annotateLogs({ label: header.label }),
                  Effect.as(Codec.labelRefusal(label))
                )
              : handler(from, request)
          }, options)
      })
    )
  )

/** `Cluster.layer`, under the name the original plan uses. */
export const ClusterLive = Cluster.layer
