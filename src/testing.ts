/**
 * `shoal/testing`: what tests, simulations and local development use — the
 * in-memory `SimNetwork` (latency, loss, partitions under `TestClock`), the
 * `Transport` interface it implements, whole-cluster simulation helpers, the
 * discrete-event `Simulator` over bare engines, and
 * `DevTls`, throw-away TLS material for trying the RPC server.
 *
 * @module
 * @since 0.1.0
 */

/**
 * The in-memory network (a `Transport` per attached address) with latency,
 * jitter, loss, partitions and slow nodes, deterministic under `TestClock`
 * and a seeded `Random`.
 */
export {
  type LinkConditions,
  type NodeConditions,
  SimNetwork,
  type SimNetworkOptions,
  type SimStats,
  type SimTotals
} from "./cluster/gossip/SimNetwork.ts"
export { type NodeSpec, SimulatedNode } from "./cluster/gossip/simulator/SimulatedNode.ts"
export { Simulator, type SimulatorOptions } from "./cluster/gossip/simulator/Simulator.ts"
/**
 * The discrete-event simulator: whole clusters of bare protocol engines, no
 * fibers or `TestClock`, with `SimNetwork`'s fault model — thousands of nodes
 * in minutes.
 */
export type { ByteCounting } from "./cluster/gossip/simulator/Traffic.ts"
export {
  type Packet,
  type StreamHandler,
  Transport,
  type TransportStats
} from "./cluster/gossip/Transport.ts"
export * as DevTls from "./testing/DevTls.ts"
export * as Simulation from "./testing/Simulation.ts"
