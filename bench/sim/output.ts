/**
 * Small helpers the simulation benchmark's scenarios share: the heap after a
 * full collection, and durations for its progress lines.
 */

const gc = (globalThis as { gc?: () => void }).gc

/** Heap in use after two full collections; undefined without `--expose-gc`. */
export const heapAfterGc = (): number | undefined => {
  if (gc === undefined) return undefined
  gc()
  gc()
  return process.memoryUsage().heapUsed
}

/** Wall seconds since `since` (a `performance.now()`). */
export const secs = (since: number) => `${((performance.now() - since) / 1000).toFixed(1)} s`

/** Simulated milliseconds as seconds, "—" when not reached. */
export const fmt = (ms: number | undefined) => (ms === undefined ? "—" : `${(ms / 1000).toFixed(1)} s`)
