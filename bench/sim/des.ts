/**
 * The simulation benchmark's scenarios on the discrete-event simulator
 * (`src/cluster/gossip/simulator/`): the same steps as the Effect-level
 * scenarios in `bench/sim.ts` — the same batched start, the same waits
 * sampled every 100 ms, the same crash, join and leave — over bare engines,
 * without fibers or `TestClock`. What a `Cluster` adds around its engine
 * (the `healthy` tag, starting the rounds, joining with retries) the
 * simulator's nodes do too, so the figures compare.
 */
import { Effect } from "effect"
import * as ClusterConfig from "../../src/cluster/Config.ts"
import { type EngineSettings, settingsFromConfig } from "../../src/cluster/gossip/engine/Settings.ts"
import type { RegistryChange } from "../../src/cluster/gossip/Registry.ts"
import type { SimulatedNode } from "../../src/cluster/gossip/simulator/SimulatedNode.ts"
import { Simulator } from "../../src/cluster/gossip/simulator/Simulator.ts"
import { Address, type NodeId, type NodeState } from "../../src/cluster/Node.ts"
import { fmt, heapAfterGc, secs } from "./output.ts"
import type { LossRow, RunOptions, SizeRow } from "./rows.ts"
import { defaultTimings, probeFailure } from "./theory.ts"

/** The address of node `index`: 10.x.y.z:7946, as many as a 10/8 network holds. */
export const desAddressOf = (index: number) =>
  new Address(
    { host: `10.${Math.floor(index / 62_500)}.${Math.floor(index / 250) % 250}.${(index % 250) + 1}`, port: 7946 },
    { disableChecks: true }
  )

/** The engine settings every node of a run shares (the configuration's defaults, with `input` over them). */
export const desSettings = (input: ClusterConfig.Input = {}): EngineSettings =>
  settingsFromConfig(Effect.runSync(ClusterConfig.make({ nodeName: "n", bindAddress: "10.0.0.1:7946", ...input })))

/** One run: a simulator and its nodes. */
export interface DesCluster {
  readonly sim: Simulator
  readonly settings: EngineSettings
  readonly nodes: Array<SimulatedNode>
}

/** A simulator seeded with `seed`, not counting bytes (a scenario turns that on); `onChange` sees every table change. */
export const desCluster = (
  seed: number,
  settings: EngineSettings,
  onChange?: (node: SimulatedNode, change: RegistryChange) => void
): DesCluster => ({ sim: new Simulator({ seed, onChange, bytes: "off" }), settings, nodes: [] })

/** Starts node `index` joining through `seeds`, moving time in 1 ms steps until it joined. */
export const desStartMember = (cluster: DesCluster, index: number, seeds: ReadonlyArray<SimulatedNode>) => {
  const node = cluster.sim.addNode({
    name: `n${index}`,
    address: desAddressOf(index),
    settings: cluster.settings,
    seeds: seeds.map((s) => s.address)
  })
  while (!node.joined && node.join !== undefined) cluster.sim.advance(1)
  return node
}

/**
 * Starts `n` nodes: node 0 alone, then batches of `batch` at once, each
 * joining through one node drawn among those already running — as
 * `startMembers` does on the Effect-level network.
 */
export const desStartMembers = (cluster: DesCluster, n: number, batch: number): Array<SimulatedNode> => {
  const { sim, nodes } = cluster
  nodes.push(desStartMember(cluster, 0, []))
  while (nodes.length < n) {
    const running = nodes.length
    const started: Array<SimulatedNode> = []
    for (let i = running; i < Math.min(n, running + batch); i++) {
      const seed = nodes[Math.floor(sim.rng() * running)]!
      started.push(
        sim.addNode({ name: `n${i}`, address: desAddressOf(i), settings: cluster.settings, seeds: [seed.address] })
      )
    }
    while (started.some((node) => !node.joined && node.join !== undefined)) sim.advance(1)
    nodes.push(...started)
  }
  return nodes
}

/** When the first and the last observer satisfied a condition (ms from the call, at sample resolution). */
export interface Waited {
  readonly first: number | undefined
  readonly all: number | undefined
}

