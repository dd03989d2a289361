/**
 * A deterministic in-memory network for `Transport`: latency, jitter, loss,
 * partitions and slow nodes that a test (or a benchmark with thousands of
 * nodes) controls while the cluster runs.
 *
 * Determinism: time is read only through `Clock` and every loss / jitter
 * decision is drawn from `Random`, both captured when the network is built, so
 * `TestClock` plus a seeded `Random` replays a run exactly. Deliveries sit in
 * one priority queue ordered by (delivery time, sequence number) and a single
 * timer fiber sleeps until the earliest one; when a packet is scheduled
 * earlier than the armed timer (a faster link), the timer is replaced. There
 * is no fiber per packet.
 *
 * How `TestClock.adjust(d)` behaves (read from effect 4.1
 * `src/testing/TestClock.ts`), which this design relies on:
 * - Sleeps are kept sorted by wake time; sleeps with equal wake times wake in
 *   registration order. `adjust` repeatedly pops the earliest sleep whose time
 *   is ≤ now + d, sets the clock to exactly that time and opens its latch.
 * - After each wake it waits until every task transitively scheduled by the
 *   woken fiber (through the TestClock's scheduler: fiber resumptions, queue
 *   offers waking takers, forks) has run, and only then pops the next sleep.
 *   So sleeps registered *during* the adjustment whose time falls inside the
 *   window also run within the same `adjust`, in time order: a packet sent at
 *   t=3 ms with 1 ms latency is delivered at t=4 ms, its reply at t=5 ms, all
 *   inside one `adjust("10 seconds")`.
 * - It only tracks Effect scheduler tasks: work resumed by real I/O or a
 *   promise is not waited for, and a woken fiber still busy after the
 *   `warningDelay` (1 s of real time) is left behind with a warning.
 * - A sleep of ≤ 0 returns at once without registering. `adjust` starts with a
 *   yield, so fibers forked just before it get to register their sleeps.
 * The timer fiber is started with `Effect.runForkWith`, which runs it
 * synchronously up to its first sleep, so its sleep is registered before the
 * `send` that armed it returns.
 *
 * Streams (push-pull exchanges) are reliable: loss applies to datagrams only,
 * but partitions, isolation and cuts block both. A request is delivered after
 * the link latency, the target's handler runs, and its response travels back
 * after the reverse link's latency; a blocked request or response is never
 * delivered, so the caller waits until its own deadline — a blackholed link,
 * whose connects hang with no reset, as on a real network that drops packets.
 * As over TCP, an exchange needs both directions: a one-way cut blocks streams
 * either way. An exchange with an address nobody serves is refused after the
 * return latency. As over TCP, the handler sees the caller's host with an
 * ephemeral port, never its gossip port.
 *
 * Faults a real network has, beyond loss and latency: `partition` (groups that
 * cannot reach each other), `isolate` (a host that vanished: everything to and
 * from it dropped), `cut` (one direction of one link) and `pause` (a process
 * stopped by SIGSTOP or a long GC pause: its fibers sleep through their timers,
 * datagrams queue in its socket buffer, and everything resumes — late — at
 * `resume`). Pausing needs the node to run on {@link SimNetwork.clockFor}.
 *
 * Build the network inside each test (not in a shared `layer(...)` block): it
 * captures the `Clock`, `Random` and scheduler of the context it is built in.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Latch from "effect/Latch"
import * as Layer from "effect/Layer"
import * as NetAddress from "effect/net/NetAddress"
import * as Queue from "effect/Queue"
import * as Random from "effect/Random"
import * as Result from "effect/Result"
import type * as Scope from "effect/Scope"
import { InvalidConfiguration, NetworkError } from "../Errors.ts"
import { Address, formatAddress } from "../Node.ts"
import { type Conditions, defaultConditions, FaultModel, type NodeOverride } from "./FaultModel.ts"
import { type Timed, TimedQueue } from "./TimedQueue.ts"
import { logPacket, type Packet, type StreamHandler, Transport, type TransportStats } from "./Transport.ts"

/** Conditions of a link (or of every link of a node). Unset fields fall back to the next level. */
export interface LinkConditions {
  /** One-way delay. */
  readonly latency?: Duration.Input
  /** Extra delay drawn uniformly from [0, jitter) per datagram / stream message. */
  readonly jitter?: Duration.Input
  /** Probability in [0, 1] that a datagram is lost. Streams are never lossy. */
  readonly loss?: number
}

