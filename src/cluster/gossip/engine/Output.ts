/**
 * Everything the engine asks the world to do, as data: its only way out.
 * The shell executes these on sockets, fibers and `Clock` sleeps; the
 * discrete-event simulator turns them into scheduled events.
 *
 * Nothing here waits: a send is fire-and-forget, an exchange has a deadline
 * by which its result comes back as an input, a timer comes back as an input.
 *
 * @since 0.1.0
 */
import type { Address, NodeId } from "../../Node.ts"
import type { Packet } from "../Messages.ts"
import type { RegistryChange } from "../Registry.ts"
import type { StreamMessage } from "./Input.ts"

/** A datagram to send: messages and piggybacked updates, already sized to fit `maxPacketSize`. */
export interface Send {
  readonly _tag: "Send"
  readonly to: Address
  readonly packet: Packet
}

/**
 * A stream exchange to run: send `request`, read the response (at most
 * `maxBytes`), and report `ExchangeAnswered` or `ExchangeFailed` for `id`
 * — at the latest when `deadline` (absolute ms) passes.
 */
export interface OpenExchange {
  readonly _tag: "OpenExchange"
  readonly id: number
  readonly to: Address
  readonly request: StreamMessage
  readonly deadline: number
  readonly maxBytes: number
}

/** The engine no longer wants exchange `id` (its probe ended): stop it; its result is ignored anyway. */
export interface CancelExchange {
  readonly _tag: "CancelExchange"
  readonly id: number
}

/** The answer to `StreamRequest` `request`. */
export interface Reply {
  readonly _tag: "Reply"
  readonly request: number
  readonly response: StreamMessage
}

/** `StreamRequest` `request` is refused: close the stream without a response. */
export interface Refuse {
  readonly _tag: "Refuse"
  readonly request: number
  readonly reason: string
}

/** Fire `timer` at `at` (absolute ms), replacing any armed timer with the same {@link timerKey}. */
export interface SetTimer {
  readonly _tag: "SetTimer"
  readonly timer: Timer
  readonly at: number
}

/** Disarm the timer with this key, if armed. */
export interface CancelTimer {
  readonly _tag: "CancelTimer"
  readonly key: string
}

/** Resolve `seed` (`host:port`) and answer with `Resolved` for `id` — at the latest at `deadline` (DNS can hang too). */
export interface Resolve {
  readonly _tag: "Resolve"
  readonly id: number
  readonly seed: Address
  readonly deadline: number
}

/** The engine changed its member table: publish the change to the application. */
export interface MembershipChanged {
  readonly _tag: "MembershipChanged"
  readonly change: RegistryChange
}

/** A join attempt ended: how many seeds answered, and what went wrong with the others. */
export interface JoinEnded {
  readonly _tag: "JoinEnded"
  readonly ticket: number
  readonly answered: number
  readonly failures: ReadonlyArray<string>
}

/** A leave ended: the `Left` announcement went out (or `leaveTimeout` passed). */
export interface LeaveEnded {
  readonly _tag: "LeaveEnded"
  readonly ticket: number
}

/** A debug log line with its annotations. */
export interface Log {
  readonly _tag: "Log"
  readonly message: string
  readonly annotations: Readonly<Record<string, unknown>>
}

/** Something the process-wide metrics count. */
export interface Count {
  readonly _tag: "Count"
  readonly metric: "packetsRejected" | "suspicions" | "refutations"
}

/**
 * How a reachability check's target answered first: its own ack to our ping
 * (`direct`), an ack relayed by a ping-req helper (`indirect`), the ping over
 * TCP (`tcp`); `none` by the deadline; `unknown` when the engine does not
 * hold the member (or it is this node, or it left).
 */
export type ReachRoute = "direct" | "indirect" | "tcp" | "none" | "unknown"

/** A reachability check (`Reach` with this `request`) ended. */
export interface Reached {
  readonly _tag: "Reached"
  readonly request: number
  readonly target: NodeId
  readonly route: ReachRoute
  /** From the first ping to the answer, in ms (undefined without one). */
  readonly rtt: number | undefined
  /** Helpers asked for an indirect ping, and how many of them nacked (could not reach it either). */
  readonly helpers: number
  readonly nacks: number
}

/** Every output the engine emits (see the module comment). */
export type Output =
  | Send
  | OpenExchange
  | CancelExchange
  | Reply
  | Refuse
  | SetTimer
  | CancelTimer
  | Resolve
  | MembershipChanged
  | JoinEnded
  | LeaveEnded
  | Log
  | Count
  | Reached

/**
 * The engine's timers. Rounds repeat by re-arming themselves; the others
 * carry what they are about, and the engine ignores one that no longer
 * matches its state (a probe that already ended, a refuted suspicion).
 */
export type Timer =
  | { readonly _tag: "ProbeRound" }
  | { readonly _tag: "GossipRound" }
  | { readonly _tag: "PushPullRound" }
  | { readonly _tag: "ReconnectRound" }
  | { readonly _tag: "ReapRound" }
  /** The direct ping of probe `seq` got no ack in time: go indirect. */
  | { readonly _tag: "ProbeIndirect"; readonly seq: number }
  /** Probe `seq`'s budget is spent: verdict. */
  | { readonly _tag: "ProbeEnd"; readonly seq: number }
  | { readonly _tag: "Suspicion"; readonly target: NodeId }
  /** A ping-req this node relays: nack time, then the end of its window. */
  | { readonly _tag: "Relay"; readonly seq: number }
  /** A verification ping's window ended. */
  | { readonly _tag: "Verify"; readonly seq: number }
  /** The ping that checks a peer's verdict got its ack, or not, in time. */
  | { readonly _tag: "Check"; readonly seq: number }
  /** The push-pull that follows a successful join. */
  | { readonly _tag: "JoinFollowUp" }
  /** A leave checks whether its announcement went out. */
  | { readonly _tag: "LeaveCheck" }
  /** Reachability check `request`: go indirect, then its deadline. */
  | { readonly _tag: "Reach"; readonly request: number }

/** Timers with equal keys replace each other. A probe's two timers share one key: only one is ever armed. */
export const timerKey = (timer: Timer): string => {
  switch (timer._tag) {
    case "ProbeIndirect":
    case "ProbeEnd":
      return "Probe"
    case "Suspicion":
      return `Suspicion:${timer.target}`
    case "Relay":
      return `Relay:${timer.seq}`
    case "Verify":
      return `Verify:${timer.seq}`
    case "Check":
      return `Check:${timer.seq}`
    case "Reach":
      return `Reach:${timer.request}`
    default:
      return timer._tag
  }
}

/** The rounds Start arms and Stop disarms. */
export const ROUNDS = ["ProbeRound", "GossipRound", "PushPullRound", "ReconnectRound", "ReapRound"] as const
