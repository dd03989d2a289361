/**
 * Hostile datagrams against real agents: three `shoal agent` processes on
 * 127.0.0.1, one of them the target of a stream of mutated packets — valid
 * shoal packets with bits flipped, truncated, extended, their counts and
 * lengths corrupted, random bytes, headers alone, replays, and (with a
 * keyring) packets sealed under a key the cluster does not hold. Reported per
 * mode (plaintext gossip, and a keyring): how many the target refused and
 * why, what the rest did (members it added), its RSS before, at the peak and
 * after, and whether any real member was suspected or failed meanwhile.
 *
 *   npm run bench:fuzz                               # 1,000,000 packets per mode
 *   npm run bench:fuzz -- --packets=200000 --rate=20000 --modes=keyring
 *
 * A benchmark: it prints figures and writes bench/results/fuzz.json; it
 * asserts nothing. It runs itself inside a network namespace of its own with
 * only `lo` (as root): a mutated packet can name any address, and an agent
 * that believes it would probe that address — there, nothing can leave the
 * machine. Every agent is stopped and the namespace deleted at the end, also
 * on failure.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import { randomBytes } from "node:crypto"
import * as Dgram from "node:dgram"
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join, resolve } from "node:path"
import { Result } from "effect"
import * as Codec from "../src/cluster/gossip/Codec.ts"
import { generateKey, Keyring, makeKey } from "../src/cluster/gossip/Keyring.ts"
import { Ack, NodeStateUpdate, Ping, PingReq } from "../src/cluster/gossip/Messages.ts"
import { sealFrame } from "../src/cluster/gossip/SecureTransport.ts"
import { Address, type NodeId } from "../src/cluster/Node.ts"
import { agentEnv } from "../test/fixtures/agent-env.ts"
import { describeMachine, revision } from "./machine.ts"
import { ensureTools, Netns } from "./membership/host.ts"

const root = resolve(dirname(new URL(import.meta.url).pathname), "..")
const node = join(root, "node_modules/.bin/node")
const argv = process.argv.slice(2)
const flag = (name: string, fallback: string) =>
  argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback
const packets = Number(flag("packets", "1000000"))
const rate = Number(flag("rate", "25000"))
const modes = flag("modes", "plaintext,keyring").split(",") as Array<"plaintext" | "keyring">
const outFile = flag("out", join(root, "bench/results/fuzz.json"))
const log = (line: string) => process.stdout.write(`${line}\n`)

interface Agent {
  readonly name: string
  readonly id: string
  readonly port: number
  readonly child: ChildProcess
  readonly lines: Array<Record<string, unknown>>
}

const uuid = () => {
  const b = randomBytes(16)
  b[6] = (b[6]! & 0x0f) | 0x40
  b[8] = (b[8]! & 0x3f) | 0x80
  const h = b.toString("hex")
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
}

const rssMiB = (pid: number): number => {
  const status = readFileSync(`/proc/${pid}/status`, "utf8")
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024
}

const startAgent = (name: string, port: number, seed: number | undefined, extra: ReadonlyArray<string>): Agent => {
  const id = uuid()
  const child = spawn(
    node,
    [
      join(root, "bin/shoal.js"),
      "agent",
      "--format",
      "json",
      "--name",
      name,
      "--node-id",
      id,
      "--bind",
      `127.0.0.1:${port}`,
      "--stats-interval",
      "1s",
      ...(seed === undefined ? [] : ["--join", `127.0.0.1:${seed}`]),
      ...extra
    ],
    // the admin interface on a random loopback port (three agents would fight over 7373)
    { stdio: ["ignore", "pipe", "pipe"], env: agentEnv }
  )
  const lines: Array<Record<string, unknown>> = []
  let buffer = ""
  child.stdout!.on("data", (chunk) => {
    buffer += chunk
    let nl = buffer.indexOf("\n")
    while (nl >= 0) {
      const line = buffer.slice(0, nl)
      buffer = buffer.slice(nl + 1)
      try {
        lines.push(JSON.parse(line))
      } catch {
        // not a JSON line
      }
      nl = buffer.indexOf("\n")
    }
  })
  child.stderr!.on("data", () => {})
  return { name, id, port, child, lines }
}

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms))

const waitFor = async (what: string, condition: () => boolean, deadlineMs: number) => {
  const started = Date.now()
  while (!condition()) {
    if (Date.now() - started > deadlineMs) throw new Error(`timed out after ${deadlineMs} ms: ${what}`)
    await sleep(50)
  }
}

/** Who `agent` currently holds in which state, from its event lines. */
const view = (agent: Agent): Map<string, string> => {
  const states = new Map<string, string>()
  for (const line of agent.lines) {
    if (typeof line.id === "string" && typeof line.state === "string" && line.event !== "Stats") {
      if (line.event === "NodeReaped") states.delete(line.id)
      else states.set(line.id, line.state)
    }
  }
  return states
}

const lastStats = (agent: Agent) => [...agent.lines].reverse().find((line) => line.event === "Stats")

