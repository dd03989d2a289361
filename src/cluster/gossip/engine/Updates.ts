/**
 * Applying what a node hears about members, under the precedence rules
 * (`Rules`): an applied update is published to the application and passed
 * on (re-broadcast), which is what makes gossip epidemic; a suspicion starts
 * a Lifeguard timer that independent confirmations shorten; a claim about
 * this node itself is refuted when the rules say so.
 *
 * @since 0.1.0
 */
import { type ClusterNode, formatAddress, type NodeId, type Tags } from "../../Node.ts"
import * as Rules from "../../Rules.ts"
import * as Awareness from "../Awareness.ts"
import type { NodeStateUpdate } from "../Messages.ts"
import { Suspicion, suspicionBounds } from "../Suspicion.ts"
import { enqueue } from "./Dissemination.ts"
import { welcomeBack } from "./Healing.ts"
import { admitted } from "./Limits.ts"
import { verifyOthersAt } from "./Replacement.ts"
import { TIMER_SLACK_MILLIS } from "./Settings.ts"
import type { EngineState } from "./State.ts"

/**
 * Applies an update heard from another node (a datagram's, a push-pull
 * entry). With `requireIdentities` (see `Claims`) an `Alive` or `Left` about
 * another member must carry its signature, and a `Dead` about another member
 * is taken as a `Suspect` at the same incarnation: the accused, if alive,
 * refutes before this node's own timer declares it dead. Without it, the
 * same as {@link applyUpdate}.
 */
export const applyReceived = (state: EngineState, update: NodeStateUpdate): void => {
  if (state.claims?.required !== true || update.nodeId === state.self.id) {
    applyUpdate(state, update)
    return
  }
  if (update.state === "Dead") {
    state.counters.deathsDowngraded++
    applyUpdate(state, state.accusation(update.nodeId, "Suspect", update.incarnation, update.from ?? state.self.id))
    return
  }
  applyUpdate(state, update, true)
}

/**
 * Whether the signed claim `update` (an `Alive` or `Left` about another
 * member) verifies; refusals are counted. Asked only of a claim that would
 * change this node's view, so old news costs no verification.
 */
const signatureHolds = (state: EngineState, update: NodeStateUpdate): boolean => {
  const verdict = state.claims!.verdict(update)
  if (verdict === "valid") return true
  if (verdict === "unknownCertificate") {
    state.counters.claimsUnverifiable++
    state.claimsMissing = true
  } else state.counters.claimsRefused++
  state.log(`refused a claim: ${verdict === "unknownCertificate" ? "certificate not held" : `signature ${verdict}`}`, {
    member: update.nodeId,
    state: update.state,
    incarnation: update.incarnation
  })
  return false
}

/**
 * Applies one update under the precedence rules; an applied update is
 * re-broadcast. A claim about this node goes to {@link claimAboutSelf}.
 * `signed`: an `Alive` or `Left` must carry its member's valid signature.
 */
export const applyUpdate = (state: EngineState, update: NodeStateUpdate, signed = false): void => {
  if (!admitted(state, update)) return
  if (update.nodeId === state.self.id) {
    claimAboutSelf(state, update)
    return
  }
  const table = state.table
  if (update.state === "Alive") {
    // Most announcements a node hears are ones it already has: check the claim before
    // building a member from it.
    const known = table.get(update.nodeId)
    if (known !== undefined && !Rules.shouldApply(known, update)) return
    const node = nodeOf(update)
    if (node === undefined) return
    if (signed && !signatureHolds(state, update)) return
    const change = table.upsert(node)
    if (change === undefined) return
    state.publish(change)
    tracked(state, change)
    enqueue(state, update)
    endSuspicion(state, update.nodeId)
    if (change.previous === undefined || change.previous.state === "Dead" || change.previous.state === "Left") {
      verifyOthersAt(state, node)
    }
    if (change.previous?.state === "Dead") welcomeBack(state, node)
    return
  }
  const member = table.get(update.nodeId)
  if (member === undefined) return
  const accuser = update.from ?? state.self.id
  if (update.state === "Suspect" && member.state === "Suspect" && member.incarnation === update.incarnation) {
    // Same suspicion from another accuser: an independent confirmation shortens the timer.
    const suspicion = state.suspicions.get(member.id)
    if (suspicion?.confirm(accuser)) {
      enqueue(state, update)
      // A confirmation that brings the deadline to the past declares the member dead now — before
      // this packet's messages are answered, so the answers carry the verdict.
      if (suspicion.deadline() - state.now <= TIMER_SLACK_MILLIS) suspicionExpired(state, member.id)
      else state.setTimer({ _tag: "Suspicion", target: member.id }, suspicion.deadline())
    }
    return
  }
  if (signed && update.state === "Left" && (!Rules.shouldApply(member, update) || !signatureHolds(state, update)))
    return
  const change = table.updateState(member.id, update.state, update.incarnation)
  if (change === undefined) return
  state.publish(change)
  tracked(state, change)
  enqueue(state, update)
  if (update.state === "Suspect") {
    startSuspicion(state, member.id, update.incarnation, accuser)
    return
  }
  state.phi.remove(member.id)
  state.lastProbed.delete(member.id)
  endSuspicion(state, member.id)
}

