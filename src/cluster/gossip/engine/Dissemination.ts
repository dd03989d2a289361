/**
 * Infection-style dissemination (SWIM §4.1): every applied change goes into
 * the broadcast queue and rides piggyback on the packets a node sends
 * anyway, least-sent first, within the packet's byte budget; a gossip round
 * sends what is pending to a few random members, alive or recently dead
 * (memberlist's fan-out, so a member declared dead by mistake hears it soon
 * and refutes).
 *
 * @since 0.1.0
 */
import type { Address } from "../../Node.ts"
import * as Codec from "../Codec.ts"
import type { Message, NodeStateUpdate } from "../Messages.ts"
import { Peers } from "../Peers.ts"
import type { EngineState } from "./State.ts"

/** Queues `update` for piggybacking (replacing any queued update about the same member). */
export const enqueue = (state: EngineState, update: NodeStateUpdate): void => {
  state.broadcasts.enqueue({ key: update.nodeId, payload: update, size: Codec.updateSize(update) })
  if (state.running && !state.gossipArmed) {
    // back on the schedule it kept while armed: the next tick after now
    const interval = state.settings.gossipInterval
    let next = state.gossipTick + interval
    while (next <= state.now) next += interval
    state.gossipArmed = true
    state.setTimer({ _tag: "GossipRound" }, next)
  }
}

const NO_MESSAGES: ReadonlyArray<Message> = []
const NO_UPDATES: ReadonlyArray<NodeStateUpdate> = []

/**
 * Sends `messages` to `to` with as many pending updates as fit, after the
 * `priority` updates (which always go first). Sends nothing when there is
 * nothing to say.
 */
export const send = (
  state: EngineState,
  to: Address,
  messages: ReadonlyArray<Message>,
  priority: ReadonlyArray<NodeStateUpdate> = NO_UPDATES
): void => {
  const { clusterLabel, maxPacketSize, maxUpdatesPerPacket } = state.settings
  let budget = Codec.updateBudget(clusterLabel, messages, maxPacketSize)
  for (const update of priority) budget -= Codec.updateSize(update)
  const updates: Array<NodeStateUpdate> = priority.length === 0 ? [] : priority.slice()
  state.broadcasts.selectPayloads(
    updates,
    Math.max(0, budget),
    state.members.clusterSize,
    maxUpdatesPerPacket - priority.length
  )
  if (messages.length === 0 && updates.length === 0) return
  state.emit({ _tag: "Send", to, packet: { messages, updates } })
}

/** Sends exactly these messages and updates, nothing from the broadcast queue. */
export const sendOnly = (
  state: EngineState,
  to: Address,
  messages: ReadonlyArray<Message>,
  updates: ReadonlyArray<NodeStateUpdate> = NO_UPDATES
): void => {
  state.emit({ _tag: "Send", to, packet: { messages, updates } })
}

/**
 * One gossip round: pending updates to `fanOut` (by default `gossipNodes`)
 * random members, alive or recently dead.
 */
export const gossipRound = (state: EngineState, fanOut: number = state.settings.gossipNodes): void => {
  if (state.broadcasts.pending === 0) return
  const { members, settings } = state
  members.expireRecentlyDead(state.now, settings.gossipToTheDeadTime)
  const targets = Peers.sampleUnion(members.alive, members.recentlyDead, fanOut, state.rng)
  for (const id of targets) {
    if (state.broadcasts.pending === 0) return
    const member = members.table.get(id)
    if (member !== undefined) send(state, member.gossipAddress, NO_MESSAGES)
  }
}
