/**
 * SWIM's failure detector, one probe round at a time: the next member in
 * the shuffled round robin (or one out of turn: the stalest suspect, else
 * the member with the highest phi above the threshold) is pinged; no ack within the
 * ping timeout → ping-reqs through alive helpers and, in parallel, the same
 * ping over TCP (memberlist's fallback); no answer by the end of the probe's
 * budget → the member is suspected. An answered probe lowers this node's
 * health score, a failed one raises it (Lifeguard), and a probe that
 * outlived its budget by more than a ping timeout (the node was frozen or
 * starved while answers queued unread) says nothing about its target.
 *
 * A round never waits: it arms timers, and its ack, nacks, TCP answer and
 * timeouts come back as inputs. The next round starts one (stretched) probe
 * interval after this one began, or when it ends if it took longer.
 *
 * @since 0.1.0
 */
import type { Address, ClusterNode, NodeId } from "../../Node.ts"
import * as Awareness from "../Awareness.ts"
import { type Ack, type Nack, Ping, PingReq } from "../Messages.ts"
import { addressKey } from "./Addresses.ts"
import { send, sendOnly } from "./Dissemination.ts"
import { reachAcked, reachNacked } from "./Reachability.ts"
import { relayAcked } from "./Relaying.ts"
import { replaced } from "./Replacement.ts"
import { type EngineState, TRUSTED } from "./State.ts"
import { suspect } from "./Updates.ts"

/** A probe round is due. */
export const probeRound = (state: EngineState): void => {
  state.probeRoundStarted = state.now
  if (state.leaving || !state.running) {
    nextRound(state)
    return
  }
  pingTheDead(state)
  const members = state.members
  if (members.live.size === 0) {
    nextRound(state)
    return
  }
  const urgent = outOfTurn(state)
  state.lastRoundOutOfTurn = urgent !== undefined
  if (urgent !== undefined) members.probeOrder.prioritize([urgent])
  for (let attempts = 0; attempts < members.probeOrder.size + 1; attempts++) {
    const id = members.probeOrder.next(state.rng)
    if (id === undefined) break
    const target = state.table.get(id)
    if (target !== undefined && (target.state === "Alive" || target.state === "Suspect")) {
      state.lastProbed.set(id, state.now)
      state.lastTargetUnheard = !state.phi.has(id)
      startProbe(state, target)
      return
    }
  }
  nextRound(state)
}

/** Arms the next round: a stretched interval after this one began, and never in the past. */
const nextRound = (state: EngineState): void => {
  if (!state.running) return
  const interval = state.awareness.scale(state.settings.probeInterval)
  state.setTimer({ _tag: "ProbeRound" }, Math.max(state.now, state.probeRoundStarted + interval))
}

/**
 * The one member to probe out of turn this round, if any: first the suspect
 * probed least recently, then the member with the highest phi above the
 * threshold.
 * Never one probed in the last two intervals, and never two rounds in a row —
 * the round robin still advances at least every other round, so no member
 * waits more than two passes, whatever phi says.
 *
 * Probing suspects settles suspicions fast both ways: a dead member's failed
 * probes are independent confirmations that shorten every timer, and a live
 * one receives the accusation on the ping (the buddy system) and answers
 * with its refutation — even when we missed its first one.
 *
 * Before both, after a round whose target this node had never heard from
 * directly (no phi detector: known only from what others said), the member
 * heard from that was probed least recently. Members known only by hearsay — a burst of
 * joiners, or thousands of forged ones — then take at most every other round,
 * and a crash among the members we know first-hand is still found within
 * about two rounds per such member, however many strangers the table holds.
 */
const outOfTurn = (state: EngineState): NodeId | undefined => {
  if (state.lastRoundOutOfTurn) return undefined
  const { now, lastProbed, members } = state
  const window = 2 * state.settings.probeInterval
  const recent = (id: NodeId) => now - (lastProbed.get(id) ?? Number.NEGATIVE_INFINITY) < window
  const leastRecent = (ids: Iterable<string>, eligible: (id: NodeId) => boolean): NodeId | undefined => {
    let stalest: NodeId | undefined
    for (const key of ids) {
      const id = key as NodeId
      if (!members.live.has(id) || recent(id) || !eligible(id)) continue
      if (stalest === undefined || (lastProbed.get(id) ?? 0) < (lastProbed.get(stalest) ?? 0)) stalest = id
    }
    return stalest
  }
  if (state.lastTargetUnheard) {
    const heard = leastRecent(state.phi.ids(), () => true)
    if (heard !== undefined) return heard
  }
  const suspect = leastRecent(state.suspicions.keys(), () => true)
  if (suspect !== undefined) return suspect
  const overdue = state.phi.highestAbove(now, (id) => members.live.has(id as NodeId) && !recent(id as NodeId))
  return overdue as NodeId | undefined
}

