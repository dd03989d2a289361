/**
 * shoal: SWIM gossip membership, phi accrual failure detection, health checks,
 * tag-based discovery and TLS RPC for Effect applications.
 *
 * This entry point is what an application uses: the `Cluster` service and its
 * configuration, the member model and events, health checks, and the RPC
 * server and clients. The protocol's building blocks live under
 * `shoal/protocol`, the wire codec under `shoal/wire`, and the in-memory
 * network, simulation helpers and throw-away TLS material under
 * `shoal/testing`.
 *
 * @module
 * @since 0.1.0
 */
export { Cluster, ClusterLive, type ClusterStats, type LayerOptions, type TagChanges } from "./cluster/Cluster.ts"
export * as ClusterConfig from "./cluster/Config.ts"
export * from "./cluster/Errors.ts"
export {
  ClusterEvent,
  NodeFailed,
  NodeJoined,
  NodeLeft,
  NodeReaped,
  NodeRecovered,
  NodeSuspected,
  NodeUpdated
} from "./cluster/Events.ts"
export type { TagQueryOptions } from "./cluster/gossip/Registry.ts"
export { AggregatedHealth } from "./cluster/health/Health.ts"
export { HealthCheck, HealthStatus } from "./cluster/health/HealthCheck.ts"
export {
  Address,
  ClusterNode,
  decodeNodeId,
  formatAddress,
  makeNodeId,
  NodeId,
  NodeState,
  parseAddress,
  Tags
} from "./cluster/Node.ts"
export { MemberReachability, ReachabilityOutcome } from "./cluster/Reachability.ts"
export type { Strategy as BalancingStrategy } from "./rpc/Balancer.ts"
export * as ClusterClient from "./rpc/ClusterClient.ts"
export { Idempotent } from "./rpc/ClusterClient.ts"
export * from "./rpc/Errors.ts"
export * as RpcClient from "./rpc/RpcClient.ts"
export * as RpcConfig from "./rpc/RpcConfig.ts"
export {
  advertisedRpcAddress,
  RpcServer,
  type ServerOptions as RpcServerOptions,
  type StartError as RpcStartError
} from "./rpc/RpcServer.ts"
export { layer as rpcSerialization } from "./rpc/Serialization.ts"
