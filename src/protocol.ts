/**
 * `shoal/protocol`: the pieces the cluster is built from, for applications
 * that assemble their own node (a custom Transport, their own loops) or study
 * the protocol: the SWIM engine and its loops, the member registry, the phi
 * accrual detector, the pure Lifeguard modules (suspicion, awareness,
 * dissemination queue, probe order, precedence rules), the health service and
 * the UDP transport.
 *
 * Nothing here is needed to run a cluster: `Cluster.layer` from `shoal` wires
 * all of it.
 *
 * @module
 * @since 0.1.0
 */
export * as Awareness from "./cluster/gossip/Awareness.ts"
export * as Broadcasts from "./cluster/gossip/Broadcasts.ts"
/**
 * The SWIM protocol as a sans-IO state machine: one node's state and pure
 * transitions, `Engine.handle(now, input)` → outputs (see src/cluster/README.md).
 */
export { Engine, type EngineOptions } from "./cluster/gossip/engine/Engine.ts"
export type { Input } from "./cluster/gossip/engine/Input.ts"
export { type Output, type Timer, timerKey } from "./cluster/gossip/engine/Output.ts"
export { type EngineSettings, settingsFromConfig } from "./cluster/gossip/engine/Settings.ts"
/** What keeps a node running: the receive loop, the stream server and the engine's rounds. */
export { GossipService } from "./cluster/gossip/GossipService.ts"
export * as Phi from "./cluster/gossip/PhiDetector.ts"
export { PhiDetector } from "./cluster/gossip/PhiDetector.ts"
export * as ProbeOrder from "./cluster/gossip/ProbeOrder.ts"
export * as Registry from "./cluster/gossip/Registry.ts"
export { NodeRegistry } from "./cluster/gossip/Registry.ts"
export * as Suspicion from "./cluster/gossip/Suspicion.ts"
/** The Effect shell around the engine: feeds it inputs, executes its outputs on the Transport and Clock. */
export { Swim, type SwimStats } from "./cluster/gossip/Swim.ts"
/** The real `Transport`: UDP datagrams and TCP exchanges on one port. */
export * as UdpTransport from "./cluster/gossip/UdpTransport.ts"
export * as HealthService from "./cluster/health/Health.ts"
export * as Rules from "./cluster/Rules.ts"
