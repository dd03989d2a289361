/**
 * The example's sharded entity: a conversation that remembers, durably, every
 * line it was told. `Say { seq }` stores the line in PostgreSQL and answers
 * with the runner that served it; `History` lists every line stored. Both
 * messages are persisted by effect/cluster (`ClusterSchema.Persisted`), so a
 * message whose runner dies is delivered again by the shard's next owner,
 * and storing a line twice is harmless (the line's `seq` is its key).
 *
 * An acknowledged line is one whose `Say` got a reply; after a failover the
 * conversation's `History` must still hold every one of them. That is what
 * "no acknowledged message was lost" checks.
 */
import { ClusterSchema, Entity } from "effect/cluster"
import * as Effect from "effect/Effect"
import { Rpc } from "effect/rpc"
import * as Schema from "effect/Schema"
import { SqlClient } from "effect/sql/SqlClient"

/** The reply to a line: who stored it, and how many lines the conversation holds now. */
export class Heard extends Schema.Class<Heard>("examples/effect_cluster/Heard")({
  seq: Schema.Int,
  runner: Schema.String,
  lines: Schema.Int
}) {}

export const Say = Rpc.make("Say", { payload: { seq: Schema.Int }, success: Heard }).annotate(
  ClusterSchema.Persisted,
  true
)

export const History = Rpc.make("History", { success: Schema.Array(Schema.Int) }).annotate(
  ClusterSchema.Persisted,
  true
)

export const Conversation = Entity.make("Conversation", [Say, History])

/** The table the conversations keep their lines in; the scenario creates it once, before any runner starts. */
export const SCHEMA = `CREATE TABLE IF NOT EXISTS conversation_lines (
  conversation TEXT NOT NULL,
  seq INTEGER NOT NULL,
  runner TEXT NOT NULL,
  PRIMARY KEY (conversation, seq)
)`

/** The entity's handlers, on the runner given by effect/cluster's `CurrentRunnerAddress`. */
export const ConversationLive = Conversation.toLayer(
  Effect.gen(function* () {
    const sql = yield* SqlClient
    const runnerAddress = yield* Entity.CurrentRunnerAddress
    const runner = `${runnerAddress.host}:${runnerAddress.port}`
    const conversation = (yield* Entity.CurrentAddress).entityId
    return Conversation.of({
      Say: ({ payload }) =>
        Effect.gen(function* () {
          yield* sql`INSERT INTO conversation_lines (conversation, seq, runner)
            VALUES (${conversation}, ${payload.seq}, ${runner}) ON CONFLICT DO NOTHING`
          const [row] = yield* sql<{ readonly lines: number }>`
            SELECT count(*)::int AS lines FROM conversation_lines WHERE conversation = ${conversation}`
          return new Heard({ seq: payload.seq, runner, lines: row?.lines ?? 0 })
        }).pipe(Effect.orDie),
      History: () =>
        sql<{ readonly seq: number }>`
          SELECT seq FROM conversation_lines WHERE conversation = ${conversation} ORDER BY seq`.pipe(
          Effect.map((rows) => rows.map((row) => row.seq)),
          Effect.orDie
        )
    })
  }),
  { maxIdleTime: "5 minutes" }
)
