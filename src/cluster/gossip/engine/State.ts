/**
 * One node's whole protocol state, and the few primitives every part of the
 * engine uses to act: emit an output, arm or disarm a timer, log, count,
 * publish a table change. The parts (probing, dissemination, membership
 * updates, anti-entropy, joining) are functions over this state; `Engine`
 * dispatches inputs to them.
 *
 * Nothing here reads a clock or a random source of its own: `now` is set
 * from each input, and randomness comes from the engine's seeded `rng`.
 *
 * @since 0.1.0
 */
import { type Address, ClusterNode, type NodeId, type NodeState } from "../../Node.ts"
import { Awareness } from "../Awareness.ts"
import { Broadcasts } from "../Broadcasts.ts"
import { NodeStateUpdate } from "../Messages.ts"
import type { PhiDetectors } from "../PhiDetector.ts"
import type { MemberTable, RegistryChange } from "../Registry.ts"
import type { Suspicion } from "../Suspicion.ts"
import { ClaimBook, type Identities } from "./Claims.ts"
import { Members } from "./Members.ts"
import { type Output, type Timer, timerKey } from "./Output.ts"
import type { Rng } from "./Rng.ts"
import { type EngineSettings, type Identity, STRANGER_BURST } from "./Settings.ts"
import { type Counters, zeroCounters } from "./Stats.ts"

/** The probe in flight (one at a time: a round ends before the next begins). */
export interface ProbeInFlight {
  readonly seq: number
  /** The member as it was when the probe began: a verdict only applies at this incarnation. */
  readonly target: ClusterNode
  readonly started: number
  /** How long the probe may take: the probe interval, stretched by the health score. */
  readonly budget: number
  /** Helpers asked for an indirect ping. */
  helpers: number
  nacks: number
  /** The TCP fallback ping's exchange, while it runs. */
  tcp: number | undefined
}

/** Who waits for the ack of one sequence number (besides the probe in flight). */
export type Waiter =
  | {
      readonly kind: "probe"
      readonly target: NodeId
      /** An ack from another identity sent from this address means the address changed hands. */
      readonly address: string
    }
  | { readonly kind: "verify"; readonly target: NodeId; readonly address: string; readonly member: ClusterNode }
  | {
      /** A peer's verdict about a member we hold alive, put to the member before we take it. */
      readonly kind: "check"
      readonly target: NodeId
      readonly address: string
      readonly member: ClusterNode
      readonly verdict: NodeStateUpdate
      answered: boolean
    }
  | {
      /** A reachability check's direct ping or its ping-reqs. */
      readonly kind: "reach"
      readonly target: NodeId
      readonly address: string
      readonly request: number
      readonly route: "direct" | "indirect"
    }
  | {
      readonly kind: "relay"
      readonly target: NodeId
      readonly address: string
      readonly requestor: Address
      readonly requestSeq: number
      nacked: boolean
    }

/** An operator's reachability check in flight (see `Reachability.ts`). */
export interface ReachCheck {
  readonly request: number
  /** The member as it was when the check began. */
  readonly target: ClusterNode
  readonly started: number
  readonly deadline: number
  readonly directSeq: number
  /** The ping-reqs' sequence number, once the check went indirect. */
  indirectSeq: number | undefined
  /** The TCP ping's exchange, while it runs. */
  tcp: number | undefined
  helpers: number
  nacks: number
}

/** One seed of a join attempt: its addresses, tried in turn. */
export interface SeedProgress {
  readonly seed: string
  readonly targets: ReadonlyArray<Address>
  next: number
  readonly attempt: JoinAttempt
}

export interface JoinAttempt {
  readonly ticket: number
  readonly deadline: number
  /** Seeds not started yet (at most `MAX_BACKGROUND_EXCHANGES` run at once). */
  readonly waiting: Array<SeedProgress>
  running: number
  answered: number
  readonly failures: Array<string>
}