/** Conditions of a node: applied to every link from and to it, plus a delay on everything it sends. */
export interface NodeConditions extends LinkConditions {
  /**
   * Added to everything this node sends (datagrams, exchange requests and
   * responses): an overloaded node whose acks arrive after the ping timeout.
   */
  readonly sendDelay?: Duration.Input
}

/** Counters for one address (or, in `totals`, the whole network). */
export interface SimStats extends TransportStats {
  /** Datagrams this node sent that the network lost (link loss). */
  readonly droppedLoss: number
  /** Datagrams this node sent that a partition or isolation blocked. */
  readonly droppedPartition: number
  /** Datagrams this node sent to an address nobody was attached to. */
  readonly droppedUnreachable: number
  /** Exchanges this node started. */
  readonly exchanges: number
  /** Exchanges this node started that failed (refused, blocked, timed out, too large). */
  readonly exchangesFailed: number
}

/** Network-wide counters. */
export interface SimTotals extends SimStats {
  /** Datagrams and stream messages scheduled but not yet delivered. */
  readonly inFlight: number
}

/** Options of a network. */
export interface SimNetworkOptions {
  /** Conditions of every link without an override (default: 1 ms latency, no jitter, no loss). */
  readonly defaults?: LinkConditions
  /** Datagrams queued per transport before new ones are dropped (default 4096). */
  readonly receiveCapacity?: number
  /** Largest datagram accepted by `send`, like a UDP socket's limit (default 65507). */
  readonly maxDatagramSize?: number
}

export class SimNetwork extends Context.Service<
  SimNetwork,
  {
    /**
     * A transport bound to `address` (port 0 picks a free port). Fails if the
     * address is taken; detaches when the scope closes.
     */
    readonly attach: (address: Address) => Effect.Effect<Transport["Service"], NetworkError, Scope.Scope>
    /** Replaces the name table `resolve` uses: host name → IP literals (or other names). */
    readonly setHostnames: (table: Readonly<Record<string, ReadonlyArray<string>>>) => Effect.Effect<void>
    /** Replaces the conditions of links without overrides (unset fields keep 1 ms / 0 / 0). */
    readonly setDefaults: (conditions: LinkConditions) => Effect.Effect<void, InvalidConfiguration>
    /** Overrides the one-way link `from` → `to` (takes precedence over node conditions). */
    readonly setLink: (
      from: Address,
      to: Address,
      conditions: LinkConditions
    ) => Effect.Effect<void, InvalidConfiguration>
    /** Removes the override of the one-way link `from` → `to` (node conditions and defaults apply again). */
    readonly clearLink: (from: Address, to: Address) => Effect.Effect<void>
    /**
     * Conditions for every link from and to `address`. When both ends have
     * node conditions the worse applies: the larger latency and jitter, and
     * loss combined as independent (1 − (1 − a)(1 − b)).
     */
    readonly setNode: (address: Address, conditions: NodeConditions) => Effect.Effect<void, InvalidConfiguration>
    /** Removes the node conditions of `address`. */
    readonly clearNode: (address: Address) => Effect.Effect<void>
    /**
     * Splits the network: nodes in different groups cannot reach each other.
     * Addresses in no group form one more group together, so `partition([[a]])`
     * cuts `a` off from everyone. Replaces any previous partition.
     */
    readonly partition: (groups: ReadonlyArray<ReadonlyArray<Address>>) => Effect.Effect<void>
    /** Cuts one node off from everyone (independently of `partition`): a host that vanished. */
    readonly isolate: (address: Address) => Effect.Effect<void>
    /** Drops everything sent from `from` to `to` (one direction only). */
    readonly cut: (from: Address, to: Address) => Effect.Effect<void>
    /** Restores the direction `from` → `to` that `cut` dropped. */
    readonly uncut: (from: Address, to: Address) => Effect.Effect<void>
    /** Removes the partition, every isolation and every cut (not pauses: see `resume`). */
    readonly heal: Effect.Effect<void>
    /**
     * Freezes the node at `address` (SIGSTOP, a long GC pause): its sleeps do
     * not end, its receive loop does not wake, exchanges to and from it wait —
     * while datagrams to it queue (up to the receive capacity) and the clock
     * runs on. The node's fibers must run on `clockFor(address)`.
     */
    readonly pause: (address: Address) => Effect.Effect<void>
    /** Lets a paused node run again: every overdue timer fires, queued datagrams are read. */
    readonly resume: (address: Address) => Effect.Effect<void>
    /**
     * The clock a node at `address` runs on: the network's clock, whose sleeps
     * also wait while the node is paused. Provide it to the node's layer.
     */
    readonly clockFor: (address: Address) => Clock.Clock
    /** Counters of one address (kept after it detaches). */
    readonly stats: (address: Address) => Effect.Effect<SimStats>
    /** Counters of the whole network. */
    readonly totals: Effect.Effect<SimTotals>
    /** Addresses currently attached, in attach order. */
    readonly attached: Effect.Effect<ReadonlyArray<Address>>
  }
