/**
 * The engine's configuration as plain numbers (milliseconds), read once from
 * a `ClusterConfig`: the engine does arithmetic on times at every input and
 * never touches a `Duration`, a clock or a schema.
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Result from "effect/Result"
import type { ClusterConfig } from "../../Config.ts"
import type { Address, NodeId, Tags } from "../../Node.ts"
import { DEFAULT_MAX_UPDATES } from "../Codec.ts"
import { ENVELOPE_OVERHEAD } from "../Keyring.ts"
import { makeSettings, optionsFromConfig, type Settings as PhiSettings } from "../PhiDetector.ts"

/** The engine's configuration, every time in milliseconds (see the module comment). */
export interface EngineSettings {
  readonly clusterLabel: string
  /** What the engine packs a datagram to (the configured size, less the envelope when gossip is sealed). */
  readonly maxPacketSize: number
  /** Updates piggybacked on one packet at most. */
  readonly maxUpdatesPerPacket: number
  readonly probeInterval: number
  readonly pingTimeout: number
  readonly indirectChecks: number
  readonly gossipInterval: number
  readonly gossipNodes: number
  readonly gossipToTheDeadTime: number
  readonly suspicionMult: number
  readonly suspicionMaxTimeoutMult: number
  readonly suspicionConfirmations: number | undefined
  readonly retransmitMult: number
  readonly awarenessMaxMultiplier: number
  readonly pushPullInterval: number
  readonly reconnectInterval: number
  readonly reconnectTimeout: number
  readonly reapAfter: number
  readonly tombstoneTtl: number
  readonly tcpPings: boolean
  readonly leaveTimeout: number
  readonly phiThreshold: number
  /** The phi detectors' tuning (window, floors, first estimate). */
  readonly phi: PhiSettings
  /** `host:port` seeds, retried while no member is alive (resolved by the shell). */
  readonly seedNodes: ReadonlyArray<string>
}

/**
 * When a ping-req helper sends its nack, as a fraction of the ping timeout:
 * early enough to reach the requestor before its probe interval ends.
 */
export const NACK_AT = 0.8

/** Coalescing window for phi heartbeats: packets closer together than this are one arrival. */
export const PHI_COALESCE_MILLIS = 10

/** Push-pull state is bounded by the codec's cap; every exchange has this much time. */
export const PUSH_PULL_TIMEOUT_MILLIS = 10_000

/**
 * Stream exchanges a node runs in the background at once (periodic push-pull,
 * reconnects, learning about strangers, revivals). Each holds a connection for
 * up to its timeout when the peer's packets are dropped, so they are few.
 */
export const MAX_BACKGROUND_EXCHANGES = 4

/** Failed members remembered as reconnect targets; the oldest go first beyond this. */
export const MAX_RECONNECT_TARGETS = 4096

/** Per-peer cooldown tables (strangers to learn from, the dead to revive) are cleared beyond this size. */
export const MAX_COOLDOWN_ENTRIES = 4096

/** How early a timer may fire and still count as due (clock rounding of fractional times). */
export const TIMER_SLACK_MILLIS = 1

/** How often the reaper looks for members to forget, in ms. */
export const REAP_INTERVAL_MILLIS = 1000

/** A successful join is followed by one more push-pull this many gossip intervals later. */
export const JOIN_FOLLOW_UP_GOSSIP_INTERVALS = 10

/** How long push-pull waits between rounds for a cluster of `n` (memberlist's scaling above 32 members). */
export const pushPullScale = (interval: number, n: number): number =>
  n <= 32 ? interval : interval * (Math.ceil(Math.log2(n) - Math.log2(32)) + 1)

/** The engine's settings from a validated configuration. */
export const settingsFromConfig = (config: ClusterConfig): EngineSettings => ({
  clusterLabel: config.clusterLabel,
  // a sealed packet is ENVELOPE_OVERHEAD bytes longer than what the engine packs
  maxPacketSize: config.maxPacketSize - (config.keyring === undefined ? 0 : ENVELOPE_OVERHEAD),
  maxUpdatesPerPacket: DEFAULT_MAX_UPDATES,
  probeInterval: Duration.toMillis(config.probeInterval),
  pingTimeout: Duration.toMillis(config.pingTimeout),
  indirectChecks: config.indirectChecks,
  gossipInterval: Duration.toMillis(config.gossipInterval),
  gossipNodes: config.gossipNodes,
  gossipToTheDeadTime: Duration.toMillis(config.gossipToTheDeadTime),
  suspicionMult: config.suspicionMult,
  suspicionMaxTimeoutMult: config.suspicionMaxTimeoutMult,
  suspicionConfirmations: config.suspicionConfirmations,
  retransmitMult: config.retransmitMult,
  awarenessMaxMultiplier: config.awarenessMaxMultiplier,
  pushPullInterval: Duration.toMillis(config.pushPullInterval),
  reconnectInterval: Duration.toMillis(config.reconnectInterval),
  reconnectTimeout: Duration.toMillis(config.reconnectTimeout),
  reapAfter: Duration.toMillis(config.reapAfter),
  tombstoneTtl: Duration.toMillis(config.tombstoneTtl),
  tcpPings: config.tcpPings,
  leaveTimeout: Duration.toMillis(config.leaveTimeout),
  phiThreshold: config.phiThreshold,
  // the configuration was validated, phi fields included
  phi: Result.getOrThrow(makeSettings(optionsFromConfig(config))),
  seedNodes: config.seedNodes
})

/** What identifies this node to the engine: who it is and where it is bound. */
export interface Identity {
  readonly id: NodeId
  readonly name: string
  /** The address others dial (advertised). */
  readonly gossipAddress: Address
  /** The address the transport is bound to (may differ from the advertised one). */
  readonly boundAddress: Address
  readonly rpcAddress?: Address | undefined
  readonly tags: Tags
}
