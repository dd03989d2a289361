/**
 * End to end, with real processes: PostgreSQL (Debian's server binaries,
 * installed by .ci/run), three effect/cluster runners on shoal's membership
 * and a client, on 127.0.0.1 — the example's scenario. The runner hosting
 * the client's conversation is SIGKILLed (and, in the second case, SIGSTOPped
 * and later continued); its conversations must answer again from another
 * runner and no acknowledged line may be missing from their history. How
 * fast is the benchmark's business (bench/effect-cluster.ts), not this test's.
 */
import { describe, expect, it } from "vitest"
import { runScenario } from "../../examples/effect_cluster/scenario.ts"

const log = (line: string) => process.stderr.write(`[effect-cluster e2e] ${line}\n`)

describe("effect/cluster failover on shoal, with PostgreSQL", () => {
  it("a SIGKILLed runner's conversations move to another runner with nothing lost", async () => {
    const result = await runScenario({ health: "shoal", fault: "sigkill", network: "loopback", basePort: 25_100, log })
    expect(result.moved).toContain("conversation-0")
    expect(result.recovered).toBe(true)
    expect(result.acknowledged).toBeGreaterThan(0)
    expect(result.lost).toEqual([])
  }, 240_000)

  it("a SIGSTOPped runner's conversations move, and nothing is lost once it is continued", async () => {
    const result = await runScenario({ health: "shoal", fault: "sigstop", network: "loopback", basePort: 25_200, log })
    expect(result.recovered).toBe(true)
    expect(result.lost).toEqual([])
  }, 240_000)
})
