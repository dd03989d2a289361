/**
 * The fault scenarios, each a factory taking its durations, so the quick
 * profile (CI) and the full profile (bench:faults) run the same faults with
 * different holds. Victims are never the seed (slot 0): the last slot is the
 * victim of single-host faults; a partition cuts the first half of the slots
 * from the rest (3 | 3 at N = 6).
 */
import type { AgentLife } from "./agent-life.ts"
import { now } from "./agent-life.ts"
import { crossPairs, inDifferentGroups } from "./checker.ts"
import { sleep } from "./fleet.ts"
import type { Check, Scenario, ScenarioContext } from "./scenario.ts"

const halves = (n: number): Array<Array<number>> => {
  const cut = Math.ceil(n / 2)
  return [Array.from({ length: cut }, (_, i) => i), Array.from({ length: n - cut }, (_, i) => cut + i)]
}
const victimOf = (n: number) => n - 1
const othersThan = (n: number, victim: number) => Array.from({ length: n }, (_, i) => i).filter((i) => i !== victim)
const observersOf = (n: number) => othersThan(n, victimOf(n)).map((o) => [o, victimOf(n)] as const)
const withVictim = (n: number) => (o: number, s: number) => o === victimOf(n) || s === victimOf(n)
const seconds = (ms: number) => `${Math.round(ms / 1000)} s`

/** Holds until every timed pair saw the failure, or `boundMs` passed. */
const awaitDetection = (ctx: ScenarioContext, pairs: ReadonlyArray<readonly [number, number]>, since: number) => {
  const lives = ctx.fleet.currentLives()
  const keys = lives.map((l) => l.key)
  return (boundMs: number) =>
    ctx.fleet.waitUntil(
      () => pairs.every(([o, s]) => lives[o]!.firstAt(keys[s]!, ["Dead"], since) !== undefined),
      boundMs
    )
}

const partitionTargets: Record<string, string> = {
  "30": "every node of each side holds every node of the other failed ≤ 10 s (Serf 11–19 s); heal → one view ≤ 2 s (Serf ≈ 2.0 s); zero suspicions inside a side",
  "90": "other side failed ≤ 10 s; heal → one view ≤ 5 s (Serf 14.8 s); zero suspicions inside a side",
  "1200": "other side failed ≤ 10 s; heal → one view ≤ 30 s; zero suspicions inside a side"
}

/** Half the cluster cut from the other half (every packet, both ways), held `holdMs`, then healed. */
export const partition = (holdMs: number, healBoundMs: number): Scenario => ({
  id: `partition-${Math.round(holdMs / 1000)}s`,
  title: `partition half | half held ${seconds(holdMs)}, then heal`,
  target: partitionTargets[String(Math.round(holdMs / 1000))] ?? partitionTargets["90"]!,
  systems: ["shoal", "serf"],
  separated: (n) => inDifferentGroups(halves(n)),
  detect: (n) => crossPairs(halves(n)),
  mustDetect: true,
  healBoundMs,
  inject: async (ctx) => {
    ctx.network.partition(halves(ctx.n))
    const faultAt = now()
    await sleep(holdMs)
    return faultAt
  },
  heal: async (ctx) => ctx.network.heal()
})

/**
 * A partition that outlasts `reapAfter` (set short for this scenario only):
 * held until every member has reaped every member of the other side (or
 * `deadlineMs`), then healed. Only reconnecting to failed members or seeds
 * can heal it: nothing of the other side is left in anyone's member list.
 */
export const partitionBeyondReap = (reapAfter: string, deadlineMs: number, healBoundMs: number): Scenario => ({
  id: "partition-beyond-reap",
  title: `partition half | half until both sides reaped each other (--reap-after ${reapAfter}), then heal`,
  target: "heals like any partition (the 20 min cut's target: heal → one view ≤ 30 s)",
  systems: ["shoal"],
  shoalArgs: ["--reap-after", reapAfter],
  separated: (n) => inDifferentGroups(halves(n)),
  detect: (n) => crossPairs(halves(n)),
  mustDetect: true,
  healBoundMs,
  inject: async (ctx) => {
    ctx.network.partition(halves(ctx.n))
    const faultAt = now()
    const lives = ctx.fleet.currentLives()
    const pairs = crossPairs(halves(ctx.n))
    const reapedAt = await ctx.fleet.waitUntil(
      () => pairs.every(([o, s]) => lives[o]!.firstAt(lives[s]!.key, ["Reaped"], faultAt) !== undefined),
      deadlineMs
    )
    ctx.figures.reapedMs = reapedAt === undefined ? null : Math.round(reapedAt - faultAt)
    return faultAt
  },
  heal: async (ctx) => ctx.network.heal(),
  evaluate: (ctx) => ({
    figures: {},
    checks: [
      {
        name: "both sides reaped each other before the heal (the scenario's precondition)",
        ok: ctx.figures.reapedMs !== null && ctx.figures.reapedMs !== undefined,
        detail:
          ctx.figures.reapedMs === null
            ? `not every member reaped the other side within ${seconds(deadlineMs)} of the cut`
            : `reaped after ${ctx.figures.reapedMs} ms`
      }
    ]
  })
})

