/**
 * A set of agent processes of one system inside the benchmark's namespace,
 * and what each of them has said, stamped with the time the harness read the
 * line. One clock (the harness's) for every system, so the figures compare:
 * shoal's own `ts` field and Serf's log time (whole seconds only) are not used.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { createWriteStream, type WriteStream } from "node:fs"
import { createInterface } from "node:readline"
import { agentEnv } from "../../test/fixtures/agent-env.ts"
import type { Netns } from "./host.ts"
import type { MembershipSystem, Observation } from "./systems.ts"

/** Milliseconds since the epoch, sub-millisecond resolution, monotonic within the run. */
export const now = (): number => performance.timeOrigin + performance.now()

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Every agent process ever started, so an interrupted run can kill them all. */
export const liveProcesses = new Set<ChildProcess>()

export type MemberView = "alive" | "suspect" | "failed" | "left"

export interface Timed {
  readonly t: number
  readonly obs: Observation
}

export class Agent {
  readonly view = new Map<string, MemberView>()
  readonly observations: Array<Timed> = []
  readonly stats: Array<{ readonly t: number; readonly counters: Readonly<Record<string, number>> }> = []
  readyAt: number | undefined
  exit: { readonly at: number; readonly code: number | null; readonly signal: string | null } | undefined
  /** Set when the harness itself stopped this agent, so its exit is no error. */
  stoppedByHarness = false
  readonly exited: Promise<void>
  readonly name: string
  readonly port: number
  readonly process: ChildProcess
  readonly spawnedAt: number

  constructor(name: string, port: number, process: ChildProcess, spawnedAt: number) {
    this.name = name
    this.port = port
    this.process = process
    this.spawnedAt = spawnedAt
    this.exited = new Promise((resolve) => {
      process.once("exit", (code, signal) => {
        this.exit = { at: now(), code, signal }
        liveProcesses.delete(process)
        resolve()
      })
    })
  }

  get pid(): number {
    return this.process.pid ?? -1
  }

  get alive(): boolean {
    return this.exit === undefined
  }

  kill(signal: NodeJS.Signals): void {
    this.stoppedByHarness = true
    if (this.alive) this.process.kill(signal)
  }
}

export interface ClusterOptions {
  readonly system: MembershipSystem
  readonly netns: Netns
  readonly size: number
  readonly basePort: number
  readonly logDir: string
}

export class Cluster {
  readonly agents: Array<Agent> = []
  private readonly byAddress = new Map<string, string>()
  private readonly waiters = new Set<(t: number) => void>()
  private readonly logs: Array<WriteStream> = []
  readonly options: ClusterOptions

  constructor(options: ClusterOptions) {
    this.options = options
    for (let i = 0; i < options.size; i++) this.byAddress.set(`127.0.0.1:${options.basePort + i}`, this.nameOf(i))
  }

  nameOf(index: number): string {
    const family = this.options.system.family
    return `${family === "happn-swim" ? "happn" : family}-${index}`
  }

  get seedAddress(): string {
    return `127.0.0.1:${this.options.basePort}`
  }

  /** Starts agent `index` (agent 0 is the seed; the others join through it). */
  spawn(index: number): Agent {
    const { system, netns, basePort, logDir } = this.options
    const name = this.nameOf(index)
    const [cmd, args] = system.command({
      name,
      port: basePort + index,
      rpcPort: basePort + this.options.size + index,
      seed: index === 0 ? undefined : this.seedAddress
    })
    const [wcmd, wargs] = netns.wrap(cmd, args)
    const child = spawn(wcmd, wargs, { stdio: ["ignore", "pipe", "pipe"], env: agentEnv })
    liveProcesses.add(child)
    const agent = new Agent(name, basePort + index, child, now())
    this.agents[index] = agent
    const log = createWriteStream(`${logDir}/${name}.log`)
    this.logs.push(log)
    const onLine = (stream: string) => (line: string) => {
      const t = now()
      log.write(`${(t / 1000).toFixed(3)} ${stream} ${line}\n`)
      for (const obs of system.parse(line, name, (address) => this.byAddress.get(address))) this.record(agent, t, obs)
    }
    createInterface({ input: child.stdout! }).on("line", onLine("out"))
    createInterface({ input: child.stderr! }).on("line", onLine("err"))
    child.once("exit", () => this.notify(now()))
    return agent
  }

  private record(agent: Agent, t: number, obs: Observation): void {
    switch (obs.kind) {
      case "ready":
        agent.readyAt ??= t
        break
      case "alive":
      case "suspect":
      case "failed":
      case "left":
        agent.view.set(obs.subject, obs.kind)
        break
      case "stats":
        agent.stats.push({ t, counters: obs.counters })
        return
      default:
        break
    }
    agent.observations.push({ t, obs })
    this.notify(t)
  }

  private notify(t: number): void {
    for (const waiter of [...this.waiters]) waiter(t)
  }

  /**
   * Resolves with the time of the line (or exit) after which `condition` first
   * held (checked after every line and every exit; now, if it holds already),
   * or undefined after `timeoutMs`.
   */
  waitUntil(condition: () => boolean, timeoutMs: number): Promise<number | undefined> {
    if (condition()) return Promise.resolve(now())
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters.delete(check)
        resolve(undefined)
      }, timeoutMs)
      const check = (t: number) => {
        if (!condition()) return
        clearTimeout(timer)
        this.waiters.delete(check)
        resolve(t)
      }
      this.waiters.add(check)
    })
  }

  running(): ReadonlyArray<Agent> {
    return this.agents.filter((a) => a.alive)
  }

  /** Agents that died without the harness asking (a crash or a failed join). */
  unexpectedExits(): ReadonlyArray<Agent> {
    return this.agents.filter((a) => a.exit !== undefined && !a.stoppedByHarness)
  }

  /** SIGKILLs every agent still running and waits (bounded) for the exits. */
  async stop(): Promise<void> {
    for (const agent of this.agents) if (agent?.alive) agent.kill("SIGKILL")
    await Promise.race([Promise.all(this.agents.map((a) => a?.exited)), sleep(10_000)])
    for (const log of this.logs) log.end()
  }
}
