/**
 * The host side of the membership benchmark: root check, installing the
 * tools it drives (Debian packages), a throw-away network namespace with only
 * `lo`, nftables counters and packet loss inside it, and /proc sampling.
 *
 * Everything here is synchronous and bounded by a timeout: these are short
 * administrative commands, and the benchmark's measurements never overlap them
 * except the counter and /proc reads, which take well under a millisecond.
 */
import { execFileSync } from "node:child_process"
import { existsSync, readFileSync } from "node:fs"

const run = (cmd: string, args: ReadonlyArray<string>, timeoutMs = 10_000): string =>
  execFileSync(cmd, args, { encoding: "utf8", timeout: timeoutMs, stdio: ["ignore", "pipe", "pipe"] })

export const commandExists = (name: string): boolean => {
  try {
    run("sh", ["-c", `command -v ${name}`])
    return true
  } catch {
    return false
  }
}

/** A command and the Debian package that brings it. */
export type Tool = readonly [command: string, pkg: string]

/** Tools the benchmark needs. */
const REQUIRED: ReadonlyArray<Tool> = [
  ["ip", "iproute2"],
  ["nft", "nftables"],
  ["serf", "serf"]
]

/**
 * Installs whatever of `required` (default: iproute2, nftables and serf) is
 * missing with apt-get. Fails with a message that says what to install by hand
 * when apt is not there, and when `who` (the caller, for the message) does not
 * run as root.
 */
export const ensureTools = (
  log: (line: string) => void,
  required: ReadonlyArray<Tool> = REQUIRED,
  who = "bench:membership"
): void => {
  if (process.getuid?.() !== 0) {
    throw new Error(`${who} must run as root: it creates network namespaces and nftables rules`)
  }
  const missing = required.filter(([cmd]) => !commandExists(cmd)).map(([, pkg]) => pkg)
  if (missing.length === 0) return
  if (!commandExists("apt-get")) {
    throw new Error(
      `missing ${missing.join(", ")} and apt-get is not available: install these packages yourself, then run again`
    )
  }
  log(`installing ${missing.join(" ")} with apt-get …`)
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" }
  execFileSync("apt-get", ["update"], { stdio: "inherit", timeout: 300_000, env })
  execFileSync("apt-get", ["install", "-y", ...missing], { stdio: "inherit", timeout: 600_000, env })
  const still = required.filter(([cmd]) => !commandExists(cmd)).map(([cmd]) => cmd)
  if (still.length > 0) throw new Error(`apt-get install finished but ${still.join(", ")} is still missing`)
}

// --- network namespace ---

const TABLE = "shoalbench"
const NAME_PREFIX = "shoal-bench-"

export interface Counters {
  readonly udpPackets: number
  readonly udpBytes: number
  readonly tcpPackets: number
  readonly tcpBytes: number
  /** UDP packets the loss rule dropped. */
  readonly dropped: number
}

/**
 * A network namespace holding only `lo`, with an nftables table whose output
 * chain counts every UDP and TCP packet sent (IP length, so 20 + 8 bytes of
 * headers per UDP datagram are included) and an input chain that holds the
 * optional random-drop rule. On loopback every packet passes the output hook
 * once and the input hook once, so each is counted once and dropped with the
 * configured probability once. The drop is on input, not output: a packet
 * dropped on output makes the sender's `sendto` fail with EPERM, so the sender
 * knows, and memberlist then skips the probe instead of suspecting anyone;
 * dropped on input, the loss is silent, as on a real network.
 */
export class Netns {
  readonly name: string
  private deleted = false

  private constructor(name: string) {
    this.name = name
  }

  static create(): Netns {
    removeStale()
    const ns = new Netns(`${NAME_PREFIX}${process.pid}`)
    run("ip", ["netns", "add", ns.name])
    try {
      ns.exec("ip", ["link", "set", "lo", "up"])
      ns.nft(["add", "table", "inet", TABLE])
      ns.nft(["add", "chain", "inet", TABLE, "count", "{ type filter hook output priority 0; policy accept; }"])
      ns.nft(["add", "rule", "inet", TABLE, "count", "meta", "l4proto", "udp", "counter", "comment", '"udp"'])
      ns.nft(["add", "rule", "inet", TABLE, "count", "meta", "l4proto", "tcp", "counter", "comment", '"tcp"'])
      ns.nft(["add", "chain", "inet", TABLE, "loss", "{ type filter hook input priority 0; policy accept; }"])
    } catch (error) {
      ns.delete()
      throw error
    }
    return ns
  }

  /** argv that runs `cmd` inside the namespace (`ip netns exec` execs in place: the pid is the command's). */
  wrap(cmd: string, args: ReadonlyArray<string>): [string, Array<string>] {
    return ["ip", ["netns", "exec", this.name, cmd, ...args]]
  }

