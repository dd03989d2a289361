/**
 * A throw-away PostgreSQL for the example, the benchmark and the end-to-end
 * test: Debian's `postgresql` server binaries (installed with apt-get when
 * missing and this process is root), a data directory in a fresh temporary
 * folder, listening on one address (127.0.0.1, or a host of a virtual
 * network) and a Unix socket inside that folder, trusting local connections.
 * `stop()` ends the server and deletes the folder; as root the server runs as
 * the `postgres` user, since PostgreSQL refuses to run as root.
 *
 * `fsync` is off: the example tests effect/cluster's failover, not the
 * database's crash safety, and it shares its disk with other work.
 */
import { execFileSync, spawn } from "node:child_process"
import {
  appendFileSync,
  chownSync,
  existsSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync
} from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

/** Runs a command somewhere (as-is, or inside a network namespace). */
export type Wrap = (cmd: string, args: ReadonlyArray<string>) => [string, Array<string>]

const asIs: Wrap = (cmd, args) => [cmd, [...args]]

export const DATABASE = "postgres"
export const USER = "cluster"

/** Data folders of servers not stopped yet, so an interrupted run can delete them (see `deleteLeftoverFolders`). */
const liveFolders = new Set<string>()

/** Deletes the folders of servers this process started and did not stop (call after killing them). */
export const deleteLeftoverFolders = (): void => {
  for (const folder of liveFolders) rmSync(folder, { recursive: true, force: true })
  liveFolders.clear()
}

const isRoot = () => process.getuid?.() === 0

const binDirectory = (): string | undefined => {
  const base = "/usr/lib/postgresql"
  if (!existsSync(base)) return undefined
  const versions = readdirSync(base)
    .filter((v) => existsSync(join(base, v, "bin", "initdb")))
    .sort((a, b) => Number(b) - Number(a))
  return versions[0] === undefined ? undefined : join(base, versions[0], "bin")
}

/**
 * The directory of `initdb`, `postgres` and `psql`, installing Debian's
 * `postgresql` first when it is missing (root and apt-get only; otherwise
 * fails, saying what to install).
 */
export const ensurePostgres = (log: (line: string) => void = () => {}): string => {
  const found = binDirectory()
  if (found !== undefined) return found
  if (!isRoot() || !existsSync("/usr/bin/apt-get")) {
    throw new Error("PostgreSQL server binaries not found: install Debian's 'postgresql' package (apt-get)")
  }
  log("installing postgresql with apt-get …")
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" }
  execFileSync("apt-get", ["update"], { stdio: "inherit", timeout: 300_000, env })
  execFileSync("apt-get", ["install", "-y", "--no-install-recommends", "postgresql"], {
    stdio: "inherit",
    timeout: 600_000,
    env
  })
  const installed = binDirectory()
  if (installed === undefined) throw new Error("apt-get installed postgresql, but no initdb under /usr/lib/postgresql")
  return installed
}

export interface Postgres {
  readonly host: string
  readonly port: number
  /** Runs SQL with psql and returns its unaligned, tuples-only output. */
  readonly psql: (sql: string) => string
  /** Ends the server (fast shutdown, then SIGKILL) and deletes its folder. Safe to call twice. */
  readonly stop: () => Promise<void>
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Starts a fresh server on `host:port`; `wrap` places it (e.g. in a network namespace). */
export const startPostgres = async (options: {
  readonly host: string
  readonly port: number
  readonly wrap?: Wrap | undefined
  readonly log?: ((line: string) => void) | undefined
}): Promise<Postgres> => {
  const bin = ensurePostgres(options.log)
  const wrap = options.wrap ?? asIs
  const folder = mkdtempSync(join(tmpdir(), "shoal-pg-"))
  liveFolders.add(folder)
  const data = join(folder, "data")
  // PostgreSQL will not run as root: as root, the server and its files belong to `postgres`.
  const owner = isRoot() ? Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }).trim()) : undefined
  const group = isRoot() ? Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8" }).trim()) : undefined
  if (owner !== undefined && group !== undefined) chownSync(folder, owner, group)
  const asOwner: Wrap = (cmd, args) =>
    isRoot() ? ["setpriv", ["--reuid=postgres", "--regid=postgres", "--init-groups", cmd, ...args]] : [cmd, [...args]]
  const inPlace = (cmd: string, args: ReadonlyArray<string>) => {
    const [c1, a1] = asOwner(cmd, args)
    return wrap(c1, a1)
  }

  let server: ReturnType<typeof spawn> | undefined
  let stopped = false
  const stop = async () => {
    if (stopped) return
    stopped = true
    if (server !== undefined && server.exitCode === null && server.signalCode === null) {
      const exited = new Promise<void>((resolve) => server!.once("exit", () => resolve()))
      server.kill("SIGINT") // fast shutdown: ends the sessions, no waiting for clients
      const done = await Promise.race([exited.then(() => true), sleep(10_000).then(() => false)])
      if (!done) {
        server.kill("SIGKILL")
        await Promise.race([exited, sleep(5_000)])
      }
    }
    rmSync(folder, { recursive: true, force: true })
    liveFolders.delete(folder)
  }

  try {
    const [initCmd, initArgs] = asOwner(join(bin, "initdb"), [
      "-D",
      data,
      "-U",
      USER,
      "-A",
      "trust",
      "-E",
      "UTF8",
      "--locale=C",
      "--no-sync"
    ])
    execFileSync(initCmd, initArgs, { stdio: "pipe", timeout: 120_000 })
    // initdb trusts the loopback only; the server listens on one address of a network of our own.
    appendFileSync(join(data, "pg_hba.conf"), "host all all samenet trust\n")
    const logFile = join(folder, "postgres.log")
    const [cmd, args] = inPlace(join(bin, "postgres"), [
      "-D",
      data,
      "-h",
      options.host,
      "-p",
      String(options.port),
      "-k",
      folder,
      "-c",
      "fsync=off",
      "-c",
      "max_connections=200"
    ])
    const out = openSync(logFile, "a")
    server = spawn(cmd, args, { stdio: ["ignore", out, out] })
    const deadline = Date.now() + 30_000
    while (!readFileSync(logFile, "utf8").includes("ready to accept connections")) {
      if (server.exitCode !== null || Date.now() > deadline) {
        throw new Error(`PostgreSQL did not start: ${readFileSync(logFile, "utf8").slice(-2000)}`)
      }
      await sleep(100)
    }
  } catch (error) {
    await stop()
    throw error
  }

  const psql = (sql: string): string => {
    const [cmd, args] = wrap(join(bin, "psql"), [
      "-h",
      options.host,
      "-p",
      String(options.port),
      "-U",
      USER,
      "-d",
      DATABASE,
      "-X",
      "-q",
      "-A",
      "-t",
      "-v",
      "ON_ERROR_STOP=1",
      "-c",
      sql
    ])
    return execFileSync(cmd, args, { encoding: "utf8", timeout: 30_000 })
  }

  return { host: options.host, port: options.port, psql, stop }
}
