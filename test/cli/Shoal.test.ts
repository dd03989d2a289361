import { NodeServices } from "@effect/platform-node"
import { assert, describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit } from "effect"
import { CliError } from "effect/cli"
import { TestConsole } from "effect/testing"
import { describeFailure, ExitCode, exitCodeOf, run } from "../../src/cli/Shoal.ts"
import { InvalidConfiguration, JoinFailed, NetworkError } from "../../src/cluster/Errors.ts"

/** Runs `shoal <args>` in-process; returns the exit code it would give and what it printed. */
const shoal = (args: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const exit = yield* run("9.9.9", args).pipe(Effect.provide(NodeServices.layer), Effect.exit)
    return {
      code: exitCodeOf(exit),
      stdout: (yield* TestConsole.logLines).join("\n"),
      stderr: (yield* TestConsole.errorLines).join("\n")
    }
  })

describe("exit codes", () => {
  it("0 on success and on interruption (a signal, after the graceful leave)", () => {
    assert.strictEqual(exitCodeOf(Exit.void), ExitCode.ok)
    assert.strictEqual(exitCodeOf(Exit.failCause(Cause.interrupt(1))), 0)
  })

  it("1 on a startup or runtime failure, defects included", () => {
    assert.strictEqual(exitCodeOf(Exit.fail(new InvalidConfiguration({ field: "--bind", reason: "x" }))), 1)
    assert.strictEqual(exitCodeOf(Exit.fail(new JoinFailed({ seeds: ["a:1"], reason: "x" }))), 1)
    assert.strictEqual(exitCodeOf(Exit.die(new Error("boom"))), ExitCode.failure)
  })

  it("2 on bad command-line usage", () => {
    const usage = new CliError.ShowHelp({
      commandPath: ["shoal"],
      errors: [new CliError.UnrecognizedOption({ option: "--x", command: ["shoal"], suggestions: [] })]
    })
    assert.strictEqual(exitCodeOf(Exit.fail(usage)), ExitCode.usage)
  })
})

describe("shoal (in-process)", () => {
  it.effect("--help prints the help on stdout and exits 0", () =>
    Effect.gen(function* () {
      const { code, stdout, stderr } = yield* shoal(["agent", "--help"])
      assert.strictEqual(code, 0)
      expect(stdout).toContain("--probe-interval")
      expect(stdout).toContain("SHOAL_PROBE_INTERVAL")
      assert.strictEqual(stderr, "")
    })
  )

  it.effect("--version prints the version", () =>
    Effect.gen(function* () {
      const { code, stdout } = yield* shoal(["--version"])
      assert.strictEqual(code, 0)
      expect(stdout).toContain("9.9.9")
    })
  )

  it.effect("a usage error goes to stderr only, with a pointer to --help, and exits 2", () =>
    Effect.gen(function* () {
      const { code, stdout, stderr } = yield* shoal(["agent", "--bogus"])
      assert.strictEqual(code, 2)
      assert.strictEqual(stdout, "")
      expect(stderr).toContain("--bogus")
      expect(stderr).toContain('Run "shoal agent --help" for usage.')
    })
  )

  it.effect("no subcommand shows the help on stderr and exits 2", () =>
    Effect.gen(function* () {
      const { code, stdout, stderr } = yield* shoal([])
      assert.strictEqual(code, 2)
      assert.strictEqual(stdout, "")
      expect(stderr).toContain("agent")
    })
  )

  it.effect("a configuration error is one line naming the flag, before any socket opens, and exits 1", () =>
    Effect.gen(function* () {
      const { code, stdout, stderr } = yield* shoal(["agent", "--bind", "127.0.0.1:0", "--indirect-checks", "99"])
      assert.strictEqual(code, 1)
      assert.strictEqual(stdout, "")
      assert.strictEqual(stderr, "shoal: invalid configuration for --indirect-checks: must be an integer in 0..16")
    })
  )
})

describe("describeFailure", () => {
  it("adds the system error code buried in the causes when the message lacks it", () => {
    const cause = { _tag: "DatagramSocketError", reason: { kind: "AddressInUse", cause: { code: "EADDRINUSE" } } }
    const error = new NetworkError({ message: "cannot bind UDP on 127.0.0.1:7946: ", cause })
    assert.strictEqual(describeFailure(error), "cannot bind UDP on 127.0.0.1:7946: EADDRINUSE")
  })

  it("leaves a message that already names the code alone", () => {
    const error = new NetworkError({
      message: "cannot listen on TCP 127.0.0.1:7946: EADDRINUSE",
      cause: { code: "EADDRINUSE" }
    })
    assert.strictEqual(describeFailure(error), "cannot listen on TCP 127.0.0.1:7946: EADDRINUSE")
    assert.strictEqual(describeFailure(new Error("plain")), "plain")
  })
})
