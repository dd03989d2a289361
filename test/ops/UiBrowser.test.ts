/**
 * The live page in a real headless Chromium (Debian's `chromium`, driven by
 * playwright-core): it loads, shows the N members, and reflects a member
 * killed and one leaving within bounded waits. The page must show the crash
 * within 1 s of the observing member's own `NodeFailed` event (a correctness
 * bound: the page is pushed each event as it happens); the figure is printed.
 * A screenshot goes to `.artifacts/ui.png` (git-ignored), and to
 * `docs/ui.png` with `SHOAL_UPDATE_SCREENSHOT=1`.
 */
import { mkdirSync } from "node:fs"
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Exit, Fiber, Layer, Scope, Stream } from "effect"
import { Cluster } from "../../src/cluster/Cluster.ts"
import { Address, formatAddress } from "../../src/cluster/Node.ts"
import { UiServer } from "../../src/ops/UiServer.ts"
import { launchChromium } from "../fixtures/browser.ts"
import { fastCluster, waitFor } from "../fixtures/live.ts"

const N = 5

const start = (input: Parameters<typeof Cluster.layer>[0], leaveOnClose: boolean) =>
  Effect.gen(function* () {
    const scope = yield* Scope.make()
    const cluster = Context.get(
      yield* Layer.buildWithScope(Cluster.layer({ ...fastCluster, ...(input as object) }, { leaveOnClose }), scope),
      Cluster
    )
    return { cluster, scope }
  })

describe("live page in Chromium", () => {
  it.live(
    `loads, shows ${N} members, and follows a crash and a leave`,
    () =>
      Effect.gen(function* () {
        const observer = yield* start({ nodeName: "observer", tags: { role: "ui" } }, true)
        const seed = formatAddress((yield* observer.cluster.localNode).gossipAddress)
        const others = []
        for (let i = 1; i < N; i++) {
          others.push(yield* start({ nodeName: `member-${i}`, seedNodes: [seed], tags: { zone: `z${i % 2}` } }, false))
        }
        yield* waitFor(
          "all members alive",
          Effect.map(observer.cluster.aliveMembers, (m) => m.length === N)
        )
        const ui = Context.get(
          yield* Layer.build(
            UiServer.layer(new Address({ host: "127.0.0.1", port: 0 })).pipe(
              Layer.provide(Layer.succeed(Cluster, observer.cluster))
            )
          ),
          UiServer
        )

        const { context } = yield* launchChromium
        const page = yield* Effect.promise(() => context.newPage())
        yield* Effect.promise(() => page.goto(`http://${formatAddress(ui.address)}/`))
        yield* Effect.promise(() =>
          page.waitForFunction(
            `document.querySelectorAll("[data-testid=members] tbody tr").length === ${N}`,
            undefined,
            {
              timeout: 10_000
            }
          )
        )
        expect(yield* Effect.promise(() => page.locator("[data-testid=ring] g[data-state=Alive]").count())).toBe(N)
        // let the charts gather a few points before the screenshot
        yield* Effect.promise(() =>
          page.waitForFunction(`document.querySelectorAll("[data-testid=charts] path").length >= 2`, undefined, {
            timeout: 10_000
          })
        )

        // The page records when it first shows member-1 Dead, on the same wall clock as this process.
        yield* Effect.promise(() =>
          page.evaluate(`
            new MutationObserver(() => {
              if (window.deadAt === undefined && document.querySelector("tr[data-name=member-1][data-state=Dead]")) {
                window.deadAt = performance.timeOrigin + performance.now()
              }
            }).observe(document.body, { subtree: true, childList: true, attributes: true })
          `)
        )
        const failedAt = yield* observer.cluster.events.pipe(
          Stream.filter((event) => event._tag === "NodeFailed" && event.node.name === "member-1"),
          Stream.take(1),
          Stream.runDrain,
          Effect.andThen(Effect.sync(() => performance.timeOrigin + performance.now())),
          Effect.forkChild({ startImmediately: true })
        )
        const killed = others[0]!
        yield* Scope.close(killed.scope, Exit.void)
        const agentSaw = yield* Fiber.join(failedAt).pipe(Effect.timeout("15 seconds"))
        yield* Effect.promise(() => page.waitForFunction("window.deadAt !== undefined", undefined, { timeout: 5_000 }))
        const pageSaw = yield* Effect.promise(() => page.evaluate("window.deadAt") as Promise<number>)
        const lag = pageSaw - agentSaw
        console.log(`live page showed the crash ${lag.toFixed(0)} ms after the agent's own NodeFailed event`)
        expect(lag).toBeLessThanOrEqual(1000)

        const leaving = others[1]!
        yield* leaving.cluster.leave
        yield* Effect.promise(() =>
          page.waitForSelector("tr[data-name=member-2][data-state=Left]", { timeout: 10_000 })
        )
        yield* Effect.promise(() => page.waitForSelector("#timeline div[data-event=NodeLeft][data-name=member-2]"))
        expect(yield* Effect.promise(() => page.locator("[data-testid=count-alive]").textContent())).toMatch(/^3/)

        mkdirSync(".artifacts", { recursive: true })
        yield* Effect.promise(() => page.screenshot({ path: ".artifacts/ui.png", fullPage: true }))
        if (process.env.SHOAL_UPDATE_SCREENSHOT === "1") {
          yield* Effect.promise(() => page.screenshot({ path: "docs/ui.png", fullPage: true }))
        }
        for (const other of others.slice(1)) yield* Scope.close(other.scope, Exit.void)
        yield* Scope.close(observer.scope, Exit.void)
      }).pipe(Effect.scoped),
    60_000
  )
})
