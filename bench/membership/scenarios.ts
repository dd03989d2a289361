/**
 * The two experiments, each on a fresh cluster of one system:
 *
 * - `runMain`: formation, idle cost, crash detection, graceful leave;
 * - `runLoss`: a window at 10 % UDP loss with nobody failing (every suspicion
 *   and failure is false), then a crash under the same loss.
 *
 * Times are harness receive times of the agents' output lines (see cluster.ts).
 */
import { mkdirSync } from "node:fs"
import { type Agent, Cluster, now, sleep } from "./cluster.ts"
import { cpuSeconds, type Netns, rssKiB } from "./host.ts"
import type { MembershipSystem } from "./systems.ts"

export interface Timeouts {
  readonly ready: number
  readonly formation: number
  readonly crash: number
  readonly leave: number
}

export interface RunOptions {
  readonly netns: Netns
  readonly basePort: number
  readonly logDir: string
  readonly settleMs: number
  readonly idleMs: number
  readonly timeouts: Timeouts
}

const round = (ms: number | undefined) => (ms === undefined ? null : Math.round(ms))

export interface Formation {
  /** Joiners spawned (the seed is already up) → every agent sees all N alive. */
  readonly formationMs: number | null
  /** The last joiner ready (bound and joined) → every agent sees all N alive. */
  readonly afterLastReadyMs: number | null
  /** Median spawn → ready of the joiners: process start-up plus the join itself. */
  readonly startupMs: number | null
}

export interface Detection {
  readonly victim: string
  readonly observers: number
  /** First survivor that suspects the victim (shoal, happn-swim: a Suspect event; Serf: a failed-probe log line). */
  readonly firstSuspectMs: number | null
  readonly firstMs: number | null
  /** Every survivor declared it; null when one never did within the timeout. */
  readonly allMs: number | null
  readonly declaredBy: number
}

export interface LeaveResult extends Detection {
  /** Observers that recorded the leaver as failed instead of left (graceful systems only). */
  readonly seenAsFailed: number
}

export interface IdleCost {
  readonly windowMs: number
  readonly nodes: number
  readonly cpuPercentPerNode: number
  readonly rssMiBPerNode: number
  readonly udpPacketsPerNodePerSec: number
  readonly udpBytesPerNodePerSec: number
  readonly tcpBytesPerNodePerSec: number
  readonly cpuPercentByNode: ReadonlyArray<number>
  readonly rssMiBByNode: ReadonlyArray<number>
}

export interface MainRun {
  readonly system: string
  readonly n: number
  readonly rep: number
  readonly startedAt: string
  readonly formation: Formation
  readonly idle: IdleCost | null
  /** Suspicions raised from formation to the crash, with nobody failing and no loss. */
  readonly falseSuspicions: number | null
  readonly crash: Detection | null
  readonly leave: LeaveResult | null
  /** `failed` observations about live members (neither the crashed node nor, for happn-swim, the leaver). */
  readonly falseFailures: number
  readonly errors: ReadonlyArray<string>
}

export interface LossRun {
  readonly system: string
  readonly n: number
  readonly rep: number
  readonly startedAt: string
  readonly lossPercent: number
  readonly windowMs: number
  /** UDP packets sent during the window and the share nftables dropped. */
  readonly udpPackets: number
  readonly measuredLossPercent: number
  /** Failed probes that accused a member (shoal: `suspicionsRaised`; Serf: "Suspect X has failed, no acks received"; happn-swim: its detector's suspect event). */
  readonly suspicionsRaised: number
  /** Suspect events summed over observers (shoal, happn-swim; Serf reports none). */
  readonly suspectEvents: number | null
  readonly refutations: number
  /** Suspicion timers that ran out (shoal: `deathsDeclared`; Serf: "Marking X as failed"; happn-swim: not reported). */
  readonly deathsDeclared: number | null
  /** Serf only: probes that only memberlist's TCP fallback ping saved from raising a suspicion. */
  readonly tcpRescues: number | null
  /** shoal only: TCP fallback pings answered (counter `streamPingAcks`), whether or not a helper also got through. */
  readonly tcpPingAcks: number | null
  /** `failed` observations about live members, summed over observers. */
  readonly falseFailureEvents: number
  /** Distinct live members that at least one observer declared failed. */
  readonly membersDeclaredFailed: number
  /** Live members some observer still held failed when the window closed (not re-admitted). */
  readonly stillFailedAtEnd: number
  readonly crash: Detection | null
  readonly errors: ReadonlyArray<string>
}

