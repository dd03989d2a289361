/**
 * Joining and leaving. A join attempt is a push-pull with each seed (a few
 * seeds at a time, each seed's resolved addresses in turn, each exchange
 * bounded by what is left of the attempt's deadline); it ends when every
 * seed answered or gave up, with the count of seeds that answered. The shell
 * resolves the seeds and retries failed attempts with backoff until
 * `joinTimeout`. A successful join is followed by one more push-pull shortly
 * after: members that joined at about the same time may be missing from the
 * seed's state, and their announcements may miss us.
 *
 * Leaving announces `Left` at a new incarnation, sends it at once to as many
 * members as its retransmit limit (one wide gossip round), and ends when the
 * announcement has been sent its retransmissions (or after `leaveTimeout`).
 * A leaving node still answers pings, so the news also rides on its acks.
 *
 * @since 0.1.0
 */
import { retransmitLimit } from "../Broadcasts.ts"
import { pushPullForJoin } from "./AntiEntropy.ts"
import { enqueue, gossipRound } from "./Dissemination.ts"
import { isSelf, pushPullRound } from "./Healing.ts"
import type { JoinSeed } from "./Input.ts"
import { JOIN_FOLLOW_UP_GOSSIP_INTERVALS, MAX_BACKGROUND_EXCHANGES, PUSH_PULL_TIMEOUT_MILLIS } from "./Settings.ts"
import type { EngineState, JoinAttempt, SeedProgress } from "./State.ts"

/** Starts a join attempt through `seeds`, ending at `deadline`. */
export const join = (state: EngineState, ticket: number, seeds: ReadonlyArray<JoinSeed>, deadline: number): void => {
  const attempt: JoinAttempt = { ticket, deadline, waiting: [], running: 0, answered: 0, failures: [] }
  for (const seed of seeds) {
    if (typeof seed.addresses === "string") attempt.failures.push(`${seed.seed}: ${seed.addresses}`)
    else {
      const targets = seed.addresses.filter((address) => !isSelf(state, address))
      attempt.waiting.push({ seed: seed.seed, targets, next: 0, attempt })
    }
  }
  state.joins.set(ticket, attempt)
  while (attempt.running < MAX_BACKGROUND_EXCHANGES && attempt.waiting.length > 0) {
    attempt.running++
    tryNext(state, attempt.waiting.shift()!)
  }
  if (attempt.running === 0) end(state, attempt)
}

/** Tries the seed's next address, or gives the seed up. */
const tryNext = (state: EngineState, seed: SeedProgress): void => {
  const left = seed.attempt.deadline - state.now
  if (seed.next >= seed.targets.length || left <= 0) {
    seedDone(state, seed, false)
    return
  }
  const target = seed.targets[seed.next++]!
  pushPullForJoin(state, target, seed, Math.min(PUSH_PULL_TIMEOUT_MILLIS, left))
}

/** A seed's exchange succeeded. */
export const seedAnswered = (state: EngineState, seed: SeedProgress): void => seedDone(state, seed, true)

/** A seed's exchange failed: note why, and try its next address. */
export const seedFailed = (state: EngineState, seed: SeedProgress, reason: string): void => {
  seed.attempt.failures.push(`${seed.seed}: ${reason}`)
  tryNext(state, seed)
}

const seedDone = (state: EngineState, seed: SeedProgress, answered: boolean): void => {
  const attempt = seed.attempt
  if (answered) attempt.answered++
  attempt.running--
  const next = attempt.waiting.shift()
  if (next !== undefined) {
    attempt.running++
    tryNext(state, next)
    return
  }
  if (attempt.running === 0) end(state, attempt)
}

const end = (state: EngineState, attempt: JoinAttempt): void => {
  state.joins.delete(attempt.ticket)
  if (attempt.answered > 0) {
    state.log("joined", { answered: attempt.answered })
    state.setTimer(
      { _tag: "JoinFollowUp" },
      state.now + JOIN_FOLLOW_UP_GOSSIP_INTERVALS * state.settings.gossipInterval
    )
  }
  state.emit({ _tag: "JoinEnded", ticket: attempt.ticket, answered: attempt.answered, failures: attempt.failures })
}

/** The push-pull that follows a successful join. */
export const joinFollowUp = (state: EngineState): void => pushPullRound(state)

/** Leaves gracefully (a second call while leaving ends at once). */
export const leave = (state: EngineState, ticket: number): void => {
  if (state.leaving) {
    state.emit({ _tag: "LeaveEnded", ticket })
    return
  }
  state.leaving = true
  const self = state.self.with({ state: "Left", incarnation: state.self.incarnation + 1 })
  state.self = self
  state.publish(state.table.upsert(self))
  enqueue(state, state.selfLeft())
  if (state.members.live.size === 0) {
    state.emit({ _tag: "LeaveEnded", ticket })
    return
  }
  // Send the announcement now to as many members as its retransmit limit, rather than
  // three at a time over the next gossip rounds: a node that is going away has no
  // bandwidth to save, and its `leave` then ends in one step instead of ~3 gossip
  // intervals. In a cluster smaller than the limit, the gossip rounds finish its
  // retransmissions (bounded by leaveTimeout).
  gossipRound(state, retransmitLimit(state.settings.retransmitMult, state.members.clusterSize))
  state.leaveTickets.push(ticket)
  state.leaveDeadline = state.now + state.settings.leaveTimeout
  leaveCheck(state)
}

/** Whether the `Left` announcement went out; if not, look again a gossip interval later. */
export const leaveCheck = (state: EngineState): void => {
  if (state.leaveTickets.length === 0) return
  if (state.broadcasts.has(state.self.id) && state.now < state.leaveDeadline) {
    state.setTimer({ _tag: "LeaveCheck" }, state.now + state.settings.gossipInterval)
    return
  }
  for (const ticket of state.leaveTickets) state.emit({ _tag: "LeaveEnded", ticket })
  state.leaveTickets = []
}
