/**
 * The processes a scenario starts: spawned (possibly inside a network
 * namespace), their output kept in a log file and read line by line, and
 * stopped on the way out whatever state they are in (a paused one is
 * continued first, so that it can handle SIGTERM; a process that does not
 * exit within its grace period is killed).
 */
import { type ChildProcess, spawn } from "node:child_process"
import { createWriteStream, type WriteStream } from "node:fs"
import { createInterface } from "node:readline"

/** Milliseconds since the epoch, sub-millisecond, one clock for every process the scenario reads. */
export const now = (): number => performance.timeOrigin + performance.now()

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** A line a process printed on stdout, stamped when it was read. */
export interface Line {
  readonly t: number
  readonly text: string
}

export class Child {
  readonly name: string
  readonly process: ChildProcess
  readonly lines: Array<Line> = []
  readonly exited: Promise<void>
  private readonly log: WriteStream
  private readonly listeners = new Set<(line: Line) => void>()
  paused = false

  constructor(name: string, command: readonly [string, ReadonlyArray<string>], logFile: string) {
    this.name = name
    this.log = createWriteStream(logFile, { flags: "a" })
    this.process = spawn(command[0], [...command[1]], { stdio: ["pipe", "pipe", "pipe"] })
    this.exited = new Promise((resolve) => this.process.once("exit", () => resolve()))
    createInterface({ input: this.process.stdout! }).on("line", (text) => {
      const line = { t: now(), text }
      this.lines.push(line)
      this.log.write(`${text}\n`)
      for (const listener of this.listeners) listener(line)
    })
    this.process.stderr!.on("data", (chunk: Buffer) => this.log.write(chunk))
    this.process.stdin!.on("error", () => {})
  }

  get pid(): number {
    return this.process.pid ?? -1
  }

  get running(): boolean {
    return this.process.exitCode === null && this.process.signalCode === null
  }

  /** Calls `listener` on every line from now on; returns a function that stops it. */
  onLine(listener: (line: Line) => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  /** Resolves with the first line (already printed or to come) for which `test` holds; rejects at the deadline. */
  waitForLine(test: (text: string) => boolean, deadlineMillis: number, what: string): Promise<Line> {
    const found = this.lines.find((line) => test(line.text))
    if (found !== undefined) return Promise.resolve(found)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        stop()
        reject(new Error(`${this.name}: no ${what} within ${deadlineMillis} ms`))
      }, deadlineMillis)
      const stop = this.onLine((line) => {
        if (!test(line.text)) return
        clearTimeout(timer)
        stop()
        resolve(line)
      })
      void this.exited.then(() => {
        clearTimeout(timer)
        stop()
        reject(new Error(`${this.name} exited (code ${this.process.exitCode}) before ${what}`))
      })
    })
  }

  signal(signal: NodeJS.Signals): void {
    if (!this.running) return
    this.process.kill(signal)
    if (signal === "SIGSTOP") this.paused = true
    if (signal === "SIGCONT") this.paused = false
  }

  write(text: string): void {
    this.process.stdin?.write(text)
  }

  /** SIGTERM (after SIGCONT if paused), then SIGKILL after `graceMillis`. */
  async stop(graceMillis = 10_000): Promise<void> {
    if (this.running) {
      if (this.paused) this.signal("SIGCONT")
      this.process.kill("SIGTERM")
      const done = await Promise.race([this.exited.then(() => true), sleep(graceMillis).then(() => false)])
      if (!done) {
        this.process.kill("SIGKILL")
        await Promise.race([this.exited, sleep(5_000)])
      }
    }
    await new Promise<void>((resolve) => this.log.end(() => resolve()))
  }
}
