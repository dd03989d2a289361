/**
 * One life of one agent: the process started on a host, what it has said
 * (stamped with the harness's clock when the line was read, one clock for
 * every system), and the view of the membership those lines build.
 *
 * A slot (a host) has one life at a time; a restart ends the life and starts
 * the next on the same address. Lives are kept after they end, so the checker
 * can still read what a killed observer saw.
 */
import type { ChildProcess } from "node:child_process"
import type { MemberState } from "./systems.ts"

/** Milliseconds since the epoch, sub-millisecond resolution, monotonic within the run. */
export const now = (): number => performance.timeOrigin + performance.now()

export interface MemberEntry {
  readonly state: MemberState
  readonly tags: Readonly<Record<string, string>>
}

/** One change in an observer's view. */
export interface Transition {
  readonly t: number
  readonly subject: string
  readonly state: MemberState
  readonly tags: Readonly<Record<string, string>>
  readonly incarnation: number
}

/** Every agent process of the run, so an interrupted run can kill them all. */
export const liveProcesses = new Set<ChildProcess>()

export class AgentLife {
  readonly slot: number
  /** 0 for the first life on the slot, 1 after the first restart, … */
  readonly life: number
  readonly name: string
  readonly key: string
  readonly process: ChildProcess
  readonly spawnedAt: number
  readonly view = new Map<string, MemberEntry>()
  readonly transitions: Array<Transition> = []
  /** Failed-probe accusations (Serf's log lines), by time. */
  readonly accusations: Array<{ readonly t: number; readonly subject: string }> = []
  /** SIGSTOP / SIGCONT times, in order. */
  readonly pauses: Array<{ readonly from: number; to: number | undefined }> = []
  readyAt: number | undefined
  exitAt: number | undefined
  exitCode: number | null = null
  /** Set when the harness ended this life, so its exit is no error. */
  endedByHarness = false
  readonly exited: Promise<void>

  constructor(slot: number, life: number, name: string, key: string, child: ChildProcess) {
    this.slot = slot
    this.life = life
    this.name = name
    this.key = key
    this.process = child
    this.spawnedAt = now()
    liveProcesses.add(child)
    this.exited = new Promise((resolve) => {
      child.once("exit", (code) => {
        this.exitAt = now()
        this.exitCode = code
        liveProcesses.delete(child)
        resolve()
      })
    })
  }

  get running(): boolean {
    return this.exitAt === undefined
  }

  /** Running and not paused: a life that can observe and answer. */
  get responsive(): boolean {
    return this.running && !this.paused
  }

  get paused(): boolean {
    return this.pauses.at(-1)?.to === undefined && this.pauses.length > 0
  }

  /** Whether this life was paused (or already ended) at `t`. */
  pausedOrEndedAt(t: number): boolean {
    if (this.exitAt !== undefined && t >= this.exitAt) return true
    return this.pauses.some((p) => t >= p.from && (p.to === undefined || t < p.to))
  }

  record(
    t: number,
    subject: string,
    state: MemberState,
    tags: Readonly<Record<string, string>>,
    incarnation: number
  ): void {
    if (state === "Reaped") this.view.delete(subject)
    else this.view.set(subject, { state, tags })
    this.transitions.push({ t, subject, state, tags, incarnation })
  }

  /** The state `subject` had in this view just after `t` (undefined: not known or reaped). */
  stateAt(subject: string, t: number): MemberState | undefined {
    let state: MemberState | undefined
    for (const tr of this.transitions) {
      if (tr.t > t) break
      if (tr.subject === subject) state = tr.state === "Reaped" ? undefined : tr.state
    }
    return state
  }

  /** First time at or after `since` that this view put `subject` in one of `states`. */
  firstAt(subject: string, states: ReadonlyArray<MemberState>, since: number): number | undefined {
    return this.transitions.find((tr) => tr.t >= since && tr.subject === subject && states.includes(tr.state))?.t
  }

  signal(signal: NodeJS.Signals): void {
    if (!this.running) return
    if (signal === "SIGKILL" || signal === "SIGTERM" || signal === "SIGINT") this.endedByHarness = true
    this.process.kill(signal)
    if (signal === "SIGSTOP") this.pauses.push({ from: now(), to: undefined })
    if (signal === "SIGCONT") {
      const last = this.pauses.at(-1)
      if (last !== undefined && last.to === undefined) last.to = now()
    }
  }
}
