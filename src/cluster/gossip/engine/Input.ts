/**
 * Everything that can happen to a node, as data: the engine's only way in.
 * Each input comes with the current time (the `now` argument of
 * `Engine.handle`), so the engine never reads a clock.
 *
 * Wire payloads come as bytes (the shell on a real network: the engine
 * decodes them and counts what it rejects) or already decoded (the
 * discrete-event simulator, which passes message objects between engines
 * and skips the codec).
 *
 * @since 0.1.0
 */
import type { Address, NodeId, Tags } from "../../Node.ts"
import type { Packet, PushPull } from "../Messages.ts"
import type { Timer } from "./Output.ts"

/** What travels over a stream: a push-pull state, or a packet carrying a ping (the TCP fallback). */
export type StreamMessage = PushPull | Packet

/** A datagram arrived from `from` (its source address). */
export interface Datagram {
  readonly _tag: "Datagram"
  readonly from: Address
  readonly payload: Uint8Array | Packet
}

/**
 * A peer opened a stream and sent `payload`. The engine answers in the same
 * step with a `Reply` (or `Refuse`) carrying `request`.
 */
export interface StreamRequest {
  readonly _tag: "StreamRequest"
  /** The caller's chosen handle, echoed in the answer. */
  readonly request: number
  readonly from: Address
  readonly payload: Uint8Array | StreamMessage
}

/** The peer answered an exchange the engine opened (`OpenExchange` with this `id`). */
export interface ExchangeAnswered {
  readonly _tag: "ExchangeAnswered"
  readonly id: number
  readonly payload: Uint8Array | StreamMessage
}

/** An exchange the engine opened failed: refused, broken, too large, or its deadline passed (`timedOut`). */
export interface ExchangeFailed {
  readonly _tag: "ExchangeFailed"
  readonly id: number
  readonly reason: string
  readonly timedOut: boolean
}

/** A timer the engine armed (`SetTimer`) is due. */
export interface TimerFired {
  readonly _tag: "TimerFired"
  readonly timer: Timer
}

/** The shell resolved a seed the engine asked about (`Resolve` with this `id`). */
export interface Resolved {
  readonly _tag: "Resolved"
  readonly id: number
  /** The addresses, or why there are none. */
  readonly addresses: ReadonlyArray<Address> | string
}

/** Starts the protocol's periodic rounds (probe, gossip, push-pull, reconnect, reap). */
export interface Start {
  readonly _tag: "Start"
}

/** Stops the periodic rounds; the node still applies what it hears. */
export interface Stop {
  readonly _tag: "Stop"
}

/** One seed of a join: the addresses it resolved to, or why it did not resolve. */
export interface JoinSeed {
  /** The seed as configured (`host:port`), for error messages. */
  readonly seed: string
  readonly addresses: ReadonlyArray<Address> | string
}

/**
 * One join attempt: a push-pull with each seed (a few at a time, each seed's
 * addresses in turn) until `deadline`. Ends with `JoinEnded` for `ticket`.
 */
export interface Join {
  readonly _tag: "Join"
  readonly ticket: number
  readonly seeds: ReadonlyArray<JoinSeed>
  readonly deadline: number
}

/** Leave gracefully; ends with `LeaveEnded` for `ticket` once the `Left` went out (or `leaveTimeout`). */
export interface Leave {
  readonly _tag: "Leave"
  readonly ticket: number
}

/** Publish new tags at a new incarnation (health reaches the engine this way, as the `healthy` tag). */
export interface SetTags {
  readonly _tag: "SetTags"
  readonly tags: Tags
}

/**
 * An operator's reachability check of `target` (`Reachability.ts`): probe it
 * now, directly, indirectly and over TCP, without a verdict. Ends with
 * `Reached` for `request` by `deadline` (absolute ms).
 */
export interface Reach {
  readonly _tag: "Reach"
  readonly request: number
  readonly target: NodeId
  readonly deadline: number
}

/** Every input the engine takes (see the module comment). */
export type Input =
  | Datagram
  | StreamRequest
  | ExchangeAnswered
  | ExchangeFailed
  | TimerFired
  | Resolved
  | Start
  | Stop
  | Join
  | Leave
  | SetTags
  | Reach
