/**
 * The SWIM protocol (Das, Gupta & Motivala 2002) with the Lifeguard
 * refinements (Dadgar et al. 2018) as one node runs it, sans-IO: a state
 * machine that takes an input and the current time and returns what to do.
 * It never waits, never reads a clock, never draws from a random source it
 * does not own and never touches a socket or a fiber, so a transition is a
 * plain function call — for the Effect shell (`Swim`) on a real or
 * simulated network, for the discrete-event simulator at thousands of
 * nodes, and for a unit test. (foca's core and its `Runtime` are the model.)
 *
 * ```text
 *   Datagram, StreamRequest,            ┌────────┐   Send, OpenExchange, CancelExchange,
 *   ExchangeAnswered/Failed, TimerFired, │ Engine │   Reply/Refuse, SetTimer/CancelTimer,
 *   Resolved, Start/Stop, Join, Leave,  ─▶ handle ├─▶ Resolve, MembershipChanged,
 *   SetTags   (each with `now`)          └────────┘   JoinEnded, LeaveEnded, Log, Count
 * ```
 *
 * The parts: `Receiving` (datagrams), `Probing` and `Relaying` (the failure
 * detector and the helper's side of it), `Updates` (precedence, suspicion,
 * refutation), `Replacement` (who lives at an address), `Dissemination`
 * (piggybacking, gossip rounds), `AntiEntropy` (push-pull, streams),
 * `Healing` (revivals, reconnects, reaping), `Joining` (join and leave),
 * `Reachability` (an operator's probe of a member that only measures: `Reach`
 * in, `Reached` out).
 *
 * @since 0.1.0
 */
import type { ClusterNode } from "../../Node.ts"
import { PhiDetectors } from "../PhiDetector.ts"
import { MemberTable } from "../Registry.ts"
import { checkEnded, exchangeEnded, serveStream } from "./AntiEntropy.ts"
import type { Identities } from "./Claims.ts"
import { enqueue, gossipRound } from "./Dissemination.ts"
import { pushPullRound, reapRound, reconnectRound, seedResolved } from "./Healing.ts"
import type { Input } from "./Input.ts"
import { join, joinFollowUp, leave, leaveCheck } from "./Joining.ts"
import { logRefusalsSummary } from "./Limits.ts"
import { type Output, ROUNDS, type Timer } from "./Output.ts"
import { abandonProbe, probeEnd, probeIndirect, probeRound } from "./Probing.ts"
import { reachStart, reachTimer } from "./Reachability.ts"
import { receive } from "./Receiving.ts"
import { relayTimer } from "./Relaying.ts"
import { verifyEnded } from "./Replacement.ts"
import { type Rng, seeded } from "./Rng.ts"
import { type EngineSettings, type Identity, pushPullScale, REAP_INTERVAL_MILLIS } from "./Settings.ts"
import { EngineState } from "./State.ts"
import type { SwimStats } from "./Stats.ts"
import { setTags, suspicionExpired } from "./Updates.ts"

export interface EngineOptions {
  readonly settings: EngineSettings
  readonly identity: Identity
  /**
   * Where the engine's random choices come from: a seed for a generator of
   * its own (the same seed and inputs replay the same node), or a source
   * passed in (the shell passes Effect's `Random`, so a seeded test replays
   * the whole cluster).
   */
  readonly random: number | Rng
  /** The member table to keep (the registry's, so the application reads it); a fresh one by default. */
  readonly table?: MemberTable | undefined
  /** The phi detectors to feed (the `PhiDetector` service's); fresh ones by default. */
  readonly phi?: PhiDetectors | undefined
  /**
   * Where probe sequence numbers start (default 0). The shell passes a value
   * from the OS's CSPRNG, so a stranger cannot guess which acks are awaited
   * (spraying acks for sequence numbers 1, 2, 3… once hid a crash); sequence
   * numbers drive no decision, so a simulation stays deterministic whatever
   * the start.
   */
  readonly initialSeq?: number | undefined
  /**
   * Signed claims (see `Claims`): this node's certificate and signer, and
   * the check of members' certificates. Without it no claim is signed or
   * checked — the protocol exactly as without identities.
   */
  readonly identities?: Identities | undefined
}

