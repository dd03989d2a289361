/**
 * Where an agent's admin interface listens and how only the local user gets
 * in. Two forms, as `--admin` takes them:
 *
 * - a **Unix socket path** (anything with a `/`): the socket is created mode
 *   0600 inside a directory that must be 0700 and the user's own (created so
 *   when missing), so the file system lets no one else connect;
 * - a **loopback `host:port`** (default `127.0.0.1:7373`, Serf's RPC port):
 *   any local user can connect to a port, so the agent writes a random
 *   256-bit token to a 0600 file in a 0700 directory of the user's
 *   (`$SHOAL_ADMIN_DIR`, else `$XDG_RUNTIME_DIR/shoal`, else `~/.shoal`),
 *   named after the address and the network namespace, and refuses every call that does not present it.
 *   The CLI reads the same file. Non-loopback hosts are refused.
 *
 * @module
 * @since 0.1.0
 */
import { randomBytes, timingSafeEqual } from "node:crypto"
import { chmodSync, mkdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from "node:fs"
import { homedir } from "node:os"
import { dirname, join, resolve } from "node:path"
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { InvalidConfiguration } from "../cluster/Errors.ts"
import { formatAddress, parseAddress } from "../cluster/Node.ts"

/** The default: Serf's RPC address. */
export const DEFAULT_ADMIN_ADDRESS = "127.0.0.1:7373"

/** A parsed `--admin` value. */
export type AdminAddress =
  | { readonly _tag: "Tcp"; readonly host: string; readonly port: number }
  | { readonly _tag: "Unix"; readonly path: string }

const isLoopback = (host: string): boolean =>
  host === "localhost" || host === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)

/**
 * Parses `--admin`: a path (it contains `/`) or a loopback `host:port`;
 * `InvalidConfiguration` names `field` otherwise.
 */
export const parseAdminAddress = (text: string, field = "--admin"): Effect.Effect<AdminAddress, InvalidConfiguration> =>
  Effect.suspend((): Effect.Effect<AdminAddress, InvalidConfiguration> => {
    const trimmed = text.trim()
    if (trimmed.includes("/")) return Effect.succeed({ _tag: "Unix", path: resolve(trimmed) } as const)
    const address = parseAddress(trimmed)
    if (address === undefined) {
      return Effect.fail(new InvalidConfiguration({ field, reason: "expected a loopback host:port or a socket path" }))
    }
    if (!isLoopback(address.host)) {
      return Effect.fail(
        new InvalidConfiguration({
          field,
          reason: `${trimmed} is not a loopback address: the admin interface is for the local user only`
        })
      )
    }
    return Effect.succeed({ _tag: "Tcp", host: address.host, port: address.port } as const)
  })

/** `host:port` or the socket path. */
export const formatAdminAddress = (address: AdminAddress): string =>
  address._tag === "Unix" ? address.path : formatAddress(address)

/** The directory of token files: `SHOAL_ADMIN_DIR`, else `$XDG_RUNTIME_DIR/shoal`, else `~/.shoal`. */
export const tokenDirectory: Effect.Effect<string> = Effect.gen(function* () {
  const explicit = yield* Config.option(Config.String("SHOAL_ADMIN_DIR"))
  if (Option.isSome(explicit) && explicit.value !== "") return resolve(explicit.value)
  const runtime = yield* Config.option(Config.String("XDG_RUNTIME_DIR"))
  if (Option.isSome(runtime) && runtime.value !== "") return join(runtime.value, "shoal")
  return join(homedir(), ".shoal")
}).pipe(Effect.orElseSucceed(() => join(homedir(), ".shoal")))

/**
 * This process's network namespace (Linux: the inode of `/proc/self/ns/net`),
 * so agents in different namespaces with the same loopback address keep
 * separate token files; empty elsewhere.
 */
const networkNamespace = (): string => {
  try {
    const link = readlinkSync("/proc/self/ns/net")
    const inode = /\[(\d+)\]/.exec(link)?.[1]
    return inode === undefined ? "" : `-net${inode}`
  } catch {
    return ""
  }
}

/** The token file of a loopback admin address (as seen from this network namespace). */
export const tokenPath = (directory: string, address: { readonly host: string; readonly port: number }): string =>
  join(directory, `admin-${address.host.replace(/[^A-Za-z0-9.-]/g, "_")}-${address.port}${networkNamespace()}.token`)

const uid = (): number | undefined => process.getuid?.()

/**
 * Makes sure `directory` exists, is a directory of this user's and nobody
 * else may enter it (mode 0700); creates it so when missing.
 */
export const privateDirectory = (directory: string, field: string): Effect.Effect<void, InvalidConfiguration> =>
  Effect.try({
    try: () => {
      mkdirSync(directory, { recursive: true, mode: 0o700 })
      const stat = statSync(directory)
      if (!stat.isDirectory()) throw new Error(`${directory} is not a directory`)
      const me = uid()
      if (me !== undefined && stat.uid !== me) throw new Error(`${directory} belongs to another user`)
      if ((stat.mode & 0o077) !== 0) {
        throw new Error(`${directory} is open to other users (mode ${(stat.mode & 0o777).toString(8)}): make it 0700`)
      }
    },
    catch: (error) =>
      new InvalidConfiguration({ field, reason: error instanceof Error ? error.message : String(error) })
  })

/** The directory a Unix socket path lives in. */
export const socketDirectory = (path: string): string => dirname(path)

/** A fresh token, written to `path` (mode 0600); the finalizer of the caller removes it. */
export const writeToken = (path: string): Effect.Effect<string, InvalidConfiguration> =>
  Effect.try({
    try: () => {
      const token = randomBytes(32).toString("base64url")
      rmSync(path, { force: true })
      writeFileSync(path, `${token}\n`, { mode: 0o600, flag: "wx" })
      chmodSync(path, 0o600)
      return token
    },
    catch: (error) =>
      new InvalidConfiguration({
        field: "--admin",
        reason: `cannot write the admin token ${path}: ${error instanceof Error ? error.message : String(error)}`
      })
  })

/** Reads the token an agent wrote; `InvalidConfiguration` when it is missing (no agent there, or another user's). */
export const readToken = (path: string): Effect.Effect<string, InvalidConfiguration> =>
  Effect.try({
    try: () => readFileSync(path, "utf8").trim(),
    catch: () =>
      new InvalidConfiguration({
        field: "--admin",
        reason: `no admin token at ${path}: is an agent running with this --admin address, as this user (or SHOAL_ADMIN_DIR set as it had it)?`
      })
  })

/** Whether `presented` is `token`, in time independent of where they differ. */
export const tokenMatches = (token: string, presented: string | undefined): boolean => {
  if (presented === undefined) return false
  const a = Buffer.from(token)
  const b = Buffer.from(presented)
  return a.length === b.length && timingSafeEqual(a, b)
}
