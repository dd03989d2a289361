import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // The fault suite runs real agents for minutes as root: vitest.faults.config.ts, `npm run test:faults`.
    exclude: ["test/faults/**", "**/node_modules/**"],
    testTimeout: 30_000,
    hookTimeout: 30_000
  }
})
