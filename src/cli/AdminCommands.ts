/**
 * The commands that talk to a running agent through its admin interface:
 * `members`, `monitor`, `join`, `leave`, `force-leave`, `tags`, `info`,
 * `reachability` and `keys`, plus `keygen`, which needs no agent. Each takes `--admin`,
 * `--format human|json` and `--timeout`; exit codes are in `Shoal.ts`.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Console from "effect/Console"
import * as Argument from "effect/cli/Argument"
import * as Command from "effect/cli/Command"
import * as Flag from "effect/cli/Flag"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { AgentInfo, type KeyringReportView, type MonitorItem, type MonitorLevel } from "../admin/AdminRpcs.ts"
import { generateKey } from "../cluster/gossip/Keyring.ts"
import { NodeState } from "../cluster/Node.ts"
import { AgentUnreachable, callAgent, commonFlags, connectAgent, reachable } from "./AdminCall.ts"
import {
  infoText,
  keyringText,
  logJson,
  logLine,
  memberJson,
  membersTable,
  reachabilityJson,
  reachabilityText
} from "./AdminOutput.ts"
import { eventLine, formatter, nodeLine } from "./EventFormat.ts"

/** A command that reached the agent but did not fully succeed (a keyring command some member did not acknowledge). */
export class CommandFailed extends Schema.TaggedError<CommandFailed>()("CommandFailed", { reason: Schema.String }) {
  override get message(): string {
    return this.reason
  }
}

/** All of stdin, for a key given as "-" (bounded: a key is 44 characters). */
const readStdin = Effect.callback<string>((resume) => {
  const chunks: Array<Buffer> = []
  let size = 0
  const onData = (chunk: Buffer) => {
    size += chunk.length
    if (size <= 4096) chunks.push(chunk)
  }
  const onEnd = () => resume(Effect.succeed(Buffer.concat(chunks).toString("utf8")))
  process.stdin.on("data", onData).once("end", onEnd)
  return Effect.sync(() => {
    process.stdin.off("data", onData).off("end", onEnd)
  })
})

const json = (value: unknown) => Console.log(JSON.stringify(value))

const parseTag = (text: string): Option.Option<readonly [string, string]> => {
  const eq = text.indexOf("=")
  return eq <= 0 ? Option.none() : Option.some([text.slice(0, eq).trim(), text.slice(eq + 1).trim()] as const)
}

const stateByName = new Map(NodeState.literals.map((state) => [state.toLowerCase(), state]))

/** `shoal members`. */
export const membersCommand = Command.make(
  "members",
  {
    ...commonFlags,
    detailed: Flag.Boolean("detailed").pipe(
      Flag.withDescription("Also show id, incarnation, RPC address, phi and when each was last heard from"),
      Flag.withDefault(false)
    ),
    state: Flag.String("state").pipe(
      Flag.filterMap(
        (text) => Option.fromUndefinedOr(stateByName.get(text.trim().toLowerCase())),
        () => "alive, suspect, dead or left"
      ),
      Flag.withMetavar("state"),
      Flag.withDescription("Only members in this state; repeat for several"),
      Flag.atLeast(0)
    ),
    tag: Flag.String("tag").pipe(
      Flag.filterMap(parseTag, () => "key=value"),
      Flag.withMetavar("key=value"),
      Flag.withDescription("Only members carrying this tag; repeat for several (all must match)"),
      Flag.atLeast(0)
    )
  },
  Effect.fn("shoal.members")(function* ({ admin, format, timeout, detailed, state, tag }) {
    const entries = yield* callAgent(admin, timeout, (client) =>
      client.Members({
        detailed,
        ...(state.length === 0 ? {} : { states: state }),
        ...(tag.length === 0 ? {} : { tags: Object.fromEntries(tag) })
      })
    )
    if (format === "json") return yield* json(entries.map((entry) => memberJson(entry, detailed)))
    yield* Console.log(membersTable(entries, detailed, yield* Clock.currentTimeMillis))
  })
).pipe(Command.withDescription("List the members the agent knows, in every state (Serf's members)"))

const levels = ["trace", "debug", "info", "warn", "error", "fatal"] as const
const monitorLevel: Record<(typeof levels)[number], MonitorLevel> = {
  trace: "Trace",
  debug: "Debug",
  info: "Info",
  warn: "Warn",
  error: "Error",
  fatal: "Fatal"
}

