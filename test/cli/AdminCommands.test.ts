/**
 * The operator commands in-process against a real cluster member serving its
 * admin interface on a Unix socket: `members --format json` is exactly the
 * library's `members`, the other commands do what they say, and the exit codes
 * are the documented ones.
 */
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { NodeServices } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Exit, Layer, Schema, Scope } from "effect"
import { TestConsole } from "effect/testing"
import { AdminServer } from "../../src/admin/AdminServer.ts"
import { ExitCode, exitCodeOf, run } from "../../src/cli/Shoal.ts"
import { Cluster } from "../../src/cluster/Cluster.ts"
import { ClusterNode, formatAddress } from "../../src/cluster/Node.ts"
import { fastCluster, waitFor } from "../fixtures/live.ts"

/** Runs `shoal <args>` in-process with a fresh test console; its exit code and output. */
const shoal = (args: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const exit = yield* run("9.9.9", args).pipe(Effect.provide(NodeServices.layer), Effect.exit)
    return {
      code: exitCodeOf(exit),
      stdout: (yield* TestConsole.logLines).join("\n"),
      stderr: (yield* TestConsole.errorLines).join("\n")
    }
  }).pipe(Effect.provide(TestConsole.layer))

const encodeNode = Schema.encodeSync(ClusterNode)

const agent = (socket: string, input: Parameters<typeof Cluster.layer>[0]) =>
  Effect.map(
    Layer.build(
      AdminServer.layer({ address: socket, version: "9.9.9" }).pipe(
        Layer.provideMerge(Cluster.layer({ ...fastCluster, ...(input as object) }))
      )
    ),
    (context) => Context.get(context, Cluster)
  )

