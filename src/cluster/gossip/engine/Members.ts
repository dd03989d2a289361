/**
 * The member table and the indexes the protocol keeps beside it, updated
 * together after every applied change (`track`): who is worth talking to
 * (live), who may be asked to probe for us (alive), who died recently
 * enough to keep gossiping to, whom to probe next, who claims which address,
 * when each member went down (for reaping) and which failed members to try
 * again later (reconnect targets, kept past reaping).
 *
 * @since 0.1.0
 */
import type { ClusterNode, NodeId } from "../../Node.ts"
import { Peers } from "../Peers.ts"
import { ProbeOrder } from "../ProbeOrder.ts"
import type { Applied, MemberTable } from "../Registry.ts"
import { AddressBook, addressKey } from "./Addresses.ts"
import type { Rng } from "./Rng.ts"
import { MAX_RECONNECT_TARGETS } from "./Settings.ts"

/** A failed member worth trying again, remembered past its reaping (Serf's reconnect list). */
export interface ReconnectTarget {
  readonly address: ClusterNode["gossipAddress"]
  readonly failedAt: number
}

export class Members {
  readonly table: MemberTable
  /** Members worth talking to: Alive or Suspect, never this node. */
  readonly live = new Peers<NodeId>()
  /** The Alive ones among them: only these are asked to probe for us (memberlist's rule). */
  readonly alive = new Peers<NodeId>()
  /** Members that died recently enough to keep gossiping to (a false death heals faster). */
  readonly recentlyDead = new Peers<NodeId>()
  readonly probeOrder = new ProbeOrder<NodeId>()
  readonly addresses = new AddressBook()
  /** When each Dead/Left member got that state, for reaping and gossip-to-the-dead. */
  readonly downSince = new Map<NodeId, number>()
  /** Failed members to try again, oldest first, until `reconnectTimeout` (Serf's reconnect list). */
  readonly reconnectTargets = new Map<NodeId, ReconnectTarget>()

  constructor(table: MemberTable) {
    this.table = table
  }

  /** Members this node knows of that count for the protocol's formulas: the live ones and itself. */
  get clusterSize(): number {
    return this.live.size + 1
  }

  /** Updates every index after `change` to a member other than this node. */
  track(change: Applied, now: number, rng: Rng): void {
    const node = change.current
    const previous = change.previous
    const key = addressKey(node.gossipAddress)
    if (previous !== undefined) {
      const before = addressKey(previous.gossipAddress)
      if (before !== key) this.addresses.release(before, node.id)
    }
    if (node.state === "Alive" || node.state === "Suspect") {
      this.addresses.claim(key, node.id)
      this.live.add(node.id)
      if (node.state === "Alive") this.alive.add(node.id)
      else this.alive.remove(node.id)
      this.probeOrder.add(node.id, rng)
      this.recentlyDead.remove(node.id)
      this.downSince.delete(node.id)
      this.reconnectTargets.delete(node.id)
      return
    }
    this.addresses.release(key, node.id)
    this.live.remove(node.id)
    this.alive.remove(node.id)
    this.probeOrder.remove(node.id)
    this.downSince.set(node.id, now)
    if (node.state === "Dead") {
      this.recentlyDead.add(node.id)
      this.rememberFailed(node, now)
    } else {
      // a graceful leave is final: nobody reconnects to it
      this.recentlyDead.remove(node.id)
      this.reconnectTargets.delete(node.id)
    }
  }

  /** Forgets the recently dead that died more than `window` ms before `now`. */
  expireRecentlyDead(now: number, window: number): void {
    if (this.recentlyDead.size === 0) return
    for (const id of this.recentlyDead.values().slice()) {
      const since = this.downSince.get(id)
      if (since === undefined || now - since > window) this.recentlyDead.remove(id)
    }
  }

  /** Forgets reconnect targets that failed at least `timeout` ms before `now` (they are kept oldest first). */
  expireReconnectTargets(now: number, timeout: number): void {
    for (const [id, target] of this.reconnectTargets) {
      if (now - target.failedAt < timeout) break
      this.reconnectTargets.delete(id)
    }
  }

  private rememberFailed(node: ClusterNode, now: number): void {
    this.reconnectTargets.delete(node.id)
    if (this.reconnectTargets.size >= MAX_RECONNECT_TARGETS) {
      const oldest = this.reconnectTargets.keys().next()
      if (!oldest.done) this.reconnectTargets.delete(oldest.value)
    }
    this.reconnectTargets.set(node.id, { address: node.gossipAddress, failedAt: now })
  }
}
