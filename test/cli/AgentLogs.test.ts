/**
 * `shoal agent --log-format json`: every line on stderr is one JSON object
 * with effect's level, and the keyring's keys never appear in them (nor in
 * `shoal info`).
 */
import { spawn } from "node:child_process"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect } from "effect"
import { callAgent } from "../../src/cli/AdminCall.ts"
import { generateKey } from "../../src/cluster/gossip/Keyring.ts"
import { agentEnv } from "../fixtures/agent-env.ts"
import { waitFor } from "../fixtures/live.ts"

const NODE = fileURLToPath(new URL("../../node_modules/.bin/node", import.meta.url))
const BIN = fileURLToPath(new URL("../../bin/shoal.js", import.meta.url))

describe("agent logs", () => {
  it.live("--log-format json: one JSON object per line with effect's levels, no key material", () =>
    Effect.gen(function* () {
      const dir = mkdtempSync(join(tmpdir(), "shoal-logs-"))
      const key = generateKey()
      writeFileSync(join(dir, "keyring"), `${key}\n`, { mode: 0o600 })
      const socket = join(dir, "admin", "agent.sock")
      const stderr: Array<string> = []
      const child = yield* Effect.acquireRelease(
        Effect.sync(() => {
          const child = spawn(
            NODE,
            [
              BIN,
              "agent",
              "--bind",
              "127.0.0.1:0",
              "--admin",
              socket,
              "--keyring-file",
              join(dir, "keyring"),
              "--log-format",
              "json",
              "--log-level",
              "debug"
            ],
            { stdio: ["ignore", "ignore", "pipe"], env: agentEnv }
          )
          child.stderr!.on("data", (chunk: Buffer) =>
            stderr.push(
              ...chunk
                .toString()
                .split("\n")
                .filter((l) => l !== "")
            )
          )
          return child
        }),
        (child) => Effect.sync(() => child.kill("SIGKILL"))
      )
      yield* waitFor(
        "the agent answers info",
        callAgent(socket, Duration.seconds(1), (client) => client.Info()).pipe(
          Effect.map((info) => {
            expect(JSON.stringify(info)).not.toContain(key)
            expect(info.config.keyring).toBe("<redacted: 1 keys>")
            expect(info.keyFingerprints).toHaveLength(1)
            return true
          }),
          Effect.orElseSucceed(() => false)
        ),
        20_000
      )
      const exited = new Promise((resolve) => child.once("exit", resolve))
      child.kill("SIGTERM")
      yield* Effect.promise(() => exited)
      expect(stderr.length).toBeGreaterThan(2)
      for (const line of stderr) {
        const entry = JSON.parse(line) as { level: string; message: unknown; timestamp: string }
        expect(["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"]).toContain(entry.level)
        expect(typeof entry.timestamp).toBe("string")
      }
      expect(stderr.join("\n")).not.toContain(key)
      expect(stderr.some((line) => line.includes("stopping: leaving the cluster"))).toBe(true)
    }).pipe(Effect.scoped)
  )
})
