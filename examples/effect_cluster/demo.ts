/**
 * `npm run demo:effect-cluster`: three effect/cluster runners on shoal's
 * membership, a client talking to four conversations, and PostgreSQL; the
 * runner hosting `conversation-0` is SIGKILLed mid-conversation. Prints how
 * long its conversations were unavailable and whether any acknowledged line
 * was lost, ends with one `SUMMARY {json}` line, and exits 0 only when they
 * came back from another runner with nothing lost.
 *
 * Environment: EFFECT_CLUSTER_HEALTH (shoal | ping-1s | ping-default, default
 * shoal), EFFECT_CLUSTER_FAULT (sigkill | sigstop, default sigkill),
 * EFFECT_CLUSTER_BASE_PORT (24000).
 */
import { runScenario } from "./scenario.ts"
import { HEALTH_MODES, type HealthMode } from "./settings.ts"

const health = (process.env.EFFECT_CLUSTER_HEALTH ?? "shoal") as HealthMode
const fault = process.env.EFFECT_CLUSTER_FAULT ?? "sigkill"
if (!HEALTH_MODES.includes(health)) throw new Error(`EFFECT_CLUSTER_HEALTH must be one of ${HEALTH_MODES.join(", ")}`)
if (fault !== "sigkill" && fault !== "sigstop") throw new Error("EFFECT_CLUSTER_FAULT must be sigkill or sigstop")

const log = (line: string) => console.log(`demo: ${line}`)
const result = await runScenario({
  health,
  fault,
  network: "loopback",
  basePort: Number(process.env.EFFECT_CLUSTER_BASE_PORT ?? 24_000),
  log
})
log(
  result.recovered
    ? `${result.moved.join(", ")} answered again from another runner ${result.unavailableMillis} ms after the ${fault}`
    : `${result.moved.join(", ")} did not come back`
)
log(
  result.lostMessages === 0
    ? `no acknowledged line lost (${result.acknowledged} acknowledged, all in the conversations' history)`
    : `LOST ${result.lostMessages} acknowledged line(s): ${JSON.stringify(result.lost.slice(0, 10))}`
)
const ok = result.recovered && result.lostMessages === 0
console.log(
  `SUMMARY ${JSON.stringify({
    ok,
    health: result.health,
    fault: result.fault,
    victim: result.victim,
    moved: result.moved,
    unavailableMillis: result.unavailableMillis ?? null,
    lostMessages: result.lostMessages,
    acknowledged: result.acknowledged,
    failedCalls: result.failedCalls
  })}`
)
process.exitCode = ok ? 0 : 1
