/**
 * Who lives at an address. A process that restarts on the same address under
 * a new id answers pings for its predecessor in its own name; an ack from
 * another identity *sent from the member's address* therefore means the
 * member is gone. And when a member (re)appears at an address where other
 * live members are held, each of them is pinged there at once to find out —
 * instead of declaring anyone dead on the newcomer's word, since a
 * misconfigured newcomer may advertise a live member's address.
 *
 * @since 0.1.0
 */
import type { ClusterNode, NodeId } from "../../Node.ts"
import { Ping } from "../Messages.ts"
import { addressKey } from "./Addresses.ts"
import { sendOnly } from "./Dissemination.ts"
import { type EngineState, TRUSTED } from "./State.ts"
import { applyUpdate } from "./Updates.ts"

/** `node` (re)appeared: verify every other live member that claims its address. */
export const verifyOthersAt = (state: EngineState, node: ClusterNode): void => {
  const key = addressKey(node.gossipAddress)
  if (state.members.addresses.claimCount(key) < 2) return
  for (const id of state.members.addresses.claimants(key)) {
    if (id === node.id) continue
    const other = state.table.get(id)
    if (other !== undefined) verify(state, other)
  }
}

/** One ping to `member` outside the probe order, answered or not within the ping timeout. */
const verify = (state: EngineState, member: ClusterNode): void => {
  const seq = state.nextSeq()
  state.waiters.set(seq, { kind: "verify", target: member.id, address: addressKey(member.gossipAddress), member })
  sendOnly(state, member.gossipAddress, [new Ping({ seq, from: state.self.id, target: member.id }, TRUSTED)])
  state.setTimer({ _tag: "Verify", seq }, state.now + state.settings.pingTimeout)
}

/** A verification ping's window ended. */
export const verifyEnded = (state: EngineState, seq: number): void => {
  if (state.waiters.get(seq)?.kind === "verify") state.waiters.delete(seq)
}

/**
 * `member`'s address answered a ping for it as `by`: the process there is
 * another identity now (a restart under a new id), so `member` is gone —
 * unless it changed since (refuted, moved, died).
 */
export const replaced = (state: EngineState, member: ClusterNode, by: NodeId): void => {
  const current = state.table.get(member.id)
  if (
    current === undefined ||
    (current.state !== "Alive" && current.state !== "Suspect") ||
    current.incarnation !== member.incarnation ||
    addressKey(current.gossipAddress) !== addressKey(member.gossipAddress)
  )
    return
  state.counters.replacements++
  state.counters.deathsDeclared++
  state.log("member's address answers as another identity: declaring it dead", {
    member: member.name,
    by,
    address: addressKey(member.gossipAddress)
  })
  applyUpdate(state, state.accusation(member.id, "Dead", member.incarnation))
}
