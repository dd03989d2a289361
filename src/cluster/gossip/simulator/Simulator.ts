/**
 * A discrete-event simulator of whole clusters of protocol engines: no
 * fibers, no `TestClock`, no codec on the way — one priority queue of timed
 * events (`TimedQueue`), and each event one `Engine.handle` call whose
 * outputs become later events. The network applies the same fault model as
 * the Effect-level `SimNetwork` (`FaultModel`: latency, jitter, loss,
 * partitions, isolation, one-way cuts, send delays) plus the same process
 * faults: a crash (isolated, then detached), a blackholed host (its connects
 * hang until their deadline), a paused process (its timers fire late when it
 * resumes, datagrams queue in its socket buffer, streams wait).
 *
 * Determinism: every random draw — node ids, each engine's seed, loss and
 * jitter — comes from one seeded generator, and equal times run in
 * scheduling order, so a seed replays a run exactly.
 *
 * Messages travel as objects: every receiver of an update shares the
 * sender's object, which is what lets 10,000 nodes fit in memory and skips
 * the cost of the codec. Datagram bytes are counted from the codec's sizes
 * (`measureBytes` encodes each datagram to count exactly, at a price).
 *
 * Streams are reliable (loss applies to datagrams only) but need both
 * directions, like TCP; a request to an address nobody is attached to is
 * refused after the return latency.
 *
 * @since 0.1.0
 */
import { type Address, formatAddress, type NodeId, type Tags } from "../../Node.ts"
import { addressKey } from "../engine/Addresses.ts"
import type { Input, StreamMessage } from "../engine/Input.ts"
import { type Output, timerKey } from "../engine/Output.ts"
import { type Rng, seeded } from "../engine/Rng.ts"
import { type Conditions, defaultConditions, FaultModel } from "../FaultModel.ts"
import type { Packet } from "../Messages.ts"
import type { RegistryChange } from "../Registry.ts"
import type { SimStats } from "../SimNetwork.ts"
import { TimedQueue } from "../TimedQueue.ts"
import { type Event, type EventBody, type NodeSpec, type PendingExchange, SimulatedNode } from "./SimulatedNode.ts"
import { type ByteCounting, Traffic } from "./Traffic.ts"

/** How a simulation runs: its seed, the network's conditions and what it counts. */
export interface SimulatorOptions {
  readonly seed: number
  /** Conditions of every link without an override (default: 1 ms, no jitter, no loss). */
  readonly defaults?: Partial<Conditions> | undefined
  /** Datagrams a paused node's socket buffer holds (default 4096, as `SimNetwork`). */
  readonly receiveCapacity?: number | undefined
  /** How datagram bytes are counted (see `Traffic`; default `"estimate"`). */
  readonly bytes?: ByteCounting | undefined
  /** Called with every change an engine makes to its member table (events, for tests and benchmarks). */
  readonly onChange?: ((node: SimulatedNode, change: RegistryChange) => void) | undefined
}

/** What one node does between two events: nothing waits, so this is all there is. */
export class Simulator {
  readonly faults: FaultModel
  readonly rng: Rng
  readonly #queue = new TimedQueue<Event>()
  readonly #nodes = new Map<string, SimulatedNode>()
  readonly #traffic: Traffic
  readonly #receiveCapacity: number
  /** Time spent inside `Engine.handle`, in ms, while {@link timeEngine} is on. */
  engineMillis = 0
  /** Whether to time every engine step (costs two clock reads per step). */
  timeEngine = false
  readonly #onChange: ((node: SimulatedNode, change: RegistryChange) => void) | undefined
  #seq = 0
  #tickets = 0
  #now = 0
  #events = 0

  constructor(options: SimulatorOptions) {
    this.rng = seeded(options.seed)
    this.faults = new FaultModel({ ...defaultConditions, ...options.defaults })
    this.#receiveCapacity = options.receiveCapacity ?? 4096
    this.#traffic = new Traffic(options.bytes ?? "estimate")
    this.#onChange = options.onChange
  }

  /** The simulated time, in ms. */
  get now(): number {
    return this.#now
  }

  /** Events handled so far. */
  get events(): number {
    return this.#events
  }

  get pending(): number {
    return this.#queue.size
  }

  /** A UUID v4 from the simulator's generator. */
  nodeId(): NodeId {
    const hex = (bits: number) =>
      Math.floor(this.rng() * 2 ** bits)
        .toString(16)
        .padStart(bits / 4, "0")
    const variant = (8 + Math.floor(this.rng() * 4)).toString(16)
    return `${hex(32)}-${hex(16)}-4${hex(12)}-${variant}${hex(12)}-${hex(24)}${hex(24)}` as NodeId
  }