/** Valid packets of every kind, about the real members and strangers, as the corpus to mutate. */
const corpus = (ids: ReadonlyArray<string>, label: string): Array<Uint8Array> => {
  const out: Array<Uint8Array> = []
  const stranger = uuid() as NodeId
  for (const id of [...ids, stranger] as Array<NodeId>) {
    out.push(
      Codec.encodePacket({ label }, { messages: [new Ping({ seq: 7, from: stranger, target: id })], updates: [] })
    )
    out.push(Codec.encodePacket({ label }, { messages: [new Ack({ seq: 7, from: id })], updates: [] }))
    out.push(
      Codec.encodePacket(
        { label },
        {
          messages: [
            new PingReq({
              seq: 9,
              requestor: stranger,
              target: id,
              targetAddress: new Address({ host: "127.0.0.1", port: 9 })
            })
          ],
          updates: []
        }
      )
    )
    for (const state of ["Alive", "Suspect", "Dead", "Left"] as const) {
      const update =
        state === "Alive"
          ? new NodeStateUpdate(
              {
                nodeId: uuid() as NodeId,
                state,
                incarnation: 1,
                name: "fake",
                // on this machine: an agent that believes the fake probes it, and nothing may leave 127/8
                gossipAddress: new Address({ host: "127.0.0.3", port: 9 }),
                tags: { role: "db" }
              },
              { disableChecks: true }
            )
          : new NodeStateUpdate({ nodeId: id, state, incarnation: 1, from: stranger }, { disableChecks: true })
      out.push(Codec.encodePacket({ label }, { messages: [], updates: [update] }))
    }
  }
  return out
}

/** The `i`-th hostile packet: a mutation of a corpus packet (or of a sealed one, or a foreign-key seal). */
const hostile = (
  i: number,
  base: ReadonlyArray<Uint8Array>,
  sealed: ReadonlyArray<Uint8Array>,
  foreign: Keyring | undefined
) => {
  const pick = (pool: ReadonlyArray<Uint8Array>) => pool[i % pool.length]!
  const from = sealed.length > 0 && i % 2 === 0 ? sealed : base
  const bytes = pick(from)
  switch (i % 9) {
    case 0: {
      const out = bytes.slice()
      out[(i * 7919) % out.length]! ^= 1 << (i % 8)
      return out
    }
    case 1: {
      const out = bytes.slice()
      for (let k = 0; k < 4; k++) out[(i * 31 + k * 97) % out.length]! ^= 0xff
      return out
    }
    case 2:
      return bytes.subarray(0, i % bytes.length)
    case 3:
      return Buffer.concat([bytes, randomBytes(i % 200)])
    case 4:
      return randomBytes(1 + (i % 1400))
    case 5:
      return bytes.subarray(0, Math.min(bytes.length, 5 + bytes[4]!))
    case 6: {
      // a header fine, then a count field claiming a huge array
      const out = bytes.slice()
      const at = Math.min(out.length - 1, 5 + out[4]! + 1)
      out[at] = 0xff
      return out
    }
    case 7:
      // a replay, byte for byte
      return bytes
    default:
      return foreign === undefined ? bytes.slice().reverse() : sealFrame(foreign, pick(base), Date.now())
  }
}

interface ModeResult {
  readonly mode: string
  readonly packets: number
  readonly seconds: number
  readonly refusedByEngine: number
  readonly refusedByKeyring: Record<string, number>
  readonly membersBefore: number
  readonly membersAfter: number
  readonly rssBeforeMiB: number
  readonly rssPeakMiB: number
  readonly rssAfterMiB: number
  readonly falseSuspicions: number
  readonly falseFailures: number
}

