/**
 * `npm run build`: the package's `dist/`.
 *
 * 1. The library: `tsc -p tsconfig.build.json` compiles `src/` (without the
 *    CLI) to ES modules with declarations and source maps, the `.ts` import
 *    specifiers rewritten to `.js` (`rewriteRelativeImportExtensions`).
 * 2. The `shoal` CLI: one minified, tree-shaken ES module, `dist/shoal.mjs`,
 *    with effect and @effect/platform-node inside it, so the binary starts
 *    without resolving a module graph and works whatever versions the
 *    application around it uses. What only `--metrics`, `--ui` and
 *    OpenTelemetry need (the HTTP server, the page, the exporters) is split
 *    into chunks under `dist/shoal-chunks/`, imported on first use, so an
 *    agent without those flags never reads them.
 *
 * The bundle loads only what the agent needs at start-up (measured in
 * bench/README.md, "Agent footprint"): Node's `tls`, `child_process` and
 * `crypto` are pulled in by @effect/platform-node modules the agent links
 * but never calls while it runs a cluster member (TLS sockets, the child
 * process spawner and file system the CLI runtime requires), and loading
 * `tls` alone costs about 7 MB of resident memory. Here they become lazy
 * stand-ins that load the real module on first call
 * (`process.getBuiltinModule`). effect/cli builds an `Intl.Segmenter` at
 * module load for help-text widths, which maps ICU break-iterator data for
 * every run; it is made on first use instead. Both rewrites fail the build
 * when the code they expect is not there, so an upgrade cannot silently undo
 * them.
 */
import { execFileSync } from "node:child_process"
import { rmSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { build, type Plugin } from "rolldown"

const root = fileURLToPath(new URL("..", import.meta.url))
const args = new Set(process.argv.slice(2))

/** Builtins the agent links but does not call at start-up or while it runs. */
const LAZY_BUILTINS = ["node:tls", "node:child_process", "node:crypto"] as const

const lazyId = (name: string) => `\0shoal-lazy:${name}`

/**
 * A module with the builtin's function exports, each loading the real module
 * on first call (`new` works too), and its string and number constants.
 */
const lazyModule = (name: string): string => {
  const real = process.getBuiltinModule(name) as Record<string, unknown>
  const lines = [`let m; const load = () => (m ??= process.getBuiltinModule(${JSON.stringify(name)}));`]
  for (const key of Object.keys(real)) {
    if (!/^[A-Za-z_$][\w$]*$/.test(key)) continue
    const value = real[key]
    if (typeof value === "function") {
      lines.push(
        `export function ${key}(...args) { const f = load().${key}; return new.target ? Reflect.construct(f, args, new.target) : f.apply(this, args) }`
      )
    } else if (typeof value === "string" || typeof value === "number") {
      lines.push(`export const ${key} = ${JSON.stringify(value)};`)
    }
  }
  return lines.join("\n")
}

const lazyBuiltins: Plugin = {
  name: "shoal-lazy-builtins",
  resolveId(source) {
    const name = source.startsWith("node:") ? source : `node:${source}`
    return (LAZY_BUILTINS as ReadonlyArray<string>).includes(name) ? lazyId(name) : null
  },
  load(id) {
    return id.startsWith("\0shoal-lazy:") ? lazyModule(id.slice("\0shoal-lazy:".length)) : null
  }
}

const SEGMENTER = /new Intl\.Segmenter\(undefined, \{\s*granularity: "grapheme"\s*\}\)/

const lazySegmenter: Plugin = {
  name: "shoal-lazy-segmenter",
  transform(code, id) {
    if (!id.replaceAll("\\", "/").endsWith("effect/dist/cli/CliOutput.js")) return null
    if (!SEGMENTER.test(code)) {
      throw new Error(
        "effect/cli CliOutput.js no longer builds its grapheme segmenter as expected: update scripts/build.ts"
      )
    }
    return code.replace(
      SEGMENTER,
      `{ segment(text) { return (this.real ??= new Intl.Segmenter(undefined, { granularity: "grapheme" })).segment(text) } }`
    )
  }
}

const buildLibrary = () => {
  execFileSync(`${root}node_modules/.bin/tsc`, ["-p", "tsconfig.build.json"], { cwd: root, stdio: "inherit" })
}

const buildCli = async () => {
  rmSync(`${root}dist/shoal-chunks`, { recursive: true, force: true })
  await build({
    cwd: root,
    input: "src/cli/Main.ts",
    platform: "node",
    logLevel: "warn",
    plugins: [lazyBuiltins, lazySegmenter],
    output: {
      dir: "dist",
      entryFileNames: "shoal.mjs",
      chunkFileNames: "shoal-chunks/[name]-[hash].mjs",
      format: "esm",
      minify: true,
      comments: false
    }
  })
}

if (args.has("--cli")) {
  await buildCli()
} else {
  rmSync(`${root}dist`, { recursive: true, force: true })
  buildLibrary()
  await buildCli()
}