/** `waitForAll` of the Effect-level bench: samples the pending observers every `step`, then all once more. */
export const desWaitForAll = (
  sim: Simulator,
  observers: ReadonlyArray<SimulatedNode>,
  condition: (observer: SimulatedNode) => boolean,
  limit: number,
  step = 100
): Waited => {
  let pending: ReadonlyArray<SimulatedNode> = observers
  let first: number | undefined
  for (let t = 0; t <= limit; t += step) {
    const still = pending.filter((o) => !condition(o))
    if (first === undefined && still.length < observers.length) first = t
    if (still.length === 0) {
      const recheck = observers.filter((o) => !condition(o))
      if (recheck.length === 0) return { first, all: t }
      still.push(...recheck)
    }
    pending = still
    sim.advance(step)
  }
  return { first, all: undefined }
}

/** Whether `observer` holds `subject` in one of `states` (`undefined`: or not at all). */
export const desHolds =
  (subject: NodeId, states: ReadonlyArray<NodeState | undefined>) =>
  (observer: SimulatedNode): boolean =>
    states.includes(observer.engine.table.get(subject)?.state)

/** Whether `observer` sees exactly `n` members alive, itself included. */
export const desSeesAlive =
  (n: number) =>
  (observer: SimulatedNode): boolean =>
    observer.engine.table.count("Alive") === n

/** The engine counters that the benchmark sums, over `nodes`. */
export const desSumStats = (nodes: ReadonlyArray<SimulatedNode>) => {
  const total = { suspicionsRaised: 0, deathsDeclared: 0, refutations: 0, failedProbes: 0, probes: 0 }
  for (const node of nodes) {
    const s = node.engine.stats()
    total.suspicionsRaised += s.suspicionsRaised
    total.deathsDeclared += s.deathsDeclared
    total.refutations += s.refutations
    total.failedProbes += s.failedProbes
    total.probes += s.probes
  }
  return total
}

// --- the scenarios -----------------------------------------------------------

const STEP = 100

const pick = <A>(sim: Simulator, items: ReadonlyArray<A>, avoid: ReadonlySet<A>): A => {
  while (true) {
    const item = items[Math.floor(sim.rng() * items.length)]!
    if (!avoid.has(item)) return item
  }
}

/** Crashes `victim`; simulated ms until the first and every survivor hold it dead (or reaped). */
const crashAndWait = (sim: Simulator, victim: SimulatedNode, survivors: ReadonlyArray<SimulatedNode>) => {
  sim.crash(victim)
  return desWaitForAll(sim, survivors, desHolds(victim.id, ["Dead", undefined]), 120_000, STEP)
}

/**
 * The scale scenario of `bench/sim.ts` on the discrete-event simulator:
 * formation, traffic over a quiet period (with the engine's own CPU time per
 * node per protocol period), a join, a crash, a leave.
 */
