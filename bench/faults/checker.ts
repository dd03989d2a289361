/**
 * Reads every life's view changes against what the fault allowed, and turns
 * them into a scenario's figures: detection time, false failures, suspicions
 * of members the observer could reach.
 *
 * What is legitimate, precisely (`FaultModel`):
 *
 * - A member may be declared failed by an observer when, at that moment, no
 *   life with the member's key was up (killed, between restarts, or a
 *   previous life), when the member had been paused (SIGSTOP) at some point
 *   before — its suspicion may have begun during the pause — or when the
 *   fault `separated` the two (the other side of a partition, a blackholed
 *   host and everyone else, both ways). Every other failure is false: within
 *   a side of a partition, anything during a one-way cut, a flapping link
 *   (down 2 s, shorter than the 4 s minimum suspicion timeout) or loss.
 * - A suspicion is expected under the same conditions, and also between
 *   `unreliable` pairs (a flapping link's ends). Every other suspicion counts
 *   as a "suspicion of a reachable member" — e.g. inside a side of a
 *   partition — judged from the accuser's side (see suspicionsOfReachable).
 */
import type { AgentLife } from "./agent-life.ts"
import type { Fleet } from "./fleet.ts"

/** Whether the fault separates the hosts of slots `observer` and `subject` (ordered pair). */
export type PairPredicate = (observer: number, subject: number) => boolean

export interface FaultModel {
  readonly separated: PairPredicate
  readonly unreliable: PairPredicate
}

export const nothingCut: PairPredicate = () => false

/** Whether some life with `key` was up (running, not paused) at `t`. */
const upAt = (fleet: Fleet, key: string, t: number): boolean =>
  fleet.livesOfKey(key).some((l) => l.spawnedAt <= t && !l.pausedOrEndedAt(t))

const everPausedBefore = (fleet: Fleet, key: string, t: number): boolean =>
  fleet.livesOfKey(key).some((l) => l.pauses.some((p) => p.from <= t))

/** Whether `observer` holding `key` failed at `t` is consistent with the fault. */
export const failureAllowed = (fleet: Fleet, model: FaultModel, observer: AgentLife, key: string, t: number) => {
  const slot = fleet.slotOfKey(key)
  if (slot === undefined) return false
  if (!upAt(fleet, key, t) || everPausedBefore(fleet, key, t)) return true
  return model.separated(observer.slot, slot)
}

const suspicionAllowed = (fleet: Fleet, model: FaultModel, observer: AgentLife, key: string, t: number) => {
  const slot = fleet.slotOfKey(key)
  if (slot === undefined) return false
  return failureAllowed(fleet, model, observer, key, t) || model.unreliable(observer.slot, slot)
}

export interface FalseFailure {
  readonly t: number
  readonly observer: string
  readonly subject: string
}

/** Every `Dead` the fault does not explain, over the whole run and every life. */
export const falseFailures = (fleet: Fleet, model: FaultModel): Array<FalseFailure> =>
  fleet.lives.flat().flatMap((observer) =>
    observer.transitions
      .filter((tr) => tr.state === "Dead" && !failureAllowed(fleet, model, observer, tr.subject, tr.t))
      .map((tr) => ({
        t: tr.t,
        observer: observer.name,
        subject: `${fleet.nameOf(fleet.slotOfKey(tr.subject) ?? -1)} (${tr.subject.slice(0, 8)})`
      }))
  )

/**
 * Suspicions (see the module comment) of members the accuser could reach,
 * from `since` on. shoal: one per suspicion episode — a (member,
 * incarnation) held Suspect — attributed to the first observer that held it
 * (the accuser: it prints the event before it gossips it), so a legitimate
 * suspicion that later spreads to members who could reach the suspect is not
 * counted again. Serf: its accusations (failed-probe log lines).
 */
export const suspicionsOfReachable = (fleet: Fleet, model: FaultModel, since: number): number => {
  const firstHolder = new Map<string, { readonly t: number; readonly observer: AgentLife; readonly key: string }>()
  const accusations: Array<{ readonly t: number; readonly observer: AgentLife; readonly key: string }> = []
  for (const observer of fleet.lives.flat()) {
    for (const tr of observer.transitions) {
      if (tr.state !== "Suspect" || tr.t < since) continue
      const episode = `${tr.subject}@${tr.incarnation}`
      const seen = firstHolder.get(episode)
      if (seen === undefined || tr.t < seen.t) firstHolder.set(episode, { t: tr.t, observer, key: tr.subject })
    }
    for (const a of observer.accusations) if (a.t >= since) accusations.push({ t: a.t, observer, key: a.subject })
  }
  return [...firstHolder.values(), ...accusations].filter(
    (e) => !suspicionAllowed(fleet, model, e.observer, e.key, e.t)
  ).length
}

export interface Detection {
  /** Fault start → the first observer holds a victim failed. */
  readonly firstMs: number | null
  /** Fault start → every relevant observer holds every victim failed; null if one never did. */
  readonly allMs: number | null
  /** Relevant (observer, victim) pairs, and how many of them saw the failure. */
  readonly pairs: number
  readonly detected: number
}

/**
 * For each (observer slot, victim slot) pair — the lives current at `faultAt`
 * — the first time in [faultAt, until] the observer held the victim failed.
 */
export const detection = (
  pairs: ReadonlyArray<readonly [number, number]>,
  lives: ReadonlyArray<AgentLife>,
  faultAt: number,
  until: number
): Detection => {
  const times = pairs
    .map(([o, s]) => lives[o]!.firstAt(lives[s]!.key, ["Dead"], faultAt))
    .filter((t): t is number => t !== undefined && t <= until)
  const round = (t: number) => Math.round(t - faultAt)
  return {
    firstMs: times.length === 0 ? null : round(Math.min(...times)),
    allMs: times.length === pairs.length && pairs.length > 0 ? round(Math.max(...times)) : null,
    pairs: pairs.length,
    detected: times.length
  }
}

/** Pairs between groups: every node of each group observing every node of the others. */
export const crossPairs = (groups: ReadonlyArray<ReadonlyArray<number>>): Array<readonly [number, number]> =>
  groups.flatMap((a, i) => groups.flatMap((b, j) => (i === j ? [] : a.flatMap((o) => b.map((s) => [o, s] as const)))))

/** Whether two slots are in different groups (one group: never). */
export const inDifferentGroups =
  (groups: ReadonlyArray<ReadonlyArray<number>>): PairPredicate =>
  (o, s) => {
    const group = (x: number) => groups.findIndex((g) => g.includes(x))
    return group(o) !== group(s)
  }
