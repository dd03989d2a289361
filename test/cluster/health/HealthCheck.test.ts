import { assert, describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Fiber, Ref, Schema } from "effect"
import { TestClock } from "effect/testing"
import { HealthCheckTimeout, NetworkError } from "../../../src/cluster/Errors.ts"
import { HealthCheck, HealthStatus } from "../../../src/cluster/health/HealthCheck.ts"

const run = (check: HealthCheck, timeout: Duration.Input = "2 seconds") =>
  Effect.flatMap(Effect.scope, (scope) => HealthCheck.run(check, Duration.fromInputUnsafe(timeout), scope))

describe("HealthStatus", () => {
  it("healthy and unhealthy constructors", () => {
    const ok = HealthStatus.healthy()
    expect(ok.healthy).toBe(true)
    expect(ok.message).toBeUndefined()
    expect("message" in ok).toBe(false)
    expect(ok.metadata).toEqual({})
    expect(HealthStatus.healthy("pool ok", { size: "8" })).toMatchObject({
      healthy: true,
      message: "pool ok",
      metadata: { size: "8" }
    })
    const bad = HealthStatus.unhealthy("disk full", { free: "0" })
    expect(bad).toMatchObject({ healthy: false, message: "disk full", metadata: { free: "0" } })
    expect(HealthStatus.unhealthy("x").metadata).toEqual({})
  })

  it("round-trips through its schema (so it can travel over RPC)", () => {
    const status = HealthStatus.unhealthy("disk full", { free: "0" })
    const json = Schema.encodeSync(HealthStatus)(status)
    expect(json).toEqual({ healthy: false, message: "disk full", metadata: { free: "0" } })
    assert.deepStrictEqual(Schema.decodeUnknownSync(HealthStatus)(json), status)
  })
})

describe("HealthCheck", () => {
  it.effect("alwaysHealthy is named always and passes", () =>
    Effect.gen(function* () {
      expect(HealthCheck.alwaysHealthy.name).toBe("always")
      expect((yield* run(HealthCheck.alwaysHealthy)).healthy).toBe(true)
    })
  )

  it.effect("make passes a check's own status through", () =>
    Effect.gen(function* () {
      const status = yield* run(HealthCheck.make("db", Effect.succeed(HealthStatus.unhealthy("pool exhausted"))))
      expect(status).toMatchObject({ healthy: false, message: "pool exhausted" })
    })
  )

  it.effect("a typed failure becomes unhealthy with the error in the message", () =>
    Effect.gen(function* () {
      const check = HealthCheck.make("db", Effect.fail(new NetworkError({ message: "connection refused" })))
      // already total after make: the failure is a status, not an error
      const direct = yield* check.check
      expect(direct.healthy).toBe(false)
      const status = yield* run(check)
      expect(status.healthy).toBe(false)
      expect(status.message).toContain(`"db"`)
      expect(status.message).toContain("connection refused")
      expect(status.metadata).toEqual({ cause: "failure" })
    })
  )

  it.effect("a defect becomes unhealthy with the defect in the message", () =>
    Effect.gen(function* () {
      const died = yield* run(HealthCheck.make("disk", Effect.die(new Error("boom"))))
      expect(died).toMatchObject({ healthy: false, metadata: { cause: "defect" } })
      expect(died.message).toContain("boom")

      const thrown = yield* run(
        HealthCheck.make(
          "parse",
          Effect.sync((): HealthStatus => {
            throw new TypeError("cannot read x of undefined")
          })
        )
      )
      expect(thrown).toMatchObject({ healthy: false, metadata: { cause: "defect" } })
      expect(thrown.message).toContain("TypeError: cannot read x of undefined")
    })
  )

  it.effect("a plain object check that dies is caught by run too", () =>
    Effect.gen(function* () {
      const raw: HealthCheck = { name: "raw", check: Effect.die("string defect") }
      const status = yield* run(raw)
      expect(status.healthy).toBe(false)
      expect(status.message).toContain("string defect")
    })
  )

  it.effect("a check that interrupts itself is unhealthy", () =>
    Effect.gen(function* () {
      const status = yield* run({ name: "quit", check: Effect.interrupt })
      expect(status).toMatchObject({ healthy: false, metadata: { cause: "interrupted" } })
    })
  )

  it.effect("a check slower than the timeout is unhealthy with HealthCheckTimeout, and is interrupted", () =>
    Effect.gen(function* () {
      const interrupted = yield* Ref.make(false)
      const slow = HealthCheck.make(
        "slow",
        Effect.sleep("10 seconds").pipe(
          Effect.as(HealthStatus.healthy()),
          Effect.onInterrupt(() => Ref.set(interrupted, true))
        )
      )
      const fiber = yield* run(slow, "2 seconds").pipe(Effect.forkChild)
      yield* TestClock.adjust("1999 millis")
      expect(fiber.pollUnsafe()).toBeUndefined()
      yield* TestClock.adjust("1 millis")
      const status = yield* Fiber.join(fiber)
      const expected = new HealthCheckTimeout({ check: "slow", timeout: Duration.seconds(2) })
      expect(status.healthy).toBe(false)
      expect(status.message).toBe(expected.message)
      expect(status.metadata).toEqual({ error: "HealthCheckTimeout", timeout: "2s" })
      yield* Effect.yieldNow
      expect(yield* Ref.get(interrupted)).toBe(true)
    })
  )

  it.effect("a check that answers just before the timeout counts", () =>
    Effect.gen(function* () {
      const check = HealthCheck.make("edge", Effect.as(Effect.sleep("1999 millis"), HealthStatus.healthy("made it")))
      const fiber = yield* run(check, "2 seconds").pipe(Effect.forkChild)
      yield* TestClock.adjust("2 seconds")
      expect(yield* Fiber.join(fiber)).toMatchObject({ healthy: true, message: "made it" })
    })
  )

  it.effect("even an uninterruptible check cannot hold the caller past the timeout", () =>
    Effect.gen(function* () {
      const stuck = HealthCheck.make(
        "stuck",
        Effect.uninterruptible(Effect.as(Effect.sleep("1 hour"), HealthStatus.healthy()))
      )
      const fiber = yield* run(stuck, "1 second").pipe(Effect.forkChild)
      yield* TestClock.adjust("1 second")
      const status = yield* Fiber.join(fiber)
      expect(status.metadata.error).toBe("HealthCheckTimeout")
      // let the abandoned check finish, so closing the test's scope does not wait an hour for it
      yield* TestClock.adjust("1 hour")
    })
  )
})
