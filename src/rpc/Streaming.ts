/**
 * Server streams that stay fast when the producer emits one element at a
 * time, without giving up backpressure.
 *
 * effect/rpc sends each array a handler's stream emits as one `Chunk`
 * message and waits for the client's acknowledgement before it sends the
 * next one; the client acknowledges once the chunk is in its bounded queue.
 * That is end-to-end backpressure, but a producer that emits single elements
 * (a token generator, a cursor, a `Stream.fromQueue`) then pays a network
 * round trip per element, and a producer that emits one huge array sends it
 * as one huge message that the client can only start decoding once all of it
 * has arrived.
 *
 * {@link coalesce} puts a bounded buffer of `capacity` elements between the
 * producer and the wire (effect's `Stream.buffer`): while one message waits
 * for its acknowledgement the producer keeps going, and the next message
 * carries everything it produced meanwhile, at most `capacity` elements. So
 * single elements travel in batches, large arrays in messages the two sides
 * can pipeline, and a producer that outruns the client still stops: at most
 * `capacity` elements wait at the producer, one message is unacknowledged,
 * and the client acknowledges only what its own bounded queue has taken.
 *
 * Measured (bench/rpc, "streaming settings"): with 256 a one-element-at-a-time
 * producer goes from about 0.15 × grpc-js to several times grpc-js, and a
 * pre-chunked 200 000-element source gets faster too (about 2× over sending
 * it as one message). Keeping the producer's arrays whole and only joining
 * small ones was tried and lost on the pre-chunked source for that reason.
 *
 * @module
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Rpc from "effect/rpc/Rpc"
import type * as RpcGroup from "effect/rpc/RpcGroup"
import * as RpcSchema from "effect/rpc/RpcSchema"
import * as Stream from "effect/Stream"

/**
 * Runs `self` ahead of its consumer into a buffer of at most `capacity`
 * elements; each pull takes everything buffered. Errors and the end of the
 * stream arrive after the elements before them.
 */
export const coalesce: {
  (capacity: number): <A, E, R>(self: Stream.Stream<A, E, R>) => Stream.Stream<A, E, R>
  <A, E, R>(self: Stream.Stream<A, E, R>, capacity: number): Stream.Stream<A, E, R>
} = ((...args: ReadonlyArray<any>) =>
  args.length === 1
    ? (self: Stream.Stream<any, any, any>) => coalesceImpl(self, args[0])
    : coalesceImpl(args[0], args[1])) as any

const coalesceImpl = <A, E, R>(self: Stream.Stream<A, E, R>, capacity: number): Stream.Stream<A, E, R> =>
  Stream.buffer(self, { capacity })

/**
 * The handlers of `group` found in `context`, with every streaming handler
 * that returns a `Stream` wrapped in {@link coalesce}. Handlers that return a
 * queue are left alone: the server already drains those with `takeAll`.
 */
export const coalesceHandlers = <Rpcs extends Rpc.Any>(
  group: RpcGroup.RpcGroup<Rpcs>,
  context: Context.Context<never>,
  capacity: number
): Context.Context<never> => {
  let out = context
  for (const value of group.requests.values()) {
    const rpc = value as unknown as Rpc.AnyWithProps
    if (!RpcSchema.isStreamSchema(rpc.successSchema)) continue
    // handlers are stored under the rpc's string key (see RpcGroup.toLayer)
    const entry = Context.getOrUndefined(context, { key: rpc.key } as Context.Key<never, Rpc.Handler<string>>)
    if (entry === undefined) continue
    // a handler may also return a `Wrapper` (Rpc.fork / Rpc.uninterruptible), which its type does not say
    const handler = (payload: unknown, options: Parameters<Rpc.Handler<string>["handler"]>[1]): unknown => {
      const result: object = entry.handler(payload, options)
      if (Rpc.isWrapper(result)) {
        const value = result.value
        if (!Stream.isStream(value)) return result
        return Rpc.wrap({ fork: result.fork, uninterruptible: result.uninterruptible })(coalesceImpl(value, capacity))
      }
      return Stream.isStream(result) ? coalesceImpl(result, capacity) : result
    }
    out = Context.addUnsafe(out, rpc.key, { ...entry, handler })
  }
  return out
}
