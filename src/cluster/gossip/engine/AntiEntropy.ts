/**
 * Anti-entropy: a push-pull exchange of the full member state over a
 * stream, merged under the same precedence rules — at join, periodically,
 * and whenever a member held dead (or a stranger) is heard from. A node
 * also serves the exchanges others open, and the TCP fallback ping.
 *
 * Exchanges run outside the engine: it asks for one (`OpenExchange`, with a
 * deadline) and gets its result back as an input. Background exchanges
 * (push-pull rounds, reconnects, revivals, learning) are few at a time, one
 * per peer (`MAX_BACKGROUND_EXCHANGES`), because each may hold a connection
 * until its deadline when the peer's packets are dropped.
 *
 * @since 0.1.0
 */
import * as Result from "effect/Result"
import type { Address, ClusterNode, NodeId } from "../../Node.ts"
import * as Rules from "../../Rules.ts"
import * as Codec from "../Codec.ts"
import { Ack, NodeStateUpdate, type Packet, Ping, PushPull } from "../Messages.ts"
import { addressKey } from "./Addresses.ts"
import { isSelfClaim } from "./Claims.ts"
import { sendOnly } from "./Dissemination.ts"
import type { StreamMessage } from "./Input.ts"
import { seedAnswered, seedFailed } from "./Joining.ts"
import { streamPingEnded } from "./Probing.ts"
import { reachStreamEnded } from "./Reachability.ts"
import { MAX_BACKGROUND_EXCHANGES, PUSH_PULL_TIMEOUT_MILLIS } from "./Settings.ts"
import { type EngineState, type ExchangeRecord, type SeedProgress, TRUSTED } from "./State.ts"
import { applyReceived, applyUpdate } from "./Updates.ts"

/**
 * This node's full state for an exchange with `peer`. When we reaped `peer`,
 * its tombstone goes too: a member restarted under its old id after being
 * reaped would otherwise never learn that the cluster rejects its
 * announcements (the tombstone outranks them) and never refute.
 */
const localState = (state: EngineState, peer: NodeId | undefined, join: boolean): PushPull => {
  const self = state.self
  const entry = state.claims === undefined ? fullUpdate : (node: ClusterNode) => signedUpdate(state, node)
  const nodes: Array<NodeStateUpdate> = []
  for (const member of state.table.members()) nodes.push(entry(member.id === self.id ? self : member))
  if (peer !== undefined && peer !== self.id) {
    const tombstone = state.table.tombstone(peer)
    if (tombstone !== undefined) nodes.push(entry(tombstone.node))
  }
  return new PushPull({ from: self.id, join, nodes })
}

/**
 * With identities, a member's entry carries its certificate and the
 * signature of its current claim, when held: the exchange is how
 * certificates travel, and how a signed claim reaches a node whose gossip
 * missed it. This node's own entry is signed and carries its own certificate.
 */
const signedEntries = new WeakMap<ClusterNode, { readonly update: NodeStateUpdate; readonly certificate: unknown }>()
const signedUpdate = (state: EngineState, node: ClusterNode): NodeStateUpdate => {
  const claims = state.claims!
  if (node.id === state.self.id) {
    const own = fullUpdate(node)
    return isSelfClaim(node.state) ? state.signed(own, claims.identities.certificate) : own
  }
  const certificate = claims.certificateOf(node.id)
  const cached = signedEntries.get(node)
  if (cached !== undefined && cached.certificate === certificate) return cached.update
  const signature = claims.signatureOf(node)
  const plain = fullUpdate(node)
  const update =
    signature === undefined && certificate === undefined
      ? plain
      : new NodeStateUpdate(
          {
            ...plain,
            ...(signature === undefined ? {} : { signature }),
            ...(certificate === undefined ? {} : { certificate })
          },
          TRUSTED
        )
  signedEntries.set(node, { update, certificate })
  return update
}

/** A member's full form, built once per member state (every exchange sends every member). */
const fullUpdates = new WeakMap<ClusterNode, NodeStateUpdate>()
const fullUpdate = (node: ClusterNode): NodeStateUpdate => {
  let update = fullUpdates.get(node)
  if (update === undefined) {
    update = NodeStateUpdate.fromNode(node)
    fullUpdates.set(node, update)
  }
  return update
}