/** What an exchange in flight was for. */
export type ExchangeRecord =
  | {
      readonly kind: "PushPull"
      readonly to: Address
      /** Who we believe is there (its tombstone, if we reaped it, went with our state). */
      readonly peer: NodeId | undefined
      /** Set for a background exchange: its slot among `MAX_BACKGROUND_EXCHANGES`. */
      readonly background: string | undefined
      /** Set for a join exchange. */
      readonly seed: SeedProgress | undefined
    }
  | { readonly kind: "StreamPing"; readonly probeSeq: number; readonly target: NodeId }
  /** A reachability check's TCP ping (its ack carries `seq`). */
  | { readonly kind: "ReachPing"; readonly request: number; readonly seq: number }

/**
 * Constructor options for messages the engine builds from values that were
 * checked already (its own id, decoded sequence numbers and addresses): a
 * schema class otherwise validates every field of every ack it sends.
 */
export const TRUSTED = { disableChecks: true } as const

/** The largest sequence number; the next one is 0. */
const MAX_SEQ = 0xffff_ffff

export class EngineState {
  readonly settings: EngineSettings
  readonly rng: Rng
  /** The address the transport is bound to (for "is this seed me?"). */
  readonly boundAddress: Address
  /** The time of the input being handled. */
  now = 0
  self: ClusterNode
  leaving = false
  /** Between Start and Stop: the rounds run. */
  running = false
  /**
   * The gossip round's schedule: when it last fired (or was first due), and
   * whether its timer is armed. With nothing queued it is not re-armed — an
   * idle node does not wake five times a second for nothing — and the next
   * update arms it again at the schedule's next tick, where it would have run
   * anyway.
   */
  gossipTick = 0
  gossipArmed = false
  /** The reaper's schedule, kept the same way: armed only while a member is down or a tombstone kept. */
  reapTick = 0
  reapArmed = false

  readonly members: Members
  readonly phi: PhiDetectors
  readonly awareness: Awareness
  readonly broadcasts: Broadcasts<NodeStateUpdate>
  readonly suspicions = new Map<NodeId, Suspicion<NodeId>>()
  readonly waiters = new Map<number, Waiter>()
  probe: ProbeInFlight | undefined = undefined
  /** When the current (or last) probe round began. */
  probeRoundStarted = 0
  readonly lastProbed = new Map<NodeId, number>()
  lastRoundOutOfTurn = false
  /** Whether the last round-robin target had never been heard from directly (see `Probing.outOfTurn`). */
  lastTargetUnheard = false

  readonly exchanges = new Map<number, ExchangeRecord>()
  /** Peers (by id or address) with a background exchange in flight. */
  readonly exchanging = new Set<string>()
  /** When each dead member heard from was last revived, and each stranger last learnt from. */
  readonly lastRevived = new Map<NodeId, number>()
  readonly lastLearnt = new Map<string, number>()
  /**
   * Exchanges with strangers this node may still start, refilled one per
   * probe interval up to `STRANGER_BURST`: distinct (or forged) sources cannot
   * make it connect out faster than that.
   */
  strangerTokens = STRANGER_BURST
  /** Claims refused while handling the current input (`Limits`: logged a few, then summed). */
  refusalsThisStep = 0
  strangerTokensAt = 0
  /** Seed resolutions asked for by a reconnect round, with the draw that picks among their addresses. */
  readonly resolving = new Map<number, number>()

  readonly joins = new Map<number, JoinAttempt>()
  /** Operators' reachability checks in flight, by request. */
  readonly reaches = new Map<number, ReachCheck>()
  leaveTickets: Array<number> = []
  leaveDeadline = 0

  /** Signed claims (see `Claims`), with identities configured. */
  readonly claims: ClaimBook | undefined
  /** Set when a claim was refused for want of its member's certificate (the packet's sender may have it). */
  claimsMissing = false

