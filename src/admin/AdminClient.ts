/**
 * A client of an agent's admin interface (what every `shoal` command but
 * `agent` and `keygen` uses): it connects to `address` — reading the token
 * file for a loopback port — and presents the token on every call.
 *
 * @module
 * @since 0.1.0
 */
import * as NodeSocket from "@effect/platform-node/NodeSocket"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Headers from "effect/http/Headers"
import * as Layer from "effect/Layer"
import * as RpcClient from "effect/rpc/RpcClient"
import type * as RpcClientError from "effect/rpc/RpcClientError"
import type * as RpcGroup from "effect/rpc/RpcGroup"
import * as RpcMiddleware from "effect/rpc/RpcMiddleware"
import { type InvalidConfiguration, NetworkError } from "../cluster/Errors.ts"
import * as Serialization from "../rpc/Serialization.ts"
import {
  type AdminAddress,
  formatAdminAddress,
  parseAdminAddress,
  readToken,
  tokenDirectory,
  tokenPath
} from "./AdminAddress.ts"
import { AdminAuth, AdminRpcs, MAX_ADMIN_FRAME_BYTES, TOKEN_HEADER } from "./AdminRpcs.ts"

/** The typed client: one method per admin procedure, failing with the library's errors or `RpcClientError`. */
export class AdminClient extends Context.Service<
  AdminClient,
  RpcClient.RpcClient<RpcGroup.Rpcs<typeof AdminRpcs>, RpcClientError.RpcClientError>
>()("shoal/admin/AdminClient") {
  /**
   * A client of the agent at `address` (`--admin`'s value). Fails with
   * `InvalidConfiguration` for an address that is not loopback or a path,
   * or a loopback address whose token file this user cannot read, and with
   * `NetworkError` when nothing listens there.
   */
  static readonly layer = (
    address: string | AdminAddress
  ): Layer.Layer<AdminClient, InvalidConfiguration | NetworkError> =>
    Layer.unwrap(
      Effect.gen(function* () {
        const parsed = typeof address === "string" ? yield* parseAdminAddress(address) : address
        const token = parsed._tag === "Tcp" ? yield* readToken(tokenPath(yield* tokenDirectory, parsed)) : undefined
        const auth = RpcMiddleware.layerClient(AdminAuth, ({ request, next }) =>
          next(
            token === undefined ? request : { ...request, headers: Headers.set(request.headers, TOKEN_HEADER, token) }
          )
        )
        const socket =
          parsed._tag === "Unix"
            ? NodeSocket.layerNet({ path: parsed.path })
            : NodeSocket.layerNet({ host: parsed.host, port: parsed.port })
        return Layer.effect(AdminClient, RpcClient.make(AdminRpcs)).pipe(
          Layer.provide(auth),
          Layer.provide(RpcClient.layerProtocolSocket({ retryTransientErrors: false })),
          Layer.provide(Serialization.layerWith({ maxFrameSize: MAX_ADMIN_FRAME_BYTES })),
          Layer.provide(socket),
          Layer.catchTag("SocketError", (cause) =>
            Layer.effect(
              AdminClient,
              Effect.fail(
                new NetworkError({
                  message: `no agent answers on ${formatAdminAddress(parsed)} (is it running with --admin ${formatAdminAddress(parsed)}?)`,
                  address: formatAdminAddress(parsed),
                  cause
                })
              )
            )
          )
        )
      })
    )
}
