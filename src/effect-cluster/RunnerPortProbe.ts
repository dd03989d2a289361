/**
 * The one network question the integration ever asks, and only about a
 * runner that SWIM already suspects: does its runner port refuse TCP
 * connections? A refusal is definitive — the kernel answers for a process
 * that no longer exists (a crash, a SIGKILL) — so a suspect whose port
 * refuses is gone now, not after the suspicion timeout. Anything else (the
 * connect succeeds, or no answer before the deadline, as from a paused
 * process or a cut link) proves nothing, and the suspect stays alive until
 * SWIM decides.
 *
 * @module
 * @since 0.1.0
 */
import * as Net from "node:net"
import * as Context from "effect/Context"
import type { RunnerAddress } from "effect/cluster/RunnerAddress"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

/** How long a probe waits for the kernel's answer: a refusal on a LAN takes well under a millisecond. */
export const PROBE_DEADLINE = Duration.millis(500)

/** Asks a runner's port whether it refuses connections: the one network call runner health makes. */
export class RunnerPortProbe extends Context.Service<
  RunnerPortProbe,
  {
    /** `true` only when a connection to the runner port was actively refused within the deadline. */
    readonly refusesConnections: (address: RunnerAddress) => Effect.Effect<boolean>
  }
>()("shoal/effect-cluster/RunnerPortProbe") {
  /** Probes with a real TCP connect (closed again at once), bounded by `deadline`. */
  static readonly layerTcp = (deadline: Duration.Input = PROBE_DEADLINE): Layer.Layer<RunnerPortProbe> =>
    Layer.succeed(
      RunnerPortProbe,
      RunnerPortProbe.of({
        refusesConnections: Effect.fn("RunnerPortProbe.refusesConnections")(function* (address: RunnerAddress) {
          return yield* Effect.callback<boolean>((resume) => {
            const socket = Net.connect({ host: address.host, port: address.port })
            const done = (refused: boolean) => {
              socket.destroy()
              resume(Effect.succeed(refused))
            }
            socket.once("connect", () => done(false))
            socket.once("error", (error: NodeJS.ErrnoException) => done(error.code === "ECONNREFUSED"))
            return Effect.sync(() => socket.destroy())
          }).pipe(Effect.timeoutOrElse({ duration: deadline, orElse: () => Effect.succeed(false) }))
        })
      })
    )

  /** Answers from a fixed set of refusing addresses (`host:port`), for tests. */
  static readonly layerFixed = (refusing: ReadonlyArray<string>): Layer.Layer<RunnerPortProbe> =>
    Layer.succeed(
      RunnerPortProbe,
      RunnerPortProbe.of({
        refusesConnections: (address) => Effect.succeed(refusing.includes(`${address.host}:${address.port}`))
      })
    )
}
