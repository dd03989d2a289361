/**
 * What the simulation's figures are compared with: the textbook expectations
 * for epidemic dissemination, for SWIM's crash detection with Lifeguard's
 * suspicion timeout, and for a probe failing on a lossy network — plus a
 * least-squares fit of `a + b·log10 N` to the measured points.
 *
 * These are models, not bounds: the engine also piggybacks updates on probes
 * and acks (faster than gossip alone) and stops retransmitting an update after
 * `retransmitMult × ⌈log10(N + 1)⌉` sends (which can leave a straggler to the
 * next push-pull).
 */

/** The timings the models need, in milliseconds (the engine's defaults unless a run changed them). */
export interface Timings {
  readonly probeInterval: number
  readonly gossipInterval: number
  readonly gossipNodes: number
  readonly indirectChecks: number
  readonly suspicionMult: number
}

export const defaultTimings: Timings = {
  probeInterval: 1000,
  gossipInterval: 200,
  gossipNodes: 3,
  indirectChecks: 3,
  suspicionMult: 4
}

/**
 * Rounds until a rumour pushed to `fanout` random members per round by every
 * member that has it reaches all `n` (Frieze & Grimmett; Pittel for fanout 1):
 * `log_{fanout+1} n + ln n / fanout`. The first term is the exponential
 * spread, the second the tail of members not yet picked by anyone.
 */
export const disseminationRounds = (n: number, fanout: number): number =>
  n <= 1 ? 0 : Math.log(n) / Math.log(fanout + 1) + Math.log(n) / fanout

/** {@link disseminationRounds} times the gossip interval. */
export const disseminationMillis = (n: number, t: Timings = defaultTimings): number =>
  disseminationRounds(n, t.gossipNodes) * t.gossipInterval

/**
 * When the first member declares a crashed one dead: on average half a probe
 * interval until some member's probe picks it (about one probe of each member
 * per interval cluster-wide), one probe interval for the failed direct and
 * indirect probe, then Lifeguard's shortest suspicion timeout
 * `suspicionMult × max(1, log10 N) × probeInterval` — confirmations from the
 * other members' failed probes (about one per interval) bring the timeout down
 * to that minimum before it runs out.
 */
export const firstDetectionMillis = (n: number, t: Timings = defaultTimings): number =>
  1.5 * t.probeInterval + t.suspicionMult * Math.max(1, Math.log10(n)) * t.probeInterval

/** {@link firstDetectionMillis} plus the time the `Dead` verdict takes to reach everyone. */
export const allDetectionMillis = (n: number, t: Timings = defaultTimings): number =>
  firstDetectionMillis(n, t) + disseminationMillis(n, t)

/**
 * Probability that one probe fails with every datagram lost independently
 * with probability `loss`: the direct ping or its ack is lost, and each of the
 * `indirect` relays loses one of its four legs (request, ping, ack, relayed
 * ack). With 1 ms links nothing is late, so loss is the only cause.
 */
export const probeFailure = (loss: number, indirect: number): number => {
  const ok = 1 - loss
  return (1 - ok * ok) * (1 - ok ** 4) ** indirect
}

/** Least-squares fit of `y = a + b·log10 x`. */
export const fitLog = (points: ReadonlyArray<readonly [number, number]>): { a: number; b: number } | undefined => {
  if (points.length < 2) return undefined
  const xs = points.map(([x]) => Math.log10(x))
  const ys = points.map(([, y]) => y)
  const mx = xs.reduce((s, x) => s + x, 0) / xs.length
  const my = ys.reduce((s, y) => s + y, 0) / ys.length
  let sxy = 0
  let sxx = 0
  for (let i = 0; i < xs.length; i++) {
    sxy += (xs[i]! - mx) * (ys[i]! - my)
    sxx += (xs[i]! - mx) ** 2
  }
  if (sxx === 0) return undefined
  const b = sxy / sxx
  return { a: my - b * mx, b }
}

/** Least-squares fit of `y = a·x^b` on log-log axes (every point must be positive). */
export const fitPower = (points: ReadonlyArray<readonly [number, number]>): { a: number; b: number } | undefined => {
  const logs = points.filter(([x, y]) => x > 0 && y > 0).map(([x, y]) => [Math.log10(x), Math.log10(y)] as const)
  if (logs.length < 2) return undefined
  const mx = logs.reduce((s, [x]) => s + x, 0) / logs.length
  const my = logs.reduce((s, [, y]) => s + y, 0) / logs.length
  let sxy = 0
  let sxx = 0
  for (const [x, y] of logs) {
    sxy += (x - mx) * (y - my)
    sxx += (x - mx) ** 2
  }
  if (sxx === 0) return undefined
  const b = sxy / sxx
  return { a: 10 ** (my - b * mx), b }
}
