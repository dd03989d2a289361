/**
 * What every command that talks to a running agent shares: the `--admin`,
 * `--format` and `--timeout` flags, and one call to the agent within the
 * deadline. An agent that cannot be reached — nothing listening, no token
 * file, no answer in time, a broken connection — is `AgentUnreachable`
 * (exit 3), told apart from the agent's own refusals (exit 1), so a script
 * can retry the one and not the other.
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Flag from "effect/cli/Flag"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as RpcClientError from "effect/rpc/RpcClientError"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import { DEFAULT_ADMIN_ADDRESS } from "../admin/AdminAddress.ts"
import { AdminClient } from "../admin/AdminClient.ts"
import { DURATION_SYNTAX, parseDuration } from "../cluster/DurationText.ts"
import type { InvalidConfiguration } from "../cluster/Errors.ts"

/** The agent did not answer: not running there, no token to read, no answer within `--timeout`, or the link broke. */
export class AgentUnreachable extends Schema.TaggedError<AgentUnreachable>()("AgentUnreachable", {
  admin: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `cannot reach the agent at ${this.admin}: ${this.reason}`
  }
}

/** `--admin`: which agent to talk to (`SHOAL_ADMIN`, else `127.0.0.1:7373`). */
export const adminFlag = Flag.String("admin").pipe(
  Flag.withMetavar("host:port|path"),
  Flag.withDescription(
    `The agent's admin address: a loopback host:port or a Unix socket path (default ${DEFAULT_ADMIN_ADDRESS}; env SHOAL_ADMIN)`
  ),
  Flag.withFallbackConfig(Config.String("SHOAL_ADMIN")),
  Flag.withDefault(DEFAULT_ADMIN_ADDRESS)
)

/** `--format`: aligned text for people, or JSON for scripts. */
export const formatFlag = Flag.Literals("format", ["human", "json"]).pipe(
  Flag.withMetavar("human|json"),
  Flag.withDescription("Output: aligned text, or JSON (default human)"),
  Flag.withDefault("human")
)

/** `--timeout`: how long to wait for the agent's answer. */
export const timeoutFlag = Flag.String("timeout").pipe(
  Flag.filterMap(parseDuration, () => DURATION_SYNTAX),
  Flag.withMetavar("duration"),
  Flag.withDescription("How long to wait for the agent (default 5s)"),
  Flag.withDefault(Duration.seconds(5))
)

/** The flags every admin command takes. */
export const commonFlags = { admin: adminFlag, format: formatFlag, timeout: timeoutFlag } as const

const isRpcClientError = (error: unknown): error is RpcClientError.RpcClientError =>
  typeof error === "object" && error !== null && (error as { _tag?: unknown })._tag === "RpcClientError"

/** The agent's client, open until the scope closes; a transport failure is {@link AgentUnreachable}. */
export const connectAgent = (admin: string) =>
  Layer.build(AdminClient.layer(admin)).pipe(
    Effect.mapError((error): AgentUnreachable | InvalidConfiguration =>
      error._tag === "NetworkError" || error.reason.startsWith("no admin token")
        ? new AgentUnreachable({ admin, reason: error._tag === "NetworkError" ? error.message : error.reason })
        : error
    ),
    Effect.map((context) => Context.get(context, AdminClient))
  )

/** `error`, with a broken or refused connection (`RpcClientError`) turned into {@link AgentUnreachable}. */
export const reachable =
  (admin: string) =>
  <E>(error: E): Exclude<E, RpcClientError.RpcClientError> | AgentUnreachable =>
    isRpcClientError(error)
      ? new AgentUnreachable({ admin, reason: error.message })
      : (error as Exclude<E, RpcClientError.RpcClientError>)

/**
 * Connects to the agent at `admin` and runs `use` with the client, within
 * `timeout` (the connection included). Transport failures become
 * {@link AgentUnreachable}; the agent's typed errors pass through.
 */
export const callAgent = <A, E>(
  admin: string,
  timeout: Duration.Duration,
  use: (client: AdminClient["Service"]) => Effect.Effect<A, E, Scope.Scope>
) =>
  connectAgent(admin).pipe(
    Effect.flatMap(use),
    Effect.scoped,
    Effect.timeoutOrElse({
      duration: timeout,
      orElse: () => Effect.fail(new AgentUnreachable({ admin, reason: `no answer within ${Duration.format(timeout)}` }))
    }),
    Effect.mapError(reachable(admin))
  )
