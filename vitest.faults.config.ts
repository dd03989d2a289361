import { defineConfig } from "vitest/config"

/**
 * The fault suite (test/faults): real agents in network namespaces, minutes
 * long, root only — run by `npm run test:faults`, kept out of the unit run.
 * Scenarios run three at a time, each on its own virtual network.
 */
export default defineConfig({
  test: {
    include: ["test/faults/**/*.test.ts"],
    maxConcurrency: 3,
    testTimeout: 300_000,
    hookTimeout: 900_000
  }
})
