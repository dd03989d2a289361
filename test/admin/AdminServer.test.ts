/**
 * The admin interface on real sockets: a cluster member serves it on a Unix
 * socket (mode 0600 in a 0700 directory) and on a loopback port guarded by a
 * token file, and a client gets the library's answers and typed errors.
 */
import { mkdirSync, mkdtempSync, rmSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as NodeSocket from "@effect/platform-node/NodeSocket"
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Context, Deferred, Effect, Exit, Fiber, Layer, Schema, Scope, Stream } from "effect"
import * as Headers from "effect/http/Headers"
import * as RpcClient from "effect/rpc/RpcClient"
import * as RpcMiddleware from "effect/rpc/RpcMiddleware"
import { AdminClient } from "../../src/admin/AdminClient.ts"
import { AdminAuth, AdminRpcs, TOKEN_HEADER } from "../../src/admin/AdminRpcs.ts"
import { AdminServer } from "../../src/admin/AdminServer.ts"
import { Cluster } from "../../src/cluster/Cluster.ts"
import { ClusterNode, formatAddress } from "../../src/cluster/Node.ts"
import * as Serialization from "../../src/rpc/Serialization.ts"
import { fastCluster, waitFor } from "../fixtures/live.ts"

const privateDir = () => {
  const dir = mkdtempSync(join(tmpdir(), "shoal-admin-"))
  return dir
}

/** A cluster member with its admin server, in `scope`. */
const member = (scope: Scope.Scope, address: string, input: Parameters<typeof Cluster.layer>[0] = {}) =>
  Effect.gen(function* () {
    const layer = AdminServer.layer({ address, version: "0.0.0-test" }).pipe(
      Layer.provideMerge(Cluster.layer({ ...fastCluster, ...(input as object) }))
    )
    const context = yield* Layer.buildWithScope(layer, scope)
    return { cluster: Context.get(context, Cluster), admin: Context.get(context, AdminServer) }
  })

const client = (scope: Scope.Scope, address: string) =>
  Effect.map(Layer.buildWithScope(AdminClient.layer(address), scope), (context) => Context.get(context, AdminClient))

const encodeNode = Schema.encodeSync(ClusterNode)