const median = (xs: ReadonlyArray<number>) => {
  if (xs.length === 0) return undefined
  const s = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

/** Starts the seed, then every joiner at once, and waits until all N see all N alive. */
const form = async (cluster: Cluster, n: number, timeouts: Timeouts, errors: Array<string>): Promise<Formation> => {
  const seed = cluster.spawn(0)
  const seedReady = await cluster.waitUntil(() => seed.readyAt !== undefined || !seed.alive, timeouts.ready)
  if (seedReady === undefined || seed.readyAt === undefined) {
    throw new Error(`${seed.name} did not start within ${timeouts.ready} ms (see its log)`)
  }
  const spawnAt = now()
  for (let i = 1; i < n; i++) cluster.spawn(i)
  const agents = cluster.agents
  const converged = () =>
    agents.every((a) => a.readyAt !== undefined && agents.every((b) => b === a || a.view.get(b.name) === "alive"))
  const at = await cluster.waitUntil(() => converged() || cluster.unexpectedExits().length > 0, timeouts.formation)
  for (const a of cluster.unexpectedExits()) errors.push(`${a.name} exited during formation (code ${a.exit?.code})`)
  if (at === undefined || !converged()) {
    errors.push(`no convergence within ${timeouts.formation} ms`)
    return { formationMs: null, afterLastReadyMs: null, startupMs: null }
  }
  const joiners = agents.slice(1)
  const lastReady = Math.max(...joiners.map((a) => a.readyAt!))
  return {
    formationMs: round(at - spawnAt),
    afterLastReadyMs: round(Math.max(0, at - lastReady)),
    startupMs: round(median(joiners.map((a) => a.readyAt! - a.spawnedAt)))
  }
}

const measureIdle = async (cluster: Cluster, netns: Netns, windowMs: number): Promise<IdleCost> => {
  const agents = cluster.running()
  const cpu0 = agents.map((a) => cpuSeconds(a.pid))
  const c0 = netns.counters()
  const t0 = now()
  await sleep(windowMs)
  const cpu1 = agents.map((a) => cpuSeconds(a.pid))
  const c1 = netns.counters()
  const seconds = (now() - t0) / 1000
  const rss = agents.map((a) => (rssKiB(a.pid) ?? 0) / 1024)
  const cpu = agents.map((_, i) => ((cpu1[i] ?? 0) - (cpu0[i] ?? 0)) / seconds).map((x) => x * 100)
  const n = agents.length
  const mean = (xs: ReadonlyArray<number>) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length)
  return {
    windowMs: Math.round(seconds * 1000),
    nodes: n,
    cpuPercentPerNode: mean(cpu),
    rssMiBPerNode: mean(rss),
    udpPacketsPerNodePerSec: (c1.udpPackets - c0.udpPackets) / seconds / n,
    udpBytesPerNodePerSec: (c1.udpBytes - c0.udpBytes) / seconds / n,
    tcpBytesPerNodePerSec: (c1.tcpBytes - c0.tcpBytes) / seconds / n,
    cpuPercentByNode: cpu.map((x) => Math.round(x * 100) / 100),
    rssMiBByNode: rss.map((x) => Math.round(x * 10) / 10)
  }
}

/** First time after `since` that `agent` observed one of `kinds` about `subject`. */
const firstAbout = (agent: Agent, subject: string, kinds: ReadonlyArray<string>, since: number) =>
  agent.observations.find(
    ({ t, obs }) => t >= since && kinds.includes(obs.kind) && "subject" in obs && obs.subject === subject
  )?.t

/**
 * Sends `signal` to `victim` and waits until every survivor holds it in one of
 * `states`; then reads the first and last such observation per survivor.
 */
