/**
 * `npm run docs` writes the API reference, generated from the doc comments
 * of the four entry points (`shoal`, `shoal/testing`, `shoal/wire`,
 * `shoal/protocol`), to docs/api/ (Markdown, not committed: it is rebuilt
 * from the sources). `npm run docs:check` (run by .ci/run) builds it into a
 * temporary directory and fails when
 *
 * - an export reachable from an entry point has no doc comment (TypeDoc's
 *   `notDocumented` validation, warnings as errors; tools/docs/typedoc.json
 *   lists the few members of the protocol engine's files that another
 *   branch owns, as intentionally undocumented), or
 * - an `@example` in a doc comment of `src/` does not type-check: every
 *   ```ts block of an `@example` is written to its own file, importing
 *   `shoal`, `shoal/testing`, `shoal/wire` and `shoal/protocol` from the
 *   sources, and checked with this project's `tsc` (strict,
 *   exactOptionalPropertyTypes, nodenext).
 *
 * TypeDoc runs from tools/docs (its own package.json: it needs the
 * TypeScript 6 compiler API, the project builds with TypeScript 7); install
 * it with `npm ci --prefix tools/docs`.
 */
import { execFileSync } from "node:child_process"
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, relative } from "node:path"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("..", import.meta.url))
const check = process.argv.includes("--check")
const tools = join(root, "tools/docs")
const typedoc = join(tools, "node_modules/.bin/typedoc")

if (!existsSync(typedoc)) {
  console.error("docs: TypeDoc is not installed; run `npm ci --prefix tools/docs` first")
  process.exit(1)
}

const work = mkdtempSync(join(tmpdir(), "shoal-docs-"))
let failed = false
try {
  // 1. The reference, with every public export documented.
  const out = check ? join(work, "api") : join(root, "docs/api")
  if (!check) rmSync(out, { recursive: true, force: true })
  try {
    execFileSync(typedoc, ["--out", out], { cwd: tools, stdio: "inherit" })
    console.log(
      `docs: API reference ${check ? "builds" : `written to ${relative(root, out)}/`}, every public export documented`
    )
  } catch {
    console.error("docs: FAIL: TypeDoc reported undocumented exports or errors (above)")
    failed = true
  }

  // 2. Every @example compiles.
  const files: Array<string> = []
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name)
      if (statSync(path).isDirectory()) walk(path)
      else if (name.endsWith(".ts")) files.push(path)
    }
  }
  walk(join(root, "src"))
  // inside the checkout, so `effect` resolves from its node_modules and the files are ES modules
  const examples = join(root, ".tmp/docs-examples")
  rmSync(examples, { recursive: true, force: true })
  mkdirSync(examples, { recursive: true })
  let count = 0
  for (const file of files) {
    const text = readFileSync(file, "utf8")
    for (const comment of text.match(/\/\*\*[\s\S]*?\*\//g) ?? []) {
      const body = comment
        .split("\n")
        .map((line) => line.replace(/^\s*\/?\*+\/?\s?/, ""))
        .join("\n")
      for (const part of body.split("@example").slice(1)) {
        const block = /```ts\n([\s\S]*?)```/.exec(part)
        if (block === null) continue
        count++
        const name = `${relative(join(root, "src"), file).replace(/[/.]/g, "_")}_${count}.ts`
        writeFileSync(join(examples, name), `// from ${relative(root, file)}\n${block[1]}\nexport {}\n`)
      }
    }
  }
  const src = (entry: string) => [join(root, "src", entry)]
  writeFileSync(
    join(examples, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: {
        target: "es2024",
        module: "nodenext",
        moduleResolution: "nodenext",
        lib: ["es2024"],
        types: ["node"],
        strict: true,
        exactOptionalPropertyTypes: true,
        noUncheckedIndexedAccess: true,
        verbatimModuleSyntax: true,
        allowImportingTsExtensions: true,
        noEmit: true,
        skipLibCheck: true,
        paths: {
          shoal: src("index.ts"),
          "shoal/testing": src("testing.ts"),
          "shoal/wire": src("wire.ts"),
          "shoal/protocol": src("protocol.ts"),
          "shoal/ops": src("ops.ts")
        }
      },
      include: ["*.ts"]
    })
  )
  try {
    execFileSync(join(root, "node_modules/.bin/tsc"), ["-p", examples], { cwd: examples, stdio: "inherit" })
    console.log(`docs: ${count} @example blocks type-check`)
  } catch {
    console.error(`docs: FAIL: @example blocks that do not type-check (above; files under ${examples})`)
    failed = true
  }
} finally {
  if (!failed) rmSync(work, { recursive: true, force: true })
}
process.exit(failed ? 1 : 0)
