import { assert, describe, expect, it } from "@effect/vitest"
import {
  Clock,
  Context,
  Deferred,
  Duration,
  Effect,
  Exit,
  Fiber,
  Layer,
  Ref,
  Schema,
  Scope,
  Stream,
  Tracer
} from "effect"
import { TestClock } from "effect/testing"
import * as ClusterConfig from "../../../src/cluster/Config.ts"
import { HealthCheckTimeout } from "../../../src/cluster/Errors.ts"
import { AggregatedHealth, aggregate, Health, type Options } from "../../../src/cluster/health/Health.ts"
import { HealthCheck, HealthStatus } from "../../../src/cluster/health/HealthCheck.ts"

const options = { interval: "5 seconds", timeout: "2 seconds" } as const

/** Builds the service in the test's scope. */
const health = (opts: Options = options) =>
  Effect.map(Layer.build(Health.layer(opts)), (ctx) => Context.get(ctx, Health))

/** A check that records the Clock time of every run. */
const recording = (name = "rec") =>
  Effect.gen(function* () {
    const runs = yield* Ref.make<ReadonlyArray<number>>([])
    const check = HealthCheck.make(
      name,
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        yield* Ref.update(runs, (r) => [...r, now])
        return HealthStatus.healthy()
      })
    )
    return { check, runs: Ref.get(runs) }
  })

const succeedWith = (name: string, status: HealthStatus) => HealthCheck.make(name, Effect.succeed(status))

describe("aggregate", () => {
  it("is healthy with no checks", () => {
    const result = aggregate([], 42)
    expect(result).toMatchObject({ healthy: true, checks: {}, checkedAt: 42 })
    expect(result.failing).toEqual([])
  })

  it("is healthy only if every check is", () => {
    const ok = HealthStatus.healthy()
    const bad = HealthStatus.unhealthy("down")
    expect(
      aggregate(
        [
          ["a", ok],
          ["b", ok]
        ],
        0
      ).healthy
    ).toBe(true)
    const mixed = aggregate(
      [
        ["a", ok],
        ["b", bad],
        ["c", ok],
        ["d", bad]
      ],
      0
    )
    expect(mixed.healthy).toBe(false)
    expect(mixed.failing).toEqual(["b", "d"])
    expect(mixed.checks.b).toBe(bad)
    expect(Object.keys(mixed.checks)).toEqual(["a", "b", "c", "d"])
  })

  it("is a schema class (round-trips for RPC)", () => {
    const value = aggregate([["a", HealthStatus.unhealthy("x", { k: "v" })]], 7)
    const decoded = Schema.decodeUnknownSync(AggregatedHealth)(Schema.encodeSync(AggregatedHealth)(value))
    assert.deepStrictEqual(decoded, value)
  })
})

