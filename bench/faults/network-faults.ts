/**
 * Network faults as nftables rules on the switch (a bridge-family table, hook
 * `forward`): the network drops the packets, the hosts do not know. That is
 * what a cut cable, a dead switch port or a firewall does: datagrams vanish
 * and TCP connects hang until the caller's deadline — no RST, no ICMP, no
 * `EPERM` from `sendto` (which a drop in the sender's own output hook would
 * give away). Only IPv4 is dropped, so ARP keeps resolving and the hosts'
 * neighbour caches stay valid: connects hang rather than fail with
 * `EHOSTUNREACH`.
 *
 * Each change is one `nft -f` script, so it takes effect atomically.
 */
import { FAULT_CHAIN, FAULT_TABLE, type Topology } from "./topology.ts"

const set = (addresses: ReadonlyArray<string>) => `{ ${addresses.join(", ")} }`

export class NetworkFaults {
  private readonly topology: Topology

  constructor(topology: Topology) {
    this.topology = topology
  }

  private address(index: number): string {
    const host = this.topology.hosts[index]
    if (host === undefined) throw new Error(`no host ${index}`)
    return host.address
  }

  private add(rules: ReadonlyArray<string>): void {
    this.topology.nft(rules.map((r) => `add rule bridge ${FAULT_TABLE} ${FAULT_CHAIN} ${r}`).join("\n"))
  }

  /** Drops every packet, UDP and TCP, both ways, between hosts of different groups. */
  partition(groups: ReadonlyArray<ReadonlyArray<number>>): void {
    const rules: Array<string> = []
    for (const [i, a] of groups.entries()) {
      for (const [j, b] of groups.entries()) {
        if (i === j || a.length === 0 || b.length === 0) continue
        const from = a.map((x) => this.address(x))
        const to = b.map((x) => this.address(x))
        rules.push(`ip saddr ${set(from)} ip daddr ${set(to)} counter drop comment "partition"`)
      }
    }
    this.add(rules)
  }

  /** Drops everything to and from `host`: it looks switched off, but connects to it hang instead of failing. */
  blackhole(host: number): void {
    const address = this.address(host)
    this.add([
      `ip saddr ${address} counter drop comment "blackhole"`,
      `ip daddr ${address} counter drop comment "blackhole"`
    ])
  }

  /** Drops what `from` sends to `to`; `to` still reaches `from`, and everyone else reaches both. */
  cutOneWay(from: number, to: number): void {
    this.add([`ip saddr ${this.address(from)} ip daddr ${this.address(to)} counter drop comment "one-way"`])
  }

  /**
   * Drops `percent` % of all IPv4 packets (UDP and TCP alike, as a lossy link
   * does). Every packet crosses the bridge once, so each is lost once with
   * that probability.
   */
  loss(percent: number): void {
    this.add([
      `meta protocol ip counter comment "loss-seen"`,
      `meta protocol ip numgen random mod 100 < ${Math.round(percent)} counter drop comment "loss"`
    ])
  }

  /** Removes every fault: the network is whole again. */
  heal(): void {
    this.topology.nft(`flush chain bridge ${FAULT_TABLE} ${FAULT_CHAIN}`)
  }

  /** Packets counted by the rules with this comment (e.g. "loss", "loss-seen"), summed. */
  counted(comment: string): number {
    const json = JSON.parse(this.topology.faultRules()) as {
      nftables: ReadonlyArray<{ rule?: { comment?: string; expr: ReadonlyArray<Record<string, unknown>> } }>
    }
    let packets = 0
    for (const item of json.nftables) {
      if (item.rule?.comment !== comment) continue
      for (const expr of item.rule.expr) {
        const counter = expr.counter as { packets: number } | undefined
        if (counter !== undefined) packets += counter.packets
      }
    }
    return packets
  }
}
