/**
 * `shoal agent` as a real process: the binary the package ships
 * (`bin/shoal.js` on the project's Node 24), real UDP/TCP on 127.0.0.1,
 * ports chosen by the OS (`--bind 127.0.0.1:0`, the address read back from the
 * `Started` line). Every child is SIGKILLed by a finalizer if still running.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as Dgram from "node:dgram"
import * as Net from "node:net"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import { assert, describe, expect, it } from "@effect/vitest"
import { type Duration, Effect } from "effect"
import { agentEnv } from "../fixtures/agent-env.ts"

const NODE = fileURLToPath(new URL("../../node_modules/.bin/node", import.meta.url))
const BIN = fileURLToPath(new URL("../../bin/shoal.js", import.meta.url))

/** Short timings so a failure is detected in well under a second on loopback. */
const FAST = [
  "--probe-interval",
  "200ms",
  "--ping-timeout",
  "100ms",
  "--suspicion-mult",
  "2",
  "--gossip-interval",
  "50ms"
]

interface Line {
  readonly event: string
  readonly id?: string
  readonly name?: string
  readonly state?: string
  readonly address?: string
  readonly [key: string]: unknown
}

interface Agent {
  readonly label: string
  readonly child: ChildProcess
  readonly lines: Array<Line>
  readonly stdout: Array<string>
  readonly stderr: Array<string>
  readonly exit: Promise<number | null>
  /** Called on every new line and on exit. */
  readonly listeners: Set<() => void>
  exited: boolean
}

/** Spawns `shoal <args>`; killed with SIGKILL when the test's scope closes. */
const start = (label: string, args: ReadonlyArray<string>) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const child = spawn(NODE, [BIN, ...args], { stdio: ["ignore", "pipe", "pipe"], env: agentEnv })
      const agent: Agent = {
        label,
        child,
        lines: [],
        stdout: [],
        stderr: [],
        listeners: new Set(),
        exited: false,
        exit: new Promise((resolve) => child.on("exit", (code) => resolve(code)))
      }
      const notify = () => {
        for (const listener of [...agent.listeners]) listener()
      }
      createInterface({ input: child.stdout! }).on("line", (text) => {
        agent.stdout.push(text)
        try {
          agent.lines.push(JSON.parse(text) as Line)
        } catch {
          // not JSON (human format): kept in stdout only
        }
        notify()
      })
      createInterface({ input: child.stderr! }).on("line", (text) => agent.stderr.push(text))
      void agent.exit.then(() => {
        agent.exited = true
        notify()
      })
      return agent
    }),
    (agent) =>
      agent.exited
        ? Effect.void
        : Effect.promise(() => {
            agent.child.kill("SIGKILL")
            return agent.exit
          })
  )

const transcript = (agent: Agent) =>
  `--- ${agent.label} stdout:\n${agent.stdout.join("\n")}\n--- ${agent.label} stderr:\n${agent.stderr.join("\n")}`

/** Waits until `condition` holds over the agent's output; dies with its transcript after `limit`. */
const waitUntil = (
  agent: Agent,
  what: string,
  condition: (lines: ReadonlyArray<Line>) => boolean,
  limit: Duration.Input
) =>
  Effect.callback<void>((resume) => {
    const check = () => {
      if (condition(agent.lines)) {
        agent.listeners.delete(check)
        resume(Effect.void)
      } else if (agent.exited) {
        agent.listeners.delete(check)
        resume(Effect.die(new Error(`${agent.label} exited before: ${what}\n${transcript(agent)}`)))
      }
    }
    agent.listeners.add(check)
    check()
    return Effect.sync(() => agent.listeners.delete(check))
  }).pipe(
    Effect.timeoutOrElse({
      duration: limit,
      orElse: () => Effect.die(new Error(`timed out after ${String(limit)}: ${what}\n${transcript(agent)}`))
    })
  )

/** The exit code, or a death with the transcript if it takes longer than `limit`. */
const exitCode = (agent: Agent, limit: Duration.Input) =>
  Effect.promise(() => agent.exit).pipe(
    Effect.timeoutOrElse({
      duration: limit,
      orElse: () => Effect.die(new Error(`${agent.label} did not exit\n${transcript(agent)}`))
    })
  )

/** The `Started` line: this node's id and the address the others join through. */
const started = (agent: Agent) =>
  waitUntil(agent, `${agent.label} started`, (lines) => lines.some((l) => l.event === "Started"), "10 seconds").pipe(
    Effect.map(() => agent.lines.find((l) => l.event === "Started")!)
  )

/** What `agent` last printed about member `id` (from the snapshot or an event). */
const lastStateOf = (lines: ReadonlyArray<Line>, id: string) =>
  lines.filter((l) => l.id === id && l.event !== "Started").at(-1)?.state

const sees = (agent: Agent, id: string, state: string, limit: Duration.Input) =>
  waitUntil(agent, `${agent.label} sees ${id} ${state}`, (lines) => lastStateOf(lines, id) === state, limit)