  /**
   * Starts a node as a `Cluster` would: its `healthy` tag published, the
   * rounds started, and a join through `seeds` (retried with backoff until
   * `joinTimeout`).
   */
  addNode(spec: Omit<NodeSpec, "id"> & { readonly id?: NodeId | undefined }): SimulatedNode {
    const node = new SimulatedNode({ ...spec, id: spec.id ?? this.nodeId() }, Math.floor(this.rng() * 2 ** 31))
    if (this.#nodes.has(node.key)) throw new Error(`address ${node.key} is in use`)
    this.#nodes.set(node.key, node)
    this.#execute(node, node.engine.takeOutputs())
    this.#step(node, { _tag: "SetTags", tags: SimulatedNode.startingTags(spec.tags) })
    this.#step(node, { _tag: "Start" })
    const seeds = spec.seeds ?? []
    if (seeds.length === 0) node.joined = true
    else {
      node.join = { ticket: ++this.#tickets, deadline: this.#now + (spec.joinTimeout ?? 10_000), backoff: 100, seeds }
      this.#attemptJoin(node)
    }
    return node
  }

  /** The node attached at `address`, if any. */
  node(address: Address): SimulatedNode | undefined {
    return this.#nodes.get(formatAddress(address))
  }

  /** Handles every event due up to `until` (ms); the clock ends at `until`. */
  runUntil(until: number): void {
    const queue = this.#queue
    while (true) {
      const next = queue.peek()
      if (next === undefined || next.time > until) break
      queue.pop()
      this.#now = next.time
      this.#events++
      this.#handle(next)
    }
    this.#now = Math.max(this.#now, until)
  }

  /** Moves time forward by `ms`. */
  advance(ms: number): void {
    this.runUntil(this.#now + ms)
  }

  /** Runs until `condition` holds (checked every `step` ms) or `limit` ms passed; the ms it took, if it did. */
  advanceUntil(condition: () => boolean, limit: number, step = 100): number | undefined {
    for (let elapsed = 0; elapsed <= limit; elapsed += step) {
      if (condition()) return elapsed
      this.advance(step)
    }
    return undefined
  }

  /** The node stops without a word: cut off first (nothing it did is delivered), then detached. */
  crash(node: SimulatedNode): void {
    this.faults.isolate(node.key)
    this.#detach(node)
  }

  /** The node leaves gracefully, then stops (once its `Left` went out). */
  leave(node: SimulatedNode): void {
    node.leaveTicket = ++this.#tickets
    this.#step(node, { _tag: "Leave", ticket: node.leaveTicket })
  }

  /** The node publishes new tags (the application's `setTags`). */
  setTags(node: SimulatedNode, tags: Tags): void {
    this.#step(node, { _tag: "SetTags", tags: SimulatedNode.startingTags(tags) })
  }

  /** Stops the node without leaving or isolating it (its address is refused from now on). */
  stop(node: SimulatedNode): void {
    this.#detach(node)
  }

  /** Freezes the node (SIGSTOP): its timers wait, datagrams queue, streams wait. */
  pause(node: SimulatedNode): void {
    node.paused = true
    node.socketsAsleep = true
  }

  /** Lets a paused node run: overdue timers fire now, its sockets are read a millisecond later. */
  resume(node: SimulatedNode): void {
    if (!node.paused) return
    node.paused = false
    const overdue = node.overdue.splice(0)
    for (const event of overdue) this.#handle(event)
    this.#schedule(this.#now + 1, { node, kind: "wake" })
  }

  /** The traffic counters of one node (by node or address). */
  stats(node: SimulatedNode | Address): SimStats {
    const key = node instanceof SimulatedNode ? node.key : formatAddress(node)
    return this.#traffic.of(key)
  }

  /** How bytes are counted now (a benchmark counts them only over its traffic window). */
  get bytes(): ByteCounting {
    return this.#traffic.bytes
  }

  set bytes(counting: ByteCounting) {
    this.#traffic.bytes = counting
  }

  get totals(): SimStats {
    return this.#traffic.totals
  }

  // --- events --------------------------------------------------------------

  /** Queues `event` at `time` (the body gains its time and sequence number, in place: no copy per event). */
  #schedule(time: number, event: EventBody): Event {
    const scheduled = event as EventBody & { time: number; seq: number }
    scheduled.time = time
    scheduled.seq = this.#seq++
    this.#queue.push(scheduled)
    return scheduled
  }

  #handle(event: Event): void {
    const node = event.node
    if (!node.attached) {
      // nobody is attached there any more: a connection is refused
      if (event.kind === "request") this.#respond(event.exchange, node.key, "connection refused")
      return
    }
    switch (event.kind) {
      case "timer":
        if (node.timers.get(event.key) !== event) return
        if (node.paused) {
          node.overdue.push(event)
          return
        }
        node.timers.delete(event.key)
        this.#step(node, { _tag: "TimerFired", timer: event.timer })
        return
      case "deadline":
        if (event.exchange.done) return
        if (node.paused) {
          node.overdue.push(event)
          return
        }
        this.#endExchange(event.exchange, "exchange timed out", true)
        return
      case "rejoin":
        if (node.paused) {
          node.overdue.push(event)
          return
        }
        this.#attemptJoin(node)
        return
      case "wake": {
        if (node.paused) return
        node.socketsAsleep = false
        const queued = node.inbox.splice(0)
        for (const e of queued) this.#handle(e)
        return
      }
      default:
        if (node.socketsAsleep) {
          this.#enqueueWhileAsleep(node, event)
          return
        }
        this.#socketEvent(event)
        return
    }
  }

  #enqueueWhileAsleep(node: SimulatedNode, event: Event): void {
    if (event.kind === "datagram" && node.inbox.length >= this.#receiveCapacity) {
      this.#traffic.count(node.key, "dropped")
      return
    }
    node.inbox.push(event)
  }