  exec(cmd: string, args: ReadonlyArray<string>): string {
    const [c, a] = this.wrap(cmd, args)
    return run(c, a)
  }

  private nft(args: ReadonlyArray<string>): string {
    return this.exec("nft", args)
  }

  /** Drops `percent` % of the UDP packets sent in the namespace (0 removes the rule). */
  setLoss(percent: number): void {
    this.nft(["flush", "chain", "inet", TABLE, "loss"])
    if (percent <= 0) return
    this.nft([
      "add",
      "rule",
      "inet",
      TABLE,
      "loss",
      "meta",
      "l4proto",
      "udp",
      "numgen",
      "random",
      "mod",
      "100",
      "<",
      String(Math.round(percent)),
      "counter",
      "drop",
      "comment",
      '"loss"'
    ])
  }

  counters(): Counters {
    const json = JSON.parse(this.nft(["-j", "list", "table", "inet", TABLE])) as {
      nftables: ReadonlyArray<{ rule?: { comment?: string; expr: ReadonlyArray<Record<string, unknown>> } }>
    }
    const byComment = new Map<string, { packets: number; bytes: number }>()
    for (const item of json.nftables) {
      const rule = item.rule
      if (rule?.comment === undefined) continue
      for (const expr of rule.expr) {
        const counter = expr.counter as { packets: number; bytes: number } | undefined
        if (counter !== undefined) byComment.set(rule.comment, counter)
      }
    }
    return {
      udpPackets: byComment.get("udp")?.packets ?? 0,
      udpBytes: byComment.get("udp")?.bytes ?? 0,
      tcpPackets: byComment.get("tcp")?.packets ?? 0,
      tcpBytes: byComment.get("tcp")?.bytes ?? 0,
      dropped: byComment.get("loss")?.packets ?? 0
    }
  }

  delete(): void {
    if (this.deleted) return
    this.deleted = true
    try {
      run("ip", ["netns", "del", this.name])
    } catch {
      // already gone
    }
  }
}

/** Namespaces left by an earlier run of this benchmark whose process is gone (a SIGKILLed harness). */
const removeStale = (): void => {
  let list = ""
  try {
    list = run("ip", ["netns", "list"])
  } catch {
    return
  }
  for (const line of list.split("\n")) {
    const name = line.split(" ")[0] ?? ""
    const match = /^shoal-bench-(\d+)$/.exec(name)
    if (match !== null && !existsSync(`/proc/${match[1]}`)) {
      try {
        run("ip", ["netns", "del", name])
      } catch {
        // raced with someone else
      }
    }
  }
}

// --- /proc ---

let clockTicks: number | undefined
const ticksPerSecond = (): number => {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(run("getconf", ["CLK_TCK"]).trim()) || 100
    } catch {
      clockTicks = 100
    }
  }
  return clockTicks
}

/** User + system CPU seconds of a process, all threads (fields 14 and 15 of /proc/<pid>/stat). */
export const cpuSeconds = (pid: number): number | undefined => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond()
  } catch {
    return undefined
  }
}

/** Resident set size in KiB (VmRSS of /proc/<pid>/status). */
export const rssKiB = (pid: number): number | undefined => {
  try {
    const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))
    return match === null ? undefined : Number(match[1])
  } catch {
    return undefined
  }
}

// --- machine ---

const firstLine = (f: () => string): string => {
  try {
    return f().split("\n")[0]!.trim()
  } catch {
    return "unknown"
  }
}

export const loadAverage = (): ReadonlyArray<number> =>
  readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).map(Number)

export const describeMachine = (nodeBinary: string) => {
  const cpuinfo = readFileSync("/proc/cpuinfo", "utf8")
  return {
    cpu: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? "unknown",
    cores: (cpuinfo.match(/^processor\s*:/gm) ?? []).length,
    memoryGiB: Math.round(Number(/^MemTotal:\s+(\d+)/m.exec(readFileSync("/proc/meminfo", "utf8"))?.[1]) / 1048576),
    kernel: firstLine(() => run("uname", ["-r"])),
    os: /^PRETTY_NAME="?([^"\n]*)/m.exec(
      existsSync("/etc/os-release") ? readFileSync("/etc/os-release", "utf8") : ""
    )?.[1],
    agentNode: firstLine(() => run(nodeBinary, ["--version"])),
    harnessNode: process.version,
    serf: firstLine(() => run("serf", ["version"])),
    serfPackage: firstLine(() => run("dpkg-query", ["-W", "serf"]).split("\t")[1] ?? "unknown"),
    nftables: firstLine(() => run("nft", ["--version"]))
  }
}
