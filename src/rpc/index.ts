/**
 * RPC over TLS with the cluster: configuration, a server that joins the
 * cluster while it serves, clients for one server or for any member with
 * given tags.
 *
 * @since 0.1.0
 */
export * as Balancer from "./Balancer.ts"
export * as ClusterClient from "./ClusterClient.ts"
export { Idempotent } from "./ClusterClient.ts"
export * from "./Errors.ts"
export * as RpcClient from "./RpcClient.ts"
export * as RpcConfig from "./RpcConfig.ts"
export {
  advertisedRpcAddress,
  RpcServer,
  type ServerOptions as RpcServerOptions,
  type StartError as RpcStartError
} from "./RpcServer.ts"
export { layer as rpcSerialization } from "./Serialization.ts"
export * as RpcStreaming from "./Streaming.ts"
export * as RpcTls from "./Tls.ts"
