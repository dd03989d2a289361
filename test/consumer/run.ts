/**
 * The consumer test (`npm run test:consumer`, run by .ci/run): shoal as a new
 * user gets it. Packs the tarball (which runs `prepack`), checks what is in it,
 * installs it into a throw-away project outside the repository (plain
 * package.json, `"type": "module"`, no bundler) beside effect and
 * @effect/platform-node at the versions this repository is tested with, then:
 *
 * - runs the README's first program (the snippet between the
 *   `first-program` markers) with plain Node 24: two members on 127.0.0.1
 *   that must see each other, exit code 0;
 * - type-checks it and `check.ts` (the public API and every subpath) with
 *   this repository's `tsc` under `moduleResolution: nodenext` and
 *   `verbatimModuleSyntax`, library declarations included (`skipLibCheck`
 *   off for shoal's);
 * - runs `npx shoal agent --help`;
 * - fails if the tarball holds tests, benchmarks, results or tool
 *   configuration, or misses the compiled entry points or the CLI bundle.
 *
 * The temporary directory is removed at the end, also on failure.
 */
import { type ExecFileSyncOptions, execFileSync } from "node:child_process"
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("../../", import.meta.url))
const node = process.execPath
const nodeBin = dirname(node)
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
  devDependencies: Record<string, string>
}
const env = {
  ...process.env,
  PATH: `${nodeBin}:${process.env.PATH ?? ""}`,
  npm_config_audit: "false",
  npm_config_fund: "false"
}

const step = (what: string) => console.log(`consumer: ${what}`)
const run = (cmd: string, args: ReadonlyArray<string>, options: ExecFileSyncOptions = {}): string =>
  execFileSync(cmd, args, {
    encoding: "utf8",
    env,
    stdio: ["ignore", "pipe", "pipe"],
    timeout: 300_000,
    ...options
  }) as string

const failures: Array<string> = []
const check = (ok: boolean, what: string) => {
  if (ok) step(`ok: ${what}`)
  else {
    failures.push(what)
    console.error(`consumer: FAIL: ${what}`)
  }
}

const firstProgram = (): string => {
  const readme = readFileSync(join(root, "README.md"), "utf8")
  const match = /<!-- first-program:start -->\s*```ts\n([\s\S]*?)```\s*<!-- first-program:end -->/.exec(readme)
  if (match === null) throw new Error("README.md has no first-program snippet between the markers")
  return match[1]!
}

/** A file that touches the public API and each subpath, only to be type-checked. */
const CHECK = `import { Effect, Layer, Redacted, Schema, Stream } from "effect"
import { Rpc, RpcGroup } from "effect/rpc"
import {
  Cluster,
  ClusterClient,
  ClusterClosed,
  ClusterConfig,
  type ClusterEvent,
  type ClusterNode,
  HealthCheck,
  HealthStatus,
  InvalidConfiguration,
  RpcConfig,
  RpcServer
} from "shoal"
import { Awareness, Swim } from "shoal/protocol"
import { DevTls, SimNetwork, Simulation } from "shoal/testing"
import { Codec } from "shoal/wire"

class Echo extends RpcGroup.make(Rpc.make("Echo", { payload: { text: Schema.String }, success: Schema.String })) {}

const handlers = Echo.toLayer(Effect.succeed(Echo.of({ Echo: ({ text }) => Effect.succeed(text) })))

export const server = Effect.gen(function* () {
  const tls = DevTls.generate()
  const config = yield* RpcConfig.make({
    certificate: tls.certificate,
    key: tls.key,
    ca: tls.ca,
    connectTimeout: "2s",
    cluster: { nodeName: "api", bindAddress: "127.0.0.1:0", tags: { role: "api" } }
  })
  const live = RpcServer.layer(Echo, config).pipe(Layer.provide(handlers))
  return live
})

export const client = Effect.gen(function* () {
  const cluster = yield* Cluster
  const check = HealthCheck.make("ok", Effect.succeed(HealthStatus.healthy()))
  const remove = yield* cluster.addHealthCheck(check)
  const { client } = yield* ClusterClient.make(Echo, { ca: { pem: "" }, connectTimeout: "2s" }, { tags: { role: "api" } })
  const reply: string = yield* client.Echo({ text: "hi" })
  yield* remove
  const events: Stream.Stream<ClusterEvent, ClusterClosed> = cluster.events
  const members: ReadonlyArray<ClusterNode> = yield* cluster.members
  return { reply, events, members }
}).pipe(Effect.scoped, Effect.catchTag("ClusterClosed", (e: ClusterClosed) => Effect.die(e)))

export const config = ClusterConfig.config.pipe((c) => c)
export const fromPrefix = ClusterConfig.configUnder("APP")
export const badTags: Effect.Effect<unknown, InvalidConfiguration> = ClusterConfig.make({ tags: { "a=b": "c" } })
export const key: Redacted.Redacted<string> = DevTls.generate().key
export const pieces = [Swim, Awareness.Awareness, Codec.encodePacket, SimNetwork.layer, Simulation.startCluster] as const
`

