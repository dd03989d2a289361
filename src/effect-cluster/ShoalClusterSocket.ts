/**
 * effect/cluster's socket runner on shoal: what `NodeClusterSocket.layer()`
 * (from `@effect/platform-node`) builds, with SQL storage, but with the
 * runner's health, failure reporting, RPC and shard-lock fencing taken from
 * shoal's membership. Swap one for the other and provide a `Cluster` (whose
 * configuration carries the runner tag, `RunnerTag.tagsFor`) and a
 * `SqlClient` (PostgreSQL: connect it with
 * `PgSessionFencing.applicationName(nodeId)`).
 *
 * SQL stays the single source of truth for what needs one: runner
 * registration (and the machine ids that keep snowflakes unique), shard
 * locks, messages and replies. Shoal only decides, faster, who is alive.
 *
 * @module
 * @since 0.1.0
 */
import * as NodeClusterSocket from "@effect/platform-node/NodeClusterSocket"
import * as NodeCrypto from "@effect/platform-node/NodeCrypto"
import type { ConfigError } from "effect/Config"
import type * as MessageStorage from "effect/cluster/MessageStorage"
import type * as Runners from "effect/cluster/Runners"
import type { Sharding } from "effect/cluster/Sharding"
import * as ShardingConfig from "effect/cluster/ShardingConfig"
import * as SocketRunner from "effect/cluster/SocketRunner"
import * as SqlMessageStorage from "effect/cluster/SqlMessageStorage"
import * as SqlRunnerStorage from "effect/cluster/SqlRunnerStorage"
import * as Duration from "effect/Duration"
import * as Layer from "effect/Layer"
import * as RpcSerialization from "effect/rpc/RpcSerialization"
import type { SocketServerError } from "effect/socket/SocketServer"
import type { SqlClient } from "effect/sql/SqlClient"
import type { Cluster } from "../cluster/Cluster.ts"
import * as FailureReporter from "./FailureReporter.ts"
import * as PgSessionFencing from "./PgSessionFencing.ts"
import * as ShoalClientProtocol from "./ShoalClientProtocol.ts"
import * as ShoalRunnerHealth from "./ShoalRunnerHealth.ts"
import * as ShoalRunnerStorage from "./ShoalRunnerStorage.ts"

/**
 * How often effect/cluster asks `RunnerHealth` when the caller does not say:
 * answering from membership costs nothing, so once a second (stock: a minute).
 */
export const DEFAULT_HEALTH_CHECK_INTERVAL = Duration.seconds(1)

/**
 * How often each process rebuilds its shard assignments when the caller does
 * not say (stock: 3 s). `ShoalRunnerStorage` answers most of these reads from
 * memory and the membership, and reads SQL at the stock cadence, so a quarter
 * second costs no database load and moves shards a quarter second after
 * shoal's verdict.
 */
export const DEFAULT_REFRESH_ASSIGNMENTS_INTERVAL = Duration.millis(250)

/** How `ShoalClusterSocket.layer` runs: effect/cluster's socket options plus shoal's cluster and intervals. */
export interface Options {
  /** Overrides over `ShardingConfig.layerFromEnv` (as `NodeClusterSocket.layer`'s `shardingConfig`). */
  readonly shardingConfig?: Partial<ShardingConfig.ShardingConfig["Service"]> | undefined
  /** A client that hosts no entities: sends to them, with shoal's RPC, but runs no runner, health or fencing. */
  readonly clientOnly?: boolean | undefined
}

/** The runner (or client) with SQL storage and shoal's health, failure reports, RPC and fencing. */
export const layer = (
  options: Options = {}
): Layer.Layer<
  Sharding | Runners.Runners | MessageStorage.MessageStorage,
  SocketServerError | ConfigError,
  Cluster | SqlClient
> => {
  const health = ShoalRunnerHealth.layer
  const sqlRunnerStorage = Layer.orDie(SqlRunnerStorage.layer)
  const runnerStorage = ShoalRunnerStorage.layer().pipe(Layer.provide([sqlRunnerStorage, health]))
  const clientProtocol = ShoalClientProtocol.layer.pipe(
    Layer.provide(NodeClusterSocket.layerClientProtocol),
    Layer.provide(health)
  )
  const sharding = options.clientOnly
    ? SocketRunner.layerClientOnly.pipe(Layer.provide([clientProtocol, runnerStorage]))
    : Layer.mergeAll(
        SocketRunner.layer.pipe(
          Layer.provide([NodeClusterSocket.layerSocketServer, clientProtocol, health, runnerStorage])
        ),
        // The reporter writes what SQL holds, so it reads SQL's own flags, not the overlay.
        FailureReporter.layer.pipe(Layer.provide([health, sqlRunnerStorage])),
        PgSessionFencing.layer
      )
  return sharding.pipe(
    Layer.provideMerge(SqlMessageStorage.layer.pipe(Layer.provide(NodeCrypto.layerDigest))),
    Layer.provide(
      ShardingConfig.layerFromEnv({
        runnerHealthCheckInterval: DEFAULT_HEALTH_CHECK_INTERVAL,
        refreshAssignmentsInterval: DEFAULT_REFRESH_ASSIGNMENTS_INTERVAL,
        ...options.shardingConfig
      })
    ),
    Layer.provide(RpcSerialization.layerSchemaBinary())
  )
}
