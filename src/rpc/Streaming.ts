/**
 * Server streams that stay fast when the producer emits one element at a
 * time, without giving up backpressure.
 *
 * effect/rpc sends each array a handler's stream emits as one `Chunk`
 * message and waits for the client's acknowledgement before it sends the
 * next one; the client acknowledges once the chunk is in its bounded queue.
 * That is end-to-end backpressure, but a producer that emits single elements
 * (a token generator, a cursor, a `Stream.fromQueue`) then pays a network
 * round trip per element. {@link coalesce} decouples the producer from the
 * wire through a bounded buffer: while one chunk waits for its ack the
 * producer keeps going, and the next chunk carries everything it produced
 * meanwhile. A producer that already emits large arrays passes through
 * unchanged (arrays are never split), and a producer that outruns the client
 * still stops: at most `capacity` arrays wait in the buffer, one chunk is
 * unacknowledged, and the client acknowledges only what its own bounded queue
 * has taken.
 *
 * @since 0.1.0
 */
import { type Cause, Context, Effect, Queue, Scope, Stream } from "effect"
import type { NonEmptyReadonlyArray } from "effect/Array"
import { Rpc, type RpcGroup, RpcSchema } from "effect/rpc"

const flatten = <A>(arrays: NonEmptyReadonlyArray<NonEmptyReadonlyArray<A>>): NonEmptyReadonlyArray<A> => {
  if (arrays.length === 1) return arrays[0]
  let size = 0
  for (const array of arrays) size += array.length
  const out = new Array<A>(size)
  let i = 0
  for (const array of arrays) {
    for (const value of array) out[i++] = value
  }
  return out as unknown as NonEmptyReadonlyArray<A>
}

/**
 * Runs `self` ahead of its consumer into a buffer of at most `capacity`
 * arrays; each pull takes everything buffered, as one array. Errors and the
 * end of the stream arrive after the elements before them.
 */
export const coalesce: {
  (capacity: number): <A, E, R>(self: Stream.Stream<A, E, R>) => Stream.Stream<A, E, R>
  <A, E, R>(self: Stream.Stream<A, E, R>, capacity: number): Stream.Stream<A, E, R>
} = ((...args: ReadonlyArray<any>) =>
  args.length === 1
    ? (self: Stream.Stream<any, any, any>) => coalesceImpl(self, args[0])
    : coalesceImpl(args[0], args[1])) as any

const coalesceImpl = <A, E, R>(self: Stream.Stream<A, E, R>, capacity: number): Stream.Stream<A, E, R> =>
  Stream.transformPull(self, (pull, scope) =>
    Effect.gen(function* () {
      const queue = yield* Queue.make<NonEmptyReadonlyArray<A>, E | Cause.Done>({ capacity })
      yield* Scope.addFinalizer(scope, Queue.shutdown(queue))
      yield* pull.pipe(
        Effect.flatMap((values) => Queue.offer(queue, values)),
        Effect.forever({ disableYield: true }),
        Effect.onError((cause) => Queue.failCause(queue, cause)),
        Effect.forkIn(scope)
      )
      return Effect.map(Queue.takeAll(queue), flatten)
    })
  ) as Stream.Stream<A, E, R>

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