const TSCONFIG = {
  compilerOptions: {
    target: "es2024",
    module: "nodenext",
    moduleResolution: "nodenext",
    lib: ["es2024", "dom"],
    types: ["node"],
    strict: true,
    exactOptionalPropertyTypes: true,
    verbatimModuleSyntax: true,
    allowImportingTsExtensions: true,
    noEmit: true,
    skipLibCheck: false
  },
  include: ["*.ts"]
}

/** What must never be in the tarball, and what must. */
const FORBIDDEN = [
  /^test\//,
  /^bench\//,
  /results?\//,
  /^\.ci\//,
  /^examples\//,
  /\.svg$/,
  /^biome\.json$/,
  /^tsconfig/,
  /^vitest\.config/,
  /^scripts\//,
  /\.test\.ts$/,
  /\.cpuprofile$/,
  /\.heapsnapshot$/
]
const REQUIRED = [
  "package.json",
  "README.md",
  "bin/shoal.js",
  "dist/shoal.mjs",
  "dist/index.js",
  "dist/index.d.ts",
  "dist/testing.js",
  "dist/wire.js",
  "dist/protocol.js",
  "dist/index.js.map"
]

const work = mkdtempSync(join(tmpdir(), "shoal-consumer-"))
try {
  step(`packing into ${work}`)
  const packed = JSON.parse(run("npm", ["pack", "--json", "--pack-destination", work], { cwd: root })) as Array<{
    filename: string
    size: number
    unpackedSize: number
    files: Array<{ path: string }>
  }>
  const info = packed[0]!
  const files = info.files.map((f) => f.path)
  step(
    `tarball ${info.filename}: ${files.length} files, ${(info.size / 1024).toFixed(0)} kB packed, ${(info.unpackedSize / 1024).toFixed(0)} kB unpacked`
  )
  const forbidden = files.filter((f) => FORBIDDEN.some((re) => re.test(f)))
  check(
    forbidden.length === 0,
    `no tests, benchmarks, results or tool configuration in the tarball${forbidden.length === 0 ? "" : ` (found ${forbidden.join(", ")})`}`
  )
  const missing = REQUIRED.filter((f) => !files.includes(f))
  check(
    missing.length === 0,
    `the tarball has the entry points and the CLI bundle${missing.length === 0 ? "" : ` (missing ${missing.join(", ")})`}`
  )

  const app = join(work, "app")
  mkdirSync(app)
  const versions = pkg.devDependencies
  writeFileSync(
    join(app, "package.json"),
    JSON.stringify(
      {
        name: "shoal-consumer",
        private: true,
        type: "module",
        dependencies: {
          shoal: `file:${join(work, info.filename)}`,
          effect: versions.effect,
          "@effect/platform-node": versions["@effect/platform-node"]
        },
        devDependencies: { "@types/node": versions["@types/node"] }
      },
      null,
      2
    )
  )
  step("npm install (tarball, effect, @effect/platform-node, @types/node)")
  run("npm", ["install", "--prefer-offline", "--no-package-lock"], { cwd: app })
  const installed = JSON.parse(readFileSync(join(app, "node_modules/shoal/package.json"), "utf8")) as {
    scripts?: Record<string, string>
  }
  check(
    !["preinstall", "install", "postinstall", "prepare"].some((s) => installed.scripts?.[s] !== undefined),
    "no install script runs for consumers"
  )
  let nested = false
  try {
    readFileSync(join(app, "node_modules/shoal/node_modules/effect/package.json"))
    nested = true
  } catch {}
  check(!nested, "one copy of effect (shoal uses the application's)")

  writeFileSync(join(app, "first.ts"), firstProgram())
  writeFileSync(join(app, "check.ts"), CHECK)
  writeFileSync(join(app, "tsconfig.json"), JSON.stringify(TSCONFIG, null, 2))

  step('node first.ts (plain Node 24, import from "shoal")')
  try {
    const out = run(node, ["first.ts"], { cwd: app, timeout: 30_000, stdio: ["ignore", "pipe", "pipe"] })
    process.stdout.write(out.replace(/^/gm, "  | "))
    check(/first sees second/.test(out) && /second sees first/.test(out), "the two members see each other")
  } catch (error) {
    const e = error as { status?: number; stdout?: string; stderr?: string }
    console.error(e.stdout, e.stderr)
    check(false, `first.ts exited ${e.status}`)
  }

  step("tsc (moduleResolution nodenext, verbatimModuleSyntax)")
  try {
    run(join(root, "node_modules/.bin/tsc"), ["-p", "."], { cwd: app })
    check(true, "first.ts and check.ts type-check against the published declarations")
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string }
    console.error(e.stdout, e.stderr)
    check(false, "first.ts and check.ts type-check against the published declarations")
  }

  step("npx shoal agent --help")
  try {
    const help = run("npx", ["--no-install", "shoal", "agent", "--help"], { cwd: app, timeout: 60_000 })
    check(/--bind/.test(help) && /--join/.test(help), "npx shoal agent --help prints the agent's flags")
  } catch (error) {
    const e = error as { status?: number; stdout?: string; stderr?: string }
    console.error(e.stdout, e.stderr)
    check(false, `npx shoal agent --help exited ${e.status}`)
  }
} finally {
  rmSync(work, { recursive: true, force: true })
}

if (failures.length > 0) {
  console.error(`consumer: ${failures.length} check(s) failed`)
  process.exit(1)
}
console.log("consumer: all checks passed")
