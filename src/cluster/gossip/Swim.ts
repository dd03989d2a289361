/**
 * The SWIM protocol engine (Das, Gupta & Motivala 2002) with the Lifeguard
 * refinements (Dadgar et al. 2018), as one node runs it.
 *
 * - **Probing.** Each round picks the next member from a shuffled
 *   round-robin order (members whose phi is above the threshold first), pings
 *   it and waits `pingTimeout`; on silence it asks `indirectChecks` random
 *   members to ping it too (they answer with the ack, or a nack when they got
 *   none). No ack at all: the member becomes `Suspect`.
 * - **Suspicion.** A suspect gets a Lifeguard timer that starts long and
 *   shrinks with every independent accuser; when it runs out the member is
 *   declared `Dead`. The suspect hears the accusation (it rides on the pings
 *   it receives) and refutes it by raising its incarnation.
 * - **Local health.** Missed nacks and refutations raise this node's
 *   awareness score, which stretches its own probe interval and timeouts, so
 *   a node that is itself overloaded stops accusing healthy ones.
 * - **Dissemination.** Every applied change goes into a broadcast queue and
 *   rides piggyback on outgoing packets; a gossip round sends what is pending
 *   to a few random members.
 * - **Anti-entropy.** A push-pull exchange of the full state over a stream,
 *   at join and periodically, merged under the same precedence rules.
 * - **Healing.** Failed members stay reconnect targets for `reconnectTimeout`
 *   (after they are reaped too), seeds are retried while nobody is alive, the
 *   recently dead are pinged, and any word from a member held dead starts an
 *   exchange with it — so a partition of any length heals, and a paused
 *   process that resumes refutes at once.
 *
 * Nothing here waits on the network without a deadline, and no loop waits on
 * an exchange: stream exchanges (push-pull, the TCP fallback ping) run in
 * their own fibers, a few at a time, each bounded by its timeout.
 *
 * The protocol's decisions live in pure modules (`Rules`, `Suspicion`,
 * `Awareness`, `Broadcasts`, `ProbeOrder`); this module wires them to the
 * Transport, the registry, `Clock` and `Random`. The loops that call the
 * rounds live in `GossipService`.
 *
 * @since 0.1.0
 */
import { networkInterfaces } from "node:os"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberMap from "effect/FiberMap"
import * as FiberSet from "effect/FiberSet"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import * as Result from "effect/Result"
import type * as Scope from "effect/Scope"
import type { ClusterConfig } from "../Config.ts"
import { JoinFailed, NetworkError } from "../Errors.ts"
import { Address, ClusterNode, formatAddress, type NodeId, type NodeState, parseAddress, type Tags } from "../Node.ts"
import * as Rules from "../Rules.ts"
import * as Awareness from "./Awareness.ts"
import { Broadcasts } from "./Broadcasts.ts"
import * as Codec from "./Codec.ts"
import { ENVELOPE_OVERHEAD } from "./Keyring.ts"
import { Ack, MAX_SEQ_NO, type Message, Nack, NodeStateUpdate, Ping, PingReq, PushPull } from "./Messages.ts"
import { Peers } from "./Peers.ts"
import { PhiDetector } from "./PhiDetector.ts"
import { ProbeOrder } from "./ProbeOrder.ts"
import { type Applied, NodeRegistry } from "./Registry.ts"
import { Suspicion, suspicionBounds } from "./Suspicion.ts"
import { type Packet, Transport } from "./Transport.ts"

/** Running totals of what this node's engine did, for tests, benchmarks and the CLI. */
export interface SwimStats {
  readonly probes: number
  readonly indirectProbes: number
  readonly failedProbes: number
  readonly suspicionsRaised: number
  readonly deathsDeclared: number
  readonly refutations: number
  /** Probes that failed over UDP but were answered over the TCP fallback. */
  readonly streamPingAcks: number
  /** Members declared dead because their address answered as another identity (a restart under a new id). */
  readonly replacements: number
  /** Exchanges started with a member held dead because it was heard from (a healed partition, a resumed process). */
  readonly revivals: number
  /** Background exchanges not started because `MAX_BACKGROUND_EXCHANGES` were already in flight. */
  readonly exchangesDeferred: number
  readonly pushPulls: number
  readonly pushPullFailures: number
  readonly packetsRejected: number
  readonly updatesApplied: number
}

/** Process-wide counters, labelled by what happened. */
const packetsRejected = Metric.counter("shoal_gossip_packets_rejected", {
  description: "datagrams dropped because they did not decode, came from another cluster or were too large"
})
const suspicionsMetric = Metric.counter("shoal_gossip_suspicions", { description: "members this node suspected" })
const refutationsMetric = Metric.counter("shoal_gossip_refutations", {
  description: "times this node refuted a suspicion of itself"
})

/**
 * When a ping-req helper sends its nack, as a fraction of the ping timeout:
 * early enough to reach the requestor before its probe interval ends.
 */
const NACK_AT = 0.8

/** Coalescing window for phi heartbeats: packets closer together than this are one arrival. */
const PHI_COALESCE_MILLIS = 10

/** Push-pull state is bounded by the codec's cap; every exchange has this much time. */
const PUSH_PULL_TIMEOUT_MILLIS = 10_000

/**
 * Stream exchanges a node runs in the background at once (periodic push-pull,
 * reconnects, learning about strangers, revivals). Each holds a connection for
 * up to its timeout when the peer's packets are dropped, so they are few.
 */
export const MAX_BACKGROUND_EXCHANGES = 4

/** Failed members remembered as reconnect targets; the oldest go first beyond this. */
const MAX_RECONNECT_TARGETS = 4096

/** Per-peer cooldown tables (strangers to learn from, the dead to revive) are cleared beyond this size. */
const MAX_COOLDOWN_ENTRIES = 4096

/** How often the reaper looks for members to forget. */
export const REAP_INTERVAL = Duration.seconds(1)

/**
 * The address other members should use for this node: the configured
 * advertise address; else the bound address, unless it is the unspecified
 * address (0.0.0.0 / ::), in which case the first non-internal IPv4 of this
 * host (loopback when there is none), with the bound port.
 */
export const advertisedAddress = (config: ClusterConfig, bound: Address): Address => {
  if (config.advertiseAddress !== undefined) return config.advertiseAddress
  if (bound.host !== "0.0.0.0" && bound.host !== "::") return bound
  for (const list of Object.values(networkInterfaces())) {
    for (const info of list ?? []) {
      if (info.family === "IPv4" && !info.internal) return new Address({ host: info.address, port: bound.port })
    }
  }
  return new Address({ host: "127.0.0.1", port: bound.port })
}

/** How long push-pull waits between rounds for a cluster of `n` (memberlist's scaling above 32 members). */
export const pushPullScale = (interval: number, n: number): number =>
  n <= 32 ? interval : interval * (Math.ceil(Math.log2(n) - Math.log2(32)) + 1)

/**
 * Who waits for the ack of one sequence number. An ack counts only when it
 * comes from `target`; an ack from another identity *sent from the target's
 * address* means that address now belongs to someone else (`onReplaced`).
 */
interface AckWaiter {
  readonly target: NodeId
  readonly address: string
  readonly onAck: () => void
  readonly onReplaced: (by: NodeId) => Effect.Effect<void>
  readonly onNack: () => void
}

/** How a probe ended. */
type ProbeOutcome = { readonly _tag: "Acked" } | { readonly _tag: "Replaced"; readonly by: NodeId }

