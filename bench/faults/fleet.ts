/**
 * The agents of one scenario: one slot per host of the topology, each running
 * one life of a system's agent at a time (agent 0 is the seed; the others
 * join through it). It spawns, signals and restarts lives, and wakes waiters
 * on every line and exit, so a wait resolves at the line that made its
 * condition true — never after a fixed sleep.
 */
import { spawn } from "node:child_process"
import { createWriteStream, mkdirSync, type WriteStream } from "node:fs"
import { createInterface } from "node:readline"
import { agentEnv } from "../../test/fixtures/agent-env.ts"
import { AgentLife, now } from "./agent-life.ts"
import type { FaultSystem } from "./systems.ts"
import type { Topology } from "./topology.ts"

/** Port every agent binds on its own host's address. */
export const GOSSIP_PORT = 7946

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

export interface FleetOptions {
  readonly system: FaultSystem
  readonly topology: Topology
  readonly logDir: string
  /** Extra flags for every shoal agent of this scenario. */
  readonly extraArgs: ReadonlyArray<string>
}

export class Fleet {
  readonly options: FleetOptions
  /** Every life ever started, by slot, in order. */
  readonly lives: Array<Array<AgentLife>> = []
  private readonly waiters = new Set<() => void>()
  private readonly logs: Array<WriteStream> = []

  constructor(options: FleetOptions) {
    this.options = options
    mkdirSync(options.logDir, { recursive: true })
  }

  get size(): number {
    return this.options.topology.hosts.length
  }

  nameOf(slot: number): string {
    return `${this.options.system.id}-${slot}`
  }

  addressOf(slot: number): string {
    return `${this.options.topology.hosts[slot]!.address}:${GOSSIP_PORT}`
  }

  /** The current (latest) life of `slot`. */
  current(slot: number): AgentLife {
    const life = this.lives[slot]?.at(-1)
    if (life === undefined) throw new Error(`slot ${slot} has no agent`)
    return life
  }

  currentLives(): Array<AgentLife> {
    return this.lives.map((ls) => ls.at(-1)).filter((l): l is AgentLife => l !== undefined)
  }

  /** The slot whose lives used `key` (a same-id restart reuses it). */
  slotOfKey(key: string): number | undefined {
    const slot = this.lives.findIndex((ls) => ls.some((l) => l.key === key))
    return slot >= 0 ? slot : undefined
  }

  /** Lives that used `key`, in any slot. */
  livesOfKey(key: string): Array<AgentLife> {
    return this.lives.flat().filter((l) => l.key === key)
  }

  /**
   * Starts a new life on `slot`: a fresh key, or the previous one when
   * `sameKey`, plus `tags`. The previous life must have ended.
   */
  spawn(slot: number, options: { readonly sameKey?: boolean; readonly tags?: Record<string, string> } = {}): AgentLife {
    const { system, topology, logDir, extraArgs } = this.options
    const previous = this.lives[slot]?.at(-1)
    if (previous?.running) throw new Error(`slot ${slot} still runs ${previous.key}`)
    const name = this.nameOf(slot)
    const key = system.newKey(name, options.sameKey === true ? previous?.key : undefined)
    const [cmd, args] = system.command({
      name,
      key,
      address: this.addressOf(slot),
      seed: slot === 0 ? undefined : this.addressOf(0),
      extraArgs,
      tags: options.tags ?? {}
    })
    const [wcmd, wargs] = topology.wrap(topology.hosts[slot]!, cmd, args)
    const child = spawn(wcmd, wargs, { stdio: ["ignore", "pipe", "pipe"], env: agentEnv })
    const lives = (this.lives[slot] ??= [])
    const life = new AgentLife(slot, lives.length, name, key, child)
    lives.push(life)
    const log = createWriteStream(`${logDir}/${name}.${life.life}.log`)
    this.logs.push(log)
    const onLine = (stream: string) => (line: string) => {
      const t = now()
      log.write(`${(t / 1000).toFixed(3)} ${stream} ${line}\n`)
      for (const obs of system.parse(line, key)) {
        if (obs.kind === "ready") life.readyAt ??= t
        else if (obs.kind === "state") life.record(t, obs.subject, obs.state, obs.tags ?? {}, obs.incarnation ?? 0)
        else life.accusations.push({ t, subject: obs.subject })
      }
      this.notify()
    }
    createInterface({ input: child.stdout! }).on("line", onLine("out"))
    createInterface({ input: child.stderr! }).on("line", onLine("err"))
    child.once("error", (error) => log.write(`spawn error: ${error.message}\n`))
    void life.exited.then(() => this.notify())
    return life
  }

  /** Notifies waiters: after every line and exit, and after the harness changed something itself. */
  notify(): void {
    for (const waiter of [...this.waiters]) waiter()
  }

  /**
   * Resolves with the time at which `condition` first held (checked now, after
   * every line and exit, and every 250 ms), or undefined once `timeoutMs` passed.
   */
  waitUntil(condition: () => boolean, timeoutMs: number): Promise<number | undefined> {
    if (condition()) return Promise.resolve(now())
    return new Promise((resolve) => {
      const done = (t: number | undefined) => {
        clearTimeout(timer)
        clearInterval(poll)
        this.waiters.delete(check)
        resolve(t)
      }
      const check = () => {
        if (condition()) done(now())
      }
      const timer = setTimeout(() => done(undefined), timeoutMs)
      const poll = setInterval(check, 250)
      this.waiters.add(check)
    })
  }

  /** Lives that ended without the harness asking (a crash, a failed join, a port in use). */
  unexpectedExits(): Array<AgentLife> {
    return this.lives.flat().filter((l) => !l.running && !l.endedByHarness)
  }

  /** Ends `slot`'s current life with SIGKILL and waits (bounded) for the exit. */
  async kill(slot: number): Promise<AgentLife> {
    const life = this.current(slot)
    life.signal("SIGKILL")
    await Promise.race([life.exited, sleep(10_000)])
    this.notify()
    return life
  }

  /** SIGCONTs and SIGKILLs every life still running and waits (bounded) for the exits. */
  async stop(): Promise<void> {
    const all = this.lives.flat()
    for (const life of all) {
      if (!life.running) continue
      life.signal("SIGCONT")
      life.signal("SIGKILL")
    }
    await Promise.race([Promise.all(all.map((l) => l.exited)), sleep(10_000)])
    await Promise.all(this.logs.map((log) => new Promise<void>((resolve) => log.end(() => resolve()))))
  }
}