describe("AdminServer", () => {
  it.live("on a Unix socket: 0600 socket in a 0700 directory; members is exactly Cluster.members", () =>
    Effect.gen(function* () {
      const dir = privateDir()
      const path = join(dir, "agent.sock")
      const scope = yield* Scope.make()
      const a = yield* member(scope, path, { nodeName: "a", tags: { role: "web" } })
      const b = yield* member(scope, join(dir, "b.sock"), {
        nodeName: "b",
        seedNodes: [formatAddress((yield* a.cluster.localNode).gossipAddress)]
      })
      yield* waitFor(
        "a sees b",
        Effect.map(a.cluster.aliveMembers, (m) => m.length === 2)
      )
      const bId = (yield* b.cluster.localNode).id
      yield* waitFor(
        "a has heard from b",
        Effect.map(Effect.orDie(a.cluster.phiReadings), (r) => r.some((x) => x.id === bId))
      )
      expect(statSync(path).mode & 0o777).toBe(0o600)
      expect(statSync(dir).mode & 0o777).toBe(0o700)

      const admin = yield* client(scope, path)
      const entries = yield* admin.Members({})
      expect(entries.map((e) => encodeNode(e.node))).toEqual((yield* a.cluster.members).map((n) => encodeNode(n)))
      const web = yield* admin.Members({ tags: { role: "web" } })
      expect(web.map((e) => e.node.name)).toEqual(["a"])
      const detailed = yield* admin.Members({ detailed: true })
      const other = detailed.find((e) => e.node.name === "b")!
      expect(other.phi).toBeTypeOf("number")
      expect(other.lastHeard).toBeTypeOf("number")

      const updated = yield* admin.UpdateTags({ set: { zone: "z1" }, remove: [] })
      expect(updated.tags).toEqual({ role: "web", zone: "z1", healthy: "true" })
      const notFailed = yield* Effect.flip(admin.ForceLeave({ member: "b" }))
      expect(notFailed._tag).toBe("NotFailed")
      const info = yield* admin.Info()
      expect(info.version).toBe("0.0.0-test")
      expect(info.members.alive).toBe(2)
      expect(info.counters.probes).toBeTypeOf("number")
      expect(info.counters["transport.packetsSent"]).toBeGreaterThan(0)
      const noKeyring = yield* Effect.flip(admin.KeysList())
      expect(noKeyring._tag).toBe("InvalidConfiguration")

      // monitor: it starts with the members, then b leaves and a's stream says so
      const started = yield* Deferred.make<number>()
      const events = yield* admin.Monitor({}).pipe(
        Stream.tap((item) =>
          item._tag === "MonitorStarted" ? Deferred.succeed(started, item.members.length) : Effect.void
        ),
        Stream.filter((item) => item._tag === "MonitorEvent" && item.event._tag === "NodeLeft"),
        Stream.take(1),
        Stream.runCollect,
        Effect.forkChild
      )
      expect(yield* Deferred.await(started)).toBe(2)
      yield* b.cluster.leave
      const [left] = yield* Fiber.join(events)
      expect(left?._tag === "MonitorEvent" && left.event.node.name).toBe("b")

      yield* Scope.close(scope, Exit.void)
      expect(() => statSync(path)).toThrow()
      rmSync(dir, { recursive: true, force: true })
    }).pipe(Effect.scoped)
  )

  it.live("on a loopback port: the token file is 0600 and a call without the token is refused", () =>
    Effect.gen(function* () {
      const dir = join(privateDir(), "tokens")
      const scope = yield* Scope.make()
      const a = yield* member(scope, "127.0.0.1:0", { nodeName: "solo" })
      const address = a.admin.address
      expect(address._tag).toBe("Tcp")
      const where = address._tag === "Tcp" ? `127.0.0.1:${address.port}` : ""
      expect(statSync(a.admin.tokenFile!).mode & 0o777).toBe(0o600)
      const admin = yield* client(scope, where)
      expect((yield* admin.Members({})).map((e) => e.node.name)).toEqual(["solo"])

      // a caller without the token, and one with a wrong token: effect/rpc clients on the same port
      for (const presented of [undefined, "not-the-token"]) {
        const stranger = yield* Layer.buildWithScope(
          Layer.effect(AdminClient, RpcClient.make(AdminRpcs)).pipe(
            Layer.provide(
              RpcMiddleware.layerClient(AdminAuth, ({ request, next }) =>
                next(
                  presented === undefined
                    ? request
                    : { ...request, headers: Headers.set(request.headers, TOKEN_HEADER, presented) }
                )
              )
            ),
            Layer.provide(RpcClient.layerProtocolSocket({ retryTransientErrors: false })),
            Layer.provide(Serialization.layer),
            Layer.provide(NodeSocket.layerNet({ host: "127.0.0.1", port: address._tag === "Tcp" ? address.port : 0 }))
          ),
          scope
        ).pipe(Effect.map((context) => Context.get(context, AdminClient)))
        const refused = yield* Effect.flip(stranger.Members({}))
        expect(refused._tag).toBe("AdminUnauthorized")
      }
      rmSync(dir, { recursive: true, force: true })
      yield* Scope.close(scope, Exit.void)
      expect(() => statSync(a.admin.tokenFile!)).toThrow()
    }).pipe(
      Effect.provide(ConfigProvider.layer(ConfigProvider.fromUnknown({ SHOAL_ADMIN_DIR: join(privateDir(), "t") })))
    )
  )

  it.live("refuses a non-loopback address and a socket directory open to others", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const wide = privateDir()
      const open = join(wide, "open")
      mkdirSync(open, { mode: 0o755 })
      const far = yield* Effect.flip(
        Layer.buildWithScope(
          AdminServer.layer({ address: "10.1.2.3:7373", version: "x" }).pipe(
            Layer.provide(Cluster.layer({ ...fastCluster }))
          ),
          scope
        )
      )
      expect(far._tag).toBe("InvalidConfiguration")
      const lax = yield* Effect.flip(
        Layer.buildWithScope(
          AdminServer.layer({ address: join(open, "a.sock"), version: "x" }).pipe(
            Layer.provide(Cluster.layer({ ...fastCluster }))
          ),
          scope
        )
      )
      expect(lax._tag).toBe("InvalidConfiguration")
      expect(lax.message).toContain("0700")
      yield* Scope.close(scope, Exit.void)
      rmSync(wide, { recursive: true, force: true })
    })
  )
})
