import { NodeServices } from "@effect/platform-node"
import { assert, describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Option, Random } from "effect"
import { CliError, Command } from "effect/cli"
import { TestConsole } from "effect/testing"
import { makeAgentCommand } from "../../src/cli/Agent.ts"
import { type AgentFlags, emptyAgentFlags, flagNames, resolveConfig, toConfigInput } from "../../src/cli/AgentFlags.ts"
import * as ClusterConfig from "../../src/cluster/Config.ts"
import type { InvalidConfiguration } from "../../src/cluster/Errors.ts"

/** Parses `shoal agent <args>` with a handler that only records the flags. */
const parse = (args: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    let seen: AgentFlags | undefined
    const command = makeAgentCommand((flags) =>
      Effect.sync(() => {
        seen = flags
      })
    )
    yield* Command.runWith(command, { version: "test" })(args)
    if (seen === undefined) return yield* Effect.die(new Error("the handler did not run"))
    return seen
  }).pipe(Effect.provide(NodeServices.layer))

/** The CLI error `args` is rejected with (a ShowHelp carrying the parse errors). */
const rejected = (args: ReadonlyArray<string>) =>
  parse(args).pipe(
    Effect.flip,
    Effect.map((error) => {
      assert.isTrue(CliError.isCliError(error))
      assert.strictEqual(error._tag, "ShowHelp")
      return (error as CliError.ShowHelp).errors
    })
  )

const millis = (d: unknown) => (d === undefined ? undefined : Duration.toMillis(d as Duration.Duration))

/** `resolveConfig` over a given environment (instead of the process's). */
const resolve = (flags: AgentFlags, env: Record<string, string> = {}) =>
  resolveConfig(toConfigInput(flags)).pipe(
    Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromEnvRecord(env)),
    Random.withSeed(1)
  )

const resolveArgs = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  Effect.flatMap(parse(args), (flags) => resolve(flags, env))

const failure = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  resolveArgs(args, env).pipe(Effect.flip) as Effect.Effect<InvalidConfiguration, unknown>

describe("agent flags → ClusterConfig.Input", () => {
  it.effect("maps every kind of flag onto its field", () =>
    Effect.gen(function* () {
      const flags = yield* parse([
        "--name",
        "n1",
        "--label",
        "blue",
        "--bind",
        "127.0.0.1:7000",
        "--advertise",
        "[::1]:7001",
        "--join",
        "10.0.0.1:7946",
        "--join",
        "10.0.0.2:7946",
        "--tag",
        "role=web",
        "--tag",
        "zone=a=b",
        "--probe-interval",
        "200ms",
        "--ping-timeout",
        "100",
        "--reap-after",
        "1 minute",
        "--indirect-checks",
        "2",
        "--suspicion-mult",
        "2.5",
        "--retry-join",
        "--format",
        "json",
        "--stats-interval",
        "1s"
      ])
      assert.strictEqual(flags.format, "json")
      assert.deepStrictEqual(Option.map(flags.statsInterval, Duration.toMillis), Option.some(1000))

      const input = toConfigInput(flags)
      assert.deepStrictEqual(Object.keys(input).sort(), [
        "advertiseAddress",
        "bindAddress",
        "clusterLabel",
        "indirectChecks",
        "nodeName",
        "pingTimeout",
        "probeInterval",
        "reapAfter",
        "retryJoin",
        "seedNodes",
        "suspicionMult",
        "tags"
      ])
      assert.strictEqual(input.nodeName, "n1")
      assert.strictEqual(input.clusterLabel, "blue")
      assert.strictEqual(String(input.bindAddress), "127.0.0.1:7000")
      assert.strictEqual(String(input.advertiseAddress), "[::1]:7001")
      assert.deepStrictEqual(input.seedNodes, ["10.0.0.1:7946", "10.0.0.2:7946"])
      assert.deepStrictEqual(input.tags, { role: "web", zone: "a=b" })
      assert.strictEqual(millis(input.probeInterval), 200)
      assert.strictEqual(millis(input.pingTimeout), 100)
      assert.strictEqual(millis(input.reapAfter), 60_000)
      assert.strictEqual(input.indirectChecks, 2)
      assert.strictEqual(input.suspicionMult, 2.5)
      assert.strictEqual(input.retryJoin, true)
    })
  )

  it.effect("no flags set no fields, so the environment and defaults decide", () =>
    Effect.gen(function* () {
      const flags = yield* parse([])
      assert.deepStrictEqual(flags, emptyAgentFlags)
      assert.deepStrictEqual(toConfigInput(flags), {})
    })
  )

  it.effect("every configuration field has a flag that sets it", () =>
    Effect.gen(function* () {
      const fields = Object.keys(ClusterConfig.environmentVariables).sort()
      assert.deepStrictEqual(Object.keys(flagNames).sort(), fields)
      // Every flag given: toConfigInput sets every field.
      const everything = Object.fromEntries(
        Object.entries(emptyAgentFlags).map(([key, value]) => [
          key,
          Option.isOption(value) ? Option.some(key) : Array.isArray(value) ? [["k", "v"]] : value
        ])
      ) as unknown as AgentFlags
      assert.deepStrictEqual(Object.keys(toConfigInput(everything)).sort(), fields)
    })
  )

  it.effect("a value that does not parse is a usage error naming the flag", () =>
    Effect.gen(function* () {
      const cases: ReadonlyArray<readonly [ReadonlyArray<string>, string]> = [
        [["--probe-interval", "soon"], "probe-interval"],
        [["--stats-interval", "often"], "stats-interval"],
        [["--bind", "nowhere"], "bind"],
        [["--advertise", "host:99999"], "advertise"],
        [["--join", "10.0.0.1"], "join"],
        [["--tag", "novalue"], "tag"],
        [["--indirect-checks", "1.5"], "indirect-checks"],
        [["--suspicion-mult", "lots"], "suspicion-mult"],
        [["--format", "xml"], "format"]
      ]
      for (const [args, flag] of cases) {
        const errors = yield* rejected(args)
        assert.lengthOf(errors, 1, args.join(" "))
        const [error] = errors
        assert.strictEqual(error?._tag, "InvalidValue", args.join(" "))
        assert.strictEqual((error as CliError.InvalidValue).option, flag)
      }
      const stderr = (yield* TestConsole.errorLines).join("\n")
      expect(stderr).toContain("--probe-interval")
      expect(stderr).toContain('"soon"')
    })
  )

  it.effect("an unknown flag is a usage error", () =>
    Effect.gen(function* () {
      const errors = yield* rejected(["--probe-intervall", "1s"])
      assert.strictEqual(errors[0]?._tag, "UnrecognizedOption")
    })
  )
})

