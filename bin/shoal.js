#!/usr/bin/env node
// The `shoal` binary. The CLI is TypeScript run directly by Node ≥ 24, which
// strips types natively; this file only exists because a package `bin` must be
// JavaScript.
import "../src/cli/Main.ts"
