/**
 * A minimal agent around the `happn-swim` library (SWIM in plain JavaScript),
 * so the membership benchmark can drive it like `shoal agent` and `serf agent`:
 *
 *   node bench/membership/happn-agent.ts <port> [seed host:port]
 *
 * It prints one JSON line per membership change (`Alive`, `Suspect`,
 * `Faulty`), per failed probe of its own (`ProbeFailed`) and per refutation
 * (`Refuted`), and `Started` once bootstrapped. On SIGINT/SIGTERM it calls
 * `leave()`, which in happn-swim only closes the socket (there is no leave
 * message), and exits.
 *
 * Timing: probe every 1 s, 500 ms for the direct ping and 500 ms for the
 * indirect ones, 3 helpers: as close to memberlist's LAN profile as the
 * library's options go. Its suspicion timeout cannot be set: the constructor
 * passes `this.suspectTimeout` (never assigned) instead of the option, so the
 * library default of 10 ms applies. Raising it by hand after construction does
 * not help either: every new failed probe of the same member restarts the
 * timer, so in small clusters a dead member would never be declared faulty.
 */
import { createRequire } from "node:module"

interface HappnMember {
  readonly host: string
  readonly state: number
  readonly incarnation: number
}

interface HappnSwim {
  bootstrap(hosts: ReadonlyArray<string>, callback: (error?: Error) => void): void
  leave(): void
  on(event: "update", listener: (member: HappnMember) => void): void
  readonly failureDetector: { on(event: "suspect", listener: (member: HappnMember) => void): void }
}

type HappnSwimConstructor = new (options: Record<string, unknown>) => HappnSwim

const Swim = createRequire(import.meta.url)("happn-swim") as HappnSwimConstructor

const port = Number(process.argv[2])
const seeds = process.argv.slice(3)
const self = `127.0.0.1:${port}`
const STATES = ["Alive", "Suspect", "Faulty"] as const

const print = (event: string, host?: string) =>
  process.stdout.write(`${JSON.stringify({ ts: new Date().toISOString(), event, host })}\n`)

const swim = new Swim({
  local: { host: self },
  interval: 1000,
  pingTimeout: 500,
  pingReqTimeout: 500,
  pingReqGroupSize: 3,
  joinTimeout: 300
})

const onMember = (member: HappnMember) => {
  // A change about ourselves is a refutation: we raised our incarnation.
  if (member.host === self) print("Refuted")
  else print(STATES[member.state] ?? "Unknown", member.host)
}
// Every transition is an "update"; "change" repeats some of them (new and faulty members).
swim.on("update", onMember)
swim.failureDetector.on("suspect", (member) => print("ProbeFailed", member.host))

swim.bootstrap(seeds, (error) => {
  if (error !== undefined && error !== null) {
    process.stderr.write(`happn-agent: ${error.message}\n`)
    process.exit(1)
  }
  print("Started", self)
})

const stop = () => {
  swim.leave()
  process.exit(0)
}
process.on("SIGINT", stop)
process.on("SIGTERM", stop)