export const desScale = (n: number, seed: number, options: RunOptions): SizeRow => {
  const wall = performance.now()
  const heapBefore = heapAfterGc()
  const settings = desSettings()
  const cluster = desCluster(seed, settings)
  const { sim } = cluster
  const members = desStartMembers(cluster, n, options.batch)
  const startupMs = sim.now
  const formed = desWaitForAll(sim, members, desSeesAlive(n), 600_000, STEP)
  const formationMs = formed.all === undefined ? undefined : startupMs + formed.all
  const heap = heapAfterGc()
  const heapPerNodeKiB = heap === undefined || heapBefore === undefined ? undefined : (heap - heapBefore) / n / 1024
  options.log(
    `N=${n}: formed in ${fmt(formationMs)} simulated (${secs(wall)} wall, ${sim.events} events), heap ${heapPerNodeKiB === undefined ? "—" : `${heapPerNodeKiB.toFixed(0)} KiB/node, ${((heapPerNodeKiB * 1024) / n).toFixed(0)} B/member/node`}`
  )

  // traffic and the engine's own cost over the quiet period (bytes: every 16th datagram encoded, counted 16 times)
  const before = sim.totals
  sim.bytes = "sampled"
  sim.timeEngine = true
  sim.engineMillis = 0
  sim.advance(options.quietMillis)
  sim.timeEngine = false
  sim.bytes = "off"
  const after = sim.totals
  const quiet = options.quietMillis / 1000
  const packetsPerNodePerSec = quiet > 0 ? (after.packetsSent - before.packetsSent) / n / quiet : undefined
  const bytesPerNodePerSec = quiet > 0 ? (after.bytesSent - before.bytesSent) / n / quiet : undefined
  const periods = options.quietMillis / settings.probeInterval
  const engineMicrosPerNodePerPeriod = periods > 0 ? (sim.engineMillis * 1000) / n / periods : undefined
  const quietStats = desSumStats(members)
  options.log(
    `N=${n}: ${packetsPerNodePerSec?.toFixed(1) ?? "—"} packets, ${bytesPerNodePerSec?.toFixed(0) ?? "—"} bytes /node/s; engine ${engineMicrosPerNodePerPeriod?.toFixed(0) ?? "—"} µs/node/period; ${quietStats.suspicionsRaised} false suspicions`
  )

  // one more node joins through a random member
  const seed0 = members[Math.floor(sim.rng() * n)]!
  const joinedAt = sim.now
  const newcomer = desStartMember(cluster, n, [seed0])
  const joinStart = sim.now - joinedAt
  const joined = desWaitForAll(sim, members, desHolds(newcomer.id, ["Alive"]), 120_000, STEP)
  const joinMs = joined.all === undefined ? undefined : joinStart + joined.all
  const everyone = [...members, newcomer]
  options.log(`N=${n}: join known by all after ${fmt(joinMs)} (${secs(wall)} wall)`)
  sim.advance(5_000)

  // one crashes
  const victim = pick(sim, everyone, new Set([newcomer]))
  const survivors = everyone.filter((m) => m !== victim)
  const crashed = crashAndWait(sim, victim, survivors)
  options.log(
    `N=${n}: crash known by the first after ${fmt(crashed.first)}, by all after ${fmt(crashed.all)} (${secs(wall)} wall)`
  )

  // one leaves
  const leaver = pick(sim, survivors, new Set([newcomer]))
  const rest = survivors.filter((m) => m !== leaver)
  sim.leave(leaver)
  const left = desWaitForAll(sim, rest, desHolds(leaver.id, ["Left", undefined]), 120_000, STEP)
  options.log(`N=${n}: leave known by all after ${fmt(left.all)} (${secs(wall)} wall, ${sim.events} events)`)

  return {
    n,
    startupMs,
    formationMs,
    joinMs,
    crashFirstMs: crashed.first,
    crashAllMs: crashed.all,
    leaveMs: left.all,
    packetsPerNodePerSec,
    bytesPerNodePerSec,
    heapPerNodeKiB,
    falseSuspicions: quietStats.suspicionsRaised,
    falseDeaths: quietStats.deathsDeclared,
    wallSeconds: (performance.now() - wall) / 1000,
    engine: "des",
    heapPerMemberBytes: heapPerNodeKiB === undefined ? undefined : (heapPerNodeKiB * 1024) / n,
    engineMicrosPerNodePerPeriod,
    events: sim.events
  }
}

/** The loss scenario of `bench/sim.ts` on the discrete-event simulator. */
export const desLossy = (n: number, loss: number, tcpPings: boolean, seed: number, options: RunOptions): LossRow => {
  const wall = performance.now()
  const failures = { counting: false, events: 0, members: new Set<NodeId>() }
  const cluster = desCluster(seed, desSettings({ tcpPings }), (_node, change) => {
    if (!failures.counting || change._tag !== "Applied") return
    if (change.current.state === "Dead" && change.previous?.state !== "Dead") {
      failures.events++
      failures.members.add(change.current.id)
    }
  })
  const { sim } = cluster
  const members = desStartMembers(cluster, n, options.batch)
  desWaitForAll(sim, members, desSeesAlive(n), 600_000, STEP)
  const before = desSumStats(members)
  failures.counting = true
  sim.faults.defaults = { ...sim.faults.defaults, loss: loss / 100 }
  sim.advance(options.windowSeconds * 1000)
  failures.counting = false
  const after = desSumStats(members)
  const probes = after.probes - before.probes
  options.log(`N=${n} loss ${loss}% tcpPings ${tcpPings}: window done (${secs(wall)} wall)`)
  const victim = pick(sim, members, new Set())
  const survivors = members.filter((m) => m !== victim)
  const crashed = crashAndWait(sim, victim, survivors)
  return {
    n,
    loss,
    tcpPings,
    windowSeconds: options.windowSeconds,
    probes,
    failedProbes: after.failedProbes - before.failedProbes,
    suspicions: after.suspicionsRaised - before.suspicionsRaised,
    expectedSuspicions: probes * probeFailure(loss / 100, defaultTimings.indirectChecks),
    refutations: after.refutations - before.refutations,
    deathsDeclared: after.deathsDeclared - before.deathsDeclared,
    failedEvents: failures.events,
    membersDeclaredDead: failures.members.size,
    crashFirstMs: crashed.first,
    crashAllMs: crashed.all,
    wallSeconds: (performance.now() - wall) / 1000,
    engine: "des"
  }
}