/** Every packet to and from one host dropped (connects hang, no RST) until everyone holds it failed; then lifted. */
export const blackhole = (detectBoundMs: number, healBoundMs: number): Scenario => ({
  id: "blackhole",
  title: "one host blackholed until declared failed, then reachable again",
  target: "known failed by all within 1 s of the SIGKILL time",
  systems: ["shoal", "serf"],
  separated: (n) => withVictim(n),
  detect: observersOf,
  mustDetect: true,
  healBoundMs,
  inject: async (ctx) => {
    ctx.network.blackhole(victimOf(ctx.n))
    const faultAt = now()
    await awaitDetection(ctx, observersOf(ctx.n), faultAt)(detectBoundMs)
    return faultAt
  },
  heal: async (ctx) => ctx.network.heal()
})

/** What slot 1 sends to slot 2 is dropped; 2 still reaches 1 and everyone else reaches both. */
export const oneWayCut = (holdMs: number, healBoundMs: number): Scenario => ({
  id: "one-way-cut",
  title: `one-way cut: host 1 → host 2 dropped for ${seconds(holdMs)} (2 → 1 fine)`,
  target: "no member declared failed",
  systems: ["shoal", "serf"],
  mustDetect: false,
  healBoundMs,
  inject: async (ctx) => {
    ctx.network.cutOneWay(1, 2)
    const faultAt = now()
    await sleep(holdMs)
    return faultAt
  },
  heal: async (ctx) => ctx.network.heal()
})

/** One host's link drops everything for `downMs` every `periodMs`, for `totalMs`. */
export const flappingLink = (downMs: number, periodMs: number, totalMs: number, healBoundMs: number): Scenario => ({
  id: "flapping-link",
  title: `flapping link: one host cut ${seconds(downMs)} every ${seconds(periodMs)} for ${seconds(totalMs)}`,
  target: "no member declared failed (each outage is shorter than the 4 s minimum suspicion timeout)",
  systems: ["shoal", "serf"],
  unreliable: (n) => withVictim(n),
  mustDetect: false,
  healBoundMs,
  inject: async (ctx) => {
    const faultAt = now()
    for (let k = 0; k < Math.floor(totalMs / periodMs); k++) {
      ctx.network.blackhole(victimOf(ctx.n))
      await sleep(downMs)
      ctx.network.heal()
      await sleep(periodMs - downMs)
    }
    return faultAt
  },
  heal: async (ctx) => ctx.network.heal()
})

/** Random loss of `percent` % of every packet for `windowMs`; nobody fails. */
export const loss = (percent: number, windowMs: number, healBoundMs: number): Scenario => ({
  id: `loss-${percent}pct`,
  title: `${percent} % loss of every packet (UDP and TCP) for ${seconds(windowMs)}`,
  target: "zero false failures",
  systems: ["shoal", "serf"],
  mustDetect: false,
  healBoundMs,
  inject: async (ctx) => {
    ctx.network.loss(percent)
    const faultAt = now()
    await sleep(windowMs)
    return faultAt
  },
  heal: async (ctx) => {
    const seen = ctx.network.counted("loss-seen")
    ctx.figures.lossMeasuredPct = seen === 0 ? null : Math.round((1000 * ctx.network.counted("loss")) / seen) / 10
    ctx.network.heal()
  }
})

/** SIGKILL of one agent: the reference the blackhole is compared with. */
export const sigkill = (detectBoundMs: number, healBoundMs: number): Scenario => ({
  id: "sigkill",
  title: "one agent SIGKILLed",
  target: "the reference for the blackhole (bench/membership: ≈ 6 s at N = 5)",
  systems: ["shoal", "serf"],
  detect: observersOf,
  mustDetect: true,
  healBoundMs,
  inject: async (ctx) => {
    const faultAt = now()
    await ctx.fleet.kill(victimOf(ctx.n))
    await awaitDetection(ctx, observersOf(ctx.n), faultAt)(detectBoundMs)
    return faultAt
  },
  heal: async () => {}
})