/** A failed member worth trying again, remembered past its reaping (Serf's reconnect list). */
interface ReconnectTarget {
  readonly address: Address
  readonly failedAt: number
}

export class Swim extends Context.Service<
  Swim,
  {
    readonly config: ClusterConfig
    /** This node as the cluster sees it (its incarnation, tags and state). */
    readonly localNode: Effect.Effect<ClusterNode>
    /** Handles a batch of received datagrams. Never fails: bad packets are counted and dropped. */
    readonly handlePackets: (packets: ReadonlyArray<Packet>) => Effect.Effect<void>
    /** Serves one stream exchange — a push-pull, or a probe's TCP fallback ping (the Transport's stream handler). */
    readonly handleStream: (from: Address, request: Uint8Array) => Effect.Effect<Uint8Array, NetworkError>
    /** One probe round: the next member in turn, directly then indirectly. Never longer than the probe interval. */
    readonly probeRound: Effect.Effect<void>
    /** One gossip round: pending updates to `gossipNodes` random members (live or recently dead). */
    readonly gossipRound: Effect.Effect<void>
    /** Starts one push-pull with a random alive member (in the background; returns at once). */
    readonly pushPullRound: Effect.Effect<void>
    /**
     * Starts one attempt to reach a member we believe failed — or, while no
     * member is alive, a seed — in the background (heals partitions).
     */
    readonly reconnectRound: Effect.Effect<void>
    /** Forgets members dead or left longer than `reapAfter`, and tombstones older than `tombstoneTtl`. */
    readonly reapRound: Effect.Effect<void>
    /** The probe interval, stretched by the local health score. */
    readonly probeInterval: Effect.Effect<Duration.Duration>
    /** The push-pull interval, stretched for large clusters. */
    readonly pushPullInterval: Effect.Effect<Duration.Duration>
    /**
     * Joins through the given seeds (`host:port`, resolved at every attempt):
     * push-pull with each, retrying with backoff until one answers or
     * `joinTimeout` passes. Returns how many seeds answered.
     */
    readonly join: (seeds: ReadonlyArray<string>) => Effect.Effect<number, JoinFailed>
    /**
     * Leaves gracefully: announces `Left` at a new incarnation and waits
     * (at most `leaveTimeout`) until the announcement has gone out. Pings are
     * still answered until the node stops, so the news also rides on acks.
     */
    readonly leave: Effect.Effect<void>
    /** Publishes new tags (replacing the previous ones) at a new incarnation. */
    readonly setTags: (tags: Tags) => Effect.Effect<ClusterNode>
    /** The local health score (0 = healthy; see `Awareness`). */
    readonly awareness: Effect.Effect<number>
    readonly stats: Effect.Effect<SwimStats>
  }
