/**
 * What a claim may ask of a node, whoever sends it: the bounds that hold
 * without a keyring, so that no packet — forged or not — costs more than a
 * bounded, temporary amount, or does lasting harm.
 *
 * - **Incarnations.** A member raises its incarnation by one per refutation,
 *   each answering an accusation; a claim more than
 *   {@link MAX_INCARNATION_JUMP} above what this node holds for the member (or
 *   for itself) is not news but a forgery, and is refused. So a refutation
 *   always follows within reach, and the wire ceiling (`MAX_INCARNATION`) is
 *   never approached by a real life.
 * - **Members.** A new member beyond `maxMembers` is refused.
 * - **Announcements.** An `Alive` whose encoded size exceeds what a node may
 *   announce of itself (`maxPacketSize` less the packet's reserve) is refused:
 *   no member's tags and name cost more than that.
 * - **Updates per packet.** A datagram carries at most `maxUpdatesPerPacket`
 *   updates from an honest sender; the rest are refused.
 * - **Ping-reqs** are honoured only for a member held live at the address the
 *   requestor names: a stranger cannot make this node ping any address.
 *
 * Every refusal is counted (`updatesRefused`) and logged at Debug.
 *
 * @since 0.1.0
 */
import { PACKET_OVERHEAD_RESERVE } from "../../Config.ts"
import type { Address, NodeId } from "../../Node.ts"
import * as Codec from "../Codec.ts"
import type { NodeStateUpdate } from "../Messages.ts"
import { addressKey } from "./Addresses.ts"
import type { EngineState } from "./State.ts"

/** How far above the known incarnation a claim may be (refutations missed in between). */
export const MAX_INCARNATION_JUMP = 1024

/** Refusals logged one by one per input; the rest of a flood is one summary line (see {@link logRefusalsSummary}). */
const REFUSALS_LOGGED_PER_STEP = 3

const refuse = (state: EngineState, why: string, annotations: Readonly<Record<string, unknown>>): false => {
  state.counters.updatesRefused++
  if (state.refusalsThisStep++ < REFUSALS_LOGGED_PER_STEP) state.log(`refused a claim: ${why}`, annotations)
  return false
}

/**
 * After one input: how many refusals went unlogged. A push-pull of 50,000
 * forged members is one line, not 50,000 (each would be a log record the
 * shell builds and keeps until it is written).
 */
export const logRefusalsSummary = (state: EngineState): void => {
  const unlogged = state.refusalsThisStep - REFUSALS_LOGGED_PER_STEP
  if (unlogged > 0) state.log(`refused ${unlogged} more claims`, { refused: state.refusalsThisStep })
}

/** Whether `update` is within the limits (see the module comment); refusals are counted. */
export const admitted = (state: EngineState, update: NodeStateUpdate): boolean => {
  const known =
    update.nodeId === state.self.id
      ? state.self
      : (state.table.get(update.nodeId) ?? state.table.tombstone(update.nodeId)?.node)
  if (known !== undefined) {
    if (update.incarnation > known.incarnation + MAX_INCARNATION_JUMP) {
      return refuse(state, "incarnation far above the known one", {
        member: update.nodeId,
        known: known.incarnation,
        claimed: update.incarnation
      })
    }
  } else if (update.state === "Alive") {
    if (state.table.size >= state.settings.maxMembers) {
      return refuse(state, "maxMembers reached", { member: update.nodeId, maxMembers: state.settings.maxMembers })
    }
  }
  if (update.state === "Alive" && Codec.updateSize(update) > state.settings.maxPacketSize - PACKET_OVERHEAD_RESERVE) {
    return refuse(state, "announcement too large", { member: update.nodeId, bytes: Codec.updateSize(update) })
  }
  return true
}

/** The updates of one datagram that are applied: at most `maxUpdatesPerPacket`, the rest refused. */
export const updatesOfPacket = (
  state: EngineState,
  updates: ReadonlyArray<NodeStateUpdate>
): ReadonlyArray<NodeStateUpdate> => {
  const max = state.settings.maxUpdatesPerPacket
  if (updates.length <= max) return updates
  refuse(state, "more updates in one packet than any member sends", { updates: updates.length, max })
  state.counters.updatesRefused += updates.length - max - 1
  state.refusalsThisStep += updates.length - max - 1
  return updates.slice(0, max)
}

/** Whether a ping-req for `target` at `address` names a member this node holds live there. */
export const knownAt = (state: EngineState, target: NodeId, address: Address): boolean => {
  const member = state.table.get(target)
  if (
    member !== undefined &&
    (member.state === "Alive" || member.state === "Suspect") &&
    addressKey(member.gossipAddress) === addressKey(address)
  ) {
    return true
  }
  return refuse(state, "ping-req for a member not known at that address", { target, address: addressKey(address) })
}
