#!/usr/bin/env node
// The `shoal` binary. `npm run build` (run by `npm ci` through `prepare`)
// bundles the CLI into dist/shoal.mjs, which starts in about a quarter of the
// time of loading the TypeScript sources module by module — it matters when a
// fleet of agents starts at once. Without the bundle, or with
// SHOAL_FROM_SOURCE=1, the sources run directly (Node ≥ 24 strips types).
import { existsSync } from "node:fs"

const bundle = new URL("../dist/shoal.mjs", import.meta.url)
await import(existsSync(bundle) && process.env.SHOAL_FROM_SOURCE !== "1" ? bundle.href : "../src/cli/Main.ts")
