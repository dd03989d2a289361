/**
 * The fault suite's quick profile: real `shoal agent` processes (the built
 * CLI), each in its own network namespace on a virtual bridge, under the
 * faults of DESIGN.md's fault model — partitions, a blackholed host, a
 * one-way cut, a flapping link, loss, SIGKILL, SIGSTOP/SIGCONT and
 * same-address restarts (bench/faults/ holds everything; bench:faults runs
 * the same scenarios at full length beside Serf).
 *
 * Asserted: the correctness checks of each run (the victim detected, no
 * false failure, one consistent view within a generous bound after the
 * heal, and the scenario's own, such as no ghost after a restart). Printed,
 * not asserted: detection and heal times beside the targets.
 *
 * Needs root (CI runs as root): without namespaces every test fails with a
 * message that says so; nothing is skipped.
 */
import { mkdirSync, writeFileSync } from "node:fs"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { now } from "../../bench/faults/agent-life.ts"
import { prepareHost } from "../../bench/faults/host-setup.ts"
import { quickProfile } from "../../bench/faults/profiles.ts"
import { failureDetails, relativeTargets, runsTable } from "../../bench/faults/report.ts"
import { passed, runScenario, type ScenarioResult } from "../../bench/faults/runner.ts"
import { shoal } from "../../bench/faults/systems.ts"
import { leftoverNamespaces } from "../../bench/faults/topology.ts"

const results: Array<ScenarioResult> = []
const began = now()
const logDir = `.tmp/faults-quick-logs/${new Date().toISOString().replace(/[:.]/g, "-")}`
let setupError: string | undefined

beforeAll(() => {
  try {
    prepareHost((line) => console.log(line), { serf: false })
  } catch (error) {
    setupError = error instanceof Error ? error.message : String(error)
  }
}, 900_000)

afterAll(() => {
  const wallSeconds = Math.round((now() - began) / 1000)
  const ordered = quickProfile.scenarios.flatMap((s) => results.filter((r) => r.scenario === s.id))
  const text = [
    `Fault suite, quick profile: shoal, N = ${quickProfile.sizes.join(", ")}, one repetition, ` +
      `${quickProfile.parallel} scenarios at a time, ${wallSeconds} s wall time (agent logs in ${logDir})`,
    "",
    runsTable(ordered),
    "",
    relativeTargets(ordered),
    "",
    failureDetails(ordered)
  ].join("\n")
  console.log(text)
  mkdirSync(".tmp", { recursive: true })
  writeFileSync(".tmp/faults-quick.md", `${text}\n`)
  writeFileSync(".tmp/faults-quick.json", `${JSON.stringify({ wallSeconds, results: ordered }, null, 2)}\n`)
  expect(leftoverNamespaces(), "every namespace of the suite is deleted").toEqual([])
})

describe.concurrent("fault suite, quick profile (N = 6, real agents in network namespaces)", () => {
  for (const scenario of quickProfile.scenarios) {
    it(`${scenario.id}: ${scenario.title}`, async () => {
      if (setupError !== undefined) throw new Error(setupError)
      const result = await runScenario(shoal, scenario, {
        n: quickProfile.sizes[0]!,
        rep: 1,
        logDir,
        settleMs: quickProfile.settleMs,
        aftermathMs: quickProfile.aftermathMs,
        formationBoundMs: quickProfile.formationBoundMs,
        log: () => {}
      })
      results.push(result)
      const failed = [...result.errors, ...result.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`)]
      expect(failed, `${scenario.id} (figures: ${runsTable([result]).split("\n")[2]})`).toEqual([])
      expect(passed(result)).toBe(true)
    })
  }
})
