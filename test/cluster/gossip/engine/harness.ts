/**
 * A minimal runtime for one engine in a test: it keeps the timers the engine
 * armed and fires them in time order, remembers the exchanges it opened and
 * the pings it sent, and records every output — what the Effect shell and
 * the simulator do, without sockets, fibers or a clock.
 */
import { Effect } from "effect"
import * as ClusterConfig from "../../../../src/cluster/Config.ts"
import type { Identities } from "../../../../src/cluster/gossip/engine/Claims.ts"
import { Engine } from "../../../../src/cluster/gossip/engine/Engine.ts"
import type { Input } from "../../../../src/cluster/gossip/engine/Input.ts"
import { type OpenExchange, type Output, type Timer, timerKey } from "../../../../src/cluster/gossip/engine/Output.ts"
import { type EngineSettings, settingsFromConfig } from "../../../../src/cluster/gossip/engine/Settings.ts"
import { Address, type NodeId } from "../../../../src/cluster/Node.ts"

export const SELF_ID = "0b3f5a0e-2c4d-4e8f-9a1b-3c5d7e9f1a2b" as NodeId
export const SELF_ADDRESS = new Address({ host: "10.1.0.1", port: 7946 })

/** Peer `i` (0-based): a fixed id and address. */
export const peerId = (i: number) => `7b3f5a0e-2c4d-4e8f-9a1b-${(0x1000000000000 + i).toString(16).slice(1)}` as NodeId
export const peerAddress = (i: number) => new Address({ host: `10.1.1.${i + 1}`, port: 7946 })

export const defaultSettings = (input: ClusterConfig.Input = {}): EngineSettings =>
  settingsFromConfig(
    Effect.runSync(ClusterConfig.make({ nodeName: "self", bindAddress: String(SELF_ADDRESS), ...input }))
  )

export class Driver {
  readonly engine: Engine
  now = 0
  readonly timers = new Map<string, { readonly timer: Timer; readonly at: number }>()
  readonly exchanges = new Map<number, OpenExchange>()
  /** Sequence numbers of the pings this node sent, newest last (peers answer some of them). */
  readonly pingSeqs: Array<number> = []
  readonly outputs: Array<Output> = []
  /** Called with each step's outputs, for invariants that look at every step. */
  onStep: (outputs: ReadonlyArray<Output>) => void = () => {}

  constructor(options: {
    readonly seed: number
    readonly settings?: EngineSettings | undefined
    readonly identities?: Identities | undefined
  }) {
    this.engine = new Engine({
      settings: options.settings ?? defaultSettings(),
      identity: {
        id: SELF_ID,
        name: "self",
        gossipAddress: SELF_ADDRESS,
        boundAddress: SELF_ADDRESS,
        tags: {}
      },
      random: options.seed,
      identities: options.identities
    })
    this.#record(this.engine.takeOutputs())
  }

  handle(input: Input): ReadonlyArray<Output> {
    const outputs = this.engine.handle(this.now, input)
    this.#record(outputs)
    return outputs
  }

  /** Moves the clock to `at` (never back). */
  advanceTo(at: number): void {
    this.now = Math.max(this.now, at)
  }

  /** Fires the earliest armed timer (moving the clock to it); false when none is armed. */
  fireNext(): boolean {
    let next: { readonly key: string; readonly timer: Timer; readonly at: number } | undefined
    for (const [key, entry] of this.timers) if (next === undefined || entry.at < next.at) next = { key, ...entry }
    if (next === undefined) return false
    this.timers.delete(next.key)
    this.advanceTo(next.at)
    this.handle({ _tag: "TimerFired", timer: next.timer })
    return true
  }

  /** Fires timers until none is due at or before `until`, then moves the clock there. */
  runUntil(until: number): void {
    while (true) {
      let earliest = Number.POSITIVE_INFINITY
      for (const entry of this.timers.values()) earliest = Math.min(earliest, entry.at)
      if (earliest > until) break
      this.fireNext()
    }
    this.advanceTo(until)
  }

  #record(outputs: ReadonlyArray<Output>): void {
    for (const output of outputs) {
      this.outputs.push(output)
      switch (output._tag) {
        case "SetTimer":
          this.timers.set(timerKey(output.timer), { timer: output.timer, at: output.at })
          break
        case "CancelTimer":
          this.timers.delete(output.key)
          break
        case "OpenExchange":
          this.exchanges.set(output.id, output)
          break
        case "CancelExchange":
          this.exchanges.delete(output.id)
          break
        case "Send":
          for (const message of output.packet.messages) if (message._tag === "Ping") this.pingSeqs.push(message.seq)
          if (this.pingSeqs.length > 64) this.pingSeqs.splice(0, this.pingSeqs.length - 64)
          break
      }
    }
    this.onStep(outputs)
  }
}