  #socketEvent(event: Event): void {
    const node = event.node
    switch (event.kind) {
      case "datagram": {
        if (this.faults.blocked(event.fromKey, node.key)) {
          this.#traffic.count(event.fromKey, "droppedPartition")
          return
        }
        this.#traffic.received(node.key, event.bytes)
        this.#step(node, { _tag: "Datagram", from: event.from, payload: event.packet })
        return
      }
      case "request":
        this.#serve(node, event.exchange)
        return
      case "response": {
        const { exchange, result } = event
        if (exchange.done) return
        typeof result === "string" ? this.#endExchange(exchange, result, false) : this.#answer(exchange, result)
        return
      }
      case "resolved":
        this.#step(node, { _tag: "Resolved", id: event.id, addresses: event.addresses })
        return
    }
  }

  /** One engine step; its outputs become events. */
  #step(node: SimulatedNode, input: Input): void {
    this.#execute(node, this.#engineStep(node, input))
  }

  #engineStep(node: SimulatedNode, input: Input): Array<Output> {
    if (!this.timeEngine) return node.engine.handle(this.#now, input)
    const started = performance.now()
    const outputs = node.engine.handle(this.#now, input)
    this.engineMillis += performance.now() - started
    return outputs
  }

  #execute(node: SimulatedNode, outputs: ReadonlyArray<Output>): void {
    for (const output of outputs) {
      switch (output._tag) {
        case "Send":
          this.#send(node, output.to, output.packet)
          break
        case "OpenExchange":
          this.#open(node, { id: output.id, from: node, to: output.to, request: output.request, done: false }, output)
          break
        case "CancelExchange": {
          const exchange = node.exchanges.get(output.id)
          if (exchange !== undefined) exchange.done = true
          node.exchanges.delete(output.id)
          break
        }
        case "SetTimer": {
          const key = timerKey(output.timer)
          node.timers.set(
            key,
            this.#schedule(Math.max(this.#now, output.at), { node, kind: "timer", key, timer: output.timer })
          )
          break
        }
        case "CancelTimer":
          node.timers.delete(output.key)
          break
        case "Resolve":
          // seeds are IP literals here: they resolve to themselves
          this.#schedule(this.#now, { node, kind: "resolved", id: output.id, addresses: [output.seed] })
          break
        case "JoinEnded":
          this.#joinEnded(node, output.answered)
          break
        case "LeaveEnded":
          if (output.ticket === node.leaveTicket) {
            node.left = true
            this.#detach(node)
          }
          break
        case "MembershipChanged":
          this.#onChange?.(node, output.change)
          break
        default:
          // logs, counts and replies are not the network's business
          break
      }
    }
  }

  // --- datagrams -------------------------------------------------------------

  #send(node: SimulatedNode, to: Address, packet: Packet): void {
    const fromKey = node.key
    const toKey = addressKey(to)
    const bytes = this.#traffic.sizeOf(node.settings.clusterLabel, node.settings.maxPacketSize, packet)
    this.#traffic.sent(fromKey, bytes)
    if (this.faults.blocked(fromKey, toKey)) {
      this.#traffic.count(fromKey, "droppedPartition")
      return
    }
    const conditions = this.faults.conditionsOf(fromKey, toKey)
    if (this.faults.loses(conditions, this.rng)) {
      this.#traffic.count(fromKey, "droppedLoss")
      return
    }
    const at = this.#now + this.faults.delayOf(fromKey, conditions, this.rng)
    const target = this.#nodes.get(toKey)
    if (target === undefined) {
      this.#traffic.count(fromKey, "droppedUnreachable")
      return
    }
    this.#schedule(at, { node: target, kind: "datagram", from: node.address, fromKey, packet, bytes })
  }

  // --- streams ---------------------------------------------------------------

  #open(node: SimulatedNode, exchange: PendingExchange, output: Output & { _tag: "OpenExchange" }): void {
    const fromKey = node.key
    const toKey = addressKey(exchange.to)
    node.exchanges.set(exchange.id, exchange)
    this.#traffic.count(fromKey, "exchanges")
    this.#schedule(Math.max(this.#now, output.deadline), { node, kind: "deadline", exchange })
    // a stream needs both directions (TCP's handshake): a one-way cut hangs it either way
    if (this.faults.blocked(fromKey, toKey) || this.faults.blocked(toKey, fromKey)) return
    const target = this.#nodes.get(toKey)
    const delay = this.faults.delayOf(fromKey, this.faults.conditionsOf(fromKey, toKey), this.rng)
    if (target === undefined) {
      // refused once the request got there: the refusal comes back over the reverse link
      const back = this.faults.delayOf(toKey, this.faults.conditionsOf(toKey, fromKey), this.rng)
      this.#schedule(this.#now + delay + back, { node, kind: "response", exchange, result: "connection refused" })
      return
    }
    this.#schedule(this.#now + delay, { node: target, kind: "request", exchange })
  }

  /** A request reached `node`: its engine answers at once (a paused node's sockets held it until now). */
  #serve(node: SimulatedNode, exchange: PendingExchange): void {
    if (exchange.done || this.faults.blocked(exchange.from.key, node.key)) return
    const request = ++this.#tickets
    const outputs = this.#engineStep(node, {
      _tag: "StreamRequest",
      request,
      from: exchange.from.address,
      payload: exchange.request
    })
    this.#execute(node, outputs)
    for (const output of outputs) {
      if ((output._tag === "Reply" || output._tag === "Refuse") && output.request === request) {
        this.#respond(exchange, node.key, output._tag === "Reply" ? output.response : output.reason)
        return
      }
    }
    this.#respond(exchange, node.key, "exchange closed without a response")
  }

  /** The response travels back over the reverse link; a blocked one never arrives (the caller's deadline ends it). */
  #respond(exchange: PendingExchange, fromKey: string, result: StreamMessage | string): void {
    const toKey = exchange.from.key
    const delay = this.faults.delayOf(fromKey, this.faults.conditionsOf(fromKey, toKey), this.rng)
    if (this.faults.blocked(fromKey, toKey)) return
    this.#schedule(this.#now + delay, { node: exchange.from, kind: "response", exchange, result })
  }

  #answer(exchange: PendingExchange, response: StreamMessage): void {
    exchange.done = true
    exchange.from.exchanges.delete(exchange.id)
    this.#step(exchange.from, { _tag: "ExchangeAnswered", id: exchange.id, payload: response })
  }

  #endExchange(exchange: PendingExchange, reason: string, timedOut: boolean): void {
    exchange.done = true
    exchange.from.exchanges.delete(exchange.id)
    this.#traffic.count(exchange.from.key, "exchangesFailed")
    this.#step(exchange.from, { _tag: "ExchangeFailed", id: exchange.id, reason, timedOut })
  }

  // --- joining -----------------------------------------------------------------

  #attemptJoin(node: SimulatedNode): void {
    const join = node.join
    if (join === undefined) return
    this.#step(node, {
      _tag: "Join",
      ticket: join.ticket,
      seeds: join.seeds.map((seed) => ({ seed: formatAddress(seed), addresses: [seed] })),
      deadline: join.deadline
    })
  }

  /** A join attempt ended: done if a seed answered; else retried with backoff (as the shell does) until the deadline. */
  #joinEnded(node: SimulatedNode, answered: number): void {
    const join = node.join
    if (join === undefined) return
    if (answered > 0) {
      node.joined = true
      node.join = undefined
      return
    }
    if (this.#now >= join.deadline) {
      node.join = undefined
      return
    }
    const wait = Math.min(join.backoff, join.deadline - this.#now) * (0.8 + 0.4 * this.rng())
    join.backoff = Math.min(join.backoff * 2, 2000)
    join.ticket = ++this.#tickets
    this.#schedule(this.#now + wait, { node, kind: "rejoin" })
  }

  #detach(node: SimulatedNode): void {
    node.attached = false
    node.timers.clear()
    node.overdue.length = 0
    node.inbox.length = 0
    if (this.#nodes.get(node.key) === node) this.#nodes.delete(node.key)
  }
}