const detect = async (
  cluster: Cluster,
  victim: Agent,
  signal: NodeJS.Signals,
  states: ReadonlyArray<"failed" | "left">,
  timeoutMs: number
): Promise<Detection> => {
  const survivors = cluster.running().filter((a) => a !== victim)
  const since = now()
  victim.kill(signal)
  await cluster.waitUntil(
    () => survivors.every((s) => !s.alive || states.includes(s.view.get(victim.name) as "failed")),
    timeoutMs
  )
  const times = survivors
    .map((s) => firstAbout(s, victim.name, states, since))
    .filter((t): t is number => t !== undefined)
  const suspects = survivors
    .map((s) => firstAbout(s, victim.name, ["suspect", "probeFailed", ...states], since))
    .filter((t): t is number => t !== undefined)
  return {
    victim: victim.name,
    observers: survivors.length,
    firstSuspectMs: suspects.length === 0 ? null : round(Math.min(...suspects) - since),
    firstMs: times.length === 0 ? null : round(Math.min(...times) - since),
    allMs: times.length === survivors.length ? round(Math.max(...times) - since) : null,
    declaredBy: times.length
  }
}

/**
 * The member to crash: the last-started one that every other running agent
 * holds alive (a member some observer already wrongly holds failed, which
 * happn-swim never re-admits, would give no new observation to time).
 */
const pickVictim = (cluster: Cluster, avoid: ReadonlySet<Agent> = new Set()): Agent | undefined => {
  const running = cluster.running()
  return [...running]
    .reverse()
    .find(
      (v) => v !== cluster.agents[0] && !avoid.has(v) && running.every((a) => a === v || a.view.get(v.name) === "alive")
    )
}

const countFailedAbout = (agents: ReadonlyArray<Agent>, excluded: ReadonlySet<string>, from = 0, to = Infinity) => {
  let events = 0
  const members = new Set<string>()
  for (const a of agents) {
    for (const { t, obs } of a.observations) {
      if (t < from || t > to || obs.kind !== "failed" || excluded.has(obs.subject)) continue
      events++
      members.add(obs.subject)
    }
  }
  return { events, members: members.size }
}

const newCluster = (system: MembershipSystem, n: number, options: RunOptions, tag: string) => {
  const logDir = `${options.logDir}/${tag}`
  mkdirSync(logDir, { recursive: true })
  return new Cluster({ system, netns: options.netns, size: n, basePort: options.basePort, logDir })
}

export const runMain = async (
  system: MembershipSystem,
  n: number,
  rep: number,
  options: RunOptions
): Promise<MainRun> => {
  const startedAt = new Date().toISOString()
  const cluster = newCluster(system, n, options, `${system.id}-n${n}-r${rep}`)
  const errors: Array<string> = []
  let idle: IdleCost | null = null
  let crash: Detection | null = null
  let leave: LeaveResult | null = null
  let formation: Formation = { formationMs: null, afterLastReadyMs: null, startupMs: null }
  let falseSuspicions: number | null = null
  try {
    formation = await form(cluster, n, options.timeouts, errors)
    if (formation.formationMs !== null) {
      const quietFrom = now()
      await sleep(options.settleMs)
      idle = await measureIdle(cluster, options.netns, options.idleMs)
      falseSuspicions = suspicionsRaised(system, cluster.agents, quietFrom, now())
      const victim = pickVictim(cluster)
      if (victim === undefined) errors.push("no member that everyone holds alive to crash")
      else {
        crash = await detect(cluster, victim, "SIGKILL", ["failed"], options.timeouts.crash)
        if (crash.allMs === null) errors.push(`crash of ${victim.name}: not every survivor declared it failed`)
      }
      const leaver = n >= 3 ? pickVictim(cluster, new Set(victim === undefined ? [] : [victim])) : undefined
      if (leaver !== undefined) {
        const states = system.gracefulLeave ? (["left"] as const) : (["failed"] as const)
        const result = await detect(cluster, leaver, "SIGINT", states, options.timeouts.leave)
        const seenAsFailed = system.gracefulLeave
          ? cluster.running().filter((a) => a.view.get(leaver.name) === "failed").length
          : 0
        leave = { ...result, seenAsFailed }
        if (result.allMs === null) errors.push(`leave of ${leaver.name}: not every member saw it go`)
        await Promise.race([leaver.exited, sleep(options.timeouts.leave)])
      }
    }
  } catch (error) {
    errors.push(error instanceof Error ? error.message : String(error))
  } finally {
    await cluster.stop()
  }
  for (const a of cluster.unexpectedExits()) {
    if (!a.stoppedByHarness) errors.push(`${a.name} exited unexpectedly (code ${a.exit?.code})`)
  }
  // The crashed member, and the leaver where leaving looks like failing.
  const excluded = new Set([crash?.victim ?? ""])
  if (!system.gracefulLeave) excluded.add(leave?.victim ?? "")
  return {
    system: system.id,
    n,
    rep,
    startedAt,
    formation,
    idle,
    falseSuspicions,
    crash,
    leave,
    falseFailures: countFailedAbout(cluster.agents, excluded).events,
    errors: [...new Set(errors)]
  }
}

