/**
 * One node of the discrete-event simulator: its engine, the timers it armed,
 * the exchanges it has in flight, and the state of a paused process (timers
 * that came due while it slept, datagrams and stream messages queued in its
 * sockets). Also what a `Cluster` does around the engine when it starts:
 * publish the `healthy` tag, start the rounds, join through the seeds
 * (retrying with backoff until `joinTimeout`).
 *
 * @since 0.1.0
 */
import { HEALTHY_TAG } from "../../Config.ts"
import { type Address, type ClusterNode, formatAddress, type NodeId, type Tags } from "../../Node.ts"
import { Engine } from "../engine/Engine.ts"
import type { StreamMessage } from "../engine/Input.ts"
import type { Timer } from "../engine/Output.ts"
import type { Rng } from "../engine/Rng.ts"
import type { EngineSettings } from "../engine/Settings.ts"
import type { Packet } from "../Messages.ts"
import type { Timed } from "../TimedQueue.ts"

/** Something that happens to a node at a time. */
export type Event = Timed & EventBody

/** What happens, to whom. */
export type EventBody = { readonly node: SimulatedNode } & (
  | {
      readonly kind: "datagram"
      readonly from: Address
      readonly fromKey: string
      readonly packet: Packet
      readonly bytes: number
    }
  | { readonly kind: "timer"; readonly key: string; readonly timer: Timer }
  | { readonly kind: "request"; readonly exchange: PendingExchange }
  | { readonly kind: "response"; readonly exchange: PendingExchange; readonly result: StreamMessage | string }
  | { readonly kind: "deadline"; readonly exchange: PendingExchange }
  | { readonly kind: "resolved"; readonly id: number; readonly addresses: ReadonlyArray<Address> | string }
  | { readonly kind: "wake" }
  | { readonly kind: "rejoin" }
)

/** An exchange the node opened that has not ended. */
export interface PendingExchange {
  readonly id: number
  readonly from: SimulatedNode
  readonly to: Address
  readonly request: StreamMessage
  done: boolean
}

/** What a node's creator gives it. */
export interface NodeSpec {
  readonly id: NodeId
  readonly name: string
  readonly address: Address
  readonly tags?: Tags | undefined
  readonly settings: EngineSettings
  /** Join through these (none: start alone). */
  readonly seeds?: ReadonlyArray<Address> | undefined
  /** How long a join keeps retrying (default 10 s, the configuration's default). */
  readonly joinTimeout?: number | undefined
}

/** One simulated node: its engine, armed timers, exchanges in flight and paused-process state (see the module comment). */
export class SimulatedNode {
  readonly id: NodeId
  readonly name: string
  readonly address: Address
  readonly key: string
  readonly engine: Engine
  readonly settings: EngineSettings
  /** Armed timers by key: an event fires only while it is the one here. */
  readonly timers = new Map<string, Event>()
  readonly exchanges = new Map<number, PendingExchange>()
  /** Attached to the network: a crashed or stopped node is not. */
  attached = true
  /** Paused: timers wait in `overdue`, socket events in `inbox`. */
  paused = false
  /** A resumed node's sockets wake a millisecond after its timers (as Node runs due timers before polling I/O). */
  socketsAsleep = false
  readonly overdue: Array<Event> = []
  readonly inbox: Array<Event> = []
  /** The join in progress: its ticket, deadline and backoff. */
  join: { ticket: number; deadline: number; backoff: number; seeds: ReadonlyArray<Address> } | undefined
  joined = false
  left = false
  leaveTicket: number | undefined

  constructor(spec: NodeSpec, random: Rng | number) {
    this.id = spec.id
    this.name = spec.name
    this.address = spec.address
    this.key = formatAddress(spec.address)
    this.settings = spec.settings
    this.engine = new Engine({
      settings: spec.settings,
      identity: {
        id: spec.id,
        name: spec.name,
        gossipAddress: spec.address,
        boundAddress: spec.address,
        tags: spec.tags ?? {}
      },
      random
    })
    this.join = undefined
  }

  get localNode(): ClusterNode {
    return this.engine.localNode
  }

  /** The tags a `Cluster` publishes at start: the configured ones and `healthy=true`. */
  static startingTags(tags: Tags | undefined): Tags {
    return { ...tags, [HEALTHY_TAG]: "true" }
  }
}
