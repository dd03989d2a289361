/**
 * Which source a benchmark measured, for its results file.
 *
 * @since 0.1.0
 */
import { execFileSync } from "node:child_process"

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
