/**
 * The agent's log lines, for `shoal monitor --log-level`: a logger that hands
 * every line it is given to the monitors subscribed at that moment, and
 * costs one check when nobody is. It sees what the agent's own minimum level
 * lets through (`--log-level`), so a monitor cannot ask for more detail than
 * the agent logs.
 *
 * @module
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as PubSub from "effect/PubSub"
import * as References from "effect/References"
import type * as Scope from "effect/Scope"
import { MonitorLog } from "./AdminRpcs.ts"

/** Lines a slow monitor may fall behind by before the oldest are dropped. */
const BUFFER = 1024

/** Text of a log message part. */
const text = (part: unknown): string => {
  if (typeof part === "string") return part
  if (part instanceof Error) return part.message
  try {
    return JSON.stringify(part) ?? String(part)
  } catch {
    return String(part)
  }
}

/** Log lines as a service: the logger to install and the subscriptions monitors take. */
export class LogTap extends Context.Service<
  LogTap,
  {
    /** Install beside the agent's own logger (`Logger.layer([…], { mergeWithExisting: true })`). */
    readonly logger: Logger.Logger<unknown, void>
    /** Every line logged after this returns, until the scope closes. */
    readonly subscribe: Effect.Effect<PubSub.Subscription<MonitorLog>, never, Scope.Scope>
  }
>()("shoal/admin/LogTap") {
  /** A fresh tap. */
  static readonly make: Effect.Effect<LogTap["Service"], never, Scope.Scope> = Effect.gen(function* () {
    const pubsub = yield* PubSub.sliding<MonitorLog>(BUFFER)
    yield* Effect.addFinalizer(() => PubSub.shutdown(pubsub))
    let subscribers = 0
    const logger = Logger.make<unknown, void>(({ cause, date, fiber, logLevel, message }) => {
      if (subscribers === 0) return
      const parts = Array.isArray(message) ? message : [message]
      const annotations: Record<string, string> = {}
      for (const [key, value] of Object.entries(fiber.getRef(References.CurrentLogAnnotations))) {
        annotations[key] = text(value)
      }
      const failure = cause.reasons.length > 0 ? ` ${Cause.pretty(cause)}` : ""
      PubSub.publishUnsafe(
        pubsub,
        new MonitorLog({
          ts: date.getTime(),
          level: logLevel,
          message: parts.map(text).join(" ") + failure,
          annotations
        })
      )
    })
    return LogTap.of({
      logger,
      subscribe: Effect.acquireRelease(
        Effect.tap(PubSub.subscribe(pubsub), () => Effect.sync(() => void subscribers++)),
        () => Effect.sync(() => void subscribers--)
      )
    })
  })

  /** The tap as a layer; install its `logger` where the agent builds its loggers. */
  static readonly layer: Layer.Layer<LogTap> = Layer.effect(LogTap, LogTap.make)
}