describe("operator commands", () => {
  it.live("members, tags, info, join, force-leave and keygen against a running member", () =>
    Effect.gen(function* () {
      const dir = mkdtempSync(join(tmpdir(), "shoal-cli-"))
      const socket = join(dir, "a.sock")
      const a = yield* agent(socket, { nodeName: "a", tags: { role: "web" } })
      const seed = formatAddress((yield* a.localNode).gossipAddress)
      const b = yield* agent(join(dir, "b.sock"), { nodeName: "b", seedNodes: [seed], tags: { role: "db" } })
      yield* waitFor(
        "a sees b",
        Effect.map(a.aliveMembers, (m) => m.length === 2)
      )

      const json = yield* shoal(["members", "--admin", socket, "--format", "json"])
      expect(json.code).toBe(ExitCode.ok)
      expect(JSON.parse(json.stdout)).toEqual((yield* a.members).map((node) => encodeNode(node)))

      const table = yield* shoal(["members", "--admin", socket, "--tag", "role=db"])
      expect(table.stdout.split("\n")).toHaveLength(2)
      expect(table.stdout).toContain("b")
      const detailed = yield* shoal([
        "members",
        "--admin",
        socket,
        "--detailed",
        "--state",
        "alive",
        "--format",
        "json"
      ])
      const rows = JSON.parse(detailed.stdout) as Array<{ name: string; phi: number | null; lastHeard: string | null }>
      expect(rows.map((r) => r.name).sort()).toEqual(["a", "b"])
      expect(rows.find((r) => r.name === "a")?.phi).toBeNull()

      const set = yield* shoal(["tags", "set", "--admin", socket, "zone=z1", "--format", "json"])
      expect(JSON.parse(set.stdout).tags).toEqual({ healthy: "true", role: "web", zone: "z1" })
      const deleted = yield* shoal(["tags", "delete", "--admin", socket, "role", "--format", "json"])
      expect(JSON.parse(deleted.stdout).tags).toEqual({ healthy: "true", zone: "z1" })
      expect((yield* a.localNode).tags).toEqual({ healthy: "true", zone: "z1" })

      const info = yield* shoal(["info", "--admin", socket, "--format", "json"])
      const parsed = JSON.parse(info.stdout)
      expect(parsed.version).toBe("9.9.9")
      expect(parsed.members).toEqual({ total: 2, alive: 2, suspect: 0, dead: 0, left: 0 })
      expect(parsed.config.nodeName).toBe("a")
      expect(info.stdout).not.toMatch(/keyring":"[A-Za-z0-9+/]{40,}/)

      const other = formatAddress((yield* b.localNode).gossipAddress)
      const joined = yield* shoal(["join", "--admin", socket, other, "--format", "json"])
      expect(joined.code).toBe(ExitCode.ok)
      expect(JSON.parse(joined.stdout)).toEqual({ joined: 1, of: 1 })

      const refused = yield* shoal(["force-leave", "--admin", socket, "b"])
      expect(refused.code).toBe(ExitCode.failure)
      expect(refused.stderr).toContain("not failed")

      const noKeyring = yield* shoal(["keys", "list", "--admin", socket])
      expect(noKeyring.code).toBe(ExitCode.failure)

      const key = yield* shoal(["keygen"])
      expect(Buffer.from(key.stdout.trim(), "base64")).toHaveLength(32)
    }).pipe(Effect.scoped)
  )

  it.live("reachability: every member direct, then a crashed one unreachable with exit 1", () =>
    Effect.gen(function* () {
      const dir = mkdtempSync(join(tmpdir(), "shoal-cli-"))
      const socket = join(dir, "a.sock")
      const a = yield* agent(socket, { nodeName: "a" })
      const seed = formatAddress((yield* a.localNode).gossipAddress)
      yield* agent(join(dir, "b.sock"), { nodeName: "b", seedNodes: [seed] })
      // c runs in a scope of its own, so it can stop without a word (no leave): to a it has crashed
      const cScope = yield* Scope.make()
      yield* Layer.buildWithScope(
        Cluster.layer({ ...fastCluster, nodeName: "c", seedNodes: [seed] }, { leaveOnClose: false }),
        cScope
      )
      yield* waitFor(
        "a sees b and c",
        Effect.map(a.aliveMembers, (m) => m.length === 3)
      )

      const all = yield* shoal(["reachability", "--admin", socket, "--format", "json"])
      expect(all.code).toBe(ExitCode.ok)
      const report = JSON.parse(all.stdout) as {
        members: Array<{ name: string; outcome: string; rtt: number | null }>
        answered: number
        unreachable: number
      }
      expect(report.members.map((m) => [m.name, m.outcome]).sort()).toEqual([
        ["b", "direct"],
        ["c", "direct"]
      ])
      expect(report).toMatchObject({ answered: 2, unreachable: 0 })
      for (const m of report.members) expect(m.rtt).toBeTypeOf("number")

      yield* Scope.close(cScope, Exit.void)
      const started = Date.now()
      const missing = yield* shoal(["reachability", "--admin", socket])
      expect(missing.code).toBe(ExitCode.failure)
      expect(missing.stdout).toMatch(/^b\s.*direct/m)
      expect(missing.stdout).toMatch(/^c\s.*unreachable/m)
      expect(missing.stdout).toContain("1 of 2 answered")
      expect(missing.stderr).toContain("did not answer: c")
      // bounded by a probe's budget (200 ms here, stretched by the health score), not the 5 s --timeout
      expect(Date.now() - started).toBeLessThan(4000)
    }).pipe(Effect.scoped)
  )

  it.live("exit 3 when no agent answers at --admin, and 2 on a usage error", () =>
    Effect.gen(function* () {
      const dir = mkdtempSync(join(tmpdir(), "shoal-cli-"))
      const none = yield* shoal(["members", "--admin", join(dir, "nobody.sock")])
      expect(none.code).toBe(ExitCode.unreachable)
      expect(none.stderr).toContain("cannot reach the agent")
      const far = yield* shoal(["members", "--admin", "10.0.0.1:7373"])
      expect(far.code).toBe(ExitCode.failure)
      const usage = yield* shoal(["members", "--state", "sleepy"])
      expect(usage.code).toBe(ExitCode.usage)
    })
  )
})
