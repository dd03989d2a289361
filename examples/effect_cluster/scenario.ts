/**
 * One failover, measured: a throw-away PostgreSQL, three runners and a
 * client (see the README's diagram), the conversations warmed up until each
 * has settled on a runner, then a fault on the runner hosting
 * `conversation-0`:
 *
 * - `sigkill`: the process is killed (its ports refuse connections at once);
 * - `sigstop`: the process is paused (its connections stay open, nothing
 *   answers), and continued once the conversations have moved;
 * - `cut`: every packet to and from its host is dropped by nftables on the
 *   virtual switch (connects hang), and the network healed once they moved.
 *
 * `unavailableMillis` is, for the conversations that were on that runner,
 * the longest time from the fault to their first reply from another runner;
 * `lostMessages` counts acknowledged lines (a `Say` that got its reply)
 * missing from the conversations' `History` at the end. A `cut` needs the
 * virtual network (`network: "namespaces"`, root); the other faults run on
 * it or on 127.0.0.1.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { NetworkFaults } from "../../bench/faults/network-faults.ts"
import { type Host, Topology } from "../../bench/faults/topology.ts"
import { SCHEMA } from "./Conversation.ts"
import { type Postgres, startPostgres, type Wrap } from "./postgres.ts"
import { Child, now, sleep } from "./processes.ts"
import type { ClientSettings, Endpoint, HealthMode, RunnerSettings } from "./settings.ts"

export type Fault = "sigkill" | "sigstop" | "cut"

export const FAULTS: ReadonlyArray<Fault> = ["sigkill", "sigstop", "cut"]

export interface ScenarioOptions {
  readonly health: HealthMode
  readonly fault: Fault
  /** `loopback`: every process on 127.0.0.1; `namespaces`: one host each on a virtual LAN (root). */
  readonly network: "loopback" | "namespaces"
  readonly conversations?: number | undefined
  readonly intervalMillis?: number | undefined
  /** Loopback only: the first of the ports used (PostgreSQL; runners +1…+3, gossip +11…+13, client +20). */
  readonly basePort?: number | undefined
  /** How long the conversations may stay unavailable before the run counts as not recovered. */
  readonly recoveryDeadlineMillis?: number | undefined
  readonly log?: ((line: string) => void) | undefined
}

export interface ScenarioResult {
  readonly health: HealthMode
  readonly fault: Fault
  readonly network: ScenarioOptions["network"]
  readonly victim: string
  /** The conversations the victim hosted at the fault. */
  readonly moved: ReadonlyArray<string>
  /** Per moved conversation: fault → first reply from another runner (undefined: never within the deadline). */
  readonly unavailable: Readonly<Record<string, number | undefined>>
  /** The longest of those; undefined when one never came back. */
  readonly unavailableMillis: number | undefined
  readonly recovered: boolean
  readonly acknowledged: number
  readonly lostMessages: number
  readonly lost: ReadonlyArray<{ readonly conversation: string; readonly seq: number }>
  /** Calls that failed (and were sent again). */
  readonly failedCalls: number
}

const here = fileURLToPath(new URL(".", import.meta.url))
const RUNNERS = 3
const RUNNER_PORT = 34431
const GOSSIP_PORT = 7946
const PG_PORT = 5432

interface Place {
  readonly host: string
  readonly wrap: Wrap
}

interface Heard {
  readonly t: number
  readonly conversation: string
  readonly seq: number
  readonly runner: string
}

const asIs: Wrap = (cmd, args) => [cmd, [...args]]

