/**
 * What the live page shows, as one JSON document: this node, every member
 * with its phi and when it was last heard from, counters, awareness, health
 * and the keyring's fingerprints (never the keys). Read from the public
 * `Cluster` API each time it is sent.
 *
 * @module
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import { countByState, flattenCounters } from "../admin/AdminHandlers.ts"
import type { Cluster } from "../cluster/Cluster.ts"
import type { ClusterEvent } from "../cluster/Events.ts"
import { type ClusterNode, formatAddress } from "../cluster/Node.ts"

/** A member on the page. */
export interface UiMember {
  readonly id: string
  readonly name: string
  readonly state: ClusterNode["state"]
  readonly incarnation: number
  readonly address: string
  readonly rpcAddress: string | null
  readonly tags: Readonly<Record<string, string>>
  readonly self: boolean
  readonly phi: number | null
  /** Milliseconds since the epoch, or null before the first packet. */
  readonly lastHeard: number | null
}

/** The page's whole state. */
export interface UiState {
  readonly ts: number
  readonly self: string
  readonly status: "open" | "left" | "closed"
  readonly members: ReadonlyArray<UiMember>
  readonly counts: ReturnType<typeof countByState>
  readonly counters: Readonly<Record<string, number>>
  readonly awareness: number
  readonly healthy: boolean
  readonly keyFingerprints: ReadonlyArray<string>
}

/** A membership event on the page's timeline. */
export interface UiEvent {
  readonly ts: number
  readonly event: ClusterEvent["_tag"]
  readonly name: string
  readonly id: string
  readonly state: ClusterNode["state"]
}

/** The state now. */
export const uiState = Effect.fn("Ui.state")(function* (cluster: Cluster["Service"]) {
  const self = yield* cluster.localNode
  const members = yield* cluster.members
  const readings = new Map((yield* cluster.phiReadings.pipe(Effect.orElseSucceed(() => []))).map((r) => [r.id, r]))
  const stats = yield* cluster.stats.pipe(Effect.option)
  const health = yield* cluster.health.pipe(Effect.option)
  return {
    ts: yield* Clock.currentTimeMillis,
    self: self.id,
    status: yield* cluster.status,
    members: members.map((node): UiMember => {
      const reading = readings.get(node.id)
      return {
        id: node.id,
        name: node.name,
        state: node.state,
        incarnation: node.incarnation,
        address: formatAddress(node.gossipAddress),
        rpcAddress: node.rpcAddress === undefined ? null : formatAddress(node.rpcAddress),
        tags: node.tags,
        self: node.id === self.id,
        phi: node.id === self.id || reading === undefined ? null : reading.phi,
        lastHeard: reading?.lastHeartbeat ?? null
      }
    }),
    counts: countByState(members),
    counters: stats._tag === "Some" ? flattenCounters(stats.value) : {},
    awareness: stats._tag === "Some" ? stats.value.awareness : 0,
    healthy: health._tag === "Some" ? health.value.healthy : false,
    keyFingerprints: yield* cluster.keys.fingerprints
  } satisfies UiState
})

/** An event for the timeline. */
export const uiEvent = (event: ClusterEvent, ts: number): UiEvent => ({
  ts,
  event: event._tag,
  name: event.node.name,
  id: event.node.id,
  state: event.node.state
})