export class Engine {
  readonly #state: EngineState

  constructor(options: EngineOptions) {
    const { settings } = options
    this.#state = new EngineState({
      settings,
      identity: options.identity,
      table: options.table ?? new MemberTable(),
      phi: options.phi ?? new PhiDetectors(settings.phi, settings.phiThreshold),
      rng: typeof options.random === "number" ? seeded(options.random) : options.random,
      initialSeq: options.initialSeq ?? 0,
      identities: options.identities
    })
    const state = this.#state
    state.publish(state.table.upsert(state.self))
    // Announce ourselves from the first packet on.
    enqueue(state, state.selfUpdate())
  }

  /** Handles one input at `now` (ms) and returns what to do, in order. */
  handle(now: number, input: Input): Array<Output> {
    const state = this.#state
    state.now = now
    state.refusalsThisStep = 0
    switch (input._tag) {
      case "Datagram":
        receive(state, input.from, input.payload)
        break
      case "StreamRequest":
        serveStream(state, input.request, input.payload)
        break
      case "ExchangeAnswered":
        exchangeEnded(state, input.id, input.payload)
        break
      case "ExchangeFailed":
        exchangeEnded(state, input.id, input.reason)
        break
      case "TimerFired":
        this.#fired(input.timer)
        break
      case "Resolved":
        seedResolved(state, input.id, input.addresses)
        break
      case "Start":
        this.#start()
        break
      case "Stop":
        this.#stop()
        break
      case "Join":
        join(state, input.ticket, input.seeds, input.deadline)
        break
      case "Leave":
        leave(state, input.ticket)
        break
      case "SetTags":
        setTags(state, input.tags)
        break
      case "Reach":
        reachStart(state, input.request, input.target, input.deadline)
        break
    }
    logRefusalsSummary(state)
    if (state.running && !state.reapArmed && state.members.downSince.size > 0) {
      let next = state.reapTick + REAP_INTERVAL_MILLIS
      while (next <= state.now) next += REAP_INTERVAL_MILLIS
      state.reapArmed = true
      state.setTimer({ _tag: "ReapRound" }, next)
    }
    return state.takeOutputs()
  }

  /** Outputs emitted outside `handle` (at construction: this node's own row for the registry). */
  takeOutputs(): Array<Output> {
    return this.#state.takeOutputs()
  }

  /** This node as the cluster sees it (its incarnation, tags and state). */
  get localNode(): ClusterNode {
    return this.#state.self
  }

  /** The local health score (0 = healthy; see `Awareness`). */
  get awareness(): number {
    return this.#state.awareness.score
  }

  get table(): MemberTable {
    return this.#state.table
  }

  get phi(): PhiDetectors {
    return this.#state.phi
  }

  /** Signatures this node made and verified since start (zero without identities). */
  claimWork(): { readonly signs: number; readonly verifications: number } {
    return { signs: this.#state.claims?.signs ?? 0, verifications: this.#state.claims?.verifications ?? 0 }
  }

  /** A copy of the engine's counters (the shell adds its transport's to them). */
  stats(): SwimStats {
    return { ...this.#state.counters }
  }

  /**
   * How many entries each of the engine's collections holds, for tests of
   * its memory bound: everything is bounded by members + tombstones, plus
   * the exchanges, waiters and timers in flight (each bounded in time).
   */
  footprint(): Readonly<Record<string, number>> {
    const s = this.#state
    const m = s.members
    return {
      members: m.table.size,
      tombstones: m.table.tombstones().length,
      live: m.live.size,
      alive: m.alive.size,
      recentlyDead: m.recentlyDead.size,
      probeOrder: m.probeOrder.size,
      addresses: m.addresses.size,
      downSince: m.downSince.size,
      reconnectTargets: m.reconnectTargets.size,
      detectors: s.phi.size,
      suspicions: s.suspicions.size,
      lastProbed: s.lastProbed.size,
      broadcasts: s.broadcasts.pending,
      waiters: s.waiters.size,
      exchanges: s.exchanges.size,
      exchanging: s.exchanging.size,
      lastRevived: s.lastRevived.size,
      lastLearnt: s.lastLearnt.size,
      resolving: s.resolving.size,
      joins: s.joins.size,
      reaches: s.reaches.size,
      leaveTickets: s.leaveTickets.length,
      certificates: s.claims?.certificates ?? 0,
      signatures: s.claims?.signatures ?? 0
    }
  }

  #fired(timer: Timer): void {
    const state = this.#state
    const { settings } = state
    switch (timer._tag) {
      case "ProbeRound":
        probeRound(state)
        return
      case "GossipRound":
        if (!state.running) return
        gossipRound(state)
        state.gossipTick = state.now
        // idle with nothing queued; `enqueue` arms it again (see EngineState.gossipTick)
        state.gossipArmed = state.broadcasts.pending > 0
        if (state.gossipArmed) state.setTimer(timer, state.now + settings.gossipInterval)
        return
      case "PushPullRound":
        if (!state.running) return
        pushPullRound(state)
        state.setTimer(timer, state.now + pushPullScale(settings.pushPullInterval, state.members.clusterSize))
        return
      case "ReconnectRound":
        if (!state.running) return
        reconnectRound(state)
        state.setTimer(timer, state.now + settings.reconnectInterval)
        return
      case "ReapRound":
        if (!state.running) return
        reapRound(state)
        state.reapTick = state.now
        // nothing down and no tombstone: idle until something goes down (see the end of `handle`)
        state.reapArmed = state.members.downSince.size > 0 || state.table.tombstoneCount > 0
        if (state.reapArmed) state.setTimer(timer, state.now + REAP_INTERVAL_MILLIS)
        return
      case "ProbeIndirect":
        probeIndirect(state, timer.seq)
        return
      case "ProbeEnd":
        probeEnd(state, timer.seq)
        return
      case "Suspicion":
        suspicionExpired(state, timer.target)
        return
      case "Relay":
        relayTimer(state, timer.seq)
        return
      case "Verify":
        verifyEnded(state, timer.seq)
        return
      case "Check":
        checkEnded(state, timer.seq)
        return
      case "JoinFollowUp":
        joinFollowUp(state)
        return
      case "LeaveCheck":
        leaveCheck(state)
        return
      case "Reach":
        reachTimer(state, timer.request)
        return
    }
  }

  /**
   * Starts the rounds, each at a random offset within its interval, so nodes
   * started together do not probe and gossip in lockstep.
   */
  #start(): void {
    const state = this.#state
    if (state.running) return
    state.running = true
    const { settings, now, rng } = state
    const first = {
      ProbeRound: state.awareness.scale(settings.probeInterval),
      GossipRound: settings.gossipInterval,
      PushPullRound: pushPullScale(settings.pushPullInterval, state.members.clusterSize),
      ReconnectRound: settings.reconnectInterval,
      ReapRound: REAP_INTERVAL_MILLIS
    }
    for (const round of ROUNDS) {
      const at = now + first[round] * rng()
      if (round === "GossipRound") {
        state.gossipTick = at - settings.gossipInterval
        state.gossipArmed = true
      }
      if (round === "ReapRound") {
        state.reapTick = at - REAP_INTERVAL_MILLIS
        state.reapArmed = true
      }
      state.setTimer({ _tag: round }, at)
    }
  }

  /** Stops the rounds (and abandons the probe in flight); what the node hears is still applied. */
  #stop(): void {
    const state = this.#state
    if (!state.running) return
    state.running = false
    state.gossipArmed = false
    state.reapArmed = false
    abandonProbe(state)
    for (const round of ROUNDS) state.cancelTimer({ _tag: round })
  }
}