describe("resolveConfig: flags, then SHOAL_* variables, then defaults", () => {
  it.effect("flags alone give a validated config with defaults elsewhere", () =>
    Effect.gen(function* () {
      const config = yield* resolveArgs(["--name", "n1", "--bind", "127.0.0.1:0", "--probe-interval", "2s"])
      assert.strictEqual(config.nodeName, "n1")
      assert.strictEqual(String(config.bindAddress), "127.0.0.1:0")
      assert.strictEqual(Duration.toMillis(config.probeInterval), 2000)
      assert.strictEqual(Duration.toMillis(config.pingTimeout), 500)
      assert.strictEqual(config.clusterLabel, "shoal")
    })
  )

  it.effect("the environment fills what the flags leave unset, and flags win", () =>
    Effect.gen(function* () {
      const env = {
        SHOAL_NODE_NAME: "from-env",
        SHOAL_PROBE_INTERVAL: "300ms",
        SHOAL_PING_TIMEOUT: "150ms",
        SHOAL_GOSSIP_INTERVAL: "50",
        SHOAL_SEEDS: "10.0.0.1:7946,10.0.0.2:7946",
        SHOAL_TAGS: "role=db",
        SHOAL_RETRY_JOIN: "true"
      }
      const fromEnv = yield* resolveArgs([], env)
      assert.strictEqual(fromEnv.nodeName, "from-env")
      assert.strictEqual(Duration.toMillis(fromEnv.probeInterval), 300)
      assert.strictEqual(Duration.toMillis(fromEnv.pingTimeout), 150)
      assert.strictEqual(Duration.toMillis(fromEnv.gossipInterval), 50)
      assert.deepStrictEqual(fromEnv.seedNodes, ["10.0.0.1:7946", "10.0.0.2:7946"])
      assert.deepStrictEqual(fromEnv.tags, { role: "db" })
      assert.strictEqual(fromEnv.retryJoin, true)

      const mixed = yield* resolveArgs(
        ["--name", "from-flag", "--probe-interval", "2s", "--join", "10.9.9.9:7946", "--tag", "role=web"],
        env
      )
      assert.strictEqual(mixed.nodeName, "from-flag")
      assert.strictEqual(Duration.toMillis(mixed.probeInterval), 2000)
      assert.strictEqual(Duration.toMillis(mixed.pingTimeout), 150)
      assert.deepStrictEqual(mixed.seedNodes, ["10.9.9.9:7946"])
      assert.deepStrictEqual(mixed.tags, { role: "web" })
      assert.strictEqual(mixed.retryJoin, true)
    })
  )

  it.effect("a flag hides a broken variable for the same field", () =>
    Effect.gen(function* () {
      const config = yield* resolveArgs(["--indirect-checks", "2"], { SHOAL_INDIRECT_CHECKS: "many" })
      assert.strictEqual(config.indirectChecks, 2)
    })
  )

  it.effect("rejections name what the user wrote: the flag or the variable", () =>
    Effect.gen(function* () {
      const byFlag = yield* failure(["--indirect-checks", "99"])
      assert.strictEqual(byFlag._tag, "InvalidConfiguration")
      assert.strictEqual(byFlag.field, "--indirect-checks")
      expect(byFlag.message).toContain("--indirect-checks")

      const byVariable = yield* failure([], { SHOAL_INDIRECT_CHECKS: "99" })
      assert.strictEqual(byVariable.field, "SHOAL_INDIRECT_CHECKS")

      const unparsable = yield* failure([], { SHOAL_PROBE_INTERVAL: "soon" })
      assert.strictEqual(unparsable.field, "SHOAL_PROBE_INTERVAL")

      // a check across two fields names the one it is about, as the user set it
      const setInEnv = yield* failure(["--probe-interval", "200ms"], { SHOAL_PING_TIMEOUT: "300ms" })
      assert.strictEqual(setInEnv.field, "SHOAL_PING_TIMEOUT")
      const setByFlag = yield* failure(["--ping-timeout", "300ms"], { SHOAL_PROBE_INTERVAL: "200ms" })
      assert.strictEqual(setByFlag.field, "--ping-timeout")

      assert.strictEqual((yield* failure(["--tag", "healthy=no"])).field, "--tag")
      assert.strictEqual((yield* failure(["--node-id", "not-a-uuid"])).field, "--node-id")
      assert.strictEqual((yield* failure(["--advertise", "10.0.0.1:0"])).field, "--advertise")
      assert.strictEqual((yield* failure(["--join", "10.0.0.1:0"])).field, "--join")
    })
  )
})
