/**
 * Before any scenario: root, the tools (iproute2 and nftables, and Serf for
 * the full profile, installed with apt-get when missing), leftovers of a
 * killed earlier run swept, and one throw-away topology built and deleted —
 * so a machine that cannot create network namespaces fails here, loudly,
 * with a message that says so, instead of skipping anything.
 */
import { ensureTools, type Tool } from "../membership/host.ts"
import { sweepStaleTopologies, Topology } from "./topology.ts"

const NETWORK_TOOLS: ReadonlyArray<Tool> = [
  ["ip", "iproute2"],
  ["nft", "nftables"]
]

export const prepareHost = (log: (line: string) => void, options: { readonly serf: boolean }): void => {
  ensureTools(log, options.serf ? [...NETWORK_TOOLS, ["serf", "serf"]] : NETWORK_TOOLS, "the fault suite")
  sweepStaleTopologies()
  Topology.create(2).delete()
}
