/**
 * On a network that drops packets — a cut link, a firewall, a host that lost
 * power — a TCP connect does not fail: its SYNs go unanswered and the kernel
 * retries for about two minutes. Every deadline shoal sets must end such a
 * connect, and a probe round must never wait on one. Each test runs a child
 * process in its own network namespace where nftables drops the packets
 * (`blackhole-child.ts`); the bounds below are how long the child may take
 * before the test fails, far below the kernel's two minutes.
 */
import { afterEach, assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { create, type Namespace } from "../fixtures/netns.ts"

const child = new URL("./blackhole-child.ts", import.meta.url).pathname

let namespace: Namespace | undefined
afterEach(() => {
  namespace?.delete()
  namespace = undefined
})

const runChild = (ns: Namespace, args: ReadonlyArray<string>, timeoutMs: number) =>
  Effect.promise(() => ns.node([child, ...args], timeoutMs)).pipe(
    Effect.map(({ code, stdout, stderr }) => {
      assert.strictEqual(code, 0, `child exited ${code} (killed after ${timeoutMs} ms if null): ${stderr}`)
      return JSON.parse(stdout.trim().split("\n").at(-1)!) as Record<string, unknown>
    })
  )

describe("a network that drops packets", () => {
  it.live(
    "an exchange whose SYNs are dropped ends at its deadline",
    () =>
      Effect.gen(function* () {
        const ns = create("shoal-bh")
        namespace = ns
        ns.nft("table inet t {\n chain out {\n  type filter hook output priority 0;\n  tcp dport 9 drop\n }\n}\n")
        const seen = yield* runChild(ns, ["exchange", "9"], 20_000)
        assert.isTrue(seen.failed)
        // the 300 ms deadline ended it, not the kernel giving up on the SYNs (~2 minutes, past the bound)
        assert.match(String(seen.message), /timed out/)
      }),
    30_000
  )

  it.live(
    "a blackholed member is declared failed: no probe round waits on its hanging connects",
    () =>
      Effect.gen(function* () {
        const ns = create("shoal-bh")
        namespace = ns
        const seen = yield* runChild(ns, ["cluster"], 40_000)
        // Fast timings: a probe every 200 ms, suspicion 2 × 200 ms × …, so seconds. A probe round
        // stuck on the TCP fallback's connect never ends, so it never suspects anyone.
        assert.isNotNull(
          seen.failedAfterMs,
          `never declared failed; ${seen.probes} probe rounds in ${seen.elapsedMs} ms`
        )
      }),
    60_000
  )
})
