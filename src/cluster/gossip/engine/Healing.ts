/**
 * How views that drifted apart come back together: a periodic push-pull
 * with a random member; any word from a member held dead (from its own
 * address) or from a stranger starts an exchange with it; Serf's reconnect
 * round tries failed members (reaped or not, until `reconnectTimeout`) and,
 * while nobody is alive, the seeds — so a partition of any length heals and
 * a resumed process refutes at once. And the reaper, which forgets members
 * down longer than `reapAfter` (keeping a tombstone) and tombstones older
 * than `tombstoneTtl`.
 *
 * @since 0.1.0
 */
import { type Address, type ClusterNode, type NodeId, parseAddress } from "../../Node.ts"
import { addressKey } from "./Addresses.ts"
import { pushPullInBackground, pushPullInSlot } from "./AntiEntropy.ts"
import { index } from "./Rng.ts"
import { MAX_BACKGROUND_EXCHANGES, MAX_COOLDOWN_ENTRIES, PUSH_PULL_TIMEOUT_MILLIS, STRANGER_BURST } from "./Settings.ts"
import type { EngineState } from "./State.ts"

/** Whether `key` may be contacted again (at most once per `cooldown`), recording the attempt. */
export const cooledDown = <K>(table: Map<K, number>, key: K, now: number, cooldown: number): boolean => {
  const last = table.get(key)
  if (last !== undefined && now - last < cooldown) return false
  if (table.size >= MAX_COOLDOWN_ENTRIES) table.clear()
  table.set(key, now)
  return true
}

/**
 * `id` spoke to us directly (it pinged us, or answered a ping). A member we
 * hold dead is alive and reachable again — a healed partition, a resumed
 * process, a false death — so exchange state with it at its known address:
 * each side then hears the other's verdict about itself and refutes. A
 * stranger (or a reaped member restarted under its old id) that pings us
 * (`learn`) is learnt from the same way, at most once per cooldown.
 */
export const heardFrom = (state: EngineState, id: NodeId, source: Address, learn: boolean): void => {
  if (id === state.self.id || state.leaving) return
  // a member heard from while held dead is revived at most this often (its exchange may fail),
  // and a stranger learnt from at most this often
  const cooldown = 5 * state.settings.probeInterval
  const member = state.table.get(id)
  if (member !== undefined) {
    // only from its own address: a relayed ack, or a forged ping, proves nothing
    if (member.state !== "Dead" || addressKey(member.gossipAddress) !== addressKey(source)) return
    if (!cooledDown(state.lastRevived, id, state.now, cooldown)) return
    state.counters.revivals++
    state.log("heard from a member held dead: exchanging state", { member: member.name })
    pushPullInBackground(state, id, member.gossipAddress, id)
    return
  }
  if (learn) learnFrom(state, source, id)
}

/**
 * A datagram from `source` carried a signed claim whose signer's certificate
 * this node lacks: exchange state with the sender (which holds it, or it
 * would not have passed the claim on) instead of waiting for the next
 * push-pull round — at the rate strangers are learnt from.
 */
export const learnCertificatesFrom = (state: EngineState, source: Address): void => {
  if (state.leaving || isSelf(state, source)) return
  learnFrom(state, source, state.members.addresses.current(addressKey(source)))
}

/** A background exchange with `source` (who may be `id`), at most once per cooldown and within the stranger tokens. */
const learnFrom = (state: EngineState, source: Address, id: NodeId | undefined): void => {
  const cooldown = 5 * state.settings.probeInterval
  const key = addressKey(source)
  if (!cooledDown(state.lastLearnt, key, state.now, cooldown)) return
  if (!strangerToken(state)) {
    // not now: its next ping may find a token
    state.lastLearnt.delete(key)
    state.counters.exchangesDeferred++
    return
  }
  // Its join announcement missed us (gossip is probabilistic), or we reaped it: rather than
  // wait up to a push-pull interval, exchange state with it now.
  pushPullInBackground(state, key, source, id)
}

/** Takes one of the tokens that bound exchanges with strangers (refilled one per probe interval). */
const strangerToken = (state: EngineState): boolean => {
  const refill = Math.floor((state.now - state.strangerTokensAt) / state.settings.probeInterval)
  if (refill > 0) {
    state.strangerTokens = Math.min(STRANGER_BURST, state.strangerTokens + refill)
    state.strangerTokensAt += refill * state.settings.probeInterval
  }
  if (state.strangerTokens < 1) return false
  state.strangerTokens--
  return true
}

