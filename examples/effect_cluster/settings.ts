/**
 * What the scenario tells each process it starts, as one JSON argument: where
 * the database is, which runner health to use, and (for shoal) where to
 * gossip. Kept in one place so the runner, the client and the scenario agree.
 */

/**
 * The three ways a runner can decide that another runner is gone:
 * effect/cluster's `RunnerHealth.layerPing` at its defaults (checked every
 * minute), the same checked every second, and shoal's membership.
 */
export type HealthMode = "ping-default" | "ping-1s" | "shoal"

export const HEALTH_MODES: ReadonlyArray<HealthMode> = ["ping-default", "ping-1s", "shoal"]

export interface Endpoint {
  readonly host: string
  readonly port: number
}

export interface Gossip {
  readonly bind: Endpoint
  readonly seeds: ReadonlyArray<string>
}

export interface RunnerSettings {
  readonly name: string
  readonly runner: Endpoint
  readonly health: HealthMode
  readonly postgres: Endpoint
  /** Present for `shoal`. */
  readonly gossip?: Gossip | undefined
}

export interface ClientSettings {
  readonly health: HealthMode
  readonly postgres: Endpoint
  readonly conversations: number
  /** Pause between one reply and the next line of the same conversation. */
  readonly intervalMillis: number
  readonly gossip?: Gossip | undefined
}

/** The settings a process was started with (its only argument). */
export const readSettings = <A>(): A => {
  const text = process.argv[2]
  if (text === undefined) throw new Error("expected the settings as one JSON argument")
  return JSON.parse(text) as A
}

/** Entity id of conversation `i`. */
export const conversationId = (i: number): string => `conversation-${i}`
