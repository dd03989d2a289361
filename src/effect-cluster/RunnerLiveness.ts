/**
 * What shoal's membership says about one effect/cluster runner address, as a
 * pure function of the member list, so that the health layer, the failure
 * reporter and the client protocol all judge a runner by the same rule.
 *
 * A runner is the member (or members: a restarted process is a new member
 * at the same address) that advertises the address in its
 * {@link RUNNER_TAG}. It is
 * - `alive` when one of them is `Alive` and passes its health checks
 *   (`healthy=true`);
 * - `suspect` when none is, but one is `Suspect` and healthy: SWIM has not
 *   decided yet, so it still counts as alive — unless a cheap local check
 *   says otherwise (see `RunnerPortProbe`);
 * - `gone` otherwise: `Dead`, `Left`, failing its checks, or not advertised
 *   by any member at all (every runner is expected to run the integration).
 *
 * @module
 * @since 0.1.0
 */
import type { RunnerAddress } from "effect/cluster/RunnerAddress"
import { HEALTHY_TAG } from "../cluster/Config.ts"
import type { ClusterNode } from "../cluster/Node.ts"
import { advertises } from "./RunnerTag.ts"

/** The membership's verdict on a runner address. */
export type RunnerLiveness = "alive" | "suspect" | "gone"

const healthy = (node: ClusterNode): boolean => node.tags[HEALTHY_TAG] === "true"

/** The verdict on `address` given every member this process knows of. */
export const livenessOf = (members: ReadonlyArray<ClusterNode>, address: RunnerAddress): RunnerLiveness => {
  let suspect = false
  for (const node of members) {
    if (!advertises(node, address) || !healthy(node)) continue
    if (node.state === "Alive") return "alive"
    if (node.state === "Suspect") suspect = true
  }
  return suspect ? "suspect" : "gone"
}