/**
 * Merges a peer's full state. A peer's `Dead` or `Suspect` verdict about a
 * member we hold alive is not taken on its word — after a healed partition
 * every such verdict is stale, and memberlist's "dead becomes suspect" would
 * make members suspect their own side — but checked: the member gets a ping
 * carrying the verdict (so, alive, it acks and refutes, and the peer's side
 * learns it is alive), and only if no ack comes within the ping timeout does
 * the verdict become our suspicion (see {@link checkEnded}). A verdict about
 * a member we already suspect is a confirmation.
 */
const merge = (state: EngineState, remote: PushPull): void => {
  const claims = state.claims
  if (claims !== undefined) {
    // certificates first: an entry's signed claim is checked against the certificate it brings
    for (const entry of remote.nodes) {
      if (entry.certificate !== undefined && entry.nodeId !== state.self.id)
        claims.learn(entry.nodeId, entry.certificate)
    }
  }
  for (const entry of remote.nodes) {
    if (entry.nodeId === state.self.id || (entry.state !== "Dead" && entry.state !== "Suspect")) {
      applyReceived(state, entry)
      continue
    }
    const verdict = state.accusation(entry.nodeId, "Suspect", entry.incarnation, entry.from ?? remote.from)
    const known = state.table.get(entry.nodeId)
    if (known === undefined) {
      // Learn the member if we did not know it, then take the suspicion (as the peer's).
      const node = entry.toNode()
      if (entry.state === "Suspect" && node._tag === "Some") {
        // (with identities required this unsigned Alive is refused: a member is learnt only from its own claim)
        applyReceived(state, NodeStateUpdate.fromNode(node.value.with({ state: "Alive" })))
        applyUpdate(state, verdict)
      }
      continue
    }
    if (!Rules.shouldApply(known, verdict)) continue
    if (known.state === "Alive") check(state, known, verdict)
    else applyUpdate(state, verdict)
  }
}

/** Pings `member` with `verdict` piggybacked; the verdict becomes ours only if no ack comes in time. */
const check = (state: EngineState, member: ClusterNode, verdict: NodeStateUpdate): void => {
  const seq = state.nextSeq()
  state.waiters.set(seq, {
    kind: "check",
    target: member.id,
    address: addressKey(member.gossipAddress),
    member,
    verdict,
    answered: false
  })
  sendOnly(state, member.gossipAddress, [new Ping({ seq, from: state.self.id, target: member.id }, TRUSTED)], [verdict])
  state.setTimer({ _tag: "Check", seq }, state.now + state.settings.pingTimeout)
}

/** A check's ping timeout passed: without an ack, the peer's verdict becomes our suspicion. */
export const checkEnded = (state: EngineState, seq: number): void => {
  const waiter = state.waiters.get(seq)
  if (waiter?.kind !== "check") return
  state.waiters.delete(seq)
  if (!waiter.answered) applyUpdate(state, waiter.verdict)
}

/** Opens one push-pull with `to` (`peer`: who we believe is there), bounded by `timeout`. */
const openPushPull = (
  state: EngineState,
  to: Address,
  peer: NodeId | undefined,
  options: {
    readonly join: boolean
    readonly background?: string
    readonly seed?: SeedProgress
    readonly timeout?: number
  }
): void => {
  const id = state.nextId()
  state.exchanges.set(id, { kind: "PushPull", to, peer, background: options.background, seed: options.seed })
  state.emit({
    _tag: "OpenExchange",
    id,
    to,
    request: localState(state, peer, options.join),
    deadline: state.now + (options.timeout ?? PUSH_PULL_TIMEOUT_MILLIS),
    maxBytes: Codec.MAX_PUSH_PULL_SIZE
  })
}

/**
 * A background push-pull with `to`, unless one with `key` is in flight or
 * `MAX_BACKGROUND_EXCHANGES` are (then it is counted as deferred).
 */
export const pushPullInBackground = (state: EngineState, key: string, to: Address, peer: NodeId | undefined): void => {
  if (state.exchanging.has(key)) return
  if (state.exchanging.size >= MAX_BACKGROUND_EXCHANGES) {
    state.counters.exchangesDeferred++
    return
  }
  state.exchanging.add(key)
  openPushPull(state, to, peer, { join: false, background: key })
}

/** A background push-pull in slot `key`, which the caller already holds (a seed's resolution took it). */
export const pushPullInSlot = (state: EngineState, key: string, to: Address, peer: NodeId | undefined): void => {
  openPushPull(state, to, peer, { join: false, background: key })
}

