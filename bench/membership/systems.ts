/**
 * The membership systems under test: how to start one agent of each, and how
 * to read what it prints into one shared vocabulary of observations.
 *
 * All three run with the same timing profile, memberlist's LAN defaults (probe
 * every 1 s, 500 ms ping timeout, gossip every 200 ms to 3 members, suspicion
 * multiplier 4, retransmit multiplier 4, push-pull every 30 s). Serf and shoal
 * run those as their defaults, so neither gets a timing flag. happn-swim takes
 * only a probe interval and timeouts (see happn-agent.ts).
 */
import { createRequire } from "node:module"

/** What one agent's output line says, in the benchmark's terms. */
export type Observation =
  /** The agent is up (bound, and joined when it had a seed). */
  | { readonly kind: "ready" }
  /** The observer holds `subject` alive (first seen, back, or refuted). */
  | { readonly kind: "alive"; readonly subject: string }
  /** The observer holds `subject` suspect (shoal and happn-swim report this; Serf does not). */
  | { readonly kind: "suspect"; readonly subject: string }
  /** The observer declared or learnt `subject` failed. */
  | { readonly kind: "failed"; readonly subject: string }
  /** The observer learnt `subject` left gracefully. */
  | { readonly kind: "left"; readonly subject: string }
  /** The observer's own probe of `subject` failed and it accused it (a suspicion raised). */
  | { readonly kind: "probeFailed"; readonly subject: string }
  /** The observer's own suspicion timer for `subject` ran out. */
  | { readonly kind: "deathDeclared"; readonly subject: string }
  /** Serf: a probe answered only over memberlist's TCP fallback ping (UDP ping and indirect pings all lost). */
  | { readonly kind: "tcpRescue"; readonly subject: string }
  /** The observer refuted a suspicion about itself. */
  | { readonly kind: "refuted" }
  /** shoal's cumulative engine counters. */
  | { readonly kind: "stats"; readonly counters: Readonly<Record<string, number>> }

export interface AgentSpec {
  readonly name: string
  readonly port: number
  readonly rpcPort: number
  /** `host:port` of the seed; none for the first agent. */
  readonly seed: string | undefined
}

export type SystemId = "shoal" | "shoal-fast" | "serf" | "happn-swim"

/** Which implementation a system runs (shoal-fast is shoal with other settings). */
export type Family = "shoal" | "serf" | "happn-swim"

export interface MembershipSystem {
  readonly id: SystemId
  readonly family: Family
  /** Whether the agent announces a graceful leave on SIGINT. */
  readonly gracefulLeave: boolean
  command(spec: AgentSpec): readonly [string, ReadonlyArray<string>]
  /**
   * Reads one line of the agent's stdout or stderr. `nameOf` turns a
   * `host:port` into the agent name the harness gave it.
   */
  parse(line: string, self: string, nameOf: (address: string) => string | undefined): ReadonlyArray<Observation>
}

const repoRoot = new URL("../../", import.meta.url).pathname
export const nodeBinary = `${repoRoot}node_modules/.bin/node`

/**
 * The checkout whose `bin/shoal.js` runs: this one by default, or another
 * (`--shoal-root`, e.g. a clean worktree of a commit) to measure a given
 * version while the working tree changes.
 */
let shoalRoot = repoRoot
export const setShoalRoot = (dir: string) => {
  shoalRoot = dir.endsWith("/") ? dir : `${dir}/`
}
export const getShoalRoot = () => shoalRoot

const about = (kind: "alive" | "suspect" | "failed" | "left", subject: string, self: string): Array<Observation> =>
  subject === self ? [] : [{ kind, subject }]

// --- shoal ---

const shoalStates: Readonly<Record<string, "alive" | "suspect" | "failed" | "left">> = {
  Alive: "alive",
  Suspect: "suspect",
  Dead: "failed",
  Left: "left"
}

export const shoal: MembershipSystem = {
  id: "shoal",
  family: "shoal",
  gracefulLeave: true,
  command: (spec) => [
    nodeBinary,
    [
      `${shoalRoot}bin/shoal.js`,
      "agent",
      "--format",
      "json",
      "--name",
      spec.name,
      "--bind",
      `127.0.0.1:${spec.port}`,
      // One Stats line a second carries the engine's counters (suspicions raised, refutations …).
      "--stats-interval",
      "1s",
      ...(spec.seed === undefined ? [] : ["--join", spec.seed])
    ]
  ],
  parse: (line, self) => {
    if (!line.startsWith("{")) return []
    let value: Record<string, unknown>
    try {
      value = JSON.parse(line) as Record<string, unknown>
    } catch {
      return []
    }
    const event = value.event
    const name = typeof value.name === "string" ? value.name : ""
    switch (event) {
      case "Started":
        return [{ kind: "ready" }]
      case "Member":
      case "NodeJoined":
      case "NodeRecovered":
      case "NodeUpdated":
        return about(shoalStates[String(value.state)] ?? "alive", name, self)
      case "NodeSuspected":
        return about("suspect", name, self)
      case "NodeFailed":
        return about("failed", name, self)
      case "NodeLeft":
        return about("left", name, self)
      case "Stats": {
        const counters: Record<string, number> = {}
        for (const key of [
          "probes",
          "failedProbes",
          "suspicionsRaised",
          "deathsDeclared",
          "refutations",
          "streamPingAcks"
        ]) {
          if (typeof value[key] === "number") counters[key] = value[key]
        }
        return [{ kind: "stats", counters }]
      }
      default:
        return []
    }
  }
}

