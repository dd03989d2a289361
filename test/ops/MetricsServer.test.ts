/**
 * The Prometheus endpoint on a real cluster: a scrape parses with a
 * Prometheus text parser from npm and carries the documented families, with
 * members by state and phi per member matching the cluster.
 */
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import parsePrometheusTextFormat from "parse-prometheus-text-format"
import { Cluster } from "../../src/cluster/Cluster.ts"
import { Address, formatAddress } from "../../src/cluster/Node.ts"
import { MetricsServer } from "../../src/ops/MetricsServer.ts"
import { fastCluster, waitFor } from "../fixtures/live.ts"

interface Family {
  readonly name: string
  readonly type: string
  readonly help: string
  readonly metrics: ReadonlyArray<{ readonly value?: string; readonly labels?: Record<string, string> }>
}

/** Families every scrape carries, documented in src/cluster/README.md. */
const EXPECTED = [
  "shoal_members",
  "shoal_awareness",
  "shoal_healthy",
  "shoal_member_phi",
  "shoal_member_phi_max",
  "shoal_gossip_probes",
  "shoal_gossip_probes_indirect",
  "shoal_gossip_probes_failed",
  "shoal_gossip_probes_tcp_acked",
  "shoal_gossip_push_pulls",
  "shoal_gossip_push_pull_failures",
  "shoal_gossip_rejected",
  "shoal_transport_packets_sent",
  "shoal_transport_packets_received",
  "shoal_transport_bytes_sent",
  "shoal_transport_bytes_received"
]

describe("MetricsServer", () => {
  it.live("a scrape parses as Prometheus text and reports the cluster", () =>
    Effect.gen(function* () {
      const a = Context.get(yield* Layer.build(Cluster.layer({ ...fastCluster, nodeName: "a" })), Cluster)
      const seed = formatAddress((yield* a.localNode).gossipAddress)
      yield* Layer.build(Cluster.layer({ ...fastCluster, nodeName: "b", seedNodes: [seed] }))
      const server = Context.get(
        yield* Layer.build(
          MetricsServer.layer(new Address({ host: "127.0.0.1", port: 0 })).pipe(
            Layer.provide(Layer.succeed(Cluster, a))
          )
        ),
        MetricsServer
      )
      yield* waitFor(
        "a has heard from b",
        Effect.map(Effect.orDie(a.phiReadings), (r) => r.length === 1)
      )
      const response = yield* Effect.promise(() => fetch(`http://${formatAddress(server.address)}/metrics`))
      expect(response.headers.get("content-type")).toContain("text/plain")
      const text = yield* Effect.promise(() => response.text())
      const families = parsePrometheusTextFormat(text) as ReadonlyArray<Family>
      const byName = new Map(families.map((f) => [f.name, f]))
      for (const name of EXPECTED) expect(byName.has(name), name).toBe(true)
      const members = byName.get("shoal_members")!
      expect(members.type).toBe("GAUGE")
      const alive = members.metrics.find((m) => m.labels?.state === "alive")
      expect(Number(alive?.value)).toBe(2)
      const phi = byName.get("shoal_member_phi")!
      expect(phi.metrics.map((m) => m.labels?.member)).toContain("b")
      expect(byName.get("shoal_gossip_probes")!.type).toBe("COUNTER")
      for (const family of families) expect(family.help.length, family.name).toBeGreaterThan(0)
    }).pipe(Effect.scoped)
  )
})