export const runScenario = async (options: ScenarioOptions): Promise<ScenarioResult> => {
  const log = options.log ?? (() => {})
  const conversations = options.conversations ?? 4
  const recoveryDeadline = options.recoveryDeadlineMillis ?? 120_000
  const base = options.basePort ?? 24_000
  const loopback = options.network === "loopback"
  if (options.fault === "cut" && loopback) throw new Error("a network cut needs network: 'namespaces'")

  const work = mkdtempSync(join(tmpdir(), "shoal-effect-cluster-"))
  const children: Array<Child> = []
  let topology: Topology | undefined
  let postgres: Postgres | undefined
  let succeeded = false
  try {
    // Where everything runs: 0 = PostgreSQL, 1..3 = runners, 4 = client.
    let places: Array<Place>
    if (loopback) {
      places = Array.from({ length: RUNNERS + 2 }, () => ({ host: "127.0.0.1", wrap: asIs }))
    } else {
      const t = Topology.create(RUNNERS + 2)
      topology = t
      places = t.hosts.map((h: Host) => ({ host: h.address, wrap: (cmd, args) => t.wrap(h, cmd, args) }))
    }
    const place = (i: number) => places[i]!
    const port = (offset: number, fixed: number) => (loopback ? base + offset : fixed)
    const pgEndpoint: Endpoint = { host: place(0).host, port: port(0, PG_PORT) }
    const runnerEndpoint = (i: number): Endpoint => ({ host: place(i + 1).host, port: port(1 + i, RUNNER_PORT) })
    const gossipEndpoint = (i: number): Endpoint => ({ host: place(i + 1).host, port: port(11 + i, GOSSIP_PORT) })
    const seeds = Array.from({ length: RUNNERS }, (_, i) => `${gossipEndpoint(i).host}:${gossipEndpoint(i).port}`)
    const shoal = options.health === "shoal"

    postgres = await startPostgres({ ...pgEndpoint, wrap: place(0).wrap, log })
    postgres.psql(SCHEMA)

    const node = process.execPath
    const runners: Array<Child> = []
    let lastReady = 0
    for (let i = 0; i < RUNNERS; i++) {
      const settings: RunnerSettings = {
        name: `runner-${i + 1}`,
        runner: runnerEndpoint(i),
        health: options.health,
        postgres: pgEndpoint,
        ...(shoal ? { gossip: { bind: gossipEndpoint(i), seeds: seeds.filter((_, j) => j !== i) } } : {})
      }
      const child = new Child(
        settings.name,
        place(i + 1).wrap(node, [join(here, "runner.ts"), JSON.stringify(settings)]),
        join(work, `${settings.name}.log`)
      )
      children.push(child)
      runners.push(child)
      lastReady = (await child.waitForLine((text) => text === "READY", 60_000, "READY")).t
    }
    const runnerName = new Map(runners.map((r, i) => [`${runnerEndpoint(i).host}:${runnerEndpoint(i).port}`, r.name]))

    const clientSettings: ClientSettings = {
      health: options.health,
      postgres: pgEndpoint,
      conversations,
      intervalMillis: options.intervalMillis ?? 100,
      ...(shoal ? { gossip: { bind: { host: place(RUNNERS + 1).host, port: port(20, GOSSIP_PORT) }, seeds } } : {})
    }
    const client = new Child(
      "client",
      place(RUNNERS + 1).wrap(node, [join(here, "client.ts"), JSON.stringify(clientSettings)]),
      join(work, "client.log")
    )
    children.push(client)
    const heard: Array<Heard> = []
    let failedCalls = 0
    const parse = (text: string): Record<string, unknown> | undefined => {
      if (!text.startsWith("{")) return undefined
      try {
        return JSON.parse(text) as Record<string, unknown>
      } catch {
        return undefined
      }
    }
    client.onLine((line) => {
      const message = parse(line.text)
      if (message?.type === "heard") {
        heard.push({
          t: line.t,
          conversation: String(message.conversation),
          seq: Number(message.seq),
          runner: runnerName.get(String(message.runner)) ?? String(message.runner)
        })
      } else if (message?.type === "error") failedCalls++
    })

    // Warm-up: every conversation has settled on one runner (the shards stop moving a few
    // refreshes after the last runner joined).
    const ids = Array.from({ length: conversations }, (_, i) => `conversation-${i}`)
    const settled = () =>
      now() - lastReady > 10_000 &&
      ids.every((id) => {
        const last = heard.filter((h) => h.conversation === id).slice(-10)
        return last.length === 10 && last.every((h) => h.runner === last[0]!.runner) && now() - last[9]!.t < 1_000
      })
    const warmupDeadline = now() + 90_000
    while (!settled()) {
      if (now() > warmupDeadline) throw new Error("the conversations did not settle within 90 s")
      if (!client.running) throw new Error("the client exited during the warm-up")
      await sleep(100)
    }
    const lastRunner = (id: string) => heard.filter((h) => h.conversation === id).at(-1)!.runner
    const victimName = lastRunner("conversation-0")
    const victimIndex = runners.findIndex((r) => r.name === victimName)
    const victim = runners[victimIndex]!
    const moved = ids.filter((id) => lastRunner(id) === victimName)

    const faults = topology === undefined ? undefined : new NetworkFaults(topology)
    const faultAt = now()
    if (options.fault === "sigkill") victim.signal("SIGKILL")
    else if (options.fault === "sigstop") victim.signal("SIGSTOP")
    else faults!.blackhole(victimIndex + 1)
    log(
      `${options.health} ${options.fault}: ${victimName} hosts ${moved.join(", ")}; fault at ${new Date(faultAt).toISOString()}`
    )

    const unavailable: Record<string, number | undefined> = {}
    const backAt = (id: string) => heard.find((h) => h.conversation === id && h.t > faultAt && h.runner !== victimName)
    const recoveryEnds = faultAt + recoveryDeadline
    while (now() < recoveryEnds && !moved.every((id) => backAt(id) !== undefined)) await sleep(50)
    for (const id of moved) {
      const back = backAt(id)
      unavailable[id] = back === undefined ? undefined : Math.round(back.t - faultAt)
    }
    const recovered = moved.every((id) => unavailable[id] !== undefined)
    log(`${options.health} ${options.fault}: ${JSON.stringify(unavailable)}`)

    // The paused runner resumes, the cut one is reachable again: it must not answer for what it lost.
    await sleep(1_000)
    if (options.fault === "sigstop") victim.signal("SIGCONT")
    if (options.fault === "cut") faults!.heal()
    await sleep(options.fault === "sigkill" ? 2_000 : 5_000)

    client.write("finish\n")
    await client.waitForLine((text) => text.includes('"done"'), 180_000, "the end of the conversations")
    const histories = new Map<string, ReadonlySet<number>>()
    for (const line of client.lines) {
      const message = parse(line.text)
      if (message?.type === "history") {
        histories.set(String(message.conversation), new Set(message.seqs as ReadonlyArray<number>))
      }
    }
    const lost = heard
      .filter((h) => !(histories.get(h.conversation)?.has(h.seq) ?? false))
      .map((h) => ({ conversation: h.conversation, seq: h.seq }))
    const values = Object.values(unavailable)
    succeeded = true
    return {
      health: options.health,
      fault: options.fault,
      network: options.network,
      victim: victimName,
      moved,
      unavailable,
      unavailableMillis: recovered ? Math.max(...(values as Array<number>)) : undefined,
      recovered,
      acknowledged: heard.length,
      lostMessages: lost.length,
      lost,
      failedCalls
    }
  } finally {
    await Promise.all(children.map((child) => child.stop()))
    await postgres?.stop()
    topology?.delete()
    if (succeeded && process.env.EFFECT_CLUSTER_KEEP_LOGS !== "1") rmSync(work, { recursive: true, force: true })
    else log(`logs kept in ${work}`)
  }
}