/**
 * shoal with half the suspicion floor (suspicionMult 2: 2 s below 10 members)
 * but the same evidence as the defaults — two independent confirmations
 * before the floor applies, 12 s with none. Same probe interval, ping timeout
 * and gossip as everyone else: the crash-detection target's configuration.
 */
export const shoalFast: MembershipSystem = {
  ...shoal,
  id: "shoal-fast",
  command: (spec) => {
    const [binary, args] = shoal.command(spec)
    return [binary, [...args, "--suspicion-mult", "2", "--suspicion-confirmations", "2"]]
  }
}

// --- HashiCorp Serf ---

const serfPatterns: ReadonlyArray<readonly [RegExp, (m: RegExpExecArray, self: string) => ReadonlyArray<Observation>]> =
  [
    // The agent prints its banner, then this, once it is bound and has joined.
    [/^==> Log data will now stream in/, () => [{ kind: "ready" }]],
    // serf logs member events when memberlist hands them over, before its 1 s event coalescing.
    [/\[INFO\] serf: EventMemberJoin: (\S+)/, (m, self) => about("alive", m[1]!, self)],
    [/\[INFO\] serf: EventMemberFailed: (\S+)/, (m, self) => about("failed", m[1]!, self)],
    // "(forced)": the leave intent arrived after the member was already held failed.
    [/\[INFO\] serf: EventMemberLeave(?: \(forced\))?: (\S+)/, (m, self) => about("left", m[1]!, self)],
    // memberlist: one line per failed probe round, right before it gossips the suspicion.
    [/memberlist: Suspect (\S+) has failed, no acks received/, (m) => [{ kind: "probeFailed", subject: m[1]! }]],
    [
      /memberlist: Marking (\S+) as failed, suspect timeout reached/,
      (m) => [{ kind: "deathDeclared", subject: m[1]! }]
    ],
    [/memberlist: Refuting a (suspect|dead) message/, () => [{ kind: "refuted" }]],
    // memberlist also pings over TCP when UDP probes fail; this line means only TCP got through.
    [/memberlist: Was able to connect to (\S+) (?:over TCP )?but/, (m) => [{ kind: "tcpRescue", subject: m[1]! }]]
  ]

export const serf: MembershipSystem = {
  id: "serf",
  family: "serf",
  gracefulLeave: true,
  command: (spec) => [
    "serf",
    [
      "agent",
      `-node=${spec.name}`,
      `-bind=127.0.0.1:${spec.port}`,
      `-rpc-addr=127.0.0.1:${spec.rpcPort}`,
      "-profile=lan",
      ...(spec.seed === undefined ? [] : [`-join=${spec.seed}`])
    ]
  ],
  parse: (line, self) => {
    for (const [pattern, f] of serfPatterns) {
      const m = pattern.exec(line)
      if (m !== null) return f(m, self)
    }
    return []
  }
}

// --- happn-swim ---

const happnStates: Readonly<Record<string, "alive" | "suspect" | "failed">> = {
  Alive: "alive",
  Suspect: "suspect",
  Faulty: "failed"
}

export const happnSwim: MembershipSystem = {
  id: "happn-swim",
  family: "happn-swim",
  // leave() only closes the socket: the others find out by failure detection.
  gracefulLeave: false,
  command: (spec) => [
    nodeBinary,
    [`${repoRoot}bench/membership/happn-agent.ts`, String(spec.port), ...(spec.seed === undefined ? [] : [spec.seed])]
  ],
  parse: (line, self, nameOf) => {
    if (!line.startsWith("{")) return []
    let value: { event?: string; host?: string }
    try {
      value = JSON.parse(line) as { event?: string; host?: string }
    } catch {
      return []
    }
    const subject = value.host === undefined ? undefined : nameOf(value.host)
    if (value.event === "Started") return [{ kind: "ready" }]
    if (value.event === "Refuted") return [{ kind: "refuted" }]
    if (subject === undefined) return []
    if (value.event === "ProbeFailed") return [{ kind: "probeFailed", subject }]
    const state = happnStates[value.event ?? ""]
    return state === undefined ? [] : about(state, subject, self)
  }
}

/** happn-swim is an optional devDependency: the column is skipped when it is not installed. */
export const happnSwimInstalled = (): boolean => {
  try {
    createRequire(import.meta.url).resolve("happn-swim")
    return true
  } catch {
    return false
  }
}

export const systems: Readonly<Record<SystemId, MembershipSystem>> = {
  shoal,
  "shoal-fast": shoalFast,
  serf,
  "happn-swim": happnSwim
}