/**
 * Pings one random recently dead member, with nothing piggybacked (our
 * verdicts about others are not its business until it is back). If it is
 * alive and reachable again — a healed partition, a resumed process — its
 * answer is a word from a member held dead, which starts the exchange that
 * heals the views; a crashed one costs a datagram per probe interval for
 * `gossipToTheDeadTime`.
 */
const pingTheDead = (state: EngineState): void => {
  const members = state.members
  members.expireRecentlyDead(state.now, state.settings.gossipToTheDeadTime)
  const [id] = members.recentlyDead.sample(1, state.rng)
  if (id === undefined) return
  const member = state.table.get(id)
  if (member === undefined || member.state !== "Dead") return
  sendOnly(state, member.gossipAddress, [new Ping({ seq: state.nextSeq(), from: state.self.id, target: id }, TRUSTED)])
}

const startProbe = (state: EngineState, target: ClusterNode): void => {
  state.counters.probes++
  const seq = state.nextSeq()
  state.probe = {
    seq,
    target,
    started: state.now,
    budget: state.awareness.scale(state.settings.probeInterval),
    helpers: 0,
    nacks: 0,
    tcp: undefined
  }
  state.waiters.set(seq, { kind: "probe", target: target.id, address: addressKey(target.gossipAddress) })
  // Lifeguard's buddy system: a suspect hears the accusation on the ping itself and can refute at once.
  const priority = target.state === "Suspect" ? [state.accusation(target.id, "Suspect", target.incarnation)] : []
  send(state, target.gossipAddress, [new Ping({ seq, from: state.self.id, target: target.id }, TRUSTED)], priority)
  state.setTimer({ _tag: "ProbeIndirect", seq }, state.now + state.awareness.scale(state.settings.pingTimeout))
}

/** The direct ping got no ack in time: ask alive helpers, and ping over TCP, until the budget ends. */
export const probeIndirect = (state: EngineState, seq: number): void => {
  const probe = state.probe
  if (probe === undefined || probe.seq !== seq) return
  const { target } = probe
  state.counters.indirectProbes++
  // Helpers are members heard from directly (they have a phi detector): a member
  // known only from gossip may not exist, and its missing nack would count against
  // our own health. Any alive member while none has been heard from yet.
  const exclude = new Set([target.id])
  const heard = state.members.alive.sample(state.settings.indirectChecks, state.rng, exclude, (id) => state.phi.has(id))
  const helpers =
    heard.length > 0 ? heard : state.members.alive.sample(state.settings.indirectChecks, state.rng, exclude)
  for (const id of helpers) {
    const helper = state.table.get(id)
    if (helper === undefined) continue
    send(state, helper.gossipAddress, [
      new PingReq({ seq, requestor: state.self.id, target: target.id, targetAddress: target.gossipAddress }, TRUSTED)
    ])
  }
  probe.helpers = helpers.length
  const remaining = Math.max(0, probe.budget - (state.now - probe.started))
  // memberlist's fallback: the same ping over a TCP stream, in parallel with the helpers.
  // Datagram loss (or a firewall that drops UDP) then cannot make us accuse a member we
  // can still reach; it only costs a connection when a direct ping already failed.
  if (state.settings.tcpPings) {
    const id = state.nextId()
    probe.tcp = id
    state.exchanges.set(id, { kind: "StreamPing", probeSeq: seq, target: target.id })
    state.emit({
      _tag: "OpenExchange",
      id,
      to: target.gossipAddress,
      request: { messages: [new Ping({ seq, from: state.self.id, target: target.id }, TRUSTED)], updates: [] },
      deadline: state.now + remaining,
      maxBytes: state.settings.maxPacketSize
    })
  }
  state.setTimer({ _tag: "ProbeEnd", seq }, state.now + remaining)
}

