/**
 * Which source, on which machine, a benchmark measured — for its results file.
 *
 * @since 0.1.0
 */
import { execFileSync } from "node:child_process"
import { cpus, loadavg, totalmem } from "node:os"

/**
 * The commit, with "-dirty" when the work tree differs from it (engine work
 * in progress); "unknown" outside a git checkout. Read it at start: the tree
 * may change while a long run goes on.
 */
export const revision = (): string => {
  try {
    return execFileSync("git", ["describe", "--always", "--dirty"], { encoding: "utf8" }).trim()
  } catch {
    return "unknown"
  }
}

/** The machine at the end of a run: CPU, memory, Node, the load before and now, and the source measured. */
export const describeMachine = (loadBefore: ReadonlyArray<number>, commit: string) => ({
  cpu: cpus()[0]?.model ?? "unknown",
  cpus: cpus().length,
  memoryGiB: Math.round(totalmem() / 2 ** 30),
  node: process.version,
  loadBefore: loadBefore.map((l) => Number(l.toFixed(2))),
  loadAfter: loadavg().map((l) => Number(l.toFixed(2))),
  date: new Date().toISOString(),
  commit
})
