/**
 * "One consistent view": what the cluster must look like once a fault is
 * over. Every responsive agent (running, not paused) holds every other
 * running agent's current key Alive — with the tags it expects, when a
 * scenario asks — and holds no other key Alive or Suspect (no ghost of a
 * previous life, no member that is gone).
 */
import type { AgentLife } from "./agent-life.ts"
import type { Fleet } from "./fleet.ts"

/** Tags the current life of `slot` must be seen with (undefined: any). */
export type ExpectedTags = (slot: number) => Readonly<Record<string, string>> | undefined

const hasTags = (tags: Readonly<Record<string, string>>, expected: Readonly<Record<string, string>> | undefined) =>
  expected === undefined || Object.entries(expected).every(([k, v]) => tags[k] === v)

/** What keeps the view from being consistent, one line per disagreement (empty: consistent). */
export const viewProblems = (fleet: Fleet, expectedTags?: ExpectedTags): Array<string> => {
  const members = fleet.currentLives().filter((l) => l.running)
  const memberKeys = new Set(members.map((m) => m.key))
  const problems: Array<string> = []
  const short = (key: string) => key.slice(0, 8)
  for (const observer of members.filter((l: AgentLife) => l.responsive)) {
    for (const member of members) {
      if (member === observer) continue
      const entry = observer.view.get(member.key)
      if (entry?.state !== "Alive") {
        problems.push(`${observer.name} holds ${member.name} (${short(member.key)}) ${entry?.state ?? "unknown"}`)
      } else if (!hasTags(entry.tags, expectedTags?.(member.slot))) {
        problems.push(`${observer.name} holds ${member.name} with stale tags ${JSON.stringify(entry.tags)}`)
      }
    }
    for (const [key, entry] of observer.view) {
      if (memberKeys.has(key) || key === observer.key) continue
      if (entry.state === "Alive" || entry.state === "Suspect") {
        const slot = fleet.slotOfKey(key)
        const who = slot === undefined ? "an unknown member" : `${fleet.nameOf(slot)}'s ended life`
        problems.push(`${observer.name} holds ${who} (${short(key)}) ${entry.state}`)
      }
    }
  }
  return problems
}

export const consistentView = (fleet: Fleet, expectedTags?: ExpectedTags): boolean =>
  viewProblems(fleet, expectedTags).length === 0
