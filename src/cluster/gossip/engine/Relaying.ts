/**
 * The helper's side of an indirect probe: asked by a ping-req, this node
 * pings the target itself and relays the target's ack to the requestor —
 * or, when no ack came in time, a nack, which tells the requestor that its
 * own link is fine and the silence is the target's (Lifeguard). A leaving
 * node helps nobody.
 *
 * The requestor counts nacks only until its probe interval ends, about one
 * ping timeout after it asked, so the nack leaves at `NACK_AT` (0.8) of the
 * *unscaled* ping timeout whatever this node's own health score — as
 * memberlist's helper does; a late nack would make the requestor blame its
 * own health. An ack that comes after the nack is still relayed, until the
 * ping timeout.
 *
 * @since 0.1.0
 */
import type { Address } from "../../Node.ts"
import { Ack, Nack, Ping, type PingReq } from "../Messages.ts"
import { addressKey } from "./Addresses.ts"
import { send, sendOnly } from "./Dissemination.ts"
import { knownAt } from "./Limits.ts"
import { NACK_AT } from "./Settings.ts"
import { type EngineState, TRUSTED, type Waiter } from "./State.ts"

/**
 * A ping-req from `from`: ping its target on its behalf. A target this node
 * does not hold live at the named address is not pinged (nobody makes us ping
 * an address of their choosing); the requestor gets a nack at once, bare —
 * it is a member that asked in good faith (the target may be too new to have
 * reached us), and without the nack its missing answer would count against
 * its own health. One small datagram back to the sender: nothing to amplify.
 */
export const onPingReq = (state: EngineState, from: Address, request: PingReq): void => {
  if (state.leaving) return
  if (!knownAt(state, request.target, request.targetAddress)) {
    sendOnly(state, from, [new Nack({ seq: request.seq, from: state.self.id }, TRUSTED)])
    return
  }
  const seq = state.nextSeq()
  state.waiters.set(seq, {
    kind: "relay",
    target: request.target,
    address: addressKey(request.targetAddress),
    requestor: from,
    requestSeq: request.seq,
    nacked: false
  })
  send(state, request.targetAddress, [new Ping({ seq, from: state.self.id, target: request.target }, TRUSTED)])
  state.setTimer({ _tag: "Relay", seq }, state.now + state.settings.pingTimeout * NACK_AT)
}

/** The target acked our relayed ping: pass the ack on, in the target's name, under the requestor's sequence number. */
export const relayAcked = (state: EngineState, seq: number, waiter: Waiter & { readonly kind: "relay" }): void => {
  state.waiters.delete(seq)
  state.cancelTimer({ _tag: "Relay", seq })
  send(state, waiter.requestor, [new Ack({ seq: waiter.requestSeq, from: waiter.target }, TRUSTED)])
}

/** The relay's timer: first the nack (no ack yet), then the end of the window. */
export const relayTimer = (state: EngineState, seq: number): void => {
  const waiter = state.waiters.get(seq)
  if (waiter?.kind !== "relay") return
  if (waiter.nacked) {
    state.waiters.delete(seq)
    return
  }
  waiter.nacked = true
  send(state, waiter.requestor, [new Nack({ seq: waiter.requestSeq, from: state.self.id }, TRUSTED)])
  const nackAfter = state.settings.pingTimeout * NACK_AT
  state.setTimer({ _tag: "Relay", seq }, state.now + (state.settings.pingTimeout - nackAfter))
}
