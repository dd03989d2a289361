/**
 * The `shoal` command and how a run turns into a process exit code.
 *
 * Exit codes are part of the CLI's contract (`docs/CLI.md`):
 *
 * - `0`: success, including a graceful leave after SIGINT/SIGTERM (the signal
 *   interrupts the main fiber; the cluster's finalizer announces the leave;
 *   an interruption is therefore a clean stop, not effect's default 130).
 * - `1`: the agent could not start or stopped on an error: bad configuration,
 *   a port in use, a failed join, or a defect; or a command the agent refused
 *   or could not fully carry out (a keyring change a member did not
 *   acknowledge, a member that did not answer `reachability`).
 * - `2`: bad command-line usage: unknown flag or subcommand, a value that does
 *   not parse, a missing subcommand.
 * - `3`: a command could not reach the agent named by `--admin` (nothing
 *   listening, no token file, no answer within `--timeout`, the connection
 *   broke): worth retrying, unlike `1`, which is the agent's own refusal.
 *
 * stdout carries only data (events, help when asked for); usage errors, the
 * help printed with them, failures and logs go to stderr.
 *
 * @since 0.1.0
 */
import * as NodeServices from "@effect/platform-node/NodeServices"
import * as Cause from "effect/Cause"
import * as Console from "effect/Console"
import * as Context from "effect/Context"
import * as CliError from "effect/cli/CliError"
import * as CliOutput from "effect/cli/CliOutput"
import * as Command from "effect/cli/Command"
import * as TerminalCapabilities from "effect/cli/TerminalCapabilities"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Logger from "effect/Logger"
import type * as Runtime from "effect/Runtime"
import { AgentUnreachable } from "./AdminCall.ts"
import {
  forceLeaveCommand,
  infoCommand,
  joinCommand,
  keygenCommand,
  keysCommand,
  leaveCommand,
  membersCommand,
  monitorCommand,
  reachabilityCommand,
  tagsCommand
} from "./AdminCommands.ts"
import { agentCommand } from "./Agent.ts"

/** `shoal` and its subcommands. */
export const shoal = Command.make("shoal").pipe(
  Command.withDescription("SWIM gossip membership for Node.js, built on Effect"),
  Command.withSubcommands([
    agentCommand,
    membersCommand,
    monitorCommand,
    joinCommand,
    leaveCommand,
    forceLeaveCommand,
    tagsCommand,
    infoCommand,
    reachabilityCommand,
    keysCommand,
    keygenCommand
  ])
)

/** The documented exit codes. */
export const ExitCode = { ok: 0, failure: 1, usage: 2, unreachable: 3 } as const

/** The exit code of a finished `shoal` run (see the module comment). */
export const exitCodeOf = (exit: Exit.Exit<unknown, unknown>): 0 | 1 | 2 | 3 => {
  if (Exit.isSuccess(exit) || Cause.hasInterruptsOnly(exit.cause)) return ExitCode.ok
  const error = Cause.squash(exit.cause)
  if (error instanceof AgentUnreachable) return ExitCode.unreachable
  return CliError.isCliError(error) ? ExitCode.usage : ExitCode.failure
}

/** `runMain` teardown applying {@link exitCodeOf}. */
export const teardown: Runtime.Teardown = (exit, onExit) => onExit(exitCodeOf(exit))

/**
 * Help goes to stdout only when asked for (`--help`). A usage error prints
 * just the error and a pointer to `--help`, and a bare `shoal` its help, on
 * stderr, so a pipeline reading stdout never sees them.
 */
export const presenter: CliOutput.Presenter = {
  present: Effect.fnUntraced(function* (event) {
    const context = yield* Effect.context<never>()
    const formatter =
      Context.getOrUndefined(context, CliOutput.Formatter) ??
      CliOutput.defaultFormatter({ colors: Context.get(context, TerminalCapabilities.TerminalCapabilities).canColor })
    switch (event._tag) {
      case "Help":
        return yield* (event.reason === "Requested" ? Console.log : Console.error)(
          formatter.formatHelpDoc(event.helpDoc)
        )
      case "InvalidInvocation":
        return yield* Console.error(
          `${formatter.formatErrors(event.errors)}\n\nRun "${event.commandPath.join(" ")} --help" for usage.`
        )
      case "Version":
        return yield* Console.log(formatter.formatVersion(event.name, event.version))
    }
  })
}

/**
 * The system error code (`EADDRINUSE`, `EACCES`…) buried in an error's
 * causes, if any: socket errors from the platform keep it a few levels down.
 */
const systemErrorCode = (error: unknown, depth = 0): string | undefined => {
  if (typeof error !== "object" || error === null || depth > 4) return undefined
  const { code, cause, reason } = error as { code?: unknown; cause?: unknown; reason?: unknown }
  if (typeof code === "string" && /^E[A-Z]+$/.test(code)) return code
  return systemErrorCode(cause, depth + 1) ?? systemErrorCode(reason, depth + 1)
}

/** One line for an expected failure: its message, plus the system error code when the message lacks it. */
export const describeFailure = (error: Error): string => {
  const code = systemErrorCode(error)
  const message = error.message.replace(/:\s*$/, "")
  return code === undefined || message.includes(code) ? message : `${message}: ${code}`
}

/**
 * Prints why a run failed, on stderr: usage errors were already shown by
 * effect/cli; a cluster error is one sentence; anything else (a defect) is
 * the full cause.
 */
const reportFailure = (cause: Cause.Cause<unknown>): Effect.Effect<void> => {
  if (Cause.hasInterruptsOnly(cause)) return Effect.void
  const error = Cause.squash(cause)
  if (CliError.isCliError(error)) return Effect.void
  if (!Cause.hasDies(cause) && error instanceof Error) return Console.error(`shoal: ${describeFailure(error)}`)
  return Console.error(`shoal: unexpected failure\n${Cause.pretty(cause)}`)
}

/** Runs `shoal` with explicit arguments (tests) or, without, the process arguments. */
export const run = (version: string, args?: ReadonlyArray<string>) =>
  (args === undefined ? Command.run(shoal, { version }) : Command.runWith(shoal, { version })(args)).pipe(
    Effect.tapCause(reportFailure),
    Effect.provideService(CliOutput.Presenter, presenter),
    Effect.provideService(Logger.LogToStderr, true)
  )

/** The whole program `bin/shoal.js` runs, with the Node platform services. */
export const main = (version: string) => run(version).pipe(Effect.provide(NodeServices.layer))
