/**
 * The cluster: membership, failure detection, health and discovery.
 *
 * @since 0.1.0
 */
export * as ClusterConfig from "./Config.ts"
export * from "./Errors.ts"
export * from "./gossip/Transport.ts"
export * from "./Node.ts"
export * as Rules from "./Rules.ts"