/** `shoal monitor`. */
export const monitorCommand = Command.make(
  "monitor",
  {
    ...commonFlags,
    logLevel: Flag.Literals("log-level", levels).pipe(
      Flag.withDescription(
        "Also stream the agent's log lines at this level and above (as far as the agent's own --log-level lets them through)"
      ),
      Flag.optional
    )
  },
  Effect.fn("shoal.monitor")(
    function* ({ admin, format, timeout, logLevel }) {
      const write = formatter(format)
      const level = Option.map(logLevel, (name) => monitorLevel[name])
      const client = yield* connectAgent(admin)
      // The deadline covers the connection and the first item (the member snapshot); the stream then runs
      // until the agent goes away or the command is interrupted (Ctrl-C).
      const started = yield* Deferred.make<void>()
      const print = (item: MonitorItem) =>
        Effect.gen(function* () {
          switch (item._tag) {
            case "MonitorStarted":
              yield* Deferred.succeed(started, undefined)
              for (const member of item.members) yield* Console.log(write(nodeLine("Member", member, item.ts)))
              return
            case "MonitorEvent":
              return yield* Console.log(write(eventLine(item.event, item.ts)))
            case "MonitorLog":
              return yield* format === "json" ? json(logJson(item)) : Console.log(logLine(item))
          }
        })
      const running = yield* client
        .Monitor(Option.isSome(level) ? { logLevel: level.value } : {})
        .pipe(Stream.runForEach(print), Effect.forkChild)
      yield* Deferred.await(started).pipe(
        Effect.timeoutOrElse({
          duration: timeout,
          orElse: () =>
            Effect.fail(new AgentUnreachable({ admin, reason: `no answer within ${Duration.format(timeout)}` }))
        })
      )
      yield* Fiber.join(running)
      return yield* new AgentUnreachable({ admin, reason: "the agent closed the stream (it stopped)" })
    },
    (effect, { admin }) => effect.pipe(Effect.scoped, Effect.mapError(reachable(admin)))
  )
).pipe(Command.withDescription("Stream the agent's membership events, and optionally its log lines (Serf's monitor)"))

/** `shoal join ADDR…`. */
export const joinCommand = Command.make(
  "join",
  {
    ...commonFlags,
    addresses: Argument.String("address").pipe(Argument.withMetavar("host:port"), Argument.atLeast(1))
  },
  Effect.fn("shoal.join")(function* ({ admin, format, timeout, addresses }) {
    const joined = yield* callAgent(admin, timeout, (client) => client.Join({ addresses }))
    if (format === "json") return yield* json({ joined, of: addresses.length })
    yield* Console.log(`joined through ${joined} of ${addresses.length}`)
  })
).pipe(Command.withDescription("Make the agent join through more members (one push-pull with each)"))

/** `shoal leave`. */
export const leaveCommand = Command.make(
  "leave",
  commonFlags,
  Effect.fn("shoal.leave")(function* ({ admin, format, timeout }) {
    yield* callAgent(admin, timeout, (client) => client.Leave())
    if (format === "json") return yield* json({ left: true })
    yield* Console.log("left the cluster; the agent is shutting down")
  })
).pipe(Command.withDescription("Make the agent leave the cluster gracefully and stop"))

/** `shoal force-leave NAME`. */
export const forceLeaveCommand = Command.make(
  "force-leave",
  { ...commonFlags, member: Argument.String("member").pipe(Argument.withMetavar("name|id")) },
  Effect.fn("shoal.forceLeave")(function* ({ admin, format, timeout, member }) {
    const node = yield* callAgent(admin, timeout, (client) => client.ForceLeave({ member }))
    const line = nodeLine("NodeLeft", node, yield* Clock.currentTimeMillis)
    yield* Console.log(formatter(format)(line))
  })
).pipe(
  Command.withDescription(
    "Mark a failed member as left on every member, so it is reaped and no longer reconnected to (Serf's force-leave)"
  )
)

const tagsSet = Command.make(
  "set",
  {
    ...commonFlags,
    tags: Argument.String("tag").pipe(
      Argument.filterMap(parseTag, () => "key=value"),
      Argument.withMetavar("key=value"),
      Argument.atLeast(1)
    )
  },
  Effect.fn("shoal.tags.set")(function* ({ admin, format, timeout, tags }) {
    const node = yield* callAgent(admin, timeout, (client) =>
      client.UpdateTags({ set: Object.fromEntries(tags), remove: [] })
    )
    yield* Console.log(formatter(format)(nodeLine("NodeUpdated", node, yield* Clock.currentTimeMillis)))
  })
).pipe(Command.withDescription("Set tags on the agent's node, keeping the others"))

const tagsDelete = Command.make(
  "delete",
  { ...commonFlags, keys: Argument.String("key").pipe(Argument.atLeast(1)) },
  Effect.fn("shoal.tags.delete")(function* ({ admin, format, timeout, keys }) {
    const node = yield* callAgent(admin, timeout, (client) => client.UpdateTags({ set: {}, remove: keys }))
    yield* Console.log(formatter(format)(nodeLine("NodeUpdated", node, yield* Clock.currentTimeMillis)))
  })
).pipe(Command.withDescription("Delete tags from the agent's node, keeping the others"))

/** `shoal tags set|delete`. */
export const tagsCommand = Command.make("tags").pipe(
  Command.withDescription("Change the agent's tags (merged into the current ones, then gossiped)"),
  Command.withSubcommands([tagsSet, tagsDelete])
)

const encodeInfo = Schema.encodeSync(AgentInfo)