/**
 * A member we held dead refuted: it was cut off (or frozen), and while it
 * was, every update about others whose retransmissions ran out missed it —
 * after a healed partition, the other side's refutations too. One exchange
 * of full state catches it up now rather than at the next push-pull interval
 * (at most one per member per cooldown, and only when an exchange slot is
 * free).
 */
export const welcomeBack = (state: EngineState, member: ClusterNode): void => {
  if (cooledDown(state.lastRevived, member.id, state.now, 5 * state.settings.probeInterval)) {
    pushPullInBackground(state, member.id, member.gossipAddress, member.id)
  }
}

/** One push-pull with a random live member, in the background. */
export const pushPullRound = (state: EngineState): void => {
  if (state.leaving) return
  const [id] = state.members.live.sample(1, state.rng)
  if (id === undefined) return
  const member = state.table.get(id)
  if (member !== undefined) pushPullInBackground(state, id, member.gossipAddress, id)
}

/**
 * Serf's reconnect: one random failed member — reaped or not, until
 * `reconnectTimeout` — with probability failed / alive, so a large cluster
 * with a few failures does not spend an exchange every round. While nobody
 * is alive (we were cut off, or everyone restarted), a random seed instead:
 * no partition is too long to heal. Seeds are names; the shell resolves them.
 */
export const reconnectRound = (state: EngineState): void => {
  if (state.leaving) return
  const { members, settings, rng } = state
  members.expireReconnectTargets(state.now, settings.reconnectTimeout)
  if (members.live.size === 0 && settings.seedNodes.length > 0) {
    const seed = parseAddress(settings.seedNodes[index(rng, settings.seedNodes.length)]!)
    if (seed === undefined) return
    const pick = rng()
    // name resolution is network I/O too: it holds the background slot "seeds" with the exchange
    // that follows it, and runs under the exchange's deadline
    if (state.exchanging.has(SEEDS)) return
    if (state.exchanging.size >= MAX_BACKGROUND_EXCHANGES) {
      state.counters.exchangesDeferred++
      return
    }
    state.exchanging.add(SEEDS)
    const id = state.nextId()
    state.resolving.set(id, pick)
    state.emit({ _tag: "Resolve", id, seed, deadline: state.now + PUSH_PULL_TIMEOUT_MILLIS })
    return
  }
  const targets = members.reconnectTargets
  if (targets.size === 0) return
  if (rng() * Math.max(1, members.live.size + 1) > targets.size) return
  const chosen = index(rng, targets.size)
  let i = 0
  for (const [id, target] of targets) {
    if (i++ < chosen) continue
    const member = state.table.get(id)
    // a member that came back (or left) since is no longer a target
    if (member !== undefined && member.state !== "Dead") return
    pushPullInBackground(state, id, target.address, id)
    return
  }
}

/** A seed the reconnect round asked about resolved: exchange with one of its addresses that is not us. */
export const seedResolved = (state: EngineState, id: number, addresses: ReadonlyArray<Address> | string): void => {
  const pick = state.resolving.get(id)
  if (pick === undefined) return
  state.resolving.delete(id)
  const targets = typeof addresses === "string" ? [] : addresses.filter((address) => !isSelf(state, address))
  const target = targets[Math.floor(pick * targets.length)]
  if (target === undefined) {
    state.exchanging.delete(SEEDS)
    return
  }
  pushPullInSlot(state, SEEDS, target, undefined)
}

/** The background slot of the reconnect round's seed resolution and exchange. */
const SEEDS = "seeds"

/** Whether `address` is this node (advertised or bound). */
export const isSelf = (state: EngineState, address: Address): boolean => {
  const key = addressKey(address)
  return key === addressKey(state.self.gossipAddress) || key === addressKey(state.boundAddress)
}

/** Forgets members dead or left longer than `reapAfter`, and tombstones older than `tombstoneTtl`. */
export const reapRound = (state: EngineState): void => {
  const { members, now, settings } = state
  for (const [id, since] of Array.from(members.downSince)) {
    if (now - since < settings.reapAfter) continue
    members.downSince.delete(id)
    members.recentlyDead.remove(id)
    state.lastRevived.delete(id)
    state.publish(members.table.remove(id, now))
  }
  members.table.expireTombstones(now, settings.tombstoneTtl)
  // a member's certificate and signed claim go with the last trace of it
  state.claims?.prune(
    (id) => id === state.self.id || members.table.get(id) !== undefined || members.table.tombstone(id) !== undefined
  )
}