/** The probe's budget is spent without an answer: a verdict, unless the probe outlived it (we were frozen). */
export const probeEnd = (state: EngineState, seq: number): void => {
  const probe = state.probe
  if (probe === undefined || probe.seq !== seq) return
  finish(state)
  const took = state.now - probe.started
  const { target } = probe
  if (took > probe.budget + state.settings.pingTimeout) {
    // We were frozen or starved (SIGSTOP, a long GC pause, an overloaded host) while the
    // answers queued unread: the timeouts expired on our side. That is evidence about
    // our own health, not the target's.
    state.awareness.apply(Awareness.probeFailed(0, 0))
    state.log("probe outlived its interval: no verdict on the target", { member: target.name, took })
    nextRound(state)
    return
  }
  state.counters.failedProbes++
  state.awareness.apply(Awareness.probeFailed(probe.helpers, probe.nacks))
  // The member may have changed while we waited (refuted, left): only accuse it at the
  // incarnation we probed. Already suspect there, our failed probe is an independent
  // confirmation (Lifeguard): it shortens every suspicion timer that hears it.
  const current = state.table.get(target.id)
  if (
    current !== undefined &&
    (current.state === "Alive" || current.state === "Suspect") &&
    current.incarnation === target.incarnation
  ) {
    suspect(state, current)
  }
  nextRound(state)
}

/** Drops the probe in flight without a verdict (the rounds stopped). */
export const abandonProbe = (state: EngineState): void => finish(state)

/** Clears the probe in flight: its waiter, its timer, its TCP ping. */
const finish = (state: EngineState): void => {
  const probe = state.probe
  if (probe === undefined) return
  state.probe = undefined
  state.waiters.delete(probe.seq)
  state.cancelTimer({ _tag: "ProbeEnd", seq: probe.seq })
  if (probe.tcp !== undefined) {
    state.exchanges.delete(probe.tcp)
    state.emit({ _tag: "CancelExchange", id: probe.tcp })
  }
}

/** The probe in flight was answered — directly, through a helper or over TCP — or its target's address changed hands. */
const answered = (state: EngineState, outcome: { readonly replacedBy: NodeId | undefined }): void => {
  const probe = state.probe
  if (probe === undefined) return
  finish(state)
  // An answered probe is evidence of our own health.
  state.awareness.apply(Awareness.PROBE_SUCCEEDED)
  if (outcome.replacedBy !== undefined) replaced(state, probe.target, outcome.replacedBy)
  nextRound(state)
}

/**
 * An ack for `ack.seq`. It counts only when it comes from the identity that
 * was pinged; one from another identity sent from the pinged address means
 * that address belongs to someone else now.
 */
export const onAck = (state: EngineState, ack: Ack, source: Address): void => {
  const waiter = state.waiters.get(ack.seq)
  if (waiter === undefined) return
  const fromTarget = ack.from === waiter.target
  if (!fromTarget && addressKey(source) !== waiter.address) return
  switch (waiter.kind) {
    case "probe":
      answered(state, { replacedBy: fromTarget ? undefined : ack.from })
      return
    case "verify":
      if (!fromTarget) replaced(state, waiter.member, ack.from)
      return
    case "check":
      waiter.answered = true
      if (!fromTarget) replaced(state, waiter.member, ack.from)
      return
    case "relay":
      // the target's address answers as someone else: nothing to relay, the requestor's probe fails
      if (fromTarget) relayAcked(state, ack.seq, waiter)
      return
    case "reach":
      if (fromTarget) reachAcked(state, waiter)
      return
  }
}

export const onNack = (state: EngineState, nack: Nack): void => {
  const waiter = state.waiters.get(nack.seq)
  if (waiter?.kind === "reach") {
    reachNacked(state, waiter)
    return
  }
  const probe = state.probe
  if (probe !== undefined && probe.seq === nack.seq && state.waiters.get(nack.seq)?.kind === "probe") probe.nacks++
}

/** The TCP fallback ping was answered as `answeredAs` (the id in the ack), or not at all. */
export const streamPingEnded = (state: EngineState, probeSeq: number, answeredAs: NodeId | undefined): void => {
  const probe = state.probe
  if (probe === undefined || probe.seq !== probeSeq) return
  probe.tcp = undefined
  if (answeredAs === undefined) return
  if (answeredAs !== probe.target.id) {
    answered(state, { replacedBy: answeredAs })
    return
  }
  state.counters.streamPingAcks++
  answered(state, { replacedBy: undefined })
}
