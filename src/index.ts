/**
 * shoal: SWIM gossip membership, phi accrual failure detection, health checks,
 * tag-based discovery and TLS RPC for Effect applications.
 *
 * @since 0.1.0
 */
export * from "./cluster/index.ts"
export * from "./rpc/index.ts"
