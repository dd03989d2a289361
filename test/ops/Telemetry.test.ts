/**
 * OpenTelemetry from a real agent process, configured only by `OTEL_*`
 * variables: an OTLP/HTTP receiver on 127.0.0.1 (this test) gets the
 * cluster's metrics and the spans `Effect.fn` names — here `Cluster.updateTags`
 * after a `tags set` through the admin interface — and an agent without those
 * variables sends nothing.
 */
import { spawn } from "node:child_process"
import { mkdtempSync } from "node:fs"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Option } from "effect"
import { callAgent } from "../../src/cli/AdminCall.ts"
import { telemetrySettings } from "../../src/ops/TelemetrySettings.ts"
import { agentEnv } from "../fixtures/agent-env.ts"
import { waitFor } from "../fixtures/live.ts"

const NODE = fileURLToPath(new URL("../../node_modules/.bin/node", import.meta.url))
const BIN = fileURLToPath(new URL("../../bin/shoal.js", import.meta.url))

/** An OTLP/HTTP receiver: every body posted, by path. */
const receiver = Effect.acquireRelease(
  Effect.promise(
    () =>
      new Promise<{ readonly port: number; readonly bodies: Map<string, Array<string>>; readonly close: () => void }>(
        (resolve) => {
          const bodies = new Map<string, Array<string>>()
          const server = createServer((request, response) => {
            const chunks: Array<Buffer> = []
            request.on("data", (chunk: Buffer) => chunks.push(chunk))
            request.on("end", () => {
              const list = bodies.get(request.url ?? "") ?? []
              list.push(Buffer.concat(chunks).toString("utf8"))
              bodies.set(request.url ?? "", list)
              response.writeHead(200, { "content-type": "application/json" }).end("{}")
            })
          })
          server.listen(0, "127.0.0.1", () =>
            resolve({ port: (server.address() as AddressInfo).port, bodies, close: () => server.close() })
          )
        }
      )
  ),
  (r) => Effect.sync(r.close)
)

const agentWith = (env: NodeJS.ProcessEnv, socket: string) =>
  Effect.acquireRelease(
    Effect.sync(() =>
      spawn(NODE, [BIN, "agent", "--bind", "127.0.0.1:0", "--admin", socket], {
        stdio: "ignore",
        env: { ...agentEnv, ...env }
      })
    ),
    (child) => Effect.sync(() => child.kill("SIGKILL"))
  )

describe("OpenTelemetry", () => {
  it.effect("is off without OTEL_* exporters or endpoints, on with an endpoint, off again when disabled", () =>
    Effect.gen(function* () {
      const read = (env: Record<string, string>) =>
        telemetrySettings.pipe(Effect.provide(ConfigProvider.layer(ConfigProvider.fromUnknown(env))))
      expect(Option.isNone(yield* read({}))).toBe(true)
      const on = yield* read({
        OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318",
        OTEL_METRIC_EXPORT_INTERVAL: "500"
      })
      expect(Option.getOrThrow(on)).toMatchObject({ traces: "otlp", metrics: "otlp", metricIntervalMillis: 500 })
      const tracesOnly = yield* read({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://x", OTEL_METRICS_EXPORTER: "none" })
      expect(Option.getOrThrow(tracesOnly)).toMatchObject({ traces: "otlp", metrics: "none" })
      expect(Option.isNone(yield* read({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://x", OTEL_SDK_DISABLED: "true" }))).toBe(
        true
      )
    })
  )

  it.live(
    "an agent exports its metrics and Effect.fn spans over OTLP/HTTP",
    () =>
      Effect.gen(function* () {
        const otlp = yield* receiver
        const dir = mkdtempSync(join(tmpdir(), "shoal-otel-"))
        const socket = join(dir, "agent.sock")
        yield* agentWith(
          {
            OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${otlp.port}`,
            OTEL_METRIC_EXPORT_INTERVAL: "300",
            OTEL_BSP_SCHEDULE_DELAY: "100",
            OTEL_SERVICE_NAME: "shoal-test"
          },
          socket
        )
        // the agent is up once its admin socket answers
        yield* waitFor(
          "the agent answers",
          callAgent(socket, Duration.seconds(1), (client) =>
            client.UpdateTags({ set: { traced: "yes" }, remove: [] })
          ).pipe(
            Effect.as(true),
            Effect.orElseSucceed(() => false)
          ),
          20_000
        )
        const has = (path: string, text: string) =>
          Effect.sync(() => (otlp.bodies.get(path) ?? []).some((body) => body.includes(text)))
        yield* waitFor("metrics exported", has("/v1/metrics", "shoal_members"), 20_000)
        yield* waitFor("a Cluster.updateTags span exported", has("/v1/traces", "Cluster.updateTags"), 20_000)
        expect(yield* has("/v1/metrics", "shoal-test")).toBe(true)
      }).pipe(Effect.scoped),
    60_000
  )
})
