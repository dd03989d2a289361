/**
 * A health check: a named effect that says whether one part of this process
 * (a database pool, a queue, a disk) is fit to take work. The cluster runs
 * all checks periodically and publishes the result as this node's `healthy`
 * tag, so `discover({ healthy: "true" })` only returns nodes that can serve.
 *
 * A check can never take the monitor down with it: {@link HealthCheck.run}
 * turns a failure, a defect, an interruption or a timeout into an unhealthy
 * {@link HealthStatus} that says what happened.
 *
 * @module
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import { HealthCheckTimeout } from "../Errors.ts"

/** The verdict of one check. `metadata` carries details for operators (latency, pool size, the error's tag, …). */
export class HealthStatus extends Schema.Class<HealthStatus>("shoal/HealthStatus")({
  healthy: Schema.Boolean,
  message: Schema.optionalKey(Schema.String),
  metadata: Schema.Record(Schema.String, Schema.String)
}) {
  /** A passing status, optionally with a message and details. */
  static healthy(message?: string, metadata: Readonly<Record<string, string>> = {}): HealthStatus {
    return new HealthStatus(
      message === undefined
        ? { healthy: true, metadata: { ...metadata } }
        : { healthy: true, message, metadata: { ...metadata } }
    )
  }

  /** A failing status: `message` says why. */
  static unhealthy(message: string, metadata: Readonly<Record<string, string>> = {}): HealthStatus {
    return new HealthStatus({ healthy: false, message, metadata: { ...metadata } })
  }
}

/** A named check. Build it with {@link HealthCheck.make}; `check` never fails (failures are statuses). */
export interface HealthCheck {
  readonly name: string
  readonly check: Effect.Effect<HealthStatus>
}

const describeCause = (cause: Cause.Cause<unknown>): string =>
  Cause.prettyErrors(cause)
    .map((error) =>
      error.name === "Error" || error.message.startsWith(error.name) ? error.message : `${error.name}: ${error.message}`
    )
    .join("; ")

const causeKind = (cause: Cause.Cause<unknown>): string =>
  Cause.hasFails(cause) ? "failure" : Cause.hasDies(cause) ? "defect" : "interrupted"

/**
 * The unhealthy status for a check that ended with `cause` instead of a
 * status: the message names the check and quotes the error; `metadata.cause`
 * is `failure`, `defect` or `interrupted`.
 */
export const statusFromCause = (name: string, cause: Cause.Cause<unknown>): HealthStatus =>
  HealthStatus.unhealthy(`health check "${name}" failed: ${describeCause(cause)}`, { cause: causeKind(cause) })

/** The unhealthy status for a check that did not answer within `timeout`. */
export const statusFromTimeout = (name: string, timeout: Duration.Duration): HealthStatus => {
  const error = new HealthCheckTimeout({ check: name, timeout })
  return HealthStatus.unhealthy(error.message, { error: error._tag, timeout: Duration.format(timeout) })
}

/** Turns every way `check` can end without a status into an unhealthy status. */
const guard = <E, R>(name: string, check: Effect.Effect<HealthStatus, E, R>): Effect.Effect<HealthStatus, never, R> =>
  Effect.catchCause(check, (cause) => Effect.succeed(statusFromCause(name, cause)))

/**
 * Runs `self` with a time limit, in a fiber of its own forked into `scope`:
 * on timeout the check is told to stop, but not waited for, so even a check
 * stuck in uninterruptible code cannot hold the caller past `timeout`. The
 * scope (the health service's) interrupts any straggler when it closes.
 */
const run = (self: HealthCheck, timeout: Duration.Duration, scope: Scope.Scope): Effect.Effect<HealthStatus> =>
  Effect.gen(function* () {
    const fiber = yield* Effect.forkIn(guard(self.name, self.check), scope)
    const abandon = Effect.forkIn(Fiber.interrupt(fiber), scope)
    return yield* Fiber.join(fiber).pipe(
      Effect.timeoutOrElse({
        duration: timeout,
        orElse: () => Effect.as(abandon, statusFromTimeout(self.name, timeout))
      }),
      Effect.onInterrupt(() => abandon)
    )
  })

/** Constructors for {@link HealthCheck}. */
export const HealthCheck = {
  /**
   * A check named `name`. Its typed failures become unhealthy statuses here;
   * its defects and timeouts are caught when it runs.
   */
  make: <E>(name: string, check: Effect.Effect<HealthStatus, E>): HealthCheck => ({ name, check: guard(name, check) }),

  /** A check named `"always"` that always passes, for nodes with nothing to check and for tests. */
  alwaysHealthy: { name: "always", check: Effect.succeed(HealthStatus.healthy()) } as HealthCheck,

  /**
   * Runs one check: its status, or an unhealthy status if it fails, dies, is
   * interrupted, or takes longer than `timeout` (see {@link statusFromTimeout}).
   */
  run
} as const
