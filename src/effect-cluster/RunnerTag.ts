/**
 * How a runner says, in shoal's membership, which effect/cluster runner it
 * is: one tag, `effect-cluster.runner=host:port`, carrying the address its
 * `ShardingConfig.runnerAddress` gives the other runners. Gossip spreads it
 * with the member, so every process knows which member stands behind which
 * runner address without asking the database.
 *
 * @module
 * @since 0.1.0
 */
import { RunnerAddress } from "effect/cluster/RunnerAddress"
import { type ClusterNode, formatAddress, parseAddress, type Tags } from "../cluster/Node.ts"

/** The tag key under which a runner advertises its runner address. */
export const RUNNER_TAG = "effect-cluster.runner"

/** The tag value for a runner address: `host:port` (IPv6 hosts in brackets). */
export const formatRunnerAddress = (address: RunnerAddress): string => formatAddress(address)

/** The tags a runner adds to its cluster configuration so that the others can find it. */
export const tagsFor = (address: RunnerAddress): Tags => ({
  [RUNNER_TAG]: formatRunnerAddress(address)
})

/** The runner address a member advertises, or `undefined` when it is not a runner (or the tag is malformed). */
export const runnerAddressOf = (node: ClusterNode): RunnerAddress | undefined => {
  const text = node.tags[RUNNER_TAG]
  if (text === undefined) return undefined
  const parsed = parseAddress(text)
  return parsed === undefined ? undefined : RunnerAddress.make({ host: parsed.host, port: parsed.port })
}

/** Whether a member advertises exactly this runner address. */
export const advertises = (node: ClusterNode, address: RunnerAddress): boolean =>
  node.tags[RUNNER_TAG] === formatRunnerAddress(address)