/** `shoal info`. */
export const infoCommand = Command.make(
  "info",
  commonFlags,
  Effect.fn("shoal.info")(function* ({ admin, format, timeout }) {
    const info = yield* callAgent(admin, timeout, (client) => client.Info())
    if (format === "json") return yield* json(encodeInfo(info))
    yield* Console.log(infoText(info))
  })
).pipe(
  Command.withDescription(
    "Show the agent's version, node, configuration (no secrets), counters, awareness and members by state"
  )
)

/**
 * `shoal reachability`. The agent's checks get what is left of `--timeout`
 * after a margin for the call itself (half of it, at most 500 ms), so a slow
 * check is reported as unreachable rather than the agent as unreachable.
 * Exits 1 when a member did not answer.
 */
export const reachabilityCommand = Command.make(
  "reachability",
  commonFlags,
  Effect.fn("shoal.reachability")(function* ({ admin, format, timeout }) {
    const total = Duration.toMillis(timeout)
    const timeoutMillis = Math.max(0, total - Math.min(500, total / 2))
    const results = yield* callAgent(admin, timeout, (client) => client.Reachability({ timeoutMillis }))
    if (format === "json") {
      yield* json({
        members: results.map(reachabilityJson),
        answered: results.filter((r) => r.outcome !== "unreachable").length,
        unreachable: results.filter((r) => r.outcome === "unreachable").length
      })
    } else yield* Console.log(reachabilityText(results))
    const missing = results.filter((r) => r.outcome === "unreachable")
    if (missing.length > 0) {
      return yield* new CommandFailed({
        reason: `${missing.length} member(s) did not answer: ${missing.map((r) => r.node.name).join(", ")}`
      })
    }
  })
).pipe(
  Command.withDescription(
    "Probe every member now, directly, through helpers and over TCP, and report who answers and how (exit 1 if one does not)"
  )
)

/** Prints a keyring report; fails (exit 1) when this node refused or a member did not acknowledge. */
const report = (format: "human" | "json", result: KeyringReportView) =>
  Effect.gen(function* () {
    yield* format === "json" ? json(result) : Console.log(keyringText(result))
    if (result.refused !== undefined) return yield* new CommandFailed({ reason: `refused: ${result.refused}` })
    if (result.failed > 0) {
      return yield* new CommandFailed({
        reason: `${result.failed} member(s) did not acknowledge; run the command again once they are back`
      })
    }
  })

const keysList = Command.make(
  "list",
  commonFlags,
  Effect.fn("shoal.keys.list")(function* ({ admin, format, timeout }) {
    yield* report(format, yield* callAgent(admin, timeout, (client) => client.KeysList()))
  })
).pipe(Command.withDescription("List the key fingerprints of every live member (primary first)"))

const keysInstall = Command.make(
  "install",
  {
    ...commonFlags,
    key: Argument.Redacted("key").pipe(
      Argument.withDescription('The key, base64 (32 bytes); "-" reads it from stdin, so ps never shows it')
    )
  },
  Effect.fn("shoal.keys.install")(function* ({ admin, format, timeout, key }) {
    let text = Redacted.value(key)
    if (text === "-") text = yield* readStdin
    yield* report(format, yield* callAgent(admin, timeout, (client) => client.KeysInstall({ key: text.trim() })))
  })
).pipe(Command.withDescription("Install a key everywhere: it decrypts at once, encrypts once used"))

const keysUse = Command.make(
  "use",
  { ...commonFlags, fingerprint: Argument.String("fingerprint") },
  Effect.fn("shoal.keys.use")(function* ({ admin, format, timeout, fingerprint }) {
    yield* report(format, yield* callAgent(admin, timeout, (client) => client.KeysUse({ fingerprint })))
  })
).pipe(Command.withDescription("Make the key with this fingerprint the primary everywhere"))

const keysRemove = Command.make(
  "remove",
  { ...commonFlags, fingerprint: Argument.String("fingerprint") },
  Effect.fn("shoal.keys.remove")(function* ({ admin, format, timeout, fingerprint }) {
    yield* report(format, yield* callAgent(admin, timeout, (client) => client.KeysRemove({ fingerprint })))
  })
).pipe(Command.withDescription("Remove a key that is not the primary, everywhere"))

/** `shoal keys list|install|use|remove`. */
export const keysCommand = Command.make("keys").pipe(
  Command.withDescription("Manage the gossip keyring across the cluster (see docs/SECURITY.md)"),
  Command.withSubcommands([keysList, keysInstall, keysUse, keysRemove])
)

/** `shoal keygen`. */
export const keygenCommand = Command.make(
  "keygen",
  { format: commonFlags.format },
  Effect.fn("shoal.keygen")(function* ({ format }) {
    const key = generateKey()
    yield* format === "json" ? json({ key }) : Console.log(key)
  })
).pipe(Command.withDescription("Print a fresh random gossip key (base64, 32 bytes from the system CSPRNG)"))
