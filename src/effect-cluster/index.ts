/**
 * shoal for effect/cluster: runner health, failure reports, RPC and
 * shard-lock fencing from shoal's membership, so that the shards of a dead,
 * paused or cut-off runner move in seconds. Loaded only by applications that
 * import it (`shoal/effect-cluster`); the core entry point never does.
 *
 * @module
 * @since 0.1.0
 */
export * as FailureReporter from "./FailureReporter.ts"
export * as PgSessionFencing from "./PgSessionFencing.ts"
export * as RunnerLiveness from "./RunnerLiveness.ts"
export { RunnerPortProbe } from "./RunnerPortProbe.ts"
export * as RunnerTag from "./RunnerTag.ts"
export * as ShoalClientProtocol from "./ShoalClientProtocol.ts"
export * as ShoalClusterSocket from "./ShoalClusterSocket.ts"
export * as ShoalRunnerHealth from "./ShoalRunnerHealth.ts"
export * as ShoalRunnerStorage from "./ShoalRunnerStorage.ts"
