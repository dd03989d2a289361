/**
 * An operator's reachability check (`shoal reachability`, `Cluster.reachability`):
 * probe one member now, as a probe round would — a direct ping; no ack within
 * the ping timeout → ping-reqs through alive helpers and the same ping over
 * TCP — and report how it answered first, and how long that took.
 *
 * It runs beside the regular probe round, not in it, and only measures: its
 * pings carry nothing piggybacked (no gossip budget spent, no accusation), it
 * has sequence numbers and a timer of its own, and a check that gets no answer
 * is reported as a miss and nothing else — no suspicion, no change to the
 * health score, no place taken in the round robin. An operator asking "who can
 * I reach?" must never be the reason a member is declared failed. What the
 * check does change is what any received packet changes: an ack is a
 * heartbeat for the phi detector, and a member held dead that answers is
 * welcomed back as when it is heard from otherwise.
 *
 * Every check ends by its `deadline` with a `Reached` output, whatever the
 * network does.
 *
 * @since 0.1.0
 */
import type { NodeId } from "../../Node.ts"
import { Ping, PingReq } from "../Messages.ts"
import { addressKey } from "./Addresses.ts"
import { sendOnly } from "./Dissemination.ts"
import type { ReachRoute } from "./Output.ts"
import { TIMER_SLACK_MILLIS } from "./Settings.ts"
import { type EngineState, TRUSTED, type Waiter } from "./State.ts"

/** Starts check `request` of `target`, to end by `deadline` (absolute ms). */
export const reachStart = (state: EngineState, request: number, target: NodeId, deadline: number): void => {
  const member = state.table.get(target)
  if (member === undefined || target === state.self.id || member.state === "Left") {
    state.emit({ _tag: "Reached", request, target, route: "unknown", rtt: undefined, helpers: 0, nacks: 0 })
    return
  }
  const seq = state.nextSeq()
  state.reaches.set(request, {
    request,
    target: member,
    started: state.now,
    deadline,
    directSeq: seq,
    indirectSeq: undefined,
    tcp: undefined,
    helpers: 0,
    nacks: 0
  })
  const address = addressKey(member.gossipAddress)
  state.waiters.set(seq, { kind: "reach", target, address, request, route: "direct" })
  sendOnly(state, member.gossipAddress, [new Ping({ seq, from: state.self.id, target }, TRUSTED)])
  // the direct ping has what a probe's has: the ping timeout, stretched by the health score
  const indirectAt = state.now + state.awareness.scale(state.settings.pingTimeout)
  state.setTimer({ _tag: "Reach", request }, Math.min(indirectAt, deadline))
}

/** Check `request`'s timer: go indirect (and over TCP) at the ping timeout, give up at the deadline. */
export const reachTimer = (state: EngineState, request: number): void => {
  const check = state.reaches.get(request)
  if (check === undefined) return
  if (check.indirectSeq !== undefined || state.now + TIMER_SLACK_MILLIS >= check.deadline) {
    end(state, request, "none")
    return
  }
  const { target } = check
  const seq = state.nextSeq()
  check.indirectSeq = seq
  const address = addressKey(target.gossipAddress)
  state.waiters.set(seq, { kind: "reach", target: target.id, address, request, route: "indirect" })
  const helpers = state.members.alive.sample(state.settings.indirectChecks, state.rng, new Set([target.id]))
  for (const id of helpers) {
    const helper = state.table.get(id)
    if (helper === undefined) continue
    check.helpers++
    sendOnly(state, helper.gossipAddress, [
      new PingReq({ seq, requestor: state.self.id, target: target.id, targetAddress: target.gossipAddress }, TRUSTED)
    ])
  }
  if (state.settings.tcpPings) {
    const id = state.nextId()
    check.tcp = id
    state.exchanges.set(id, { kind: "ReachPing", request, seq: check.directSeq })
    state.emit({
      _tag: "OpenExchange",
      id,
      to: target.gossipAddress,
      request: {
        messages: [new Ping({ seq: check.directSeq, from: state.self.id, target: target.id }, TRUSTED)],
        updates: []
      },
      deadline: check.deadline,
      maxBytes: state.settings.maxPacketSize
    })
  }
  state.setTimer({ _tag: "Reach", request }, check.deadline)
}

/** An ack for one of check's pings, from the target (directly, or relayed by a helper in its name). */
export const reachAcked = (state: EngineState, waiter: Waiter & { readonly kind: "reach" }): void => {
  end(state, waiter.request, waiter.route)
}

/** A helper's nack: its own link to us works, and the target did not answer it either. */
export const reachNacked = (state: EngineState, waiter: Waiter & { readonly kind: "reach" }): void => {
  const check = state.reaches.get(waiter.request)
  if (check !== undefined && waiter.route === "indirect") check.nacks++
}

/** Check `request`'s TCP ping ended: answered as `answeredAs` (the id in the ack), or not at all. */
export const reachStreamEnded = (state: EngineState, request: number, answeredAs: NodeId | undefined): void => {
  const check = state.reaches.get(request)
  if (check === undefined) return
  check.tcp = undefined
  // another identity answering at the address is not the member we asked about
  if (answeredAs === check.target.id) end(state, request, "tcp")
}

/** Ends check `request`: its waiters, timer and TCP ping go, and the result goes out. */
const end = (state: EngineState, request: number, route: ReachRoute): void => {
  const check = state.reaches.get(request)
  if (check === undefined) return
  state.reaches.delete(request)
  state.waiters.delete(check.directSeq)
  if (check.indirectSeq !== undefined) state.waiters.delete(check.indirectSeq)
  state.cancelTimer({ _tag: "Reach", request })
  if (check.tcp !== undefined) {
    state.exchanges.delete(check.tcp)
    state.emit({ _tag: "CancelExchange", id: check.tcp })
  }
  const rtt = route === "none" ? undefined : state.now - check.started
  state.log("reachability check ended", { member: check.target.name, route, rtt })
  state.emit({
    _tag: "Reached",
    request,
    target: check.target.id,
    route,
    rtt,
    helpers: check.helpers,
    nacks: check.nacks
  })
}