const runMode = async (mode: "plaintext" | "keyring"): Promise<ModeResult> => {
  const dir = mkdtempSync(join(tmpdir(), "shoal-fuzz-"))
  const agents: Array<Agent> = []
  const key = generateKey()
  const extra: Array<string> = []
  if (mode === "keyring") {
    writeFileSync(join(dir, "keyring"), `${key}\n`, { mode: 0o600 })
    extra.push("--keyring-file", join(dir, "keyring"))
  }
  const base = 20000 + Math.floor(Math.random() * 20000)
  try {
    for (let i = 0; i < 3; i++) agents.push(startAgent(`fuzz-${i}`, base + i, i === 0 ? undefined : base, extra))
    const ids = agents.map((a) => a.id)
    await waitFor(
      "all see all",
      () => agents.every((a) => ids.every((id) => id === a.id || view(a).get(id) === "Alive")),
      20_000
    )
    await sleep(2_000)
    const target = agents[1]!
    const membersBefore = view(target).size
    const rssBefore = rssMiB(target.child.pid!)
    const keyring = Result.getOrThrow(makeKey(key))
    const ring = new Keyring([keyring])
    const plain = corpus(ids, "shoal")
    // "captured" traffic: harmless packets sealed with the cluster's key (pings between real members),
    // delivered once before the fuzz as the real ones were; the fuzz replays and mutates them
    const sealed =
      mode === "keyring"
        ? ids.map((from, k) =>
            sealFrame(
              ring,
              Codec.encodePacket(
                { label: "shoal" },
                {
                  messages: [new Ping({ seq: 1000 + k, from: from as NodeId, target: target.id as NodeId })],
                  updates: []
                }
              ),
              Date.now()
            )
          )
        : []
    const foreign = mode === "keyring" ? new Keyring([Result.getOrThrow(makeKey(generateKey()))]) : undefined
    const eventsBefore = agents.map((a) => a.lines.length)
    const socket = Dgram.createSocket("udp4")
    await new Promise<void>((done) => socket.bind(0, "127.0.0.1", () => done()))
    for (const packet of sealed) socket.send(packet, target.port, "127.0.0.1")
    await sleep(200)
    let peak = rssBefore
    const started = Date.now()
    const batch = Math.max(1, Math.round(rate / 100))
    for (let sent = 0; sent < packets; ) {
      for (let k = 0; k < batch && sent < packets; k++, sent++) {
        socket.send(hostile(sent, plain, sealed, foreign), target.port, "127.0.0.1")
      }
      // pace to `rate`: each batch is a hundredth of a second's worth
      const due = started + (sent / rate) * 1000
      const wait = due - Date.now()
      if (wait > 0) await sleep(wait)
      if (sent % (batch * 50) === 0) peak = Math.max(peak, rssMiB(target.child.pid!))
    }
    const seconds = (Date.now() - started) / 1000
    socket.close()
    peak = Math.max(peak, rssMiB(target.child.pid!))
    // the stats line after the last packet, and time for anything lasting to show
    await sleep(15_000)
    const rssAfter = rssMiB(target.child.pid!)
    const stats = lastStats(target) as
      | { packetsRejected?: number; envelopeRejected?: Record<string, number> }
      | undefined
    let falseSuspicions = 0
    let falseFailures = 0
    for (const [index, agent] of agents.entries()) {
      for (const line of agent.lines.slice(eventsBefore[index])) {
        if (typeof line.id !== "string" || !ids.includes(line.id)) continue
        if (line.event === "NodeSuspected") falseSuspicions++
        if (line.event === "NodeFailed" || line.event === "NodeLeft") falseFailures++
      }
    }
    return {
      mode,
      packets,
      seconds,
      refusedByEngine: stats?.packetsRejected ?? 0,
      refusedByKeyring: stats?.envelopeRejected ?? {},
      membersBefore,
      membersAfter: view(target).size,
      rssBeforeMiB: rssBefore,
      rssPeakMiB: peak,
      rssAfterMiB: rssAfter,
      falseSuspicions,
      falseFailures
    }
  } finally {
    for (const agent of agents) agent.child.kill("SIGKILL")
    rmSync(dir, { recursive: true, force: true })
  }
}

const main = async () => {
  const commit = revision()
  const loadBefore = (await import("node:os")).loadavg()
  const results: Array<ModeResult> = []
  for (const mode of modes) {
    log(`${mode}: ${packets.toLocaleString("en-US")} hostile datagrams at ${rate.toLocaleString("en-US")}/s …`)
    const result = await runMode(mode)
    results.push(result)
    const keyring = Object.values(result.refusedByKeyring).reduce((a, b) => a + b, 0)
    log(
      `  ${result.seconds.toFixed(1)} s; refused by the engine ${result.refusedByEngine.toLocaleString("en-US")}, by the keyring ${keyring.toLocaleString("en-US")} ${JSON.stringify(result.refusedByKeyring)}`
    )
    log(
      `  members at the target ${result.membersBefore} → ${result.membersAfter}; RSS ${result.rssBeforeMiB.toFixed(1)} → peak ${result.rssPeakMiB.toFixed(1)} → after ${result.rssAfterMiB.toFixed(1)} MiB; false suspicions ${result.falseSuspicions}, false failures ${result.falseFailures}`
    )
  }
  mkdirSync(dirname(outFile), { recursive: true })
  writeFileSync(
    outFile,
    `${JSON.stringify({ benchmark: "fuzz", machine: describeMachine(loadBefore, commit), packets, rate, results }, null, 2)}\n`
  )
  log(`wrote ${outFile}`)
}

if (process.env.SHOAL_FUZZ_INSIDE === "1") {
  main().catch((error) => {
    process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`)
    process.exit(1)
  })
} else {
  ensureTools(
    log,
    [
      ["ip", "iproute2"],
      ["nft", "nftables"]
    ],
    "bench:fuzz"
  )
  const ns = Netns.create()
  let code: number | null = 1
  try {
    const [cmd, args] = ns.wrap(node, [new URL(import.meta.url).pathname, ...argv])
    code = spawnSync(cmd, args, { stdio: "inherit", env: { ...process.env, SHOAL_FUZZ_INSIDE: "1" } }).status
  } finally {
    ns.delete()
  }
  process.exit(code ?? 1)
}