const countKind = (agents: ReadonlyArray<Agent>, kind: string, from: number, to: number) =>
  agents.reduce(
    (sum, a) => sum + a.observations.filter(({ t, obs }) => t >= from && t <= to && obs.kind === kind).length,
    0
  )

/** Failed probes that accused a member: shoal's `suspicionsRaised` counter, the others' log or event lines. */
const suspicionsRaised = (system: MembershipSystem, agents: ReadonlyArray<Agent>, from: number, to: number) =>
  system.family === "shoal"
    ? statsDelta(agents, "suspicionsRaised", from, to)
    : countKind(agents, "probeFailed", from, to)

/** shoal's counter `key` summed over agents: last Stats line before `to` minus last before `from`. */
const statsDelta = (agents: ReadonlyArray<Agent>, key: string, from: number, to: number) => {
  let total = 0
  for (const a of agents) {
    const at = (t: number) => a.stats.filter((s) => s.t <= t).at(-1)?.counters[key] ?? 0
    total += at(to) - at(from)
  }
  return total
}

export const runLoss = async (
  system: MembershipSystem,
  n: number,
  rep: number,
  lossPercent: number,
  windowMs: number,
  options: RunOptions
): Promise<LossRun> => {
  const startedAt = new Date().toISOString()
  const cluster = newCluster(system, n, options, `${system.id}-loss${lossPercent}-n${n}-r${rep}`)
  const errors: Array<string> = []
  const { netns } = options
  try {
    const formation = await form(cluster, n, options.timeouts, errors)
    if (formation.formationMs === null) throw new Error(`${system.id}: no convergence before the loss window`)
    await sleep(options.settleMs)
    const c0 = netns.counters()
    netns.setLoss(lossPercent)
    const from = now()
    await sleep(windowMs)
    const to = now()
    const c1 = netns.counters()
    const agents = cluster.agents
    const isShoal = system.family === "shoal"
    const failed = countFailedAbout(agents, new Set(), from, to)
    const udpPackets = c1.udpPackets - c0.udpPackets
    const stillFailed = new Set(agents.flatMap((a) => [...a.view].filter(([, v]) => v === "failed").map(([k]) => k)))
    const victim = pickVictim(cluster)
    const crash =
      victim === undefined ? null : await detect(cluster, victim, "SIGKILL", ["failed"], options.timeouts.crash)
    if (victim === undefined) errors.push("no member that everyone holds alive to crash")
    for (const a of cluster.unexpectedExits()) errors.push(`${a.name} exited unexpectedly (code ${a.exit?.code})`)
    if (crash !== null && crash.allMs === null) errors.push("crash under loss: not every survivor declared it failed")
    return {
      system: system.id,
      n,
      rep,
      startedAt,
      lossPercent,
      windowMs: Math.round(to - from),
      udpPackets,
      measuredLossPercent: udpPackets === 0 ? 0 : (100 * (c1.dropped - c0.dropped)) / udpPackets,
      suspicionsRaised: suspicionsRaised(system, agents, from, to),
      suspectEvents: system.family === "serf" ? null : countKind(agents, "suspect", from, to),
      refutations: isShoal ? statsDelta(agents, "refutations", from, to) : countKind(agents, "refuted", from, to),
      deathsDeclared: isShoal
        ? statsDelta(agents, "deathsDeclared", from, to)
        : system.family === "serf"
          ? countKind(agents, "deathDeclared", from, to)
          : null,
      tcpRescues: system.family === "serf" ? countKind(agents, "tcpRescue", from, to) : null,
      tcpPingAcks: isShoal ? statsDelta(agents, "streamPingAcks", from, to) : null,
      falseFailureEvents: failed.events,
      membersDeclaredFailed: failed.members,
      stillFailedAtEnd: stillFailed.size,
      crash,
      errors
    }
  } finally {
    netns.setLoss(0)
    await cluster.stop()
  }
}
