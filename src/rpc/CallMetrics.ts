/**
 * RPC calls as metrics: every unary call a shoal RPC server answers is
 * counted by procedure and outcome (`shoal_rpc_calls`) and timed
 * (`shoal_rpc_call_duration_seconds`, a histogram from 0.5 ms to about 16 s).
 * Streaming calls are counted when they are opened, not timed (a stream's
 * length says nothing about latency).
 *
 * @module
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Metric from "effect/Metric"
import * as Rpc from "effect/rpc/Rpc"
import type * as RpcGroup from "effect/rpc/RpcGroup"
import * as RpcSchema from "effect/rpc/RpcSchema"

const calls = Metric.counter("shoal_rpc_calls", {
  description:
    "RPC calls this process's servers answered, by rpc and outcome (success, failure, defect, interrupted, stream)",
  incremental: true
})

const duration = Metric.histogram("shoal_rpc_call_duration_seconds", {
  description: "time from a unary RPC call's arrival to its answer, by rpc",
  boundaries: Metric.exponentialBoundaries({ start: 0.0005, factor: 2, count: 16 })
})

const outcomeOf = (exit: Exit.Exit<unknown, unknown>): string =>
  Exit.isSuccess(exit)
    ? "success"
    : Cause.hasInterruptsOnly(exit.cause)
      ? "interrupted"
      : Cause.hasDies(exit.cause)
        ? "defect"
        : "failure"

/** `effect`, counted and timed as a call of `rpc`. */
const measure = <A, E, R>(rpc: string, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.flatMap(Clock.currentTimeNanos, (start) =>
    Effect.onExit(effect, (exit) =>
      Effect.flatMap(Clock.currentTimeNanos, (end) =>
        Effect.andThen(
          Metric.update(Metric.withAttributes(calls, { rpc, outcome: outcomeOf(exit) }), 1),
          Metric.update(Metric.withAttributes(duration, { rpc }), Number(end - start) / 1e9)
        )
      )
    )
  )

/** The handlers of `group` in `context`, each counted and (unary ones) timed. */
export const measureHandlers = <Rpcs extends Rpc.Any>(
  group: RpcGroup.RpcGroup<Rpcs>,
  context: Context.Context<never>
): Context.Context<never> => {
  let out = context
  for (const value of group.requests.values()) {
    const rpc = value as unknown as Rpc.AnyWithProps
    const entry = Context.getOrUndefined(context, { key: rpc.key } as Context.Key<never, Rpc.Handler<string>>)
    if (entry === undefined) continue
    const streaming = RpcSchema.isStreamSchema(rpc.successSchema)
    const handler = (payload: unknown, options: Parameters<Rpc.Handler<string>["handler"]>[1]): unknown => {
      const result: object = entry.handler(payload, options)
      if (streaming) {
        Effect.runFork(Metric.update(Metric.withAttributes(calls, { rpc: rpc._tag, outcome: "stream" }), 1))
        return result
      }
      if (Rpc.isWrapper(result)) {
        const inner = result.value
        return Effect.isEffect(inner)
          ? Rpc.wrap({ fork: result.fork, uninterruptible: result.uninterruptible })(measure(rpc._tag, inner))
          : result
      }
      return Effect.isEffect(result) ? measure(rpc._tag, result) : result
    }
    out = Context.addUnsafe(out, rpc.key, { ...entry, handler })
  }
  return out
}