>()("shoal/cluster/gossip/SimNetwork") {
  /** A network with default conditions. */
  static readonly layer: Layer.Layer<SimNetwork> = Layer.effect(
    SimNetwork,
    Effect.suspend(() => Effect.orDie(make()))
  )

  /** Builds a network in the current scope (see the module-level `make`). */
  static readonly make = (
    options?: SimNetworkOptions
  ): Effect.Effect<SimNetwork["Service"], InvalidConfiguration, Scope.Scope> => make(options)

  /** A network with the given options. */
  static readonly layerWith = (options: SimNetworkOptions): Layer.Layer<SimNetwork, InvalidConfiguration> =>
    Layer.effect(SimNetwork, make(options))

  /** A `Transport` attached to `address` on the network in context. */
  static readonly transport = (address: Address): Layer.Layer<Transport, NetworkError, SimNetwork> =>
    Layer.effect(
      Transport,
      Effect.gen(function* () {
        const network = yield* SimNetwork
        return yield* network.attach(address)
      })
    )
}

// ---------------------------------------------------------------------------
// internals
// ---------------------------------------------------------------------------

class Counters {
  packetsSent = 0
  bytesSent = 0
  packetsReceived = 0
  bytesReceived = 0
  dropped = 0
  droppedLoss = 0
  droppedPartition = 0
  droppedUnreachable = 0
  exchanges = 0
  exchangesFailed = 0
  snapshot(): SimStats {
    return {
      packetsSent: this.packetsSent,
      bytesSent: this.bytesSent,
      packetsReceived: this.packetsReceived,
      bytesReceived: this.bytesReceived,
      dropped: this.dropped,
      droppedLoss: this.droppedLoss,
      droppedPartition: this.droppedPartition,
      droppedUnreachable: this.droppedUnreachable,
      exchanges: this.exchanges,
      exchangesFailed: this.exchangesFailed
    }
  }
}

interface Server {
  readonly handler: StreamHandler
  readonly maxBytes: number
  readonly timeout: Duration.Input
  readonly context: Context.Context<never>
  readonly scope: Scope.Scope
}

interface SimNode {
  readonly address: Address
  readonly key: string
  readonly queue: Queue.Queue<Packet>
  readonly counters: Counters
  server: Server | undefined
  attached: boolean
}

interface Delivery extends Timed {
  readonly run: () => void
}

