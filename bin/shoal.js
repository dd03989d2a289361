#!/usr/bin/env node
// The `shoal` binary. It runs dist/shoal.mjs, the CLI as one minified bundle
// (`npm run build`; `npm pack` builds it through `prepack`), which starts in a
// fraction of the time of loading the TypeScript sources module by module — it
// matters when a fleet of agents starts at once. Node's compile cache keeps
// the bundle's compiled code between runs (in the directory Node chooses, or
// NODE_COMPILE_CACHE; NODE_DISABLE_COMPILE_CACHE=1 turns it off). In a
// checkout without the bundle, or with SHOAL_FROM_SOURCE=1, the sources run
// directly (Node ≥ 24 strips types).
import { existsSync } from "node:fs"
import { enableCompileCache, flushCompileCache } from "node:module"

const bundle = new URL("../dist/shoal.mjs", import.meta.url)
if (existsSync(bundle) && process.env.SHOAL_FROM_SOURCE !== "1") {
  enableCompileCache()
  await import(bundle.href)
  // Node writes the cache at exit, which a killed agent never reaches: write it once start-up is over.
  setTimeout(flushCompileCache, 1000).unref()
} else {
  await import("../src/cli/Main.ts")
}
