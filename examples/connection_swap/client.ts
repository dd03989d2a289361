/**
 * The client: one TLS connection to the director, one `generate` stream.
 * It prints every token with its connection id, worker label and sequence
 * number, checks that the sequence is contiguous (no token lost, none
 * repeated) across worker switches, and ends with a one-line summary:
 *
 *   SUMMARY {"tokens":120,"contiguous":true,"switches":1,"workers":["worker-a","worker-b"],...}
 *
 *   SWAP_DIRECTOR=127.0.0.1:7100 npx node examples/connection_swap/client.ts
 */
import { fileURLToPath } from "node:url"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Clock from "effect/Clock"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { RpcClient } from "../../src/index.ts"
import { defaults, env, SwapRpcs, type Token, tlsFromEnv } from "./protocol.ts"

export interface ClientOptions {
  readonly director: string
  readonly tls: ReturnType<typeof tlsFromEnv>
  readonly prompt: string
  readonly length: number
  /** Called with every token as it arrives (printing, in the command). */
  readonly onToken?: ((token: Token, gapMillis: number) => Effect.Effect<void>) | undefined
}

/** What the client saw. */
export interface Summary {
  readonly tokens: number
  /** Every sequence number from 0 exactly once, in order. */
  readonly contiguous: boolean
  /** Times the worker label changed mid-stream. */
  readonly switches: number
  readonly workers: ReadonlyArray<string>
  readonly connectionIds: ReadonlyArray<string>
  /** The longest time between two consecutive tokens. */
  readonly longestGapMillis: number
  /** The gap around each switch. */
  readonly switchGapsMillis: ReadonlyArray<number>
  readonly error?: string | undefined
}

/** Streams one prompt from the director and checks what arrives. */
export const runClient = (options: ClientOptions) =>
  Effect.scoped(
    Effect.gen(function* () {
      const client = yield* RpcClient.connect(SwapRpcs, options.director, options.tls)
      let expected = 0
      let contiguous = true
      let previousWorker: string | undefined
      let previousAt: number | undefined
      let longest = 0
      const workers: Array<string> = []
      const connectionIds = new Set<string>()
      const switchGaps: Array<number> = []
      let switches = 0
      const error = yield* client.generate({ prompt: options.prompt, length: options.length }).pipe(
        Stream.runForEach((token) =>
          Effect.gen(function* () {
            const now = yield* Clock.currentTimeMillis
            const gap = previousAt === undefined ? 0 : now - previousAt
            previousAt = now
            longest = Math.max(longest, gap)
            if (token.seq !== expected) contiguous = false
            expected = token.seq + 1
            connectionIds.add(token.connectionId)
            if (!workers.includes(token.worker)) workers.push(token.worker)
            if (previousWorker !== undefined && previousWorker !== token.worker) {
              switches++
              switchGaps.push(gap)
            }
            previousWorker = token.worker
            if (options.onToken !== undefined) yield* options.onToken(token, gap)
          })
        ),
        Effect.as(undefined),
        Effect.catch((error) => Effect.succeed(error.message || String(error._tag)))
      )
      return {
        tokens: expected,
        contiguous: contiguous && expected === options.length && error === undefined,
        switches,
        workers,
        connectionIds: [...connectionIds],
        longestGapMillis: Math.round(longest),
        switchGapsMillis: switchGaps.map(Math.round),
        error
      } satisfies Summary
    })
  )

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const length = Number(env("SWAP_TOKENS", String(defaults.tokens)))
  const main = Effect.gen(function* () {
    const summary = yield* runClient({
      director: env("SWAP_DIRECTOR", defaults.directorRpc),
      tls: tlsFromEnv(),
      prompt: env("SWAP_PROMPT", "tell me about shoals"),
      length,
      onToken: (token, gap) =>
        Console.log(
          `[${token.connectionId}] ${token.worker.padEnd(9)} #${String(token.seq).padStart(3, "0")} ${token.text.padEnd(8)} ${
            gap > 250 ? `(+${Math.round(gap)} ms)` : ""
          }`.trimEnd()
        )
    })
    if (summary.error !== undefined) yield* Console.error(`stream ended with an error: ${summary.error}`)
    yield* Console.log(
      summary.contiguous
        ? `contiguous: ${summary.tokens} tokens, seq 0..${summary.tokens - 1}, ${summary.switches} worker switch(es), longest gap ${summary.longestGapMillis} ms`
        : `NOT contiguous (${summary.tokens} of ${length} tokens)`
    )
    yield* Console.log(`SUMMARY ${JSON.stringify(summary)}`)
    if (!summary.contiguous) return yield* Effect.fail(new Error("the stream was not contiguous"))
  })
  main.pipe(NodeRuntime.runMain)
}
