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
const PUSH_PULL_TIMEOUT = Duration.seconds(10)

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

interface AckWaiter {
  readonly onAck: () => void
  readonly onNack: () => void
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
    /** One probe round: the next member in turn, directly then indirectly. */
    readonly probeRound: Effect.Effect<void>
    /** One gossip round: pending updates to `gossipNodes` random members. */
    readonly gossipRound: Effect.Effect<void>
    /** One push-pull with a random alive member. */
    readonly pushPullRound: Effect.Effect<void>
    /** One attempt to reach a random member we believe dead (heals partitions). */
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
     * (at most `leaveTimeout`) until the announcement has gone out.
     */
    readonly leave: Effect.Effect<void>
    /** Publishes new tags (replacing the previous ones) at a new incarnation. */
    readonly setTags: (tags: Tags) => Effect.Effect<ClusterNode>
    /** The local health score (0 = healthy; see `Awareness`). */
    readonly awareness: Effect.Effect<number>
    readonly stats: Effect.Effect<SwimStats>
  }
>()("shoal/cluster/gossip/Swim") {
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
      const maxPacket = config.maxPacketSize
      const probeIntervalMs = Duration.toMillis(config.probeInterval)
      const pingTimeoutMs = Duration.toMillis(config.pingTimeout)
      const gossipToTheDeadMs = Duration.toMillis(config.gossipToTheDeadTime)
      const reapAfterMs = Duration.toMillis(config.reapAfter)
      const tombstoneTtl = config.tombstoneTtl

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
      /** Members that died recently enough to keep gossiping to (a false death heals faster). */
      const recentlyDead = new Peers<NodeId>()
      /** When each Dead/Left member got that state, for reaping and gossip-to-the-dead. */
      const downSince = new Map<NodeId, number>()
      /** Gossip address → member id, so a packet without ids still counts as a heartbeat. */
      const byAddress = new Map<string, NodeId>()
      const lastHeartbeat = new Map<NodeId, number>()
      let leaving = false
      const lastProbed = new Map<NodeId, number>()
      let lastRoundOutOfTurn = false
      const counters = {
        probes: 0,
        indirectProbes: 0,
        failedProbes: 0,
        suspicionsRaised: 0,
        deathsDeclared: 0,
        refutations: 0,
        streamPingAcks: 0,
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
          return transport
            .send(to, packed.bytes)
            .pipe(Effect.catch((error) => Effect.logDebug("send failed", error.message)))
        })

      const enqueue = (update: NodeStateUpdate) =>
        broadcasts.enqueue({ key: update.nodeId, payload: update, size: Codec.updateSize(update) })

      const selfUpdate = () => NodeStateUpdate.fromNode(self, self.id)

      const accusation = (id: NodeId, state: NodeState, incarnation: number, from: NodeId = self.id) =>
        new NodeStateUpdate({ nodeId: id, state, incarnation, from }, { disableChecks: true })

      // --- bookkeeping that follows every applied change ---

      const track = (change: Applied, now: number) => {
        counters.updatesApplied++
        const node = change.current
        const previous = change.previous
        if (previous !== undefined && formatAddress(previous.gossipAddress) !== formatAddress(node.gossipAddress)) {
          if (byAddress.get(formatAddress(previous.gossipAddress)) === node.id) {
            byAddress.delete(formatAddress(previous.gossipAddress))
          }
        }
        if (node.id === self.id) return
        byAddress.set(formatAddress(node.gossipAddress), node.id)
        if (node.state === "Alive" || node.state === "Suspect") {
          live.add(node.id)
          probeOrder.add(node.id, random)
          recentlyDead.remove(node.id)
          downSince.delete(node.id)
        } else {
          live.remove(node.id)
          probeOrder.remove(node.id)
          if (node.state === "Dead") recentlyDead.add(node.id)
          else recentlyDead.remove(node.id)
          downSince.set(node.id, now)
        }
        if (node.state !== "Suspect") {
          suspicions.delete(node.id)
        }
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

      /** A claim about this node: refute it when the rules say so (Lifeguard counts that against our health). */
      const claimAboutSelf = (update: NodeStateUpdate) =>
        Effect.suspend(() => {
          const incarnation = Rules.refute(self, update)
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
            const holder = byAddress.get(formatAddress(node.value.gossipAddress))
            const change = yield* registry.upsert(node.value)
            if (change === undefined) return
            track(change, now)
            enqueue(update)
            yield* cancelSuspicion(update.nodeId)
            if (change.previous === undefined || change.previous.state === "Dead" || change.previous.state === "Left") {
              yield* replacedAt(node.value, holder)
            }
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
       * A member that (re)appears at the address of another live member: that
       * other one restarted under a new id and is gone. Declared dead at once,
       * so discovery never hands out the stale identity. `holder` is who held
       * the address before this update was applied.
       */
      const replacedAt = (node: ClusterNode, holder: NodeId | undefined) =>
        Effect.gen(function* () {
          if (holder === undefined || holder === node.id || !live.has(holder)) return
          const other = yield* registry.get(holder)
          if (Option.isNone(other)) return
          yield* Effect.logDebug("member replaced by a new identity at its address").pipe(
            Effect.annotateLogs({ old: holder, new: node.id, address: formatAddress(node.gossipAddress) })
          )
          yield* applyUpdate(accusation(holder, "Dead", other.value.incarnation))
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

      // --- messages ---

      const onPing = (from: Address, ping: Ping) =>
        ping.target === self.id && !leaving
          ? send(from, [new Ack({ seq: ping.seq, from: self.id })]).pipe(Effect.andThen(learnFrom(from, ping.from)))
          : Effect.logDebug("ignoring a ping for another identity or while leaving").pipe(
              Effect.annotateLogs({ target: ping.target })
            )

      /** Addresses we are already exchanging state with because they pinged us as strangers. */
      const learning = new Set<string>()

      /**
       * A ping from a member we have never heard of: its join announcement
       * missed us (gossip is probabilistic). Rather than wait up to a
       * push-pull interval, exchange state with it now, once at a time.
       */
      const learnFrom = (address: Address, id: NodeId) =>
        Effect.gen(function* () {
          const key = formatAddress(address)
          if (learning.has(key) || Option.isSome(yield* registry.get(id))) return
          learning.add(key)
          yield* FiberSet.run(
            tasks,
            pushPullWith(address, false).pipe(Effect.ignore, Effect.ensuring(Effect.sync(() => learning.delete(key))))
          )
        })

      const onAck = (ack: Ack) =>
        Effect.sync(() => {
          waiters.get(ack.seq)?.onAck()
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
            onAck: () => Deferred.doneUnsafe(answered, Exit.succeed(true)),
            onNack: () => {}
          })
          yield* send(request.targetAddress, [new Ping({ seq: relaySeq, from: self.id, target: request.target })])
          // The requestor counts nacks only until its probe interval ends — about one ping
          // timeout after it asked us — so the nack must leave well before our own ping times
          // out, or it always arrives late and the requestor blames its own health. An ack
          // that comes after the nack is still relayed.
          const timeout = awareness.scale(pingTimeoutMs)
          const nackAfter = timeout * NACK_AT
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
                      Effect.timeoutOption(Duration.millis(timeout - nackAfter)),
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
                break
              case "Ack":
                yield* onAck(message)
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

      const probe = (target: ClusterNode) =>
        Effect.gen(function* () {
          counters.probes++
          const started = yield* Clock.currentTimeMillis
          const probeSeq = nextSeq()
          const acked = yield* Deferred.make<boolean>()
          let nacks = 0
          waiters.set(probeSeq, {
            onAck: () => Deferred.doneUnsafe(acked, Exit.succeed(true)),
            onNack: () => void nacks++
          })
          // Lifeguard's buddy system: a suspect hears the accusation on the ping itself and can refute at once.
          const priority = target.state === "Suspect" ? [accusation(target.id, "Suspect", target.incarnation)] : []
          yield* send(target.gossipAddress, [new Ping({ seq: probeSeq, from: self.id, target: target.id })], priority)
          const direct = yield* Deferred.await(acked).pipe(
            Effect.timeoutOption(Duration.millis(awareness.scale(pingTimeoutMs)))
          )
          if (Option.isSome(direct)) {
            awareness.apply(Awareness.PROBE_SUCCEEDED)
            waiters.delete(probeSeq)
            return
          }
          counters.indirectProbes++
          const helpers = live.sample(config.indirectChecks, random, new Set([target.id]))
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
          const remaining = Math.max(0, awareness.scale(probeIntervalMs) - (now - started))
          // memberlist's fallback: the same ping over a TCP stream, in parallel with the helpers.
          // Datagram loss (or a firewall that drops UDP) then cannot make us accuse a member we
          // can still reach; it only costs a connection when a direct ping already failed.
          const overTcp = yield* Effect.forkChild(
            (config.tcpPings ? streamPing(target, probeSeq, remaining) : Effect.succeed(false)).pipe(
              Effect.flatMap((ok) =>
                Effect.sync(() => {
                  if (!ok) return
                  counters.streamPingAcks++
                  Deferred.doneUnsafe(acked, Exit.succeed(true))
                })
              )
            )
          )
          const indirect = yield* Deferred.await(acked).pipe(Effect.timeoutOption(Duration.millis(remaining)))
          waiters.delete(probeSeq)
          yield* Fiber.interrupt(overTcp)
          if (Option.isSome(indirect)) return
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

      const probeRound = Effect.gen(function* () {
        if (leaving || live.size === 0) return
        const now = yield* Clock.currentTimeMillis
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
        const now = yield* Clock.currentTimeMillis
        for (const id of recentlyDead.values().slice()) {
          const since = downSince.get(id)
          if (since === undefined || now - since > gossipToTheDeadMs) recentlyDead.remove(id)
        }
        const targets = live.sample(config.gossipNodes, random)
        if (targets.length < config.gossipNodes && recentlyDead.size > 0) {
          targets.push(...recentlyDead.sample(config.gossipNodes - targets.length, random))
        }
        for (const id of targets) {
          if (broadcasts.pending === 0) return
          const member = yield* registry.get(id)
          if (Option.isSome(member)) yield* send(member.value.gossipAddress, [])
        }
      })

      // --- push-pull ---

      const localState = Effect.gen(function* () {
        const members = yield* registry.members
        return new PushPull({
          from: self.id,
          join: false,
          nodes: members.map((m) => NodeStateUpdate.fromNode(m.id === self.id ? self : m))
        })
      })

      /**
       * Merges a peer's full state. A peer's `Dead` verdict becomes our
       * suspicion (memberlist's rule): we only declare a death our own timer
       * confirms, so one confused peer cannot kill members for everyone.
       */
      const merge = (remote: PushPull) =>
        Effect.gen(function* () {
          for (const entry of remote.nodes) {
            if (entry.state === "Dead" && entry.nodeId !== self.id) {
              yield* applyUpdate(accusation(entry.nodeId, "Suspect", entry.incarnation, remote.from))
            } else if (entry.state === "Suspect" && entry.nodeId !== self.id) {
              // Learn the member if we did not know it, then take the suspicion (as the peer's).
              const node = entry.toNode()
              if (Option.isSome(node) && Option.isNone(yield* registry.get(entry.nodeId))) {
                yield* applyUpdate(NodeStateUpdate.fromNode(node.value.with({ state: "Alive" })))
              }
              yield* applyUpdate(accusation(entry.nodeId, "Suspect", entry.incarnation, entry.from ?? remote.from))
            } else {
              yield* applyUpdate(entry)
            }
          }
        })

      /** Pings `target` over a stream; whether it acked within `timeoutMillis`. */
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
          return (
            Result.isSuccess(answer) &&
            answer.success.messages.some((m) => m._tag === "Ack" && m.seq === probeSeq && m.from === target.id)
          )
        }).pipe(Effect.orElseSucceed(() => false))

      /**
       * Serves one stream exchange: a ping (the TCP fallback of a failed
       * probe) is answered with an ack; anything else is a push-pull.
       */
      const handleStream = (_from: Address, request: Uint8Array) => {
        const packet = Codec.decodePacketResult(label, request)
        if (Result.isFailure(packet)) return handlePushPull(request)
        const ping = packet.success.messages.find((m): m is Ping => m._tag === "Ping")
        return ping === undefined || ping.target !== self.id || leaving
          ? Effect.fail(new NetworkError({ message: "a stream ping for another identity, or while leaving" }))
          : Effect.succeed(
              Codec.encodePacket({ label }, { messages: [new Ack({ seq: ping.seq, from: self.id })], updates: [] })
            )
      }

      const handlePushPull = (request: Uint8Array) =>
        Effect.gen(function* () {
          const remote = yield* Codec.decodePushPull(label, request)
          yield* merge(remote)
          const state = yield* localState
          return yield* Codec.encodePushPull(label, state)
        }).pipe(
          Effect.tapError((error) => Effect.logDebug("push-pull request refused", error.message)),
          Effect.mapError((error) => new NetworkError({ message: error.message, cause: error }))
        )

      const pushPullWith = (address: Address, join: boolean) =>
        Effect.gen(function* () {
          const state = yield* localState
          const request = yield* Codec.encodePushPull(label, new PushPull({ ...state, join }))
          const response = yield* transport.exchange(address, request, {
            timeout: PUSH_PULL_TIMEOUT,
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
        if (Option.isSome(member)) yield* pushPullWith(member.value.gossipAddress, false).pipe(Effect.ignore)
      })

      const reconnectRound = Effect.gen(function* () {
        if (leaving) return
        const dead: Array<NodeId> = []
        for (const [id] of downSince) dead.push(id)
        if (dead.length === 0) return
        const id = dead[Math.floor(random() * dead.length)]!
        const member = yield* registry.get(id)
        if (Option.isSome(member) && member.value.state === "Dead") {
          yield* pushPullWith(member.value.gossipAddress, false).pipe(Effect.ignore)
        }
      })

      const reapRound = Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        for (const [id, since] of Array.from(downSince)) {
          if (now - since < reapAfterMs) continue
          downSince.delete(id)
          recentlyDead.remove(id)
          const reaped = yield* registry.remove(id, now)
          if (reaped !== undefined) {
            const address = formatAddress(reaped.node.gossipAddress)
            if (byAddress.get(address) === id) byAddress.delete(address)
          }
        }
        yield* registry.expireTombstones(now, tombstoneTtl)
      })

      // --- join and leave ---

      const joinOnce = (seeds: ReadonlyArray<string>) =>
        Effect.gen(function* () {
          let answered = 0
          const failures: Array<string> = []
          const note = <A>(failure: string, result: A): A => {
            failures.push(failure)
            return result
          }
          for (const seed of seeds) {
            const address = parseAddress(seed)
            if (address === undefined) {
              failures.push(`${seed}: not host:port`)
              continue
            }
            const resolved = yield* transport
              .resolve(address)
              .pipe(Effect.catch((error) => Effect.sync(() => note(`${seed}: ${error.message}`, [] as Array<Address>))))
            for (const target of resolved) {
              if (formatAddress(target) === formatAddress(self.gossipAddress)) continue
              if (formatAddress(target) === formatAddress(transport.localAddress)) continue
              const ok = yield* pushPullWith(target, true).pipe(
                Effect.as(true),
                Effect.catch((error) => Effect.sync(() => note(`${seed}: ${error.message}`, false)))
              )
              if (ok) {
                answered++
                break
              }
            }
          }
          return { answered, failures }
        })

      const join = (seeds: ReadonlyArray<string>) =>
        Effect.gen(function* () {
          if (seeds.length === 0) return 0
          const started = yield* Clock.currentTimeMillis
          const deadline = started + Duration.toMillis(config.joinTimeout)
          let backoff = 100
          let lastFailures: ReadonlyArray<string> = []
          while (true) {
            const { answered, failures } = yield* joinOnce(seeds)
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
            lastFailures = failures
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

  static readonly layer = (config: ClusterConfig): Layer.Layer<Swim, never, Transport | NodeRegistry | PhiDetector> =>
    Layer.effect(Swim, Swim.make(config))
}
