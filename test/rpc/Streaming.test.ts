import { assert, describe, it } from "@effect/vitest"
import { Arbitrary, Deferred, Effect, Exit, Fiber, Schema, Stream } from "effect"
import { coalesce } from "../../src/rpc/Streaming.ts"

const arrays = Arbitrary.array(Arbitrary.array(Arbitrary.schema(Schema.Int), { minLength: 1, maxLength: 8 }), {
  maxLength: 40
})

/** The arrays a consumer receives, pausing `pauses` scheduler turns after each. */
const received = <A, E>(stream: Stream.Stream<A, E>, pauses = 0) =>
  Effect.gen(function* () {
    const out: Array<ReadonlyArray<A>> = []
    yield* Stream.runForEachArray(stream, (values) =>
      Effect.gen(function* () {
        out.push([...values])
        for (let i = 0; i < pauses; i++) yield* Effect.yieldNow
      })
    )
    return out
  })

describe("coalesce", () => {
  it.effect.prop(
    "keeps every element, in order",
    { input: arrays, capacity: Arbitrary.schema(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 16 }))) },
    ({ input, capacity }) =>
      Effect.gen(function* () {
        const out = yield* received(
          coalesce(Stream.fromArrays(...(input as Array<[number, ...Array<number>]>)), capacity),
          3
        )
        assert.deepStrictEqual(out.flat(), input.flat())
      })
  )

  it.effect("single elements produced while the consumer is busy arrive together", () =>
    Effect.gen(function* () {
      const singles = Stream.range(1, 100).pipe(Stream.rechunk(1))
      const plain = yield* received(singles, 20)
      assert.strictEqual(plain.length, 100)
      const out = yield* received(coalesce(singles, 16), 20)
      assert.deepStrictEqual(
        out.flat(),
        Array.from({ length: 100 }, (_, i) => i + 1)
      )
      assert.isBelow(out.length, 20)
      for (const array of out) assert.isAtMost(array.length, 16)
    })
  )

  it.effect("a large array leaves in pieces of at most the capacity", () =>
    Effect.gen(function* () {
      const big = Array.from({ length: 1000 }, (_, i) => i)
      const out = yield* received(coalesce(Stream.fromArrays(big as [number, ...Array<number>]), 64), 3)
      assert.deepStrictEqual(out.flat(), big)
      assert.isAtLeast(out.length, 1000 / 64)
      for (const array of out) assert.isAtMost(array.length, 64)
    })
  )

  it.effect("stops the producer when the buffer is full and nobody pulls", () =>
    Effect.gen(function* () {
      let produced = 0
      const endless = Stream.fromEffectRepeat(Effect.sync(() => ++produced)).pipe(Stream.rechunk(1))
      const first = yield* Deferred.make<void>()
      const consumer = yield* Stream.runForEach(coalesce(endless, 8), () =>
        Effect.andThen(Deferred.succeed(first, undefined), Effect.never)
      ).pipe(Effect.scoped, Effect.forkChild)
      yield* Deferred.await(first)
      for (let i = 0; i < 200; i++) yield* Effect.yieldNow
      // what the consumer holds, the buffer's 8 elements, and the one waiting to get in
      assert.isAtMost(produced, 8 + 8 + 1)
      yield* Fiber.interrupt(consumer)
    })
  )

  it.effect("a failure arrives after the elements before it", () =>
    Effect.gen(function* () {
      const seen: Array<number> = []
      const failing = Stream.concat(Stream.make(1, 2, 3).pipe(Stream.rechunk(1)), Stream.fail("boom"))
      const exit = yield* Stream.runForEach(coalesce(failing, 4), (n) => Effect.sync(() => seen.push(n))).pipe(
        Effect.exit
      )
      assert.deepStrictEqual(seen, [1, 2, 3])
      assert.isTrue(Exit.isFailure(exit))
    })
  )
})
