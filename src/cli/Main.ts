/**
 * Entry point of the `shoal` binary: runs the CLI on the process arguments
 * with Node's signal handling (SIGINT/SIGTERM interrupt the main fiber, which
 * closes the cluster gracefully) and the exit codes of `Shoal.teardown`.
 *
 * @since 0.1.0
 */

import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import pkg from "../../package.json" with { type: "json" }
import { main, teardown } from "./Shoal.ts"

const { version } = pkg

NodeRuntime.runMain(main(version), { disableErrorReporting: true, teardown })
