/**
 * Which claim about a member wins. Every node applies the same pure rules to
 * every update it hears — from a ping, a gossip packet or a push-pull — so the
 * whole cluster converges on one view without coordination.
 *
 * The rules (SWIM §4.2, as memberlist applies them, plus a distinct `Left`):
 *
 * 1. A higher incarnation wins. Only the member itself raises its incarnation,
 *    so a higher number is always newer news.
 * 2. At equal incarnation the stronger state wins:
 *    `Alive < Suspect < Dead < Left`. `Left` outranks `Dead` so a member that
 *    left gracefully is reported as having left everywhere, even where a
 *    failure detector got there first.
 * 3. Some moves are illegal whatever the incarnation: nothing but a fresh
 *    `Alive` brings a member back from `Dead` or `Left` (a suspicion cannot
 *    revive it), and a detected failure never overrides a graceful leave.
 * 4. An update about a member we do not know is only useful if it is `Alive`:
 *    the others carry no address to reach it.
 * 5. A member is the only authority on its own liveness and tags: a claim that
 *    it is suspect, dead or left — or alive at a newer incarnation than it
 *    knows, or alive at its own incarnation with other tags or addresses —
 *    makes it refute with a higher incarnation (see {@link refute}).
 *
 * Tombstones (reaped members) keep their last claim, so rules 1–3 still stop a
 * stale message from resurrecting them.
 *
 * @module
 * @since 0.1.0
 */
import type { NodeState } from "./Node.ts"

/** What a message says about a member: a state at an incarnation. */
export interface Claim {
  readonly state: NodeState
  readonly incarnation: number
}

/** Strength of a state at equal incarnation (rule 2). */
export const stateRank: Readonly<Record<NodeState, number>> = { Alive: 0, Suspect: 1, Dead: 2, Left: 3 }

const legal: Readonly<Record<NodeState, ReadonlySet<NodeState>>> = {
  Alive: new Set(["Alive", "Suspect", "Dead", "Left"]),
  Suspect: new Set(["Alive", "Suspect", "Dead", "Left"]),
  Dead: new Set(["Alive", "Left"]),
  Left: new Set(["Alive"])
}

/** Whether a member may move from one state to another at all (rule 3). */
export const canTransition = (from: NodeState, to: NodeState): boolean => legal[from].has(to)

/** Whether `incoming` is newer news than `current` (rules 1 and 2). */
export const supersedes = (incoming: Claim, current: Claim): boolean =>
  incoming.incarnation > current.incarnation ||
  (incoming.incarnation === current.incarnation && stateRank[incoming.state] > stateRank[current.state])

/**
 * Whether a node should apply `incoming` to a member it holds as `current`
 * (`undefined` when the member is unknown). Rules 1–4.
 */
export const shouldApply = (current: Claim | undefined, incoming: Claim): boolean =>
  current === undefined
    ? incoming.state === "Alive"
    : supersedes(incoming, current) && canTransition(current.state, incoming.state)

/**
 * Rule 5. Given this node's own claim and a claim about it heard from the
 * cluster, the incarnation it must announce itself `Alive` at to override
 * that claim — or `undefined` when the claim is harmless (old news, its own
 * announcement echoed back) or when it is leaving and must stay gone.
 *
 * `sameContent` says whether an `Alive` claim carries what this node announces
 * (name, addresses, tags). An `Alive` at its own incarnation that differs is
 * a previous life's announcement — a process restarted with the same id and a
 * new configuration starts at the same incarnation — and is refuted like an
 * accusation, or the cluster would keep the old tags and addresses.
 */
export const refute = (self: Claim, heard: Claim, sameContent = true): number | undefined => {
  if (self.state === "Left" || heard.incarnation < self.incarnation) return undefined
  if (heard.state === "Alive" && heard.incarnation === self.incarnation && sameContent) return undefined
  return heard.incarnation + 1
}
