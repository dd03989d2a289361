/**
 * The example's client: a process that hosts no entities and talks to
 * `conversations` Conversation entities at once, each one line at a time —
 * `Say { seq }`, wait for the reply, pause `intervalMillis`, next `seq` — and
 * prints one JSON line per reply on stdout (`heard`) and per failed call
 * (`error`; the same line is sent again). A line that got a reply is
 * acknowledged.
 *
 * On `finish` (a line on stdin) it stops saying new lines, lets the ones in
 * flight finish, asks every conversation for its `History`, prints it
 * (`history`), then `done`, and exits.
 *
 * With `health: "shoal"` it joins shoal's cluster as a plain member (no runner
 * tag) so that its calls to a runner shoal declares gone fail at once and are
 * answered from storage (`ShoalClusterSocket` client-only).
 */
import * as NodeClusterSocket from "@effect/platform-node/NodeClusterSocket"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { Cluster } from "../../src/cluster/Cluster.ts"
import * as ClusterConfig from "../../src/cluster/Config.ts"
import { ShoalClusterSocket } from "../../src/effect-cluster/index.ts"
import { Conversation } from "./Conversation.ts"
import { DATABASE, USER } from "./postgres.ts"
import { type ClientSettings, conversationId, readSettings } from "./settings.ts"

/** A call waits at most this long for its reply before it is counted as failed and sent again. */
const CALL_DEADLINE = Duration.seconds(120)

const settings = readSettings<ClientSettings>()

const emit = (line: Record<string, unknown>) => Effect.sync(() => process.stdout.write(`${JSON.stringify(line)}\n`))

const finishRequested = Effect.callback<void>((resume) => {
  const onData = (chunk: Buffer) => {
    if (chunk.toString().includes("finish")) resume(Effect.void)
  }
  process.stdin.on("data", onData)
  return Effect.sync(() => process.stdin.off("data", onData))
})

const converse = Effect.gen(function* () {
  const clientFor = yield* Conversation.client
  const finishing = yield* Deferred.make<void>()
  yield* Effect.forkChild(Effect.andThen(finishRequested, Deferred.succeed(finishing, undefined)))

  const talk = (i: number) =>
    Effect.gen(function* () {
      const conversation = conversationId(i)
      const entity = clientFor(conversation)
      let seq = 1
      while (!(yield* Deferred.isDone(finishing))) {
        const sent = Date.now()
        const reply = yield* entity.Say({ seq }).pipe(Effect.timeout(CALL_DEADLINE), Effect.result)
        if (reply._tag === "Success") {
          yield* emit({ type: "heard", conversation, seq, runner: reply.success.runner, sent })
          seq++
        } else {
          yield* emit({ type: "error", conversation, seq, error: String(reply.failure) })
        }
        yield* Effect.sleep(settings.intervalMillis)
      }
    })
  yield* Effect.forEach(
    Array.from({ length: settings.conversations }, (_, i) => i),
    talk,
    {
      concurrency: "unbounded",
      discard: true
    }
  )
  for (let i = 0; i < settings.conversations; i++) {
    const conversation = conversationId(i)
    const seqs = yield* clientFor(conversation).History().pipe(Effect.timeout(CALL_DEADLINE), Effect.orDie)
    yield* emit({ type: "history", conversation, seqs })
  }
  yield* emit({ type: "done" })
})

const postgres = PgClient.layer({
  host: settings.postgres.host,
  port: settings.postgres.port,
  username: USER,
  database: DATABASE,
  applicationName: "client",
  connectTimeout: Duration.seconds(5)
})

const stock = NodeClusterSocket.layer({ clientOnly: true }).pipe(Layer.provide(postgres))

const withShoal = Effect.gen(function* () {
  if (settings.gossip === undefined) return yield* Effect.die("health 'shoal' needs gossip settings")
  const config = yield* ClusterConfig.make({
    ...ClusterConfig.fastDetection,
    nodeName: "client",
    bindAddress: settings.gossip.bind,
    seedNodes: settings.gossip.seeds,
    retryJoin: true,
    retryJoinInterval: "1 second",
    leaveTimeout: "2 seconds"
  })
  return ShoalClusterSocket.layer({ clientOnly: true }).pipe(
    Layer.provide(postgres),
    Layer.provide(Cluster.layer(config))
  )
}).pipe(Layer.unwrap)

converse.pipe(Effect.provide(settings.health === "shoal" ? withShoal : stock), NodeRuntime.runMain)
