/**
 * What the client, the director and the workers say to each other, and the
 * settings they share.
 *
 * One RPC serves both hops: the client asks the director to `generate`, and
 * the director asks a worker the same question, passing `resumeFrom` when it
 * moves a stream to another worker. A token's text depends only on the
 * prompt and its sequence number, so a resumed stream continues the same
 * text from the next token, whichever worker produces it.
 */
import * as Duration from "effect/Duration"
import * as Rpc from "effect/rpc/Rpc"
import * as RpcGroup from "effect/rpc/RpcGroup"
import * as Schema from "effect/Schema"

/** One generated token, as the client sees it. */
export class Token extends Schema.Class<Token>("connection_swap/Token")({
  connectionId: Schema.String,
  worker: Schema.String,
  seq: Schema.Int,
  text: Schema.String
}) {}

/** The director found no healthy worker within its wait; the client shows this. */
export class NoHealthyWorker extends Schema.TaggedError<NoHealthyWorker>()("NoHealthyWorker", {
  connectionId: Schema.String,
  waitedMillis: Schema.Number
}) {
  override get message(): string {
    return `no healthy worker for stream ${this.connectionId} after ${this.waitedMillis} ms`
  }
}

/** A worker gave up on a stream (the simulated mid-stream error). */
export class GenerationFailed extends Schema.TaggedError<GenerationFailed>()("GenerationFailed", {
  worker: Schema.String,
  seq: Schema.Int,
  reason: Schema.String
}) {
  override get message(): string {
    return `worker ${this.worker} failed at token ${this.seq}: ${this.reason}`
  }
}

export class SwapRpcs extends RpcGroup.make(
  Rpc.make("generate", {
    payload: {
      prompt: Schema.String,
      /** The first sequence number to produce (0 for a new stream). */
      resumeFrom: Schema.optionalKey(Schema.Int),
      /** Set by the director so a worker's tokens carry the client's stream id. */
      connectionId: Schema.optionalKey(Schema.String),
      /** How many tokens the whole stream has. */
      length: Schema.optionalKey(Schema.Int)
    },
    success: Token,
    error: Schema.Union([NoHealthyWorker, GenerationFailed]),
    stream: true
  })
) {}

const WORDS = [
  "the",
  "fleet",
  "of",
  "small",
  "fish",
  "turns",
  "as",
  "one",
  "when",
  "a",
  "shadow",
  "passes",
  "over",
  "reef",
  "and",
  "nobody",
  "gives",
  "an",
  "order",
  "yet",
  "every",
  "member",
  "knows",
  "where",
  "others",
  "are"
]

/** The text of token `seq` of `prompt`: the same on every worker. */
export const tokenText = (prompt: string, seq: number): string => {
  let h = seq * 2654435761
  for (let i = 0; i < prompt.length; i++) h = (h ^ prompt.charCodeAt(i)) * 16777619
  return WORDS[Math.abs(h | 0) % WORDS.length]!
}

/** Defaults the roles share; each can be overridden from the environment (see the README). */
export const defaults = {
  directorRpc: "127.0.0.1:7100",
  directorGossip: "127.0.0.1:7200",
  tokens: 120,
  tokenInterval: Duration.millis(40),
  capacity: 4,
  noWorkerWait: Duration.seconds(10)
} as const

/** Reads `name` from the environment, or `fallback`. */
export const env = (name: string, fallback: string): string => {
  const value = process.env[name]
  return value === undefined || value.trim() === "" ? fallback : value.trim()
}

/** The TLS material every role uses, from `SWAP_TLS_DIR` (`ca.pem`, `node.pem`, `node.key`). */
export const tlsFromEnv = () => {
  const dir = env("SWAP_TLS_DIR", "examples/connection_swap/certs")
  return {
    certificate: `${dir}/node.pem`,
    key: `${dir}/node.key`,
    ca: `${dir}/ca.pem`,
    serverName: "localhost"
  }
}
