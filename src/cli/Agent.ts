/**
 * The `shoal agent` command. Its body (`AgentRun.runAgent`: the cluster, the
 * admin interface, the optional servers) is imported when the command runs,
 * so `shoal members` and the other commands start without loading the
 * cluster engine.
 *
 * @since 0.1.0
 */
import * as Command from "effect/cli/Command"
import * as Effect from "effect/Effect"
import type { ClusterError } from "../cluster/Errors.ts"
import { type AgentFlags, agentFlags } from "./AgentFlags.ts"

/** `AgentRun.runAgent`, loaded on first call. */
export const runAgent = (flags: AgentFlags): Effect.Effect<void, ClusterError> =>
  Effect.flatMap(
    Effect.promise(() => import("./AgentRun.ts")),
    (module) => module.runAgent(flags)
  )

/**
 * The `agent` command around any handler of its flags: `runAgent` in the
 * real binary, a recorder in parsing tests.
 */
export const makeAgentCommand = <E, R>(handler: (flags: AgentFlags) => Effect.Effect<void, E, R>) =>
  Command.make("agent", agentFlags, handler).pipe(
    Command.withDescription(
      "Run one cluster member until SIGINT/SIGTERM, printing every membership event it observes on stdout. " +
        "Flags left unset are read from SHOAL_* environment variables, then defaults."
    ),
    Command.withExamples([
      { command: "shoal agent --name node-1 --bind 127.0.0.1:7946", description: "Start a cluster of one" },
      {
        command: "shoal agent --name node-2 --bind 127.0.0.1:7947 --join 127.0.0.1:7946 --tag role=web --format json",
        description: "Join it, advertising a tag, with JSON lines on stdout"
      }
    ])
  )

/** `shoal agent`. */
export const agentCommand = makeAgentCommand(runAgent)