/** The member an `Alive` update describes, built once per update (every receiver of a shared update shares it). */
const nodes = new WeakMap<NodeStateUpdate, ClusterNode | null>()
const nodeOf = (update: NodeStateUpdate): ClusterNode | undefined => {
  let node = nodes.get(update)
  if (node === undefined) {
    const built = update.toNode()
    node = built._tag === "Some" ? built.value : null
    nodes.set(update, node)
  }
  return node ?? undefined
}

/** The indexes follow every applied change; a member no longer Suspect has no suspicion. */
const tracked = (state: EngineState, change: Parameters<EngineState["members"]["track"]>[0]): void => {
  state.counters.updatesApplied++
  state.members.track(change, state.now, state.rng)
  if (change.current.state !== "Suspect") state.suspicions.delete(change.current.id)
}

const endSuspicion = (state: EngineState, id: NodeId): void => {
  state.suspicions.delete(id)
  state.cancelTimer({ _tag: "Suspicion", target: id })
}

const startSuspicion = (state: EngineState, id: NodeId, incarnation: number, accuser: NodeId): void => {
  const { settings } = state
  const suspicion = new Suspicion<NodeId>({
    target: id,
    incarnation,
    accuser,
    startedAt: state.now,
    bounds: suspicionBounds({
      clusterSize: state.members.clusterSize,
      suspicionMult: settings.suspicionMult,
      suspicionMaxTimeoutMult: settings.suspicionMaxTimeoutMult,
      ...(settings.suspicionConfirmations === undefined ? {} : { confirmations: settings.suspicionConfirmations }),
      probeInterval: settings.probeInterval
    })
  })
  state.suspicions.set(id, suspicion)
  state.setTimer({ _tag: "Suspicion", target: id }, suspicion.deadline())
}

/** A suspicion's timer fired: declare the member dead if it is still suspected at that incarnation. */
export const suspicionExpired = (state: EngineState, target: NodeId): void => {
  const suspicion = state.suspicions.get(target)
  if (suspicion === undefined) return
  // A timer may fire a hair early: times are fractional once anything jittered, and a clock
  // rounds a sleep. Ignoring it would leave the member Suspect for ever (nothing else re-arms
  // the timer), so a timer due within TIMER_SLACK_MILLIS counts as due, and one fired earlier
  // than that is armed again for the rest.
  if (suspicion.deadline() - state.now > TIMER_SLACK_MILLIS) {
    state.setTimer({ _tag: "Suspicion", target }, suspicion.deadline())
    return
  }
  const member = state.table.get(target)
  if (member === undefined || member.state !== "Suspect" || member.incarnation !== suspicion.incarnation) return
  state.log("suspicion expired: declaring dead", { member: member.name, incarnation: suspicion.incarnation })
  state.counters.deathsDeclared++
  applyUpdate(state, state.accusation(target, "Dead", suspicion.incarnation))
}

/** This node suspects `member` (a failed probe). */
export const suspect = (state: EngineState, member: ClusterNode): void => {
  state.counters.suspicionsRaised++
  state.count("suspicions")
  state.log("probe failed: suspecting", { member: member.name, incarnation: member.incarnation })
  applyUpdate(state, state.accusation(member.id, "Suspect", member.incarnation))
}

/** Whether an `Alive` announcement about this node carries what it announces (a previous life's would not). */
const announcesSelf = (self: ClusterNode, update: NodeStateUpdate): boolean =>
  update.name === self.name &&
  update.gossipAddress !== undefined &&
  formatAddress(update.gossipAddress) === formatAddress(self.gossipAddress) &&
  (update.rpcAddress === undefined) === (self.rpcAddress === undefined) &&
  (update.rpcAddress === undefined ||
    self.rpcAddress === undefined ||
    formatAddress(update.rpcAddress) === formatAddress(self.rpcAddress)) &&
  sameTags(update.tags ?? {}, self.tags)

/** A claim about this node: refute it when the rules say so (Lifeguard counts that against our health). */
const claimAboutSelf = (state: EngineState, update: NodeStateUpdate): void => {
  const self = state.self
  const incarnation = Rules.refute(
    self,
    update,
    update.state !== "Alive" || !update.isFull || announcesSelf(self, update)
  )
  if (incarnation === undefined) {
    // An accusation older than our last refutation: whoever still repeats it missed the
    // refutation (its retransmissions are spent). Announce ourselves again — no new
    // incarnation needed — so the ack or gossip that answers it carries the news.
    if (self.state === "Alive" && update.state !== "Alive" && !state.broadcasts.has(self.id)) {
      enqueue(state, state.selfUpdate())
    }
    return
  }
  if (update.state !== "Alive") {
    state.awareness.apply(Awareness.REFUTED)
    state.counters.refutations++
  }
  announce(state, self.with({ incarnation }))
  state.count("refutations")
  state.log("refuting", { heard: update.state, incarnation })
}

/** Takes `self` as this node's state, in its own table row and in the queue. */
export const announce = (state: EngineState, self: ClusterNode): void => {
  state.self = self
  state.publish(state.table.upsert(self))
  enqueue(state, state.selfUpdate())
}

/** New tags at a new incarnation. */
export const setTags = (state: EngineState, tags: Tags): void => {
  announce(state, state.self.with({ tags: { ...tags }, incarnation: state.self.incarnation + 1 }))
}

const sameTags = (a: Tags, b: Tags): boolean => {
  const keys = Object.keys(a)
  if (keys.length !== Object.keys(b).length) return false
  for (const key of keys) if (!Object.hasOwn(b, key) || a[key] !== b[key]) return false
  return true
}