/** A join's push-pull with one of a seed's addresses, bounded by what is left of the join's deadline. */
export const pushPullForJoin = (state: EngineState, to: Address, seed: SeedProgress, timeout: number): void => {
  openPushPull(state, to, undefined, { join: true, seed, timeout })
}

/** An exchange we opened ended (`payload`: its answer; a string: why it failed). */
export const exchangeEnded = (state: EngineState, id: number, payload: Uint8Array | StreamMessage | string): void => {
  const record = state.exchanges.get(id)
  if (record === undefined) return
  state.exchanges.delete(id)
  if (record.kind === "StreamPing") {
    streamPingEnded(state, record.probeSeq, ackIn(state, payload, record.probeSeq))
    return
  }
  if (record.kind === "ReachPing") {
    reachStreamEnded(state, record.request, ackIn(state, payload, record.seq))
    return
  }
  if (record.background !== undefined) state.exchanging.delete(record.background)
  const remote = typeof payload === "string" ? Result.fail(payload) : pushPullOf(state, payload)
  if (Result.isFailure(remote)) {
    pushPullFailed(state, record, remote.failure)
    return
  }
  state.counters.pushPulls++
  merge(state, remote.success)
  if (record.seed !== undefined) seedAnswered(state, record.seed)
}

const pushPullFailed = (state: EngineState, record: ExchangeRecord & { kind: "PushPull" }, reason: string): void => {
  state.counters.pushPullFailures++
  state.log("push-pull failed", { error: reason, peer: addressKey(record.to) })
  if (record.seed !== undefined) seedFailed(state, record.seed, reason)
}

const pushPullOf = (state: EngineState, payload: Uint8Array | StreamMessage): Result.Result<PushPull, string> => {
  if (payload instanceof PushPull) return Result.succeed(payload)
  if (!(payload instanceof Uint8Array)) return Result.fail("the answer is not a push-pull")
  const decoded = Codec.decodePushPullResult(
    state.settings.clusterLabel,
    payload,
    Codec.MAX_PUSH_PULL_SIZE,
    state.settings.maxMembers
  )
  return Result.isFailure(decoded) ? Result.fail(decoded.failure.message) : Result.succeed(decoded.success)
}

/** The id in the ack for `seq` that a stream ping's answer carries, if any. */
const ackIn = (state: EngineState, payload: Uint8Array | StreamMessage | string, seq: number): NodeId | undefined => {
  if (typeof payload === "string" || payload instanceof PushPull) return undefined
  let packet: Packet
  if (payload instanceof Uint8Array) {
    const decoded = Codec.decodePacketResult(state.settings.clusterLabel, payload)
    if (Result.isFailure(decoded)) return undefined
    packet = decoded.success
  } else packet = payload
  const ack = packet.messages.find((m): m is Ack => m._tag === "Ack" && m.seq === seq)
  return ack?.from
}

/**
 * Serves one stream exchange: a ping (the TCP fallback of a failed probe)
 * is answered with an ack in our own name, whoever it was for (as over UDP);
 * anything else is a push-pull, merged and answered with our own state.
 */
export const serveStream = (state: EngineState, request: number, payload: Uint8Array | StreamMessage): void => {
  const label = state.settings.clusterLabel
  let message: StreamMessage
  if (payload instanceof Uint8Array) {
    const packet = Codec.decodePacketResult(label, payload)
    if (Result.isSuccess(packet)) message = packet.success
    else {
      const pushPull = Codec.decodePushPullResult(label, payload, Codec.MAX_PUSH_PULL_SIZE, state.settings.maxMembers)
      if (Result.isFailure(pushPull)) {
        state.log("push-pull request refused", { error: pushPull.failure.message })
        state.emit({ _tag: "Refuse", request, reason: pushPull.failure.message })
        return
      }
      message = pushPull.success
    }
  } else message = payload
  if (message instanceof PushPull) {
    merge(state, message)
    state.emit({ _tag: "Reply", request, response: localState(state, message.from, false) })
    return
  }
  const ping = message.messages.find((m): m is Ping => m._tag === "Ping")
  if (ping === undefined) {
    state.emit({ _tag: "Refuse", request, reason: "a stream packet without a ping" })
    return
  }
  state.emit({
    _tag: "Reply",
    request,
    response: { messages: [new Ack({ seq: ping.seq, from: state.self.id }, TRUSTED)], updates: [] }
  })
}