const freePort = (kind: "udp" | "tcp") =>
  Effect.promise<number>(
    () =>
      new Promise((resolve) => {
        if (kind === "udp") {
          const socket = Dgram.createSocket("udp4")
          socket.bind(0, "127.0.0.1", () => {
            const { port } = socket.address()
            socket.close(() => resolve(port))
          })
        } else {
          const server = Net.createServer()
          server.listen(0, "127.0.0.1", () => {
            const { port } = server.address() as Net.AddressInfo
            server.close(() => resolve(port))
          })
        }
      })
  )

describe("shoal agent (child processes on 127.0.0.1)", () => {
  it.live(
    "three agents see each other; SIGTERM leaves gracefully (exit 0, NodeLeft), SIGKILL is detected (NodeFailed)",
    () =>
      Effect.gen(function* () {
        const json = ["agent", "--format", "json", "--bind", "127.0.0.1:0", ...FAST]
        const a = yield* start("a", [...json, "--name", "a"])
        const seed = yield* started(a)
        assert.strictEqual(seed.name, "a")
        assert.strictEqual(seed.state, "Alive")
        assert.match(seed.address!, /^127\.0\.0\.1:\d+$/)
        assert.notStrictEqual(seed.address, "127.0.0.1:0")

        const b = yield* start("b", [...json, "--name", "b", "--join", seed.address!, "--tag", "role=web"])
        const c = yield* start("c", [...json, "--name", "c", "--join", seed.address!])
        const [sb, sc] = yield* Effect.all([started(b), started(c)], { concurrency: "unbounded" })
        const ids = { a: seed.id!, b: sb.id!, c: sc.id! }

        // everyone sees everyone else alive
        yield* Effect.all(
          [
            sees(a, ids.b, "Alive", "10 seconds"),
            sees(a, ids.c, "Alive", "10 seconds"),
            sees(b, ids.a, "Alive", "10 seconds"),
            sees(b, ids.c, "Alive", "10 seconds"),
            sees(c, ids.a, "Alive", "10 seconds"),
            sees(c, ids.b, "Alive", "10 seconds")
          ],
          { concurrency: "unbounded" }
        )
        const bAtA = a.lines.find((l) => l.id === ids.b)!
        assert.deepStrictEqual(bAtA.tags, { healthy: "true", role: "web" })
        assert.strictEqual(bAtA.address, sb.address)
        for (const line of a.lines) assert.match(String(line.ts), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)

        // SIGTERM: b leaves gracefully and exits 0; the others print NodeLeft
        b.child.kill("SIGTERM")
        assert.strictEqual(yield* exitCode(b, "10 seconds"), 0)
        yield* Effect.all([sees(a, ids.b, "Left", "5 seconds"), sees(c, ids.b, "Left", "5 seconds")], {
          concurrency: "unbounded"
        })
        assert.isTrue(a.lines.some((l) => l.event === "NodeLeft" && l.id === ids.b))
        assert.isFalse(a.lines.some((l) => l.event === "NodeFailed" && l.id === ids.b))

        // SIGKILL: c cannot say goodbye; a detects the failure
        c.child.kill("SIGKILL")
        yield* sees(a, ids.c, "Dead", "8 seconds")
        assert.isTrue(a.lines.some((l) => l.event === "NodeFailed" && l.id === ids.c))

        // SIGINT works like SIGTERM
        a.child.kill("SIGINT")
        assert.strictEqual(yield* exitCode(a, "10 seconds"), 0)
        expect(a.stderr.join("\n")).toContain("leaving the cluster")
      }),
    30_000
  )

  it.live(
    "startup failures exit 1 with one line on stderr; bad usage exits 2",
    () =>
      Effect.gen(function* () {
        // a port another socket holds
        const holder = Dgram.createSocket("udp4")
        const held = yield* Effect.promise<number>(
          () => new Promise((resolve) => holder.bind(0, "127.0.0.1", () => resolve(holder.address().port)))
        )
        yield* Effect.addFinalizer(() => Effect.sync(() => holder.close()))
        const closed = yield* freePort("tcp")

        const [inUse, badConfig, badFlag, joinFailed] = yield* Effect.all(
          [
            start("in-use", ["agent", "--bind", `127.0.0.1:${held}`]),
            start("bad-config", ["agent", "--bind", "127.0.0.1:0", "--indirect-checks", "99"]),
            start("bad-flag", ["agent", "--probe-interval", "soon"]),
            start("join-failed", [
              "agent",
              "--bind",
              "127.0.0.1:0",
              "--join",
              `127.0.0.1:${closed}`,
              "--join-timeout",
              "1s"
            ])
          ],
          { concurrency: "unbounded" }
        )
        const codes = yield* Effect.all(
          [inUse, badConfig, badFlag, joinFailed].map((p) => exitCode(p, "15 seconds")),
          {
            concurrency: "unbounded"
          }
        )
        assert.deepStrictEqual(codes, [1, 1, 2, 1])

        expect(inUse.stderr.join("\n")).toContain("EADDRINUSE")
        expect(badConfig.stderr.join("\n")).toContain("invalid configuration for --indirect-checks")
        expect(badFlag.stderr.join("\n")).toContain("--probe-interval")
        expect(joinFailed.stderr.join("\n")).toContain("could not join")
        for (const p of [inUse, badConfig, badFlag, joinFailed]) assert.deepStrictEqual(p.stdout, [], p.label)
      }),
    30_000
  )
})