  readonly counters: Counters = zeroCounters()
  #seq = 0
  #ids = 0
  #out: Array<Output> = []

  constructor(options: {
    readonly settings: EngineSettings
    readonly identity: Identity
    readonly table: MemberTable
    readonly phi: PhiDetectors
    readonly rng: Rng
    readonly initialSeq: number
    readonly identities?: Identities | undefined
  }) {
    const { identity, settings } = options
    this.#seq = options.initialSeq
    this.settings = settings
    this.rng = options.rng
    this.boundAddress = identity.boundAddress
    this.members = new Members(options.table)
    this.phi = options.phi
    this.claims =
      options.identities === undefined
        ? undefined
        : new ClaimBook(options.identities, settings.clusterLabel, settings.maxMembers)
    this.awareness = new Awareness(settings.awarenessMaxMultiplier)
    this.broadcasts = new Broadcasts<NodeStateUpdate>(settings.retransmitMult)
    this.self = new ClusterNode(
      {
        id: identity.id,
        name: identity.name,
        gossipAddress: identity.gossipAddress,
        ...(identity.rpcAddress === undefined ? {} : { rpcAddress: identity.rpcAddress }),
        tags: identity.tags,
        state: "Alive",
        incarnation: 0
      },
      { disableChecks: true }
    )
  }

  get table(): MemberTable {
    return this.members.table
  }

  /** The next probe sequence number (wraps at 2³²). */
  nextSeq(): number {
    this.#seq = this.#seq >= MAX_SEQ ? 0 : this.#seq + 1
    return this.#seq
  }

  /** A fresh id for an exchange or a resolution. */
  nextId(): number {
    return ++this.#ids
  }

  emit(output: Output): void {
    this.#out.push(output)
  }

  /** The outputs emitted since the last call. */
  takeOutputs(): Array<Output> {
    const out = this.#out
    this.#out = []
    return out
  }

  /** Arms `timer` at `at`, or now if that has passed (a suspicion confirmed late, say). */
  setTimer(timer: Timer, at: number): void {
    this.emit({ _tag: "SetTimer", timer, at: Math.max(at, this.now) })
  }

  cancelTimer(timer: Timer): void {
    this.emit({ _tag: "CancelTimer", key: timerKey(timer) })
  }

  log(message: string, annotations: Readonly<Record<string, unknown>> = {}): void {
    this.emit({ _tag: "Log", message, annotations })
  }

  count(metric: "packetsRejected" | "suspicions" | "refutations"): void {
    this.emit({ _tag: "Count", metric })
  }

  publish(change: RegistryChange | undefined): void {
    if (change !== undefined) this.emit({ _tag: "MembershipChanged", change })
  }

  /** This node's announcement of itself, in full (signed, with identities: once per incarnation). */
  selfUpdate(): NodeStateUpdate {
    const update = NodeStateUpdate.fromNode(this.self, this.self.id)
    return this.claims === undefined ? update : this.signed(update)
  }

  /** This node's `Left` (signed, with identities). */
  selfLeft(): NodeStateUpdate {
    const update = this.accusation(this.self.id, "Left", this.self.incarnation)
    return this.claims === undefined ? update : this.signed(update)
  }

  /** `update`, this node's claim about itself in its current state, with its signature. */
  signed(update: NodeStateUpdate, certificate?: Uint8Array): NodeStateUpdate {
    const claims = this.claims!
    return new NodeStateUpdate(
      {
        ...update,
        signature: claims.signOwn(this.self, update),
        ...(certificate === undefined ? {} : { certificate })
      },
      { disableChecks: true }
    )
  }

  /** A bare claim "`id` is `state` at `incarnation`", by `from` (this node unless given). */
  accusation(id: NodeId, state: NodeState, incarnation: number, from: NodeId = this.self.id): NodeStateUpdate {
    return new NodeStateUpdate({ nodeId: id, state, incarnation, from }, { disableChecks: true })
  }
}