/** SIGSTOP of one agent for `stopMs`, then SIGCONT: no restart, the same process must come back. */
export const pause = (stopMs: number, healBoundMs: number): Scenario => ({
  id: "sigstop",
  title: `one agent SIGSTOPped ${seconds(stopMs)}, then SIGCONT`,
  target: "declared failed; after SIGCONT Alive in every view ≤ 2 s",
  systems: ["shoal", "serf"],
  detect: observersOf,
  mustDetect: true,
  healBoundMs,
  inject: async (ctx) => {
    ctx.fleet.current(victimOf(ctx.n)).signal("SIGSTOP")
    const faultAt = now()
    await sleep(stopMs)
    return faultAt
  },
  heal: async (ctx) => {
    ctx.fleet.current(victimOf(ctx.n)).signal("SIGCONT")
    ctx.fleet.notify()
  }
})

/** Restarts the victim `restarts` times, `everyMs` apart (SIGKILL, then a new life on the same address). */
const restartLoop = async (ctx: ScenarioContext, restarts: number, everyMs: number, sameId: boolean) => {
  const victim = victimOf(ctx.n)
  const faultAt = now()
  for (let k = 1; k <= restarts; k++) {
    await ctx.fleet.kill(victim)
    ctx.fleet.spawn(victim, sameId ? { sameKey: true, tags: { life: String(k) } } : {})
    await sleep(everyMs)
  }
  return faultAt
}

/**
 * How long each observer kept a previous life's id Alive after it first saw
 * the next life Alive (the ghost), over every restart and observer.
 */
const ghosts = (ctx: ScenarioContext, end: number, boundMs: number) => {
  const victim = victimOf(ctx.n)
  const lives = ctx.fleet.lives[victim] ?? []
  const observers = othersThan(ctx.n, victim).map((o) => ctx.fleet.current(o))
  let maxMs = 0
  let overBound = 0
  let unseen = 0
  for (let k = 1; k < lives.length; k++) {
    const [old, next] = [lives[k - 1]!, lives[k]!]
    for (const observer of observers as ReadonlyArray<AgentLife>) {
      const seen = observer.firstAt(next.key, ["Alive"], next.spawnedAt)
      if (seen === undefined) {
        unseen++
        continue
      }
      if (observer.stateAt(old.key, seen) !== "Alive") continue
      const gone = observer.transitions.find((tr) => tr.t > seen && tr.subject === old.key && tr.state !== "Alive")?.t
      const ghost = (gone ?? end) - seen
      maxMs = Math.max(maxMs, ghost)
      if (ghost > boundMs) overBound++
    }
  }
  return { maxMs: Math.round(maxMs), overBound, unseen }
}

/** The victim restarted on the same address with a new id, `restarts` times `everyMs` apart. */
export const restartNewId = (restarts: number, everyMs: number, healBoundMs: number, probeIntervalMs = 1000) =>
  ({
    id: "restart-new-id",
    title: `same-address restart with a new id, ${restarts} times ${seconds(everyMs)} apart`,
    target: "no ghost (a previous id) Alive for more than one probe interval after the new id is seen",
    systems: ["shoal"],
    mustDetect: false,
    healBoundMs,
    inject: (ctx) => restartLoop(ctx, restarts, everyMs, false),
    heal: async () => {},
    evaluate: (ctx, times) => {
      const g = ghosts(ctx, times.end, probeIntervalMs)
      const checks: Array<Check> = [
        {
          name: `no previous id Alive > ${probeIntervalMs} ms after its successor is seen`,
          ok: g.overBound === 0,
          detail: `longest ghost ${g.maxMs} ms; ${g.overBound} (observer, restart) pairs over the bound`
        }
      ]
      return { figures: { ghostMaxMs: g.maxMs, ghostsOverBound: g.overBound, restartsUnseen: g.unseen }, checks }
    }
  }) satisfies Scenario

/** The victim restarted fast with the same id and a new tag each time (`life=k`). */
export const restartSameId = (restarts: number, everyMs: number, healBoundMs: number): Scenario => ({
  id: "restart-same-id",
  title: `fast restart with the same id and a new tag, ${restarts} times ${seconds(everyMs)} apart`,
  target: "the restarted member Alive with its new tags in every view (memberlist refutes the stale Alive)",
  systems: ["shoal"],
  mustDetect: false,
  healBoundMs,
  expectedTags: (fleet) => (slot) => (slot === fleet.size - 1 ? { life: String(restarts) } : undefined),
  inject: (ctx) => restartLoop(ctx, restarts, everyMs, true),
  heal: async () => {}
})
