/**
 * The membership systems the fault suite drives — `shoal agent` and HashiCorp
 * Serf — and how each one's output lines become observations about members.
 *
 * Members are known by a *key*: shoal's node id (the suite chooses it, so a
 * restart with a new id is a new key at the same address), Serf's node name
 * (Serf has no other identity). Both run with their defaults, memberlist's
 * LAN profile, so neither gets a timing flag unless a scenario asks for one.
 */
import { randomUUID } from "node:crypto"
import { getShoalRoot, nodeBinary, serf as serfMembership } from "../membership/systems.ts"

/** A member's state in an observer's view; `Reaped` means the observer forgot it. */
export type MemberState = "Alive" | "Suspect" | "Dead" | "Left" | "Reaped"

export type Observation =
  /** The agent is up: bound, and joined when it had a seed. */
  | { readonly kind: "ready" }
  /** The observer now holds `subject` in `state` (tags when the system reports them). */
  | {
      readonly kind: "state"
      readonly subject: string
      readonly state: MemberState
      readonly tags?: Readonly<Record<string, string>>
      /** The member's incarnation (shoal; Serf does not report it). */
      readonly incarnation?: number
    }
  /** The observer's own probe of `subject` failed and it accused it (Serf's log; shoal reports Suspect states instead). */
  | { readonly kind: "probeFailed"; readonly subject: string }

export interface AgentSpec {
  readonly name: string
  /** This life's member key (shoal: the node id passed with `--node-id`; Serf: the name). */
  readonly key: string
  /** `host:port` to bind and advertise. */
  readonly address: string
  /** `host:port` of the seed; none for the first agent. */
  readonly seed: string | undefined
  /** Extra flags for this scenario (shoal only), e.g. `--reap-after 20s`. */
  readonly extraArgs: ReadonlyArray<string>
  /** Tags to advertise (shoal only). */
  readonly tags: Readonly<Record<string, string>>
}

export type SystemId = "shoal" | "serf"

export interface FaultSystem {
  readonly id: SystemId
  /** Probe interval of its default profile, ms (the ghost bound of the restart scenario). */
  readonly probeIntervalMs: number
  /** The key for a new life of agent `name`: a fresh one, or the previous one for a same-id restart. */
  newKey(name: string, previous: string | undefined): string
  command(spec: AgentSpec): readonly [string, ReadonlyArray<string>]
  parse(line: string, selfKey: string): ReadonlyArray<Observation>
}

const shoalStates: ReadonlySet<string> = new Set(["Alive", "Suspect", "Dead", "Left"])

/** `shoal agent --format json`: every member line carries the member's id, state and tags after the change. */
export const shoal: FaultSystem = {
  id: "shoal",
  probeIntervalMs: 1000,
  newKey: (_name, previous) => previous ?? randomUUID(),
  command: (spec) => [
    nodeBinary,
    [
      `${getShoalRoot()}bin/shoal.js`,
      "agent",
      "--format",
      "json",
      "--name",
      spec.name,
      "--node-id",
      spec.key,
      "--bind",
      spec.address,
      ...(spec.seed === undefined ? [] : ["--join", spec.seed]),
      ...Object.entries(spec.tags).flatMap(([k, v]) => ["--tag", `${k}=${v}`]),
      ...spec.extraArgs
    ]
  ],
  parse: (line, selfKey) => {
    if (!line.startsWith("{")) return []
    let value: Record<string, unknown>
    try {
      value = JSON.parse(line) as Record<string, unknown>
    } catch {
      return []
    }
    if (value.event === "Started") return [{ kind: "ready" }]
    const subject = value.id
    if (typeof subject !== "string" || subject === selfKey) return []
    const tags = (typeof value.tags === "object" && value.tags !== null ? value.tags : {}) as Record<string, string>
    const incarnation = typeof value.incarnation === "number" ? value.incarnation : 0
    if (value.event === "NodeReaped") return [{ kind: "state", subject, state: "Reaped", tags, incarnation }]
    const state = String(value.state)
    return shoalStates.has(state) ? [{ kind: "state", subject, state: state as MemberState, tags, incarnation }] : []
  }
}

const serfStates = { alive: "Alive", failed: "Dead", left: "Left" } as const

/**
 * `serf agent -profile=lan`, read through bench/membership's patterns for its
 * INFO log. Serf reports no Suspect state: its suspicions are memberlist's
 * "Suspect X has failed, no acks received" lines (the accuser's only).
 */
export const serf: FaultSystem = {
  id: "serf",
  probeIntervalMs: 1000,
  newKey: (name) => name,
  command: (spec) => [
    "serf",
    [
      "agent",
      `-node=${spec.name}`,
      `-bind=${spec.address}`,
      // Each host has its own loopback, so every agent can use the same RPC port.
      "-rpc-addr=127.0.0.1:7373",
      "-profile=lan",
      ...(spec.seed === undefined ? [] : [`-join=${spec.seed}`])
    ]
  ],
  parse: (line, selfKey) =>
    serfMembership
      .parse(line, selfKey, () => undefined)
      .flatMap((obs): Array<Observation> => {
        switch (obs.kind) {
          case "ready":
            return [{ kind: "ready" }]
          case "alive":
          case "failed":
          case "left":
            return [{ kind: "state", subject: obs.subject, state: serfStates[obs.kind] }]
          case "probeFailed":
            return [{ kind: "probeFailed", subject: obs.subject }]
          default:
            return []
        }
      })
}

export const faultSystems: Readonly<Record<SystemId, FaultSystem>> = { shoal, serf }