describe("Health", () => {
  it.effect("starts healthy with no checks; runChecks with no checks is healthy", () =>
    Effect.gen(function* () {
      const h = yield* health()
      expect((yield* h.status).healthy).toBe(true)
      expect(yield* h.checks).toEqual([])
      const result = yield* h.runChecks
      expect(result).toMatchObject({ healthy: true, checks: {} })
    })
  )

  it.effect("aggregates per-check results and publishes them as the status", () =>
    Effect.gen(function* () {
      const h = yield* health()
      yield* h.addCheck(succeedWith("db", HealthStatus.healthy("ok")))
      yield* h.addCheck(succeedWith("disk", HealthStatus.healthy()))
      expect((yield* h.runChecks).healthy).toBe(true)
      yield* h.addCheck(succeedWith("queue", HealthStatus.unhealthy("backlog", { depth: "9000" })))
      const result = yield* h.runChecks
      expect(result.healthy).toBe(false)
      expect(result.failing).toEqual(["queue"])
      expect(Object.keys(result.checks)).toEqual(["db", "disk", "queue"])
      expect(result.checks.queue).toMatchObject({ message: "backlog", metadata: { depth: "9000" } })
      expect(yield* h.status).toBe(result)
    })
  )

  it.effect("runs checks in parallel", () =>
    Effect.gen(function* () {
      const h = yield* health()
      for (const name of ["a", "b", "c"]) {
        yield* h.addCheck(HealthCheck.make(name, Effect.as(Effect.sleep("1500 millis"), HealthStatus.healthy())))
      }
      const fiber = yield* Effect.forkChild(h.runChecks)
      yield* TestClock.adjust("1500 millis")
      const result = yield* Fiber.join(fiber)
      // sequentially they would take 4.5 s and the last two would time out at 2 s each
      expect(result.healthy).toBe(true)
      expect(result.checkedAt).toBe(1500)
    })
  )

  it.effect("a check over its timeout is unhealthy with HealthCheckTimeout; the others are unaffected", () =>
    Effect.gen(function* () {
      const h = yield* health()
      yield* h.addCheck(HealthCheck.alwaysHealthy)
      yield* h.addCheck(HealthCheck.make("slow", Effect.as(Effect.sleep("3 seconds"), HealthStatus.healthy())))
      const fiber = yield* Effect.forkChild(h.runChecks)
      yield* TestClock.adjust("2 seconds")
      const result = yield* Fiber.join(fiber)
      expect(result.healthy).toBe(false)
      expect(result.failing).toEqual(["slow"])
      expect(result.checks.always!.healthy).toBe(true)
      expect(result.checks.slow!.message).toBe(
        new HealthCheckTimeout({ check: "slow", timeout: Duration.seconds(2) }).message
      )
      expect(result.checks.slow!.metadata.error).toBe("HealthCheckTimeout")
    })
  )

  it.effect("failing and dying checks make it unhealthy without stopping later runs", () =>
    Effect.gen(function* () {
      const h = yield* health()
      const rec = yield* recording()
      yield* h.addCheck(rec.check)
      yield* h.addCheck(HealthCheck.make("fails", Effect.fail("no connection")))
      yield* h.addCheck({ name: "dies", check: Effect.die(new Error("boom")) })
      yield* TestClock.adjust("5 seconds")
      const first = yield* h.status
      expect(first.failing).toEqual(["fails", "dies"])
      expect(first.checks.fails!.message).toContain("no connection")
      expect(first.checks.dies!.message).toContain("boom")
      yield* TestClock.adjust("10 seconds")
      expect(yield* rec.runs).toEqual([5000, 10000, 15000])
      expect((yield* h.status).checkedAt).toBe(15000)
    })
  )

  it.effect("the monitoring fiber runs the checks every interval", () =>
    Effect.gen(function* () {
      const h = yield* health()
      const rec = yield* recording()
      yield* h.addCheck(rec.check)
      yield* TestClock.adjust("4999 millis")
      expect(yield* rec.runs).toEqual([])
      yield* TestClock.adjust("1 millis")
      expect(yield* rec.runs).toEqual([5000])
      yield* TestClock.adjust("20 seconds")
      expect(yield* rec.runs).toEqual([5000, 10000, 15000, 20000, 25000])
    })
  )

  it.effect("the interval is measured start to start, so slow checks do not stretch it", () =>
    Effect.gen(function* () {
      const h = yield* health()
      const rec = yield* recording()
      yield* h.addCheck(rec.check)
      yield* h.addCheck(HealthCheck.make("slowish", Effect.as(Effect.sleep("1500 millis"), HealthStatus.healthy())))
      yield* TestClock.adjust("16 seconds")
      expect(yield* rec.runs).toEqual([5000, 10000, 15000])
      // the run started at 15 s is still waiting for "slowish"; the latest finished one started at 10 s
      expect((yield* h.status).checkedAt).toBe(11500)
    })
  )

  it.effect("refresh runs at once and restarts the cadence", () =>
    Effect.gen(function* () {
      const h = yield* health()
      const rec = yield* recording()
      yield* h.addCheck(rec.check)
      yield* TestClock.adjust("2 seconds")
      const ready = yield* Deferred.make<void>()
      const next = yield* h.changes.pipe(
        Stream.tap(() => Deferred.succeed(ready, undefined)),
        Stream.drop(1),
        Stream.take(1),
        Stream.runCollect,
        Effect.forkChild
      )
      yield* Deferred.await(ready)
      yield* h.refresh // does not wait for the run: the next published status shows it
      const [published] = yield* Fiber.join(next)
      expect(published!.checkedAt).toBe(2000)
      expect(yield* rec.runs).toEqual([2000])
      yield* TestClock.adjust("4 seconds")
      expect(yield* rec.runs).toEqual([2000])
      yield* TestClock.adjust("1 second")
      expect(yield* rec.runs).toEqual([2000, 7000])
    })
  )

  it.effect("addCheck returns a remover; a same-named check replaces the old one", () =>
    Effect.gen(function* () {
      const h = yield* health()
      const removeA = yield* h.addCheck(succeedWith("a", HealthStatus.unhealthy("old")))
      const removeB = yield* h.addCheck(HealthCheck.alwaysHealthy)
      expect(yield* h.checks).toEqual(["a", "always"])
      expect((yield* h.runChecks).checks.a!.message).toBe("old")

      const removeNewA = yield* h.addCheck(succeedWith("a", HealthStatus.healthy("new")))
      expect((yield* h.runChecks).checks.a!.message).toBe("new")
      yield* removeA // stale: must not remove the replacement
      expect(yield* h.checks).toEqual(["a", "always"])

      yield* removeNewA
      yield* removeB
      expect(yield* h.checks).toEqual([])
      expect(yield* h.runChecks).toMatchObject({ healthy: true, checks: {} })
    })
  )

  it.effect("status subscribers see every published aggregate", () =>
    Effect.gen(function* () {
      const h = yield* health()
      const up = yield* Ref.make(true)
      yield* h.addCheck(
        HealthCheck.make(
          "flappy",
          Effect.map(Ref.get(up), (ok) => (ok ? HealthStatus.healthy() : HealthStatus.unhealthy("down")))
        )
      )
      const ready = yield* Deferred.make<void>()
      const seen = yield* h.changes.pipe(
        Stream.tap(() => Deferred.succeed(ready, undefined)),
        Stream.map((s) => `${s.healthy}@${s.checkedAt}`),
        Stream.take(4),
        Stream.runCollect,
        Effect.forkChild
      )
      yield* Deferred.await(ready)
      yield* TestClock.adjust("5 seconds")
      yield* Ref.set(up, false)
      yield* TestClock.adjust("5 seconds")
      yield* Ref.set(up, true)
      yield* TestClock.adjust("5 seconds")
      expect(yield* Fiber.join(seen)).toEqual(["true@0", "true@5000", "false@10000", "true@15000"])
    })
  )

  it.effect("closing the layer's scope stops the monitoring fiber and ends change streams", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const h = Context.get(yield* Layer.buildWithScope(Health.layer(options), scope), Health)
      const rec = yield* recording()
      yield* h.addCheck(rec.check)
      const stream = yield* Effect.forkChild(Stream.runCollect(h.changes))
      yield* TestClock.adjust("10 seconds")
      expect(yield* rec.runs).toEqual([5000, 10000])
      yield* Scope.close(scope, Exit.void)
      const streamed = yield* Fiber.join(stream)
      expect(streamed.map((s) => s.checkedAt)).toEqual([0, 5000, 10000])
      yield* TestClock.adjust("1 minute")
      yield* h.refresh
      yield* TestClock.adjust("1 minute")
      expect(yield* rec.runs).toEqual([5000, 10000])
    })
  )

  it.effect("closing the scope interrupts a check still running", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const h = Context.get(yield* Layer.buildWithScope(Health.layer(options), scope), Health)
      const interrupted = yield* Deferred.make<void>()
      yield* h.addCheck(
        HealthCheck.make("long", Effect.never.pipe(Effect.onInterrupt(() => Deferred.succeed(interrupted, undefined))))
      )
      yield* TestClock.adjust("6 seconds")
      yield* Scope.close(scope, Exit.void)
      yield* Deferred.await(interrupted)
    })
  )

  it.effect("layer rejects bad timings with InvalidConfiguration", () =>
    Effect.gen(function* () {
      const field = (opts: Options) =>
        Effect.map(Effect.flip(Layer.build(Health.layer(opts))), (e) => `${e._tag}:${e.field}`)
      expect(yield* field({ interval: 0, timeout: 1 })).toBe("InvalidConfiguration:interval")
      expect(yield* field({ interval: "nonsense" as never, timeout: 1 })).toBe("InvalidConfiguration:interval")
      expect(yield* field({ interval: 1000, timeout: -1 })).toBe("InvalidConfiguration:timeout")
      expect(yield* field({ interval: 1000, timeout: "Infinity" as never })).toBe("InvalidConfiguration:timeout")
      expect(yield* field({ interval: 1000, timeout: 1001 })).toBe("InvalidConfiguration:timeout")
    })
  )

  it.effect("layerFromConfig uses healthCheckInterval and healthCheckTimeout", () =>
    Effect.gen(function* () {
      const config = yield* ClusterConfig.make({ healthCheckInterval: "3 seconds", healthCheckTimeout: "1 second" })
      const h = Context.get(yield* Layer.build(Health.layerFromConfig(config)), Health)
      expect([h.interval, h.timeout].map((d) => d.toString())).toEqual(
        [config.healthCheckInterval, config.healthCheckTimeout].map((d) => d.toString())
      )
      const rec = yield* recording()
      yield* h.addCheck(rec.check)
      yield* TestClock.adjust("9 seconds")
      expect(yield* rec.runs).toEqual([3000, 6000, 9000])
    })
  )

  it.effect("a round with checks is a span; a round with none is not (an idle node sends no traces)", () => {
    const names: Array<string> = []
    const tracer = Tracer.make({
      span: (options) => {
        names.push(options.name)
        return Tracer.nativeTracer.span(options)
      }
    })
    const rounds = () => names.filter((n) => n === "Health.runChecks").length
    return Effect.gen(function* () {
      const h = yield* health()
      yield* TestClock.adjust("15 seconds")
      expect(rounds()).toBe(0)
      yield* h.addCheck(succeedWith("ok", HealthStatus.healthy()))
      yield* TestClock.adjust("10 seconds")
      expect(rounds()).toBe(2)
    }).pipe(Effect.withTracer(tracer))
  })
})
