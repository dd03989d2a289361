/**
 * Serves the admin interface (`AdminRpcs`) of the `Cluster` in context, where
 * `address` says: a Unix socket (mode 0600 in a 0700 directory) or a loopback
 * port guarded by a token file (see `AdminAddress`). `shoal agent` serves it
 * at `--admin`; an application that embeds a cluster provides
 * `AdminServer.layer({ address, version })` and the same `shoal` commands
 * talk to it.
 *
 * Bounded like the RPC server: at most 32 connections at once (one more is
 * closed when accepted) and frames of at most 1 MiB.
 *
 * @module
 * @since 0.1.0
 */

import { chmodSync, lstatSync, rmSync } from "node:fs"
import { connect } from "node:net"
import * as NodeSocket from "@effect/platform-node/NodeSocket"
import * as NodeSocketServer from "@effect/platform-node/NodeSocketServer"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as NetAddress from "effect/net/NetAddress"
import * as Option from "effect/Option"
import * as RpcServer from "effect/rpc/RpcServer"
import * as SocketServer from "effect/socket/SocketServer"
import type { Cluster } from "../cluster/Cluster.ts"
import { InvalidConfiguration, NetworkError } from "../cluster/Errors.ts"
import * as Serialization from "../rpc/Serialization.ts"
import {
  type AdminAddress,
  formatAdminAddress,
  parseAdminAddress,
  privateDirectory,
  socketDirectory,
  tokenDirectory,
  tokenMatches,
  tokenPath,
  writeToken
} from "./AdminAddress.ts"
import * as AdminHandlers from "./AdminHandlers.ts"
import { AdminAuth, AdminRpcs, AdminUnauthorized, MAX_ADMIN_FRAME_BYTES, TOKEN_HEADER } from "./AdminRpcs.ts"

/** Connections held at once. */
export const MAX_ADMIN_CONNECTIONS = 32

/** How the admin server is set up. */
export interface AdminServerOptions extends AdminHandlers.HandlerOptions {
  /** `--admin`'s value: a loopback `host:port` or a Unix socket path. */
  readonly address: string | AdminAddress
}

/** Whether something answers on the Unix socket at `path` (within 1 s). */
const socketAnswers = (path: string) =>
  Effect.callback<boolean>((resume) => {
    const socket = connect({ path })
    const done = (answers: boolean) => {
      socket.destroy()
      resume(Effect.succeed(answers))
    }
    socket.once("connect", () => done(true))
    socket.once("error", () => done(false))
    return Effect.sync(() => socket.destroy())
  }).pipe(Effect.timeoutOption("1 second"), Effect.map(Option.getOrElse(() => true)))

/** Removes a socket file left by an agent that died, refusing to take over a live one. */
const clearStaleSocket = (path: string) =>
  Effect.gen(function* () {
    const stat = yield* Effect.sync(() => {
      try {
        return lstatSync(path)
      } catch {
        return undefined
      }
    })
    if (stat === undefined) return
    if (!stat.isSocket()) {
      return yield* new InvalidConfiguration({ field: "--admin", reason: `${path} exists and is not a socket` })
    }
    if (yield* socketAnswers(path)) {
      return yield* new InvalidConfiguration({ field: "--admin", reason: `another agent is listening on ${path}` })
    }
    yield* Effect.sync(() => rmSync(path, { force: true }))
  })

const listenError = (address: AdminAddress) => (cause: unknown) =>
  new NetworkError({
    message: `cannot listen for admin calls on ${formatAdminAddress(address)}`,
    address: formatAdminAddress(address),
    cause
  })

/** The socket server, with connections beyond the cap closed on accept. */
const limited = (server: SocketServer.SocketServer["Service"]): SocketServer.SocketServer["Service"] => {
  let open = 0
  return {
    ...server,
    run: (handler) =>
      server.run((socket) =>
        Effect.gen(function* () {
          const conn = yield* Effect.serviceOption(NodeSocket.NetSocket)
          if (open >= MAX_ADMIN_CONNECTIONS && Option.isSome(conn)) return conn.value.destroy()
          open++
          return yield* handler(socket).pipe(Effect.ensuring(Effect.sync(() => void open--)))
        })
      )
  }
}

/** The admin interface of the cluster in context, listening until the layer's scope closes. */
export class AdminServer extends Context.Service<
  AdminServer,
  {
    /** Where it listens (with the real port when given port 0). */
    readonly address: AdminAddress
    /** The token file a loopback caller reads (`undefined` on a Unix socket). */
    readonly tokenFile: string | undefined
  }
>()("shoal/admin/AdminServer") {
  /**
   * Listens at `options.address` and answers admin calls from the `Cluster`
   * in context (and monitor log lines from a `LogTap`, when one is provided).
   * Fails with `InvalidConfiguration` for an address that is not loopback, a
   * directory open to others or a live socket in the way, and with
   * `NetworkError` when it cannot listen.
   */
  static readonly layer = (
    options: AdminServerOptions
  ): Layer.Layer<AdminServer, InvalidConfiguration | NetworkError, Cluster> =>
    Layer.effect(
      AdminServer,
      Effect.gen(function* () {
        const requested =
          typeof options.address === "string" ? yield* parseAdminAddress(options.address) : options.address
        let bound: AdminAddress = requested
        let token: string | undefined
        let tokenFile: string | undefined
        let server: SocketServer.SocketServer["Service"]
        if (requested._tag === "Unix") {
          yield* privateDirectory(socketDirectory(requested.path), "--admin")
          yield* clearStaleSocket(requested.path)
          server = yield* NodeSocketServer.make({ path: requested.path }).pipe(Effect.mapError(listenError(requested)))
          yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(requested.path, { force: true })))
          yield* Effect.sync(() => chmodSync(requested.path, 0o600))
        } else {
          const directory = yield* tokenDirectory
          yield* privateDirectory(directory, "SHOAL_ADMIN_DIR")
          server = yield* NodeSocketServer.make({ host: requested.host, port: requested.port }).pipe(
            Effect.mapError(listenError(requested))
          )
          const port = NetAddress.isInetAddress(server.address) ? server.address.port : requested.port
          bound = { _tag: "Tcp", host: requested.host, port }
          const file = tokenPath(directory, bound)
          tokenFile = file
          token = yield* writeToken(file)
          yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(file, { force: true })))
        }
        const expected = token
        const auth = Layer.succeed(
          AdminAuth,
          AdminAuth.of((effect, { headers }) =>
            expected === undefined || tokenMatches(expected, headers[TOKEN_HEADER])
              ? effect
              : Effect.fail(new AdminUnauthorized({ reason: "missing or wrong admin token" }))
          )
        )
        yield* Layer.build(
          RpcServer.layer(AdminRpcs, { disableTracing: true }).pipe(
            Layer.provide(AdminHandlers.layer(options)),
            Layer.provide(auth),
            Layer.provide(RpcServer.layerProtocolSocketServer),
            Layer.provide(Serialization.layerWith({ maxFrameSize: MAX_ADMIN_FRAME_BYTES })),
            Layer.provide(Layer.succeed(SocketServer.SocketServer, limited(server)))
          )
        )
        yield* Effect.logDebug(`admin interface on ${formatAdminAddress(bound)}`)
        return AdminServer.of({ address: bound, tokenFile })
      })
    )
}
