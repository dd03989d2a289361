/**
 * The cluster: membership, failure detection, health and discovery.
 *
 * @since 0.1.0
 */
export * from "./Cluster.ts"
export * as ClusterConfig from "./Config.ts"
export * from "./Errors.ts"
export * from "./Events.ts"
export * as Awareness from "./gossip/Awareness.ts"
export * as Broadcasts from "./gossip/Broadcasts.ts"
export * as Codec from "./gossip/Codec.ts"
export { GossipService } from "./gossip/GossipService.ts"
export * as Messages from "./gossip/Messages.ts"
export * as Phi from "./gossip/PhiDetector.ts"
export { PhiDetector } from "./gossip/PhiDetector.ts"
export * as ProbeOrder from "./gossip/ProbeOrder.ts"
export * as Registry from "./gossip/Registry.ts"
export { NodeRegistry } from "./gossip/Registry.ts"
export {
  type LinkConditions,
  type NodeConditions,
  SimNetwork,
  type SimNetworkOptions,
  type SimStats,
  type SimTotals
} from "./gossip/SimNetwork.ts"
export * as Suspicion from "./gossip/Suspicion.ts"
export { Swim, type SwimStats } from "./gossip/Swim.ts"
export { type Packet, type StreamHandler, Transport, type TransportStats } from "./gossip/Transport.ts"
export * as UdpTransport from "./gossip/UdpTransport.ts"
export { AggregatedHealth, Health } from "./health/Health.ts"
export { HealthCheck, HealthStatus } from "./health/HealthCheck.ts"
export * from "./Node.ts"
export * as Rules from "./Rules.ts"
