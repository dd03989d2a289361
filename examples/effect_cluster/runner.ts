/**
 * One effect/cluster runner of the example: a SocketRunner hosting the
 * `Conversation` entity, with runner and message storage in PostgreSQL.
 * With `health: "shoal"` it also joins shoal's cluster, advertising its runner
 * address as a tag, and takes its runner health, failure reports, RPC and
 * shard-lock fencing from `ShoalClusterSocket`; otherwise it is stock
 * `NodeClusterSocket.layer()` with `RunnerHealth.layerPing`.
 *
 *   node runner.ts '{"name":"runner-1","runner":{…},"health":"shoal",…}'
 *
 * Prints `READY` once its layers are built; stops cleanly on SIGTERM/SIGINT.
 */
import * as NodeClusterSocket from "@effect/platform-node/NodeClusterSocket"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as PgClient from "@effect/sql-pg/PgClient"
import { RunnerAddress } from "effect/cluster/RunnerAddress"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { Cluster } from "../../src/cluster/Cluster.ts"
import * as ClusterConfig from "../../src/cluster/Config.ts"
import { PgSessionFencing, RunnerTag, ShoalClusterSocket } from "../../src/effect-cluster/index.ts"
import { ConversationLive } from "./Conversation.ts"
import { DATABASE, USER } from "./postgres.ts"
import { type RunnerSettings, readSettings } from "./settings.ts"

/**
 * Shoal's configuration for runners: the LAN defaults with `fastDetection`
 * (half the suspicion floor; with three members Lifeguard expects no
 * confirmations, so a silent member is declared dead 2 s after it is
 * suspected), and retrying the join, so runners can start in any order.
 */
export const runnerClusterConfig = (
  name: string,
  gossip: NonNullable<RunnerSettings["gossip"]>,
  tags: Readonly<Record<string, string>>
) =>
  ClusterConfig.make({
    ...ClusterConfig.fastDetection,
    nodeName: name,
    bindAddress: gossip.bind,
    seedNodes: gossip.seeds,
    tags,
    retryJoin: true,
    retryJoinInterval: "1 second",
    leaveTimeout: "2 seconds"
  })

const settings = readSettings<RunnerSettings>()
const runnerAddress = RunnerAddress.make(settings.runner)
const postgres = (applicationName: string) =>
  PgClient.layer({
    host: settings.postgres.host,
    port: settings.postgres.port,
    username: USER,
    database: DATABASE,
    applicationName,
    connectTimeout: Duration.seconds(5)
  })

const stock = () =>
  ConversationLive.pipe(
    Layer.provide(
      NodeClusterSocket.layer({
        shardingConfig: {
          runnerAddress: Option.some(runnerAddress),
          ...(settings.health === "ping-1s" ? { runnerHealthCheckInterval: Duration.seconds(1) } : {})
        }
      })
    ),
    Layer.provide(postgres(settings.name))
  )

const withShoal = Effect.gen(function* () {
  if (settings.gossip === undefined) return yield* Effect.die("health 'shoal' needs gossip settings")
  const config = yield* runnerClusterConfig(settings.name, settings.gossip, RunnerTag.tagsFor(runnerAddress))
  return ConversationLive.pipe(
    Layer.provide(ShoalClusterSocket.layer({ shardingConfig: { runnerAddress: Option.some(runnerAddress) } })),
    Layer.provide(postgres(PgSessionFencing.applicationName(config.nodeId))),
    Layer.provide(Cluster.layer(config))
  )
}).pipe(Layer.unwrap)

const app = settings.health === "shoal" ? withShoal : stock()

Effect.gen(function* () {
  yield* Layer.build(app)
  yield* Effect.sync(() => console.log("READY"))
  return yield* Effect.never
}).pipe(Effect.scoped, NodeRuntime.runMain)