>()("shoal/cluster/gossip/Swim") {
  /** The engine for `config`, on the Transport, registry and phi detector in context; its fibers live in the scope. */
  static readonly make = (
    config: ClusterConfig
  ): Effect.Effect<Swim["Service"], never, Transport | NodeRegistry | PhiDetector | Scope.Scope> =>
    Effect.gen(function* () {
      const transport = yield* Transport
      const registry = yield* NodeRegistry
      const phi = yield* PhiDetector
      const rng = yield* Random.Random
      const random = () => rng.nextDoubleUnsafe()

      const label = config.clusterLabel
      // a sealed packet is ENVELOPE_OVERHEAD bytes longer than what the engine packs
      const maxPacket = config.maxPacketSize - (config.keyring === undefined ? 0 : ENVELOPE_OVERHEAD)
      const probeIntervalMs = Duration.toMillis(config.probeInterval)
      const pingTimeoutMs = Duration.toMillis(config.pingTimeout)
      const gossipToTheDeadMs = Duration.toMillis(config.gossipToTheDeadTime)
      const reapAfterMs = Duration.toMillis(config.reapAfter)
      const reconnectTimeoutMs = Duration.toMillis(config.reconnectTimeout)
      const tombstoneTtl = config.tombstoneTtl
      /** A member heard from while held dead is revived at most this often (its exchange may fail). */
      const reviveCooldownMs = 5 * probeIntervalMs
      /** A stranger that pings us is learnt from at most this often. */
      const learnCooldownMs = 5 * probeIntervalMs

      // --- local state (only this fiber group touches it; every mutation is synchronous) ---
      let self = new ClusterNode(
        {
          id: config.nodeId,
          name: config.nodeName,
          gossipAddress: advertisedAddress(config, transport.localAddress),
          ...(config.rpcAddress === undefined ? {} : { rpcAddress: config.rpcAddress }),
          tags: config.tags,
          state: "Alive",
          incarnation: 0
        },
        { disableChecks: true }
      )
      let seq = 0
      const nextSeq = () => (seq = seq >= MAX_SEQ_NO ? 0 : seq + 1)
      const waiters = new Map<number, AckWaiter>()
      const suspicions = new Map<NodeId, Suspicion<NodeId>>()
      const awareness = new Awareness.Awareness(config.awarenessMaxMultiplier)
      const broadcasts = new Broadcasts<NodeStateUpdate>(config.retransmitMult)
      const probeOrder = new ProbeOrder<NodeId>()
      /** Members worth talking to: Alive or Suspect, never this node. */
      const live = new Peers<NodeId>()
      /** The Alive ones among them: only these are asked to probe for us (memberlist's rule). */
      const alive = new Peers<NodeId>()
      /** Members that died recently enough to keep gossiping to (a false death heals faster). */
      const recentlyDead = new Peers<NodeId>()
      /** When each Dead/Left member got that state, for reaping and gossip-to-the-dead. */
      const downSince = new Map<NodeId, number>()
      /** Failed members to try again, kept past reaping until `reconnectTimeout` (Serf's reconnect list). */
      const reconnectTargets = new Map<NodeId, ReconnectTarget>()
      /** Gossip address → the live member there, so a packet without ids still counts as a heartbeat. */
      const byAddress = new Map<string, NodeId>()
      /** Gossip address → every live member that claims it (more than one after a restart under a new id). */
      const atAddress = new Map<string, Set<NodeId>>()
      const lastHeartbeat = new Map<NodeId, number>()
      let leaving = false
      const lastProbed = new Map<NodeId, number>()
      let lastRoundOutOfTurn = false
      /** When each dead member heard from was last revived, and each stranger last learnt from. */
      const lastRevived = new Map<NodeId, number>()
      const lastLearnt = new Map<string, number>()
      /** Peers (by id or address) with a background exchange in flight, and how many there are. */
      const exchanging = new Set<string>()
      const counters = {
        probes: 0,
        indirectProbes: 0,
        failedProbes: 0,
        suspicionsRaised: 0,
        deathsDeclared: 0,
        refutations: 0,
        streamPingAcks: 0,
        replacements: 0,
        revivals: 0,
        exchangesDeferred: 0,
        pushPulls: 0,
        pushPullFailures: 0,
        packetsRejected: 0,
        updatesApplied: 0
      }

      const timers = yield* FiberMap.make<NodeId>()
      const tasks = yield* FiberSet.make()

      yield* registry.upsert(self)

      const clusterSize = () => live.size + 1

      // --- sending ---

      /**
       * Sends `messages` to `to` with as many pending updates as fit, after
       * the `priority` updates (which always go first).
       */
      const send = (
        to: Address,
        messages: ReadonlyArray<Message>,
        priority: ReadonlyArray<NodeStateUpdate> = []
      ): Effect.Effect<void> =>
        Effect.suspend(() => {
          let budget = Codec.updateBudget(label, messages, maxPacket)
          for (const u of priority) budget -= Codec.updateSize(u)
          const picked = broadcasts.select(
            Math.max(0, budget),
            clusterSize(),
            Codec.DEFAULT_MAX_UPDATES - priority.length
          )
          const candidates =
            priority.length === 0 ? picked.map((b) => b.payload) : [...priority, ...picked.map((b) => b.payload)]
          if (messages.length === 0 && candidates.length === 0) return Effect.void
          const packed = Codec.packCompound(label, messages, candidates, maxPacket)
          return sendBytes(to, packed.bytes)
        })

      /** Sends exactly these messages and updates, nothing from the broadcast queue. */
      const sendOnly = (to: Address, messages: ReadonlyArray<Message>, updates: ReadonlyArray<NodeStateUpdate> = []) =>
        sendBytes(to, Codec.encodePacket({ label }, { messages, updates }))

      const sendBytes = (to: Address, bytes: Uint8Array) =>
        transport.send(to, bytes).pipe(Effect.catch((error) => Effect.logDebug("send failed", error.message)))

      const enqueue = (update: NodeStateUpdate) =>
        broadcasts.enqueue({ key: update.nodeId, payload: update, size: Codec.updateSize(update) })

      const selfUpdate = () => NodeStateUpdate.fromNode(self, self.id)

      const accusation = (id: NodeId, state: NodeState, incarnation: number, from: NodeId = self.id) =>
        new NodeStateUpdate({ nodeId: id, state, incarnation, from }, { disableChecks: true })

      // --- background exchanges: few at a time, one per peer, none awaited by a loop ---

      /**
       * Runs `exchange` in its own fiber unless one with `key` is already in
       * flight or `MAX_BACKGROUND_EXCHANGES` are. Returns at once: the caller
       * never waits on the network.
       */
      const inBackground = (key: string, exchange: Effect.Effect<unknown, unknown>) =>
        Effect.suspend(() => {
          if (exchanging.has(key)) return Effect.void
          if (exchanging.size >= MAX_BACKGROUND_EXCHANGES) {
            counters.exchangesDeferred++
            return Effect.void
          }
          exchanging.add(key)
          return FiberSet.run(
            tasks,
            exchange.pipe(Effect.ignore, Effect.ensuring(Effect.sync(() => exchanging.delete(key)))),
            { startImmediately: true }
          ).pipe(Effect.asVoid)
        })

      /** Whether `key` may be contacted again (at most once per `cooldown`), recording the attempt. */
      const cooledDown = <K>(table: Map<K, number>, key: K, now: number, cooldown: number) => {
        const last = table.get(key)
        if (last !== undefined && now - last < cooldown) return false
        if (table.size >= MAX_COOLDOWN_ENTRIES) table.clear()
        table.set(key, now)
        return true
      }

      // --- bookkeeping that follows every applied change ---

      const unindexAddress = (address: string, id: NodeId) => {
        const ids = atAddress.get(address)
        if (ids !== undefined) {
          ids.delete(id)
          if (ids.size === 0) atAddress.delete(address)
        }
        if (byAddress.get(address) === id) byAddress.delete(address)
      }

      const track = (change: Applied, now: number) => {
        counters.updatesApplied++
        const node = change.current
        const previous = change.previous
        if (node.id === self.id) return
        const address = formatAddress(node.gossipAddress)
        if (previous !== undefined) {
          const before = formatAddress(previous.gossipAddress)
          if (before !== address) unindexAddress(before, node.id)
        }
        if (node.state === "Alive" || node.state === "Suspect") {
          byAddress.set(address, node.id)
          let ids = atAddress.get(address)
          if (ids === undefined) {
            ids = new Set()
            atAddress.set(address, ids)
          }
          ids.add(node.id)
          live.add(node.id)
          if (node.state === "Alive") alive.add(node.id)
          else alive.remove(node.id)
          probeOrder.add(node.id, random)
          recentlyDead.remove(node.id)
          downSince.delete(node.id)
          reconnectTargets.delete(node.id)
        } else {
          unindexAddress(address, node.id)
          live.remove(node.id)
          alive.remove(node.id)
          probeOrder.remove(node.id)
          downSince.set(node.id, now)
          if (node.state === "Dead") {
            recentlyDead.add(node.id)
            rememberFailed(node, now)
          } else {
            // a graceful leave is final: nobody reconnects to it
            recentlyDead.remove(node.id)
            reconnectTargets.delete(node.id)
          }
        }
        if (node.state !== "Suspect") {
          suspicions.delete(node.id)
        }
      }

      const rememberFailed = (node: ClusterNode, now: number) => {
        reconnectTargets.delete(node.id)
        if (reconnectTargets.size >= MAX_RECONNECT_TARGETS) {
          const oldest = reconnectTargets.keys().next()
          if (!oldest.done) reconnectTargets.delete(oldest.value)
        }
        reconnectTargets.set(node.id, { address: node.gossipAddress, failedAt: now })
      }

      const cancelSuspicion = (id: NodeId) => FiberMap.remove(timers, id)

      /** Arms (or re-arms after a confirmation) the timer that declares a suspect dead. */
      const armTimer = (suspicion: Suspicion<NodeId>): Effect.Effect<void> =>
        Effect.gen(function* () {
          const now = yield* Clock.currentTimeMillis
          yield* FiberMap.run(
            timers,
            suspicion.target,
            // The declaration runs in its own fiber: it cancels this member's timer, which
            // would otherwise interrupt the declaration half-way.
            Effect.sleep(Duration.millis(Math.max(0, suspicion.deadline() - now))).pipe(
              Effect.andThen(FiberSet.run(tasks, suspicionExpired(suspicion)))
            )
          )
        })

      const suspicionExpired = (suspicion: Suspicion<NodeId>) =>
        Effect.gen(function* () {
          if (suspicions.get(suspicion.target) !== suspicion) return
          const member = yield* registry.get(suspicion.target)
          if (
            Option.isNone(member) ||
            member.value.state !== "Suspect" ||
            member.value.incarnation !== suspicion.incarnation
          )
            return
          yield* Effect.logDebug("suspicion expired: declaring dead").pipe(
            Effect.annotateLogs({ member: member.value.name, incarnation: suspicion.incarnation })
          )
          counters.deathsDeclared++
          yield* applyUpdate(accusation(suspicion.target, "Dead", suspicion.incarnation))
        })

      const startSuspicion = (id: NodeId, incarnation: number, accuser: NodeId, now: number) => {
        const suspicion = new Suspicion<NodeId>({
          target: id,
          incarnation,
          accuser,
          startedAt: now,
          bounds: suspicionBounds({
            clusterSize: clusterSize(),
            suspicionMult: config.suspicionMult,
            suspicionMaxTimeoutMult: config.suspicionMaxTimeoutMult,
            ...(config.suspicionConfirmations === undefined ? {} : { confirmations: config.suspicionConfirmations }),
            probeInterval: probeIntervalMs
          })
        })
        suspicions.set(id, suspicion)
        return armTimer(suspicion)
      }

      // --- applying what we hear ---

      /** Whether an `Alive` announcement about us carries what we announce (a previous life's would not). */
      const announcesSelf = (update: NodeStateUpdate) =>
        update.name === self.name &&
        update.gossipAddress !== undefined &&
        formatAddress(update.gossipAddress) === formatAddress(self.gossipAddress) &&
        (update.rpcAddress === undefined) === (self.rpcAddress === undefined) &&
        (update.rpcAddress === undefined ||
          self.rpcAddress === undefined ||
          formatAddress(update.rpcAddress) === formatAddress(self.rpcAddress)) &&
        sameTags(update.tags ?? {}, self.tags)

      /** A claim about this node: refute it when the rules say so (Lifeguard counts that against our health). */
      const claimAboutSelf = (update: NodeStateUpdate) =>
        Effect.suspend(() => {
          const incarnation = Rules.refute(
            self,
            update,
            update.state !== "Alive" || !update.isFull || announcesSelf(update)
          )
          if (incarnation === undefined) {
            // An accusation older than our last refutation: whoever still repeats it missed the
            // refutation (its retransmissions are spent). Announce ourselves again — no new
            // incarnation needed — so the ack or gossip that answers it carries the news.
            if (self.state === "Alive" && update.state !== "Alive" && !broadcasts.has(self.id)) enqueue(selfUpdate())
            return Effect.void
          }
          if (update.state !== "Alive") {
            awareness.apply(Awareness.REFUTED)
            counters.refutations++
          }
          self = self.with({ incarnation })
          enqueue(selfUpdate())
          return registry
            .upsert(self)
            .pipe(
              Effect.andThen(Metric.update(refutationsMetric, 1)),
              Effect.andThen(
                Effect.logDebug("refuting").pipe(Effect.annotateLogs({ heard: update.state, incarnation }))
              )
            )
        })

      /**
       * Applies one update under the precedence rules; an applied update is
       * passed on (re-broadcast), which is what makes gossip epidemic.
       */
      const applyUpdate = (update: NodeStateUpdate): Effect.Effect<void> =>
        Effect.gen(function* () {
          if (update.nodeId === self.id) return yield* claimAboutSelf(update)
          const now = yield* Clock.currentTimeMillis
          if (update.state === "Alive") {
            // Most announcements we hear are ones we already have: check the claim before
            // building a member from it.
            const known = yield* registry.get(update.nodeId)
            if (Option.isSome(known) && !Rules.shouldApply(known.value, update)) return
            const node = update.toNode()
            if (Option.isNone(node)) return
            const change = yield* registry.upsert(node.value)
            if (change === undefined) return
            track(change, now)
            enqueue(update)
            yield* cancelSuspicion(update.nodeId)
            if (change.previous === undefined || change.previous.state === "Dead" || change.previous.state === "Left") {
              yield* verifyOthersAt(node.value)
            }
            if (change.previous?.state === "Dead") yield* welcomeBack(node.value, now)
            return
          }
          const current = yield* registry.get(update.nodeId)
          if (Option.isNone(current)) return
          const member = current.value
          const accuser = update.from ?? self.id
          if (update.state === "Suspect" && member.state === "Suspect" && member.incarnation === update.incarnation) {
            // Same suspicion from another accuser: an independent confirmation shortens the timer.
            const suspicion = suspicions.get(member.id)
            if (suspicion?.confirm(accuser)) {
              enqueue(update)
              yield* armTimer(suspicion)
            }
            return
          }
          const change = yield* registry
            .updateState(member.id, update.state, update.incarnation)
            .pipe(Effect.orElseSucceed(() => undefined))
          if (change === undefined) return
          track(change, now)
          enqueue(update)
          if (update.state === "Suspect") {
            yield* startSuspicion(member.id, update.incarnation, accuser, now)
          } else {
            yield* phi.remove(member.id)
            lastHeartbeat.delete(member.id)
            lastProbed.delete(member.id)
            yield* cancelSuspicion(member.id)
          }
        })

      /**
       * A member (re)appeared at an address where other live members are
       * held: one of them may have restarted under this new id. Ping each of
       * them there now — the process at that address answers with its own
       * id, and an answer from another identity declares the old one dead
       * (see {@link probe}) — instead of declaring anyone dead on the
       * newcomer's word: a misconfigured newcomer may advertise a live
       * member's address.
       */
      const verifyOthersAt = (node: ClusterNode) =>
        Effect.gen(function* () {
          const address = formatAddress(node.gossipAddress)
          const ids = atAddress.get(address)
          if (ids === undefined || ids.size < 2) return
          for (const id of ids) {
            if (id === node.id) continue
            const other = yield* registry.get(id)
            if (Option.isSome(other)) yield* verify(other.value)
          }
        })

      /**
       * A member we held dead refuted: it was cut off (or frozen), and while it
       * was, every update about others whose retransmissions ran out missed it
       * — after a healed partition, the other side's refutations too. One
       * exchange of full state catches it up now rather than at the next
       * push-pull interval (at most one per member per cooldown, and only when
       * an exchange slot is free).
       */
      const welcomeBack = (member: ClusterNode, now: number) =>
        cooledDown(lastRevived, member.id, now, reviveCooldownMs)
          ? inBackground(member.id, pushPullWith(member.gossipAddress, false, member.id))
          : Effect.void

      /** One ping to `member` outside the probe order, answered or not within the ping timeout. */
      const verify = (member: ClusterNode) =>
        Effect.gen(function* () {
          const verifySeq = nextSeq()
          waiters.set(verifySeq, {
            target: member.id,
            address: formatAddress(member.gossipAddress),
            onAck: () => {},
            onReplaced: (by) => replaced(member, by),
            onNack: () => {}
          })
          yield* sendOnly(member.gossipAddress, [new Ping({ seq: verifySeq, from: self.id, target: member.id })])
          yield* FiberSet.run(
            tasks,
            Effect.sleep(Duration.millis(pingTimeoutMs)).pipe(
              Effect.andThen(Effect.sync(() => waiters.delete(verifySeq)))
            )
          )
        })

      /**
       * `member`'s address answered a ping for it as `by`: the process there is
       * another identity now (a restart under a new id), so `member` is gone.
       */
      const replaced = (member: ClusterNode, by: NodeId) =>
        Effect.gen(function* () {
          const current = yield* registry.get(member.id)
          if (
            Option.isNone(current) ||
            (current.value.state !== "Alive" && current.value.state !== "Suspect") ||
            current.value.incarnation !== member.incarnation ||
            formatAddress(current.value.gossipAddress) !== formatAddress(member.gossipAddress)
          )
            return
          counters.replacements++
          counters.deathsDeclared++
          yield* Effect.logDebug("member's address answers as another identity: declaring it dead").pipe(
            Effect.annotateLogs({ member: member.name, by, address: formatAddress(member.gossipAddress) })
          )
          yield* applyUpdate(accusation(member.id, "Dead", member.incarnation))
        })

      /** We ourselves suspect `member` (a failed probe). */
      const suspect = (member: ClusterNode) =>
        Effect.gen(function* () {
          counters.suspicionsRaised++
          yield* Metric.update(suspicionsMetric, 1)
          yield* Effect.logDebug("probe failed: suspecting").pipe(
            Effect.annotateLogs({ member: member.name, incarnation: member.incarnation })
          )
          yield* applyUpdate(accusation(member.id, "Suspect", member.incarnation))
        })

      const heartbeat = (id: NodeId, now: number) => {
        if (id === self.id || !live.has(id)) return Effect.void
        const last = lastHeartbeat.get(id)
        if (last !== undefined && now - last < PHI_COALESCE_MILLIS) return Effect.void
        lastHeartbeat.set(id, now)
        return phi.heartbeat(id)
      }

      /**
       * `id` spoke to us directly (it pinged us, or answered a ping). A member
       * we hold dead is alive and reachable again — a healed partition, a
       * resumed process, a false death — so exchange state with it at its
       * known address: each side then hears the other's verdict about itself
       * and refutes. A stranger (or a reaped member restarted under its old
       * id) that pings us is learnt from the same way.
       */
      const heardFrom = (id: NodeId, source: Address, now: number, learn: boolean) =>
        Effect.gen(function* () {
          if (id === self.id || leaving) return
          const member = yield* registry.get(id)
          if (Option.isSome(member)) {
            // only from its own address: a relayed ack, or a forged ping, proves nothing
            if (member.value.state !== "Dead" || formatAddress(member.value.gossipAddress) !== formatAddress(source))
              return
            if (!cooledDown(lastRevived, id, now, reviveCooldownMs)) return
            counters.revivals++
            yield* Effect.logDebug("heard from a member held dead: exchanging state").pipe(
              Effect.annotateLogs({ member: member.value.name })
            )
            return yield* inBackground(id, pushPullWith(member.value.gossipAddress, false, id))
          }
          const key = formatAddress(source)
          if (!learn || !cooledDown(lastLearnt, key, now, learnCooldownMs)) return
          // Its join announcement missed us (gossip is probabilistic), or we reaped it: rather than
          // wait up to a push-pull interval, exchange state with it now.
          yield* inBackground(key, pushPullWith(source, false, id))
        })

      // --- messages ---

      /**
       * Answers a ping. A ping for another identity is answered too, with our
       * own id: the prober learns at once that the member it probes no longer
       * lives at this address. A leaving node still answers until it stops.
       */
      const onPing = (from: Address, ping: Ping) => send(from, [new Ack({ seq: ping.seq, from: self.id })])

      const onAck = (ack: Ack, source: Address) =>
        Effect.suspend(() => {
          const waiter = waiters.get(ack.seq)
          if (waiter === undefined) return Effect.void
          if (ack.from === waiter.target) {
            waiter.onAck()
            return Effect.void
          }
          return formatAddress(source) === waiter.address ? waiter.onReplaced(ack.from) : Effect.void
        })

      const onNack = (nack: Nack) =>
        Effect.sync(() => {
          waiters.get(nack.seq)?.onNack()
        })

      /** Ping the target on the requestor's behalf; relay its ack, or a nack when none came in time. */
      const onPingReq = (from: Address, request: PingReq) =>
        Effect.gen(function* () {
          if (leaving) return
          const relaySeq = nextSeq()
          const answered = yield* Deferred.make<boolean>()
          waiters.set(relaySeq, {
            target: request.target,
            address: formatAddress(request.targetAddress),
            onAck: () => void Deferred.doneUnsafe(answered, Exit.succeed(true)),
            // the target's address answers as someone else: nothing to relay, the requestor's probe fails
            onReplaced: () => Effect.void,
            onNack: () => {}
          })
          yield* send(request.targetAddress, [new Ping({ seq: relaySeq, from: self.id, target: request.target })])
          // The requestor counts nacks only until its probe interval ends — about one ping
          // timeout after it asked us — so the nack must leave well before a ping timeout,
          // whatever our own health score (memberlist's helper uses the unscaled timeout too):
          // a late nack would make the requestor blame its own health. An ack that comes after
          // the nack is still relayed, until the ping timeout.
          const nackAfter = pingTimeoutMs * NACK_AT
          const relayAck = send(from, [new Ack({ seq: request.seq, from: request.target })])
          yield* FiberSet.run(
            tasks,
            Deferred.await(answered).pipe(
              Effect.timeoutOption(Duration.millis(nackAfter)),
              Effect.flatMap((acked) =>
                Option.isSome(acked)
                  ? relayAck
                  : send(from, [new Nack({ seq: request.seq, from: self.id })]).pipe(
                      Effect.andThen(Deferred.await(answered)),
                      Effect.timeoutOption(Duration.millis(pingTimeoutMs - nackAfter)),
                      Effect.flatMap((late) => (Option.isSome(late) ? relayAck : Effect.void))
                    )
              ),
              Effect.ensuring(Effect.sync(() => waiters.delete(relaySeq)))
            )
          )
        })

      const handlePacket = (packet: Packet, now: number): Effect.Effect<void> =>
        Effect.gen(function* () {
          const decoded = Codec.decodePacketResult(label, packet.payload)
          if (Result.isFailure(decoded)) {
            counters.packetsRejected++
            yield* Metric.update(packetsRejected, 1)
            return yield* Effect.logDebug("dropped a bad packet", decoded.failure.message).pipe(
              Effect.annotateLogs({ peer: formatAddress(packet.from), bytes: packet.payload.length })
            )
          }
          const { messages, updates } = decoded.success
          const sender = byAddress.get(formatAddress(packet.from))
          if (sender !== undefined) yield* heartbeat(sender, now)
          // Updates first: a reply then carries whatever they changed (e.g. our refutation).
          for (const update of updates) yield* applyUpdate(update)
          for (const message of messages) {
            switch (message._tag) {
              case "Ping":
                if (sender === undefined) yield* heartbeat(message.from, now)
                yield* onPing(packet.from, message)
                yield* heardFrom(message.from, packet.from, now, true)
                break
              case "Ack":
                yield* onAck(message, packet.from)
                yield* heardFrom(message.from, packet.from, now, false)
                break
              case "Nack":
                yield* onNack(message)
                break
              case "PingReq":
                yield* onPingReq(packet.from, message)
                break
            }
          }
        })

      const handlePackets = (packets: ReadonlyArray<Packet>) =>
        Effect.gen(function* () {
          const now = yield* Clock.currentTimeMillis
          for (const packet of packets) yield* handlePacket(packet, now)
        })

      // --- probing ---

      /**
       * Probes `target`: a ping, then (no ack within the ping timeout) ping-reqs
       * through alive helpers and the TCP fallback in parallel, until the
       * probe interval ends. The fallback runs in its own fiber with its own
       * deadline and is never awaited: a connect that hangs (packets dropped)
       * cannot hold the round.
       */
      const probe = (target: ClusterNode) =>
        Effect.gen(function* () {
          counters.probes++
          const started = yield* Clock.currentTimeMillis
          /** How long this probe may take: the probe interval, stretched by our health score. */
          const budget = awareness.scale(probeIntervalMs)
          const probeSeq = nextSeq()
          const outcome = yield* Deferred.make<ProbeOutcome>()
          let nacks = 0
          const address = formatAddress(target.gossipAddress)
          waiters.set(probeSeq, {
            target: target.id,
            address,
            onAck: () => void Deferred.doneUnsafe(outcome, Exit.succeed({ _tag: "Acked" })),
            onReplaced: (by) =>
              Effect.sync(() => void Deferred.doneUnsafe(outcome, Exit.succeed({ _tag: "Replaced", by }))),
            onNack: () => void nacks++
          })
          // Lifeguard's buddy system: a suspect hears the accusation on the ping itself and can refute at once.
          const priority = target.state === "Suspect" ? [accusation(target.id, "Suspect", target.incarnation)] : []
          yield* send(target.gossipAddress, [new Ping({ seq: probeSeq, from: self.id, target: target.id })], priority)
          const direct = yield* Deferred.await(outcome).pipe(
            Effect.timeoutOption(Duration.millis(awareness.scale(pingTimeoutMs)))
          )
          if (Option.isSome(direct)) {
            waiters.delete(probeSeq)
            return yield* probeEnded(target, direct.value)
          }
          counters.indirectProbes++
          const helpers = alive.sample(config.indirectChecks, random, new Set([target.id]))
          for (const id of helpers) {
            const helper = yield* registry.get(id)
            if (Option.isNone(helper)) continue
            yield* send(helper.value.gossipAddress, [
              new PingReq({
                seq: probeSeq,
                requestor: self.id,
                target: target.id,
                targetAddress: target.gossipAddress
              })
            ])
          }
          const now = yield* Clock.currentTimeMillis
          const remaining = Math.max(0, budget - (now - started))
          // memberlist's fallback: the same ping over a TCP stream, in parallel with the helpers.
          // Datagram loss (or a firewall that drops UDP) then cannot make us accuse a member we
          // can still reach; it only costs a connection when a direct ping already failed.
          const overTcp = config.tcpPings
            ? yield* FiberSet.run(
                tasks,
                streamPing(target, probeSeq, remaining).pipe(
                  Effect.flatMap((answeredAs) =>
                    Effect.sync(() => {
                      if (answeredAs === undefined) return
                      if (answeredAs !== target.id) {
                        Deferred.doneUnsafe(outcome, Exit.succeed({ _tag: "Replaced", by: answeredAs }))
                      } else if (Deferred.doneUnsafe(outcome, Exit.succeed({ _tag: "Acked" }))) {
                        counters.streamPingAcks++
                      }
                    })
                  )
                ),
                { startImmediately: true }
              )
            : undefined
          const indirect = yield* Deferred.await(outcome).pipe(Effect.timeoutOption(Duration.millis(remaining)))
          waiters.delete(probeSeq)
          // interrupted in the background: even a prompt interruption is not this round's to wait for
          if (overTcp !== undefined) yield* FiberSet.run(tasks, Fiber.interrupt(overTcp))
          if (Option.isSome(indirect)) return yield* probeEnded(target, indirect.value)
          const took = (yield* Clock.currentTimeMillis) - started
          if (took > budget + pingTimeoutMs) {
            // We were frozen or starved (SIGSTOP, a long GC pause, an overloaded host) while the
            // answers queued unread: the timeouts expired on our side. That is evidence about
            // our own health, not the target's.
            awareness.apply(Awareness.probeFailed(0, 0))
            return yield* Effect.logDebug("probe outlived its interval: no verdict on the target").pipe(
              Effect.annotateLogs({ member: target.name, took })
            )
          }
          counters.failedProbes++
          awareness.apply(Awareness.probeFailed(helpers.length, nacks))
          // The member may have changed while we waited (refuted, left): only accuse it at the
          // incarnation we probed. Already suspect there, our failed probe is an independent
          // confirmation (Lifeguard): it shortens every suspicion timer that hears it.
          const current = yield* registry.get(target.id)
          if (
            Option.isSome(current) &&
            (current.value.state === "Alive" || current.value.state === "Suspect") &&
            current.value.incarnation === target.incarnation
          ) {
            yield* suspect(current.value)
          }
        })

      /** An answered probe — directly, through a helper or over TCP — is evidence of our own health. */
      const probeEnded = (target: ClusterNode, outcome: ProbeOutcome) =>
        Effect.suspend(() => {
          awareness.apply(Awareness.PROBE_SUCCEEDED)
          return outcome._tag === "Replaced" ? replaced(target, outcome.by) : Effect.void
        })

      /**
       * The one member to probe out of turn this round, if any: first the
       * suspect we probed least recently, then the member with the highest phi
       * above the threshold. Never one probed in the last two intervals, and
       * never two rounds in a row — the round-robin still advances at least
       * every other round, so no member waits more than two passes, whatever
       * phi says.
       *
       * Probing suspects settles suspicions fast both ways: a dead member's
       * failed probes are independent confirmations that shorten every timer,
       * and a live one receives the accusation on the ping (the buddy system)
       * and answers with its refutation — even when we missed its first one.
       * That holds for suspects we accused ourselves too: on a flapping link,
       * our next ping is how the suspect hears of it once the link is back
       * (skipping them caused false failures on the fault suite's flapping
       * link).
       */
      const outOfTurn = (now: number) =>
        Effect.gen(function* () {
          if (lastRoundOutOfTurn) return undefined
          const recent = (id: NodeId) => now - (lastProbed.get(id) ?? Number.NEGATIVE_INFINITY) < 2 * probeIntervalMs
          let stalest: NodeId | undefined
          for (const id of suspicions.keys()) {
            if (!live.has(id) || recent(id)) continue
            if (stalest === undefined || (lastProbed.get(id) ?? 0) < (lastProbed.get(stalest) ?? 0)) stalest = id
          }
          if (stalest !== undefined) return stalest
          for (const reading of yield* phi.above(config.phiThreshold)) {
            const id = reading.id as NodeId
            if (live.has(id) && !recent(id)) return id
          }
          return undefined
        })

      /**
       * Pings one random recently dead member, with nothing piggybacked (our
       * verdicts about others are not its business until it is back). If it
       * is alive and reachable again — a healed partition, a resumed process —
       * its answer is a word from a member held dead, which starts the
       * exchange that heals the views (see {@link heardFrom}); a crashed one
       * costs a datagram per probe interval for `gossipToTheDeadTime`.
       */
      const pingTheDead = (now: number) =>
        Effect.gen(function* () {
          expireRecentlyDead(now)
          const [id] = recentlyDead.sample(1, random)
          if (id === undefined) return
          const member = yield* registry.get(id)
          if (Option.isNone(member) || member.value.state !== "Dead") return
          yield* sendOnly(member.value.gossipAddress, [new Ping({ seq: nextSeq(), from: self.id, target: id })])
        })

      const expireRecentlyDead = (now: number) => {
        for (const id of recentlyDead.values().slice()) {
          const since = downSince.get(id)
          if (since === undefined || now - since > gossipToTheDeadMs) recentlyDead.remove(id)
        }
      }

      const probeRound = Effect.gen(function* () {
        if (leaving) return
        const now = yield* Clock.currentTimeMillis
        yield* pingTheDead(now)
        if (live.size === 0) return
        const urgent = yield* outOfTurn(now)
        lastRoundOutOfTurn = urgent !== undefined
        if (urgent !== undefined) probeOrder.prioritize([urgent])
        for (let attempts = 0; attempts < probeOrder.size + 1; attempts++) {
          const id = probeOrder.next(random)
          if (id === undefined) return
          const target = yield* registry.get(id)
          if (Option.isSome(target) && (target.value.state === "Alive" || target.value.state === "Suspect")) {
            lastProbed.set(id, now)
            return yield* probe(target.value)
          }
        }
      })

      // --- gossip ---

      const gossipRound = Effect.gen(function* () {
        if (broadcasts.pending === 0) return
        expireRecentlyDead(yield* Clock.currentTimeMillis)
        // memberlist's fan-out: any live member or one that died within gossipToTheDeadTime, so a
        // member declared dead by mistake hears it soon and refutes
        const targets = Peers.sampleUnion(alive, recentlyDead, config.gossipNodes, random)
        for (const id of targets) {
          if (broadcasts.pending === 0) return
          const member = yield* registry.get(id)
          if (Option.isSome(member)) yield* send(member.value.gossipAddress, [])
        }
      })

      // --- push-pull ---

      /**
       * Our full state for an exchange with `peer`. When we reaped `peer`, its
       * tombstone goes too: a member restarted under its old id after being
       * reaped would otherwise never learn that the cluster rejects its
       * announcements (the tombstone outranks them) and never refute.
       */
      const localState = (peer: NodeId | undefined) =>
        Effect.gen(function* () {
          const members = yield* registry.members
          const nodes = members.map((m) => NodeStateUpdate.fromNode(m.id === self.id ? self : m))
          if (peer !== undefined && peer !== self.id) {
            const tombstone = yield* registry.getTombstone(peer)
            if (Option.isSome(tombstone)) nodes.push(NodeStateUpdate.fromNode(tombstone.value.node))
          }
          return new PushPull({ from: self.id, join: false, nodes })
        })

      /**
       * Merges a peer's full state. A peer's `Dead` or `Suspect` verdict about
       * a member we hold alive is not taken on its word — after a healed
       * partition every such verdict is stale, and memberlist's "dead becomes
       * suspect" would make members suspect their own side — but checked: the
       * member gets a ping carrying the verdict (so, alive, it acks and
       * refutes, and the peer's side learns it is alive), and only if no ack
       * comes within the ping timeout does the verdict become our suspicion.
       * A verdict about a member we already suspect is a confirmation.
       */
      const merge = (remote: PushPull) =>
        Effect.gen(function* () {
          for (const entry of remote.nodes) {
            if (entry.nodeId === self.id || (entry.state !== "Dead" && entry.state !== "Suspect")) {
              yield* applyUpdate(entry)
              continue
            }
            const verdict = accusation(entry.nodeId, "Suspect", entry.incarnation, entry.from ?? remote.from)
            const known = yield* registry.get(entry.nodeId)
            if (Option.isNone(known)) {
              // Learn the member if we did not know it, then take the suspicion (as the peer's).
              const node = entry.toNode()
              if (entry.state === "Suspect" && Option.isSome(node)) {
                yield* applyUpdate(NodeStateUpdate.fromNode(node.value.with({ state: "Alive" })))
                yield* applyUpdate(verdict)
              }
              continue
            }
            if (!Rules.shouldApply(known.value, verdict)) continue
            if (known.value.state === "Alive") yield* check(known.value, verdict)
            else yield* applyUpdate(verdict)
          }
        })

      /** Pings `member` with `verdict` piggybacked; the verdict becomes ours only if no ack comes in time. */
      const check = (member: ClusterNode, verdict: NodeStateUpdate) =>
        Effect.gen(function* () {
          const checkSeq = nextSeq()
          let answered = false
          waiters.set(checkSeq, {
            target: member.id,
            address: formatAddress(member.gossipAddress),
            onAck: () => void (answered = true),
            onReplaced: (by) =>
              Effect.andThen(
                Effect.sync(() => void (answered = true)),
                replaced(member, by)
              ),
            onNack: () => {}
          })
          yield* sendOnly(
            member.gossipAddress,
            [new Ping({ seq: checkSeq, from: self.id, target: member.id })],
            [verdict]
          )
          yield* FiberSet.run(
            tasks,
            Effect.sleep(Duration.millis(pingTimeoutMs)).pipe(
              Effect.andThen(
                Effect.suspend(() => {
                  waiters.delete(checkSeq)
                  return answered ? Effect.void : applyUpdate(verdict)
                })
              )
            )
          )
        })

      /** Pings `target` over a stream: the id that answered within `timeoutMillis`, if any. */
      const streamPing = (target: ClusterNode, probeSeq: number, timeoutMillis: number) =>
        Effect.gen(function* () {
          const request = Codec.encodePacket(
            { label },
            { messages: [new Ping({ seq: probeSeq, from: self.id, target: target.id })], updates: [] }
          )
          const response = yield* transport.exchange(target.gossipAddress, request, {
            timeout: Duration.millis(timeoutMillis),
            maxBytes: maxPacket
          })
          const answer = Codec.decodePacketResult(label, response)
          if (Result.isFailure(answer)) return undefined
          const ack = answer.success.messages.find((m): m is Ack => m._tag === "Ack" && m.seq === probeSeq)
          return ack?.from
        }).pipe(Effect.orElseSucceed(() => undefined))

      /**
       * Serves one stream exchange: a ping (the TCP fallback of a failed
       * probe) is answered with an ack in our own name, whoever it was for
       * (as over UDP); anything else is a push-pull.
       */
      const handleStream = (_from: Address, request: Uint8Array) => {
        const packet = Codec.decodePacketResult(label, request)
        if (Result.isFailure(packet)) return handlePushPull(request)
        const ping = packet.success.messages.find((m): m is Ping => m._tag === "Ping")
        return ping === undefined
          ? Effect.fail(new NetworkError({ message: "a stream packet without a ping" }))
          : Effect.succeed(
              Codec.encodePacket({ label }, { messages: [new Ack({ seq: ping.seq, from: self.id })], updates: [] })
            )
      }

      const handlePushPull = (request: Uint8Array) =>
        Effect.gen(function* () {
          const remote = yield* Codec.decodePushPull(label, request)
          yield* merge(remote)
          const state = yield* localState(remote.from)
          return yield* Codec.encodePushPull(label, state)
        }).pipe(
          Effect.tapError((error) => Effect.logDebug("push-pull request refused", error.message)),
          Effect.mapError((error) => new NetworkError({ message: error.message, cause: error }))
        )

      /** One push-pull with `address` (`peer`: who we believe is there), bounded by `timeoutMillis`. */
      const pushPullWith = (
        address: Address,
        join: boolean,
        peer: NodeId | undefined,
        timeoutMillis = PUSH_PULL_TIMEOUT_MILLIS
      ) =>
        Effect.gen(function* () {
          const state = yield* localState(peer)
          const request = yield* Codec.encodePushPull(label, new PushPull({ ...state, join }))
          const response = yield* transport.exchange(address, request, {
            timeout: Duration.millis(timeoutMillis),
            maxBytes: Codec.MAX_PUSH_PULL_SIZE
          })
          const remote = yield* Codec.decodePushPull(label, response)
          counters.pushPulls++
          yield* merge(remote)
        }).pipe(
          Effect.tapError((error) =>
            Effect.sync(() => void counters.pushPullFailures++).pipe(
              Effect.andThen(Effect.logDebug("push-pull failed", error.message)),
              Effect.annotateLogs({ peer: formatAddress(address) })
            )
          )
        )

      const pushPullRound = Effect.gen(function* () {
        if (leaving) return
        const [id] = live.sample(1, random)
        if (id === undefined) return
        const member = yield* registry.get(id)
        if (Option.isSome(member)) yield* inBackground(id, pushPullWith(member.value.gossipAddress, false, id))
      })

      /**
       * Serf's reconnect: one random failed member — reaped or not, until
       * `reconnectTimeout` — with probability failed / alive, so a large
       * cluster with a few failures does not spend an exchange every round.
       * While nobody is alive (we were cut off, or everyone restarted), a
       * random seed instead: no partition is too long to heal.
       */
      const reconnectRound = Effect.gen(function* () {
        if (leaving) return
        const now = yield* Clock.currentTimeMillis
        for (const [id, target] of reconnectTargets) {
          if (now - target.failedAt < reconnectTimeoutMs) break
          reconnectTargets.delete(id)
        }
        if (live.size === 0 && config.seedNodes.length > 0) {
          const seed = config.seedNodes[Math.floor(random() * config.seedNodes.length)]!
          const address = parseAddress(seed)
          if (address === undefined) return
          const pick = random()
          // name resolution is network I/O too: it runs in the background exchange, under its deadline
          return yield* inBackground(
            "seeds",
            Effect.gen(function* () {
              const resolved = yield* resolveWithin(address, PUSH_PULL_TIMEOUT_MILLIS)
              const targets = resolved.filter((a) => !isSelf(a))
              const target = targets[Math.floor(pick * targets.length)]
              if (target !== undefined) yield* pushPullWith(target, false, undefined)
            })
          )
        }
        if (reconnectTargets.size === 0) return
        if (random() * Math.max(1, live.size + 1) > reconnectTargets.size) return
        const index = Math.floor(random() * reconnectTargets.size)
        let i = 0
        for (const [id, target] of reconnectTargets) {
          if (i++ < index) continue
          const member = yield* registry.get(id)
          // a member that came back (or left) since is no longer a target
          if (Option.isSome(member) && member.value.state !== "Dead") return
          return yield* inBackground(id, pushPullWith(target.address, false, id))
        }
      })

      /** Resolves a seed's host name, failing when `timeoutMillis` pass first (DNS can hang too). */
      const resolveWithin = (address: Address, timeoutMillis: number) =>
        transport.resolve(address).pipe(
          Effect.timeoutOrElse({
            duration: Duration.millis(timeoutMillis),
            orElse: () =>
              Effect.fail(
                new NetworkError({ message: `cannot resolve ${address.host} in time`, address: address.host })
              )
          })
        )

      const isSelf = (address: Address) =>
        formatAddress(address) === formatAddress(self.gossipAddress) ||
        formatAddress(address) === formatAddress(transport.localAddress)

      const reapRound = Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        for (const [id, since] of Array.from(downSince)) {
          if (now - since < reapAfterMs) continue
          downSince.delete(id)
          recentlyDead.remove(id)
          lastRevived.delete(id)
          yield* registry.remove(id, now)
        }
        yield* registry.expireTombstones(now, tombstoneTtl)
      })

      // --- join and leave ---

      /** One push-pull with each seed (in parallel), each bounded by what is left of `deadline`. */
      const joinOnce = (seeds: ReadonlyArray<string>, deadline: number) =>
        Effect.gen(function* () {
          const failures: Array<string> = []
          const note = <A>(failure: string, result: A): A => {
            failures.push(failure)
            return result
          }
          const results = yield* Effect.forEach(
            seeds,
            (seed) =>
              Effect.gen(function* () {
                const address = parseAddress(seed)
                if (address === undefined) {
                  failures.push(`${seed}: not host:port`)
                  return false
                }
                const resolved = yield* resolveWithin(
                  address,
                  Math.max(0, deadline - (yield* Clock.currentTimeMillis))
                ).pipe(
                  Effect.catch((error) => Effect.sync(() => note(`${seed}: ${error.message}`, [] as Array<Address>)))
                )
                for (const target of resolved) {
                  if (isSelf(target)) continue
                  const left = deadline - (yield* Clock.currentTimeMillis)
                  if (left <= 0) break
                  const ok = yield* pushPullWith(
                    target,
                    true,
                    undefined,
                    Math.min(PUSH_PULL_TIMEOUT_MILLIS, left)
                  ).pipe(
                    Effect.as(true),
                    Effect.catch((error) => Effect.sync(() => note(`${seed}: ${error.message}`, false)))
                  )
                  if (ok) return true
                }
                return false
              }),
            { concurrency: MAX_BACKGROUND_EXCHANGES }
          )
          return { answered: results.filter((ok) => ok).length, failures }
        })

      const join = (seeds: ReadonlyArray<string>) =>
        Effect.gen(function* () {
          if (seeds.length === 0) return 0
          const started = yield* Clock.currentTimeMillis
          const deadline = started + Duration.toMillis(config.joinTimeout)
          let backoff = 100
          let lastFailures: ReadonlyArray<string> = []
          while (true) {
            const { answered, failures } = yield* joinOnce(seeds, deadline)
            if (answered > 0) {
              yield* Effect.logDebug("joined").pipe(Effect.annotateLogs({ seeds: seeds.join(","), answered }))
              // Members that joined at about the same time may be missing from the seed's state,
              // and their announcements may miss us (gossip is probabilistic): one more exchange
              // with a random member shortly after settles a burst of joins in seconds, not at
              // the next push-pull interval.
              yield* FiberSet.run(
                tasks,
                Effect.sleep(Duration.times(config.gossipInterval, 10)).pipe(Effect.andThen(pushPullRound))
              )
              return answered
            }
            // an attempt cut short by the deadline tried nothing: keep the reasons of the last one that did
            if (failures.length > 0) lastFailures = failures
            const now = yield* Clock.currentTimeMillis
            if (now >= deadline) break
            const wait = Math.min(backoff, deadline - now)
            yield* Effect.sleep(Duration.millis(wait * (0.8 + 0.4 * random())))
            backoff = Math.min(backoff * 2, 2000)
          }
          return yield* new JoinFailed({
            seeds: [...seeds],
            reason:
              lastFailures.length === 0
                ? `no seed answered within ${Duration.format(config.joinTimeout)}`
                : `no seed answered within ${Duration.format(config.joinTimeout)} (${lastFailures.join("; ")})`
          })
        })

      const leave = Effect.gen(function* () {
        if (leaving) return
        leaving = true
        self = self.with({ state: "Left", incarnation: self.incarnation + 1 })
        yield* registry.upsert(self)
        enqueue(accusation(self.id, "Left", self.incarnation))
        if (live.size === 0) return
        // Push the announcement out now rather than waiting for the gossip tick, then let the
        // gossip loop finish retransmitting it (bounded by leaveTimeout).
        yield* gossipRound
        const deadline = (yield* Clock.currentTimeMillis) + Duration.toMillis(config.leaveTimeout)
        while (broadcasts.has(self.id) && (yield* Clock.currentTimeMillis) < deadline) {
          yield* Effect.sleep(config.gossipInterval)
        }
      })

      const setTags = (tags: Tags) =>
        Effect.gen(function* () {
          self = self.with({ tags: { ...tags }, incarnation: self.incarnation + 1 })
          yield* registry.upsert(self)
          enqueue(selfUpdate())
          return self
        })

      // Announce ourselves from the first packet on.
      enqueue(selfUpdate())

      return Swim.of({
        config,
        localNode: Effect.sync(() => self),
        handlePackets,
        handleStream,
        probeRound,
        gossipRound,
        pushPullRound,
        reconnectRound,
        reapRound,
        probeInterval: Effect.sync(() => Duration.millis(awareness.scale(probeIntervalMs))),
        pushPullInterval: Effect.sync(() =>
          Duration.millis(pushPullScale(Duration.toMillis(config.pushPullInterval), clusterSize()))
        ),
        join,
        leave,
        setTags,
        awareness: Effect.sync(() => awareness.score),
        stats: Effect.sync(() => ({ ...counters }))
      })
    })

  /** {@link Swim.make} as a layer. */
  static readonly layer = (config: ClusterConfig): Layer.Layer<Swim, never, Transport | NodeRegistry | PhiDetector> =>
    Layer.effect(Swim, Swim.make(config))
}

const sameTags = (a: Tags, b: Tags): boolean => {
  const keys = Object.keys(a)
  if (keys.length !== Object.keys(b).length) return false
  for (const key of keys) if (!Object.hasOwn(b, key) || a[key] !== b[key]) return false
  return true
}