const firstEphemeralPort = 49152
// source ports of simulated stream connections (Linux's default ephemeral range)
const ephemeralBase = 32768
const ephemeralRange = 28232

const isIpLiteral = (host: string): boolean => Result.isSuccess(NetAddress.ipFromString(host))

const durationMillis = (field: string, input: Duration.Input): Effect.Effect<number, InvalidConfiguration> => {
  const millis = Duration.fromInput(input)
  if (millis._tag === "None") {
    return Effect.fail(new InvalidConfiguration({ field, reason: `not a duration: ${String(input)}` }))
  }
  const value = Duration.toMillis(millis.value)
  return Number.isFinite(value) && value >= 0
    ? Effect.succeed(value)
    : Effect.fail(new InvalidConfiguration({ field, reason: "must be a finite, non-negative duration" }))
}

const lossRate = (loss: number): Effect.Effect<number, InvalidConfiguration> =>
  Number.isFinite(loss) && loss >= 0 && loss <= 1
    ? Effect.succeed(loss)
    : Effect.fail(new InvalidConfiguration({ field: "loss", reason: `must be between 0 and 1, got ${loss}` }))

const parseConditions = Effect.fnUntraced(function* (
  conditions: NodeConditions
): Effect.fn.Return<NodeOverride, InvalidConfiguration> {
  const out: { latency?: number; jitter?: number; loss?: number; sendDelay?: number } = {}
  if (conditions.latency !== undefined) out.latency = yield* durationMillis("latency", conditions.latency)
  if (conditions.jitter !== undefined) out.jitter = yield* durationMillis("jitter", conditions.jitter)
  if (conditions.loss !== undefined) out.loss = yield* lossRate(conditions.loss)
  if (conditions.sendDelay !== undefined) out.sendDelay = yield* durationMillis("sendDelay", conditions.sendDelay)
  return out
})

const failure = (message: string, address: string, cause?: unknown): NetworkError =>
  cause === undefined ? new NetworkError({ message, address }) : new NetworkError({ message, address, cause })

/**
 * Builds a network in the current context (its `Clock`, `Random` and
 * scheduler are the ones every delivery uses). Closes with the scope.
 */
