/**
 * A virtual LAN on this machine: one network namespace per host, each with
 * one interface (`eth0`, a veth pair) and its own address, plugged into a
 * Linux bridge that lives in a "switch" namespace of its own. Nothing is
 * created in, or routed to, the root namespace: every link is made directly
 * inside our namespaces (`ip -n`), so no agent can take a loopback shortcut
 * and no packet can leave the machine.
 *
 * Addresses come from 198.18.0.0/24 (RFC 2544's benchmarking range). They
 * exist only on our veths, inside our namespaces, and are deleted with them.
 *
 * Every name starts with `shf-<pid>-<serial>-`, so concurrent topologies of one
 * run, and concurrent runs, never clash, and a topology whose creator died
 * (a SIGKILLed harness) can be recognised and swept ({@link sweepStaleTopologies}).
 */
import { execFileSync } from "node:child_process"
import { existsSync } from "node:fs"

const PREFIX = "shf-"
/** The bridge-family table on the switch that holds every network fault (see faults.ts). */
export const FAULT_TABLE = "shf"
export const FAULT_CHAIN = "faults"

/** Runs a short administrative command, bounded in time; throws with its stderr on failure. */
export const run = (cmd: string, args: ReadonlyArray<string>, input?: string, timeoutMs = 10_000): string => {
  try {
    return execFileSync(cmd, args, {
      encoding: "utf8",
      timeout: timeoutMs,
      input: input ?? "",
      stdio: ["pipe", "pipe", "pipe"]
    })
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr?.trim()
    throw new Error(`${cmd} ${args.join(" ")} failed${stderr ? `: ${stderr}` : ""}`)
  }
}

export interface Host {
  readonly index: number
  readonly namespace: string
  readonly address: string
}

let serial = 0

export class Topology {
  readonly name: string
  readonly switchNamespace: string
  readonly hosts: ReadonlyArray<Host>
  private deleted = false

  private constructor(name: string, size: number) {
    this.name = name
    this.switchNamespace = `${name}-sw`
    this.hosts = Array.from({ length: size }, (_, index) => ({
      index,
      namespace: `${name}-h${index}`,
      address: hostAddress(index)
    }))
  }

  /**
   * Creates the switch, `size` hosts and the (empty) fault table. Fails with a
   * message that says namespaces could not be created — never silently — and
   * deletes whatever it had made.
   */
  static create(size: number): Topology {
    if (size < 1 || size > 250) throw new Error(`a topology holds 1..250 hosts, not ${size}`)
    const topology = new Topology(`${PREFIX}${process.pid}-${serial++}`, size)
    try {
      topology.build()
    } catch (error) {
      topology.delete()
      const reason = error instanceof Error ? error.message : String(error)
      throw new Error(
        `cannot build the fault suite's virtual network (network namespaces, veth pairs, a bridge and nftables, ` +
          `which need root and a kernel with netns, veth, bridge and nf_tables bridge support): ${reason}`
      )
    }
    return topology
  }

  private build(): void {
    const sw = this.switchNamespace
    run("ip", ["netns", "add", sw])
    run("ip", ["-n", sw, "link", "set", "lo", "up"])
    run("ip", ["-n", sw, "link", "add", "br0", "type", "bridge"])
    run("ip", ["-n", sw, "link", "set", "br0", "up"])
    for (const host of this.hosts) {
      const port = `v${host.index}`
      run("ip", ["netns", "add", host.namespace])
      // Created inside the switch with its peer placed straight into the host: never in the root namespace.
      run("ip", ["-n", sw, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", host.namespace])
      run("ip", ["-n", sw, "link", "set", port, "master", "br0", "up"])
      run("ip", ["-n", host.namespace, "link", "set", "lo", "up"])
      run("ip", ["-n", host.namespace, "addr", "add", `${host.address}/24`, "dev", "eth0"])
      run("ip", ["-n", host.namespace, "link", "set", "eth0", "up"])
    }
    this.nft(
      [
        `add table bridge ${FAULT_TABLE}`,
        `add chain bridge ${FAULT_TABLE} ${FAULT_CHAIN} { type filter hook forward priority 0; policy accept; }`
      ].join("\n")
    )
  }

  /** argv that runs `cmd` on `host` (`ip netns exec` execs in place: the child's pid is the command's). */
  wrap(host: Host, cmd: string, args: ReadonlyArray<string>): [string, Array<string>] {
    return ["ip", ["netns", "exec", host.namespace, cmd, ...args]]
  }

  /** Applies an nftables script (`nft -f -`) on the switch, atomically. */
  nft(script: string): string {
    return run("ip", ["netns", "exec", this.switchNamespace, "nft", "-f", "-"], script)
  }

  /** `nft -j list table` on the switch: the fault rules and their counters. */
  faultRules(): string {
    return run("ip", ["netns", "exec", this.switchNamespace, "nft", "-j", "list", "table", "bridge", FAULT_TABLE])
  }

  /**
   * Kills every process still inside one of its namespaces, then deletes them
   * all (the veths, the bridge and the nftables table go with them). Safe to
   * call twice and after a partial build.
   */
  delete(): void {
    if (this.deleted) return
    this.deleted = true
    deleteNamespaces([this.switchNamespace, ...this.hosts.map((h) => h.namespace)])
  }
}

/** The address of host `index`: 198.18.0.1, 198.18.0.2, … */
export const hostAddress = (index: number): string => `198.18.0.${index + 1}`

const listNamespaces = (): Array<string> => {
  try {
    return run("ip", ["netns", "list"])
      .split("\n")
      .map((line) => line.split(" ")[0] ?? "")
      .filter((name) => name !== "")
  } catch {
    return []
  }
}

const deleteNamespaces = (names: ReadonlyArray<string>): void => {
  const existing = new Set(listNamespaces())
  const present = names.filter((n) => existing.has(n))
  for (const name of present) {
    let pids: Array<number> = []
    try {
      pids = run("ip", ["netns", "pids", name])
        .split(/\s+/)
        .filter((p) => p !== "")
        .map(Number)
    } catch {
      // no pids
    }
    for (const pid of pids) {
      try {
        process.kill(pid, "SIGKILL")
      } catch {
        // already gone
      }
    }
  }
  for (const name of present) {
    try {
      run("ip", ["netns", "del", name])
    } catch {
      // raced with someone else
    }
  }
}

/** Deletes topologies left by a run of this suite whose process is gone (a SIGKILLed harness). */
export const sweepStaleTopologies = (): void => {
  const stale = listNamespaces().filter((name) => {
    const match = /^shf-(\d+)-\d+-(sw|h\d+)$/.exec(name)
    return match !== null && Number(match[1]) !== process.pid && !existsSync(`/proc/${match[1]}`)
  })
  deleteNamespaces(stale)
}

/** Namespaces of this process's topologies that still exist (a test asserts there are none after cleanup). */
export const leftoverNamespaces = (): Array<string> =>
  listNamespaces().filter((name) => name.startsWith(`${PREFIX}${process.pid}-`))

/** Deletes every namespace this process still has (an interrupted run), killing what runs inside. */
export const deleteLeftovers = (): void => deleteNamespaces(leftoverNamespaces())