export const make = Effect.fnUntraced(function* (
  options: SimNetworkOptions = {}
): Effect.fn.Return<SimNetwork["Service"], InvalidConfiguration, Scope.Scope> {
  const receiveCapacity = options.receiveCapacity ?? 4096
  if (!Number.isSafeInteger(receiveCapacity) || receiveCapacity < 1) {
    return yield* new InvalidConfiguration({ field: "receiveCapacity", reason: "must be a positive integer" })
  }
  const maxDatagramSize = options.maxDatagramSize ?? 65507
  if (!Number.isSafeInteger(maxDatagramSize) || maxDatagramSize < 1) {
    return yield* new InvalidConfiguration({ field: "maxDatagramSize", reason: "must be a positive integer" })
  }
  const initial = yield* parseConditions(options.defaults ?? {})

  const context = yield* Effect.context<never>()
  const clock = yield* Clock.Clock
  const random = yield* Random.Random
  const scope = yield* Effect.scope

  const faults = new FaultModel({
    latency: initial.latency ?? defaultConditions.latency,
    jitter: initial.jitter ?? defaultConditions.jitter,
    loss: initial.loss ?? defaultConditions.loss
  })
  const nextDouble = () => random.nextDoubleUnsafe()
  const nodes = new Map<string, SimNode>()
  const counters = new Map<string, Counters>()
  let hostnames = new Map<string, ReadonlyArray<string>>()
  /**
   * Paused addresses: each one's latches open on resume — its timers at once,
   * its sockets a millisecond later, as Node's event loop runs due timers
   * before it polls for I/O (so a woken process first sees its timeouts
   * expire, then reads the answers that queued while it slept).
   */
  const pausedTimers = new Map<string, Latch.Latch>()
  const paused = new Map<string, Latch.Latch>()
  let closed = false

  /** Waits while `key`'s sockets are paused (at once otherwise). */
  const whileAwake = (key: string): Effect.Effect<void> =>
    Effect.suspend(() => {
      const latch = paused.get(key)
      return latch === undefined ? Effect.void : Effect.andThen(latch.await, whileAwake(key))
    })

  /** Waits while `key`'s timers are paused. */
  const timersAwake = (key: string): Effect.Effect<void> =>
    Effect.suspend(() => {
      const latch = pausedTimers.get(key)
      return latch === undefined ? Effect.void : Effect.andThen(latch.await, timersAwake(key))
    })

  /** Runs `run` now, or when `key` resumes if it is paused (the work a frozen process does later). */
  const whenAwake = (key: string, run: () => void): void => {
    if (!paused.has(key)) {
      run()
      return
    }
    Fiber.runIn(Effect.runForkWith(context)(Effect.andThen(whileAwake(key), Effect.sync(run))), scope)
  }

  const countersOf = (key: string): Counters => {
    let c = counters.get(key)
    if (c === undefined) {
      c = new Counters()
      counters.set(key, c)
    }
    return c
  }

  const blocked = (from: string, to: string): boolean => faults.blocked(from, to)
  const conditionsOf = (from: string, to: string): Conditions => faults.conditionsOf(from, to)
  /** One-way delay for a message from → to, drawing jitter from `Random`. */
  const delayOf = (from: string, conditions: Conditions): number => faults.delayOf(from, conditions, nextDouble)

  // -- the delivery scheduler -------------------------------------------------

  let streamSequence = 0
  const heap = new TimedQueue<Delivery>()
  let sequence = 0
  let armedAt: number | undefined
  let generation = 0
  let timer: Fiber.Fiber<void> | undefined

  const deliverDue = (limit: number): void => {
    while (true) {
      const next = heap.peek()
      if (next === undefined || next.time > limit) return
      heap.pop()
      try {
        next.run()
      } catch {
        // a delivery never throws by construction; never let one kill the timer
      }
    }
  }

  const timerLoop = (gen: number, first: number): Effect.Effect<void> =>
    Effect.gen(function* () {
      let target = first
      while (true) {
        const now = clock.currentTimeMillisUnsafe()
        if (target > now) yield* Effect.sleep(target - now)
        if (gen !== generation || closed) return
        deliverDue(Math.max(target, clock.currentTimeMillisUnsafe()))
        // a delivery may have armed an earlier timer, which now owns the heap
        if (gen !== generation || closed) return
        const next = heap.peek()
        if (next === undefined) {
          armedAt = undefined
          timer = undefined
          return
        }
        target = next.time
        armedAt = target
      }
    })

  const arm = (time: number): void => {
    armedAt = time
    const gen = ++generation
    const previous = timer
    timer = undefined
    const fiber = Effect.runForkWith(context)(timerLoop(gen, time))
    // the loop may already have finished (nothing to wait for)
    if (gen === generation && fiber.pollUnsafe() === undefined) {
      timer = fiber
      Fiber.runIn(fiber, scope)
    }
    previous?.interruptUnsafe()
  }

  const schedule = (delay: number, run: () => void): void => {
    if (closed) return
    const time = clock.currentTimeMillisUnsafe() + delay
    heap.push({ time, seq: sequence++, run })
    if (armedAt === undefined || time < armedAt) arm(time)
  }

  yield* Effect.addFinalizer(() =>
    Effect.sync(() => {
      closed = true
      heap.clear()
      armedAt = undefined
      const fiber = timer
      timer = undefined
      fiber?.interruptUnsafe()
    })
  )

  // -- transports -------------------------------------------------------------

  const resolve = (address: Address): Effect.Effect<ReadonlyArray<Address>, NetworkError> =>
    Effect.suspend(() => {
      const names = hostnames.get(address.host)
      if (names !== undefined) {
        return names.length === 0
          ? Effect.fail(failure(`${address.host} has no addresses`, formatAddress(address)))
          : Effect.succeed(names.map((host) => new Address({ host, port: address.port }, { disableChecks: true })))
      }
      if (isIpLiteral(address.host)) return Effect.succeed([address])
      return Effect.fail(failure(`cannot resolve host ${address.host}`, formatAddress(address)))
    })

  const freePort = (host: string): number | undefined => {
    for (let port = firstEphemeralPort; port <= 65535; port++) {
      if (!nodes.has(formatAddress({ host, port }))) return port
    }
    return undefined
  }

  const makeTransport = (node: SimNode): Transport["Service"] => {
    const local = node.address
    const fromKey = node.key
    const own = node.counters

    const send = (to: Address, payload: Uint8Array): Effect.Effect<void, NetworkError> =>
      Effect.suspend(() => {
        const toKey = formatAddress(to)
        if (!node.attached) return Effect.fail(failure("transport is closed", toKey))
        if (payload.length > maxDatagramSize) {
          return Effect.fail(failure(`datagram of ${payload.length} bytes exceeds ${maxDatagramSize}`, toKey))
        }
        own.packetsSent++
        own.bytesSent += payload.length
        if (blocked(fromKey, toKey)) {
          own.droppedPartition++
        } else {
          const conditions = conditionsOf(fromKey, toKey)
          if (faults.loses(conditions, nextDouble)) {
            own.droppedLoss++
          } else {
            const bytes = payload.slice()
            schedule(delayOf(fromKey, conditions), () => deliver(local, fromKey, toKey, bytes))
          }
        }
        return logPacket("sent datagram", to, payload.length)
      })

    const receive: Effect.Effect<readonly [Packet, ...Array<Packet>]> = Effect.tap(
      // a paused process reads nothing: datagrams stay in its socket buffer until it resumes
      Effect.andThen(whileAwake(fromKey), Queue.takeAll(node.queue)).pipe(Effect.tap(() => whileAwake(fromKey))),
      (packets) =>
        Effect.forEach(packets, (packet) => logPacket("received datagram", packet.from, packet.payload.length), {
          discard: true
        })
    )

    const exchange = (
      to: Address,
      request: Uint8Array,
      exchangeOptions: { readonly timeout: Duration.Input; readonly maxBytes: number }
    ): Effect.Effect<Uint8Array, NetworkError> =>
      Effect.suspend(() => {
        const toKey = formatAddress(to)
        if (!node.attached) return Effect.fail(failure("transport is closed", toKey))
        own.exchanges++
        const reply = Deferred.makeUnsafe<Uint8Array, NetworkError>()
        let done = false
        const bytes = request.slice()
        const answer = (result: Effect.Effect<Uint8Array, NetworkError>) => {
          if (!done) Deferred.doneUnsafe(reply, result)
        }
        // the response travels back over the reverse link
        const respond = (result: Effect.Effect<Uint8Array, NetworkError>) =>
          schedule(delayOf(toKey, conditionsOf(toKey, fromKey)), () => {
            if (!done && !blocked(toKey, fromKey)) answer(result)
          })
        // a stream needs both directions (TCP's handshake): a one-way cut hangs it either way
        if (!blocked(fromKey, toKey) && !blocked(toKey, fromKey)) {
          schedule(delayOf(fromKey, conditionsOf(fromKey, toKey)), () => {
            if (done || blocked(fromKey, toKey)) return
            whenAwake(toKey, () => serveRequest())
          })
        }
        const serveRequest = () => {
          if (done) return
          const target = nodes.get(toKey)
          const server = target?.server
          if (server === undefined) return respond(Effect.fail(failure("connection refused", toKey)))
          if (bytes.length > server.maxBytes) {
            return respond(Effect.fail(failure(`request of ${bytes.length} bytes exceeds ${server.maxBytes}`, toKey)))
          }
          // like TCP, the server sees the client's host on an ephemeral port
          const remote = new Address(
            { host: local.host, port: ephemeralBase + (streamSequence++ % ephemeralRange) },
            { disableChecks: true }
          )
          const handling = server.handler(remote, bytes).pipe(
            Effect.timeoutOrElse({
              duration: server.timeout,
              orElse: () => Effect.fail(failure("handler timed out", toKey))
            }),
            Effect.onExit((exit) =>
              Effect.sync(() =>
                respond(
                  Exit.isSuccess(exit)
                    ? Effect.succeed(exit.value.slice())
                    : Effect.fail(failure("exchange closed without a response", toKey, exit.cause))
                )
              )
            )
          )
          Fiber.runIn(Effect.runForkWith(server.context)(handling), server.scope)
        }
        return Deferred.await(reply).pipe(
          Effect.tap(() => whileAwake(fromKey)),
          Effect.flatMap((response) =>
            response.length > exchangeOptions.maxBytes
              ? Effect.fail(failure(`response of ${response.length} bytes exceeds ${exchangeOptions.maxBytes}`, toKey))
              : Effect.succeed(response)
          ),
          Effect.timeoutOrElse({
            duration: exchangeOptions.timeout,
            orElse: () => Effect.fail(failure("exchange timed out", toKey))
          }),
          Effect.tapError(() => Effect.sync(() => own.exchangesFailed++)),
          Effect.ensuring(Effect.sync(() => (done = true)))
        )
      })

    const serve = (
      handler: StreamHandler,
      serveOptions: { readonly maxBytes: number; readonly timeout: Duration.Input }
    ): Effect.Effect<void, never, Scope.Scope> =>
      Effect.gen(function* () {
        const server: Server = {
          handler,
          maxBytes: serveOptions.maxBytes,
          timeout: serveOptions.timeout,
          context: yield* Effect.context<never>(),
          scope: yield* Effect.scope
        }
        node.server = server
        yield* Effect.addFinalizer(() =>
          Effect.sync(() => {
            if (node.server === server) node.server = undefined
          })
        )
      })

    return Transport.of({
      localAddress: local,
      send,
      receive,
      exchange,
      serve,
      resolve,
      stats: Effect.sync(() => {
        const s = own.snapshot()
        return {
          packetsSent: s.packetsSent,
          bytesSent: s.bytesSent,
          packetsReceived: s.packetsReceived,
          bytesReceived: s.bytesReceived,
          dropped: s.dropped
        }
      })
    })
  }

  /** Hands a datagram to its target's receive queue (runs at delivery time). */
  const deliver = (from: Address, fromKey: string, toKey: string, payload: Uint8Array): void => {
    if (blocked(fromKey, toKey)) {
      countersOf(fromKey).droppedPartition++
      return
    }
    const target = nodes.get(toKey)
    if (target === undefined) {
      countersOf(fromKey).droppedUnreachable++
      return
    }
    if (!Queue.offerUnsafe(target.queue, { from, payload })) {
      target.counters.dropped++
      return
    }
    target.counters.packetsReceived++
    target.counters.bytesReceived += payload.length
  }

  const attach = (requested: Address): Effect.Effect<Transport["Service"], NetworkError, Scope.Scope> =>
    Effect.gen(function* () {
      if (closed) return yield* failure("network is closed", formatAddress(requested))
      let address = requested
      if (requested.port === 0) {
        const port = freePort(requested.host)
        if (port === undefined) return yield* failure("no free port", formatAddress(requested))
        address = new Address({ host: requested.host, port }, { disableChecks: true })
      }
      const key = formatAddress(address)
      if (nodes.has(key)) return yield* failure("address already in use", key)
      const node: SimNode = {
        address,
        key,
        queue: yield* Queue.dropping<Packet>(receiveCapacity),
        counters: countersOf(key),
        server: undefined,
        attached: true
      }
      nodes.set(key, node)
      yield* Effect.addFinalizer(() =>
        Effect.sync(() => {
          node.attached = false
          node.server = undefined
          if (nodes.get(key) === node) nodes.delete(key)
        })
      )
      return makeTransport(node)
    })

  const set = <A>(f: () => A): Effect.Effect<A> => Effect.sync(f)

  const sum = (key: keyof SimStats, all: Iterable<Counters>): number => {
    let total = 0
    for (const c of all) total += c[key]
    return total
  }

  return SimNetwork.of({
    attach,
    setHostnames: (table) =>
      set(() => {
        hostnames = new Map(Object.entries(table))
      }),
    setDefaults: (conditions) =>
      Effect.map(parseConditions(conditions), (parsed) => {
        faults.defaults = {
          latency: parsed.latency ?? defaultConditions.latency,
          jitter: parsed.jitter ?? defaultConditions.jitter,
          loss: parsed.loss ?? defaultConditions.loss
        }
      }),
    setLink: (from, to, conditions) =>
      Effect.map(parseConditions(conditions), ({ sendDelay: _, ...parsed }) => {
        faults.setLink(formatAddress(from), formatAddress(to), parsed)
      }),
    clearLink: (from, to) => set(() => faults.clearLink(formatAddress(from), formatAddress(to))),
    setNode: (address, conditions) =>
      Effect.map(parseConditions(conditions), (parsed) => {
        faults.setNode(formatAddress(address), parsed)
      }),
    clearNode: (address) => set(() => faults.clearNode(formatAddress(address))),
    partition: (partition) => set(() => faults.partition(partition.map((group) => group.map(formatAddress)))),
    isolate: (address) => set(() => faults.isolate(formatAddress(address))),
    cut: (from, to) => set(() => faults.cut(formatAddress(from), formatAddress(to))),
    uncut: (from, to) => set(() => faults.uncut(formatAddress(from), formatAddress(to))),
    heal: set(() => faults.heal()),
    pause: (address) =>
      set(() => {
        const key = formatAddress(address)
        if (!paused.has(key)) paused.set(key, Latch.makeUnsafe(false))
        if (!pausedTimers.has(key)) pausedTimers.set(key, Latch.makeUnsafe(false))
      }),
    resume: (address) =>
      set(() => {
        const key = formatAddress(address)
        const timers = pausedTimers.get(key)
        pausedTimers.delete(key)
        timers?.openUnsafe()
        const sockets = paused.get(key)
        if (sockets === undefined) return
        schedule(1, () => {
          if (paused.get(key) !== sockets) return
          paused.delete(key)
          sockets.openUnsafe()
        })
      }),
    clockFor: (address) => {
      const key = formatAddress(address)
      return {
        currentTimeMillisUnsafe: () => clock.currentTimeMillisUnsafe(),
        currentTimeMillis: clock.currentTimeMillis,
        currentTimeNanosUnsafe: () => clock.currentTimeNanosUnsafe(),
        currentTimeNanos: clock.currentTimeNanos,
        monotonicTimeNanosUnsafe: () => clock.monotonicTimeNanosUnsafe(),
        monotonicTimeNanos: clock.monotonicTimeNanos,
        // a timer of a paused process fires when it resumes, late
        sleep: (duration) => Effect.andThen(clock.sleep(duration), timersAwake(key))
      }
    },
    stats: (address) => set(() => (counters.get(formatAddress(address)) ?? new Counters()).snapshot()),
    totals: set(() => {
      const all = Array.from(counters.values())
      return {
        packetsSent: sum("packetsSent", all),
        bytesSent: sum("bytesSent", all),
        packetsReceived: sum("packetsReceived", all),
        bytesReceived: sum("bytesReceived", all),
        dropped: sum("dropped", all),
        droppedLoss: sum("droppedLoss", all),
        droppedPartition: sum("droppedPartition", all),
        droppedUnreachable: sum("droppedUnreachable", all),
        exchanges: sum("exchanges", all),
        exchangesFailed: sum("exchangesFailed", all),
        inFlight: heap.size
      }
    }),
    attached: set(() => Array.from(nodes.values(), (node) => node.address))
  })
})
