/**
 * The Effect shell around the sans-IO protocol engine (`engine/Engine.ts`):
 * it feeds the engine its inputs and executes its outputs, and decides
 * nothing itself.
 *
 * - **Inputs.** Received datagrams and stream requests, timers that fired,
 *   the results of exchanges and name resolutions, and the application's
 *   commands (join, leave, set tags, start, stop) — each with the time from
 *   `Clock`.
 * - **Outputs.** Datagrams are encoded and sent on the `Transport`; timers
 *   are `Clock` sleeps in fibers of their own; exchanges run in forked
 *   fibers, each bounded by the engine's deadline, whose results come back
 *   as inputs; table changes go to the registry's subscribers; logs and
 *   counts to Effect's logger and metrics.
 *
 * Serialisation without a queue: a step of the engine (`Engine.handle`) is
 * a synchronous call that runs to completion without yielding, so every
 * fiber with an input steps it directly, and the outputs that must follow
 * the step's order (table changes, timers) are executed in the same
 * synchronous block; only sends, forks and logs are effects afterwards. No
 * output blocks the engine: it never waits, it receives a later input.
 *
 * The loops that used to call rounds are now the engine's own timers;
 * `GossipService` starts the receive loop, the stream server and the rounds.
 *
 * @since 0.1.0
 */

import { randomInt } from "node:crypto"
import { networkInterfaces } from "node:os"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Random from "effect/Random"
import * as Result from "effect/Result"
import type * as Scope from "effect/Scope"
import type { ClusterConfig } from "../Config.ts"
import { JoinFailed, NetworkError } from "../Errors.ts"
import { Address, type ClusterNode, type NodeId, parseAddress, type Tags } from "../Node.ts"
import * as Codec from "./Codec.ts"
import type { Identities } from "./engine/Claims.ts"
import { Engine } from "./engine/Engine.ts"
import type { Input, JoinSeed, StreamMessage } from "./engine/Input.ts"
import { type OpenExchange, type Output, type Reached, type Timer, timerKey } from "./engine/Output.ts"
import { MAX_BACKGROUND_EXCHANGES, settingsFromConfig } from "./engine/Settings.ts"
import type { SwimStats } from "./engine/Stats.ts"
import { identities, loadIdentity } from "./MemberIdentity.ts"
import { type Packet as MessagePacket, PushPull } from "./Messages.ts"
import { PhiDetector } from "./PhiDetector.ts"
import { NodeRegistry } from "./Registry.ts"
import { type Packet, Transport } from "./Transport.ts"

export type { SwimStats }
export { MAX_BACKGROUND_EXCHANGES }

/** Process-wide counters, labelled by what happened. */
const metrics = {
  packetsRejected: Metric.counter("shoal_gossip_packets_rejected", {
    description: "datagrams dropped because they did not decode, came from another cluster or were too large"
  }),
  suspicions: Metric.counter("shoal_gossip_suspicions", { description: "members this node suspected" }),
  refutations: Metric.counter("shoal_gossip_refutations", {
    description: "times this node refuted a suspicion of itself"
  })
}

/**
 * The address other members should use for this node: the configured
 * advertise address; else the bound address, unless it is the unspecified
 * address (0.0.0.0 / ::), in which case the first non-internal IPv4 of this
 * host (loopback when there is none), with the bound port.
 */
export const advertisedAddress = (config: ClusterConfig, bound: Address): Address => {
  if (config.advertiseAddress !== undefined) return config.advertiseAddress
  if (bound.host !== "0.0.0.0" && bound.host !== "::") return bound
  for (const list of Object.values(networkInterfaces())) {
    for (const info of list ?? []) {
      if (info.family === "IPv4" && !info.internal) return new Address({ host: info.address, port: bound.port })
    }
  }
  return new Address({ host: "127.0.0.1", port: bound.port })
}

/**
 * The engine's signed-claims functions for the configured identity, if any
 * (the configuration checked the material already, so loading it again
 * cannot fail on a valid configuration).
 */
const identitiesOf = (config: ClusterConfig): Identities | undefined => {
  const { identityCa, identityCertificate, identityKey } = config
  if (identityCertificate === undefined || identityKey === undefined || identityCa === undefined) return undefined
  const loaded = loadIdentity({ certificate: identityCertificate, key: identityKey, ca: identityCa })
  // only a certificate that expired since the configuration was made gets here: refuse to run unchecked
  if (Result.isFailure(loaded)) throw new Error(`identity: ${loaded.failure}`)
  return identities(loaded.success, { required: config.requireIdentities })
}

/** How one member answered a reachability check (`Swim.reach`). */
export type ReachResult = Omit<Reached, "_tag" | "request">

/** Slack past a reachability check's deadline before the shell stops waiting for the engine's answer. */
const REACH_SLACK_MILLIS = 1000

interface JoinResult {
  readonly answered: number
  readonly failures: ReadonlyArray<string>
}

export class Swim extends Context.Service<
  Swim,
  {
    readonly config: ClusterConfig
    /** This node as the cluster sees it (its incarnation, tags and state). */
    readonly localNode: Effect.Effect<ClusterNode>
    /** Handles a batch of received datagrams. Never fails: bad packets are counted and dropped. */
    readonly handlePackets: (packets: ReadonlyArray<Packet>) => Effect.Effect<void>
    /** Serves one stream exchange — a push-pull, or a probe's TCP fallback ping (the Transport's stream handler). */
    readonly handleStream: (from: Address, request: Uint8Array) => Effect.Effect<Uint8Array, NetworkError>
    /** Starts the protocol's rounds (probe, gossip, push-pull, reconnect, reap), each at a random offset. */
    readonly start: Effect.Effect<void>
    /** Stops the rounds; what arrives is still handled. */
    readonly stop: Effect.Effect<void>
    /**
     * Joins through the given seeds (`host:port`, resolved at every attempt):
     * push-pull with each, retrying with backoff until one answers or
     * `joinTimeout` passes. Returns how many seeds answered.
     */
    readonly join: (seeds: ReadonlyArray<string>) => Effect.Effect<number, JoinFailed>
    /**
     * Leaves gracefully: announces `Left` at a new incarnation and waits
     * (at most `leaveTimeout`) until the announcement has gone out. Pings are
     * still answered until the node stops, so the news also rides on acks.
     */
    readonly leave: Effect.Effect<void>
    /** Publishes new tags (replacing the previous ones) at a new incarnation. */
    readonly setTags: (tags: Tags) => Effect.Effect<ClusterNode>
    /**
     * Probes each of `targets` now, as a probe round would (direct, then
     * indirect and over TCP), and reports how each answered first — without a
     * verdict: a miss is reported, never suspected. Each check has the budget
     * of a probe (the probe interval, stretched by the health score), at most
     * `maxMillis`; the answer comes by then whatever the network does.
     */
    readonly reach: (targets: ReadonlyArray<NodeId>, maxMillis?: number) => Effect.Effect<ReadonlyArray<ReachResult>>
    /** The local health score (0 = healthy; see `Awareness`). */
    readonly awareness: Effect.Effect<number>
    readonly stats: Effect.Effect<SwimStats>
  }
>()("shoal/cluster/gossip/Swim") {
  /** The shell for `config`, on the Transport, registry and phi detector in context; its fibers live in the scope. */
  static readonly make = (
    config: ClusterConfig
  ): Effect.Effect<Swim["Service"], never, Transport | NodeRegistry | PhiDetector | Scope.Scope> =>
    Effect.gen(function* () {
      const transport = yield* Transport
      const registry = yield* NodeRegistry
      const phi = yield* PhiDetector
      const random = yield* Random.Random
      const scope = yield* Effect.scope
      const context = yield* Effect.context<never>()
      const label = config.clusterLabel
      const settings = settingsFromConfig(config)
      const engine = new Engine({
        settings,
        identity: {
          id: config.nodeId,
          name: config.nodeName,
          gossipAddress: advertisedAddress(config, transport.localAddress),
          boundAddress: transport.localAddress,
          rpcAddress: config.rpcAddress,
          tags: config.tags
        },
        // The shell's randomness stays Effect's `Random` (a seeded test replays the whole cluster,
        // network included, from one seed); the simulator gives each engine a generator of its own.
        random: () => random.nextDoubleUnsafe(),
        initialSeq: randomInt(0, 2 ** 32 - 1),
        table: registry.table,
        phi: phi.detectors,
        identities: identitiesOf(config)
      })

      /** Armed timers and running exchanges, by key and id; each fiber lives in this layer's scope. */
      const timers = new Map<string, { fiber: Fiber.Fiber<unknown, unknown> | undefined }>()
      const exchanges = new Map<number, Fiber.Fiber<unknown, unknown>>()
      const joins = new Map<number, Deferred.Deferred<JoinResult>>()
      const leaves = new Map<number, Deferred.Deferred<void>>()
      const reaches = new Map<number, Deferred.Deferred<ReachResult>>()
      let tickets = 0
      let requests = 0

      const fork = (effect: Effect.Effect<unknown>): Fiber.Fiber<unknown, unknown> => {
        const fiber = Effect.runForkWith(context)(effect)
        Fiber.runIn(fiber, scope)
        return fiber
      }

      /** Steps the engine with `input` now, then executes its outputs; returns them (a stream reply is among them). */
      const feed = (input: Input): Effect.Effect<ReadonlyArray<Output>> =>
        Effect.flatMap(Clock.currentTimeMillis, (now) => {
          const outputs = engine.handle(now, input)
          return Effect.as(execute(outputs, now), outputs)
        })

      /**
       * Executes `outputs` in the order the engine emitted them, after
       * publishing its table changes synchronously (a change must reach the
       * subscribers before any later step's, whichever fiber runs it). The
       * order of the rest is the engine's too: a send before the timer armed
       * after it, an exchange opened before the timer that bounds its probe —
       * so the sleeps register, and equal-time wake-ups run, in that order.
       */
      const execute = (outputs: ReadonlyArray<Output>, now: number): Effect.Effect<void> => {
        const effects: Array<Effect.Effect<void>> = []
        for (const output of outputs) {
          switch (output._tag) {
            case "MembershipChanged":
              registry.publish(output.change)
              break
            case "SetTimer":
              effects.push(Effect.sync(() => arm(output.timer, output.at, now)))
              break
            case "CancelTimer":
              effects.push(
                Effect.sync(() => {
                  timers.get(output.key)?.fiber?.interruptUnsafe()
                  timers.delete(output.key)
                })
              )
              break
            case "CancelExchange":
              effects.push(
                Effect.sync(() => {
                  exchanges.get(output.id)?.interruptUnsafe()
                  exchanges.delete(output.id)
                })
              )
              break
            case "JoinEnded":
              effects.push(
                Effect.sync(() => {
                  const deferred = joins.get(output.ticket)
                  joins.delete(output.ticket)
                  if (deferred !== undefined) Deferred.doneUnsafe(deferred, Exit.succeed(output))
                })
              )
              break
            case "LeaveEnded":
              effects.push(
                Effect.sync(() => {
                  const deferred = leaves.get(output.ticket)
                  leaves.delete(output.ticket)
                  if (deferred !== undefined) Deferred.doneUnsafe(deferred, Exit.void)
                })
              )
              break
            case "Reached":
              effects.push(
                Effect.sync(() => {
                  const deferred = reaches.get(output.request)
                  reaches.delete(output.request)
                  const { _tag, request, ...result } = output
                  if (deferred !== undefined) Deferred.doneUnsafe(deferred, Exit.succeed(result))
                })
              )
              break
            case "Send":
              effects.push(sendPacket(output.to, output.packet))
              break
            case "OpenExchange":
              effects.push(open(output, now))
              break
            case "Resolve":
              effects.push(Effect.sync(() => void fork(resolveSeed(output.id, output.seed, output.deadline - now))))
              break
            case "Log":
              effects.push(Effect.logDebug(output.message).pipe(Effect.annotateLogs(output.annotations)))
              break
            case "Count":
              effects.push(Metric.update(metrics[output.metric], 1))
              break
            case "Reply":
            case "Refuse":
              // the stream handler that fed the request takes these from the outputs
              break
          }
        }
        return effects.length === 0 ? Effect.void : Effect.forEach(effects, (effect) => effect, { discard: true })
      }

      /**
       * A timer is a sleep on this node's `Clock`, then a step. It always
       * yields before it fires, so a timer armed for now never steps the
       * engine inside the step that armed it (whose table changes must be
       * published first).
       */
      const arm = (timer: Timer, at: number, now: number): void => {
        const key = timerKey(timer)
        timers.get(key)?.fiber?.interruptUnsafe()
        const entry: { fiber: Fiber.Fiber<unknown, unknown> | undefined } = { fiber: undefined }
        timers.set(key, entry)
        const delay = at - now
        entry.fiber = fork(
          Effect.andThen(
            delay > 0 ? Effect.sleep(Duration.millis(delay)) : Effect.yieldNow,
            Effect.suspend(() => {
              // disarmed before the step, so a timer the step re-arms under this key is not this one
              if (timers.get(key) === entry) timers.delete(key)
              return feed({ _tag: "TimerFired", timer })
            })
          )
        )
      }

      const sendPacket = (to: Address, packet: MessagePacket) =>
        Effect.suspend(() =>
          transport.send(to, Codec.packCompound(label, packet.messages, packet.updates, settings.maxPacketSize).bytes)
        ).pipe(Effect.catch((error) => Effect.logDebug("send failed", error.message)))

      /** Runs one exchange in its own fiber; its result (or failure, at the latest at its deadline) is fed back. */
      const open = (output: OpenExchange, now: number): Effect.Effect<void> =>
        Effect.suspend(() => {
          const request = encodeStream(output.request)
          if (Result.isFailure(request)) {
            return Effect.asVoid(
              feed({ _tag: "ExchangeFailed", id: output.id, reason: request.failure, timedOut: false })
            )
          }
          const id = output.id
          const fiber = fork(
            transport
              .exchange(output.to, request.success, {
                timeout: Duration.millis(Math.max(0, output.deadline - now)),
                maxBytes: output.maxBytes
              })
              .pipe(
                Effect.matchEffect({
                  onSuccess: (payload) => feed({ _tag: "ExchangeAnswered", id, payload }),
                  onFailure: (error) =>
                    Effect.flatMap(Clock.currentTimeMillis, (at) =>
                      feed({ _tag: "ExchangeFailed", id, reason: error.message, timedOut: at >= output.deadline })
                    )
                }),
                Effect.ensuring(Effect.sync(() => void exchanges.delete(id)))
              )
          )
          // it may have ended already (a refused connection fails at once)
          if (fiber.pollUnsafe() === undefined) exchanges.set(id, fiber)
          return Effect.void
        })

      /** Resolves a seed's host name, failing when `timeoutMillis` pass first (DNS can hang too). */
      const resolveWithin = (address: Address, timeoutMillis: number) =>
        transport.resolve(address).pipe(
          Effect.timeoutOrElse({
            duration: Duration.millis(Math.max(0, timeoutMillis)),
            orElse: () =>
              Effect.fail(
                new NetworkError({ message: `cannot resolve ${address.host} in time`, address: address.host })
              )
          })
        )

      const resolveSeed = (id: number, seed: Address, timeoutMillis: number) =>
        resolveWithin(seed, timeoutMillis).pipe(
          Effect.matchEffect({
            onSuccess: (addresses) => feed({ _tag: "Resolved", id, addresses }),
            onFailure: (error) => feed({ _tag: "Resolved", id, addresses: error.message })
          })
        )

      const encodeStream = (message: StreamMessage): Result.Result<Uint8Array, string> => {
        if (message instanceof PushPull) {
          const bytes = Codec.encodePushPullResult(label, message)
          return Result.isFailure(bytes) ? Result.fail(bytes.failure.message) : Result.succeed(bytes.success)
        }
        return Result.succeed(Codec.encodePacket({ label }, message))
      }

      const handlePackets = (packets: ReadonlyArray<Packet>) =>
        Effect.forEach(packets, (packet) => feed({ _tag: "Datagram", from: packet.from, payload: packet.payload }), {
          discard: true
        })

      const handleStream = (from: Address, request: Uint8Array): Effect.Effect<Uint8Array, NetworkError> =>
        Effect.suspend(() => {
          const id = ++requests
          return Effect.flatMap(feed({ _tag: "StreamRequest", request: id, from, payload: request }), (outputs) => {
            for (const output of outputs) {
              if (output._tag === "Reply" && output.request === id) {
                const bytes = encodeStream(output.response)
                return Result.isSuccess(bytes)
                  ? Effect.succeed(bytes.success)
                  : Effect.fail(new NetworkError({ message: bytes.failure }))
              }
              if (output._tag === "Refuse" && output.request === id) {
                return Effect.fail(new NetworkError({ message: output.reason }))
              }
            }
            return Effect.fail(new NetworkError({ message: "the engine did not answer the stream" }))
          })
        })

      /** Each seed resolved now (names are followed at every attempt), within what is left of `deadline`. */
      const resolveSeeds = (seeds: ReadonlyArray<string>, deadline: number) =>
        Effect.forEach(
          seeds,
          (seed): Effect.Effect<JoinSeed> => {
            const address = parseAddress(seed)
            if (address === undefined) return Effect.succeed({ seed, addresses: "not host:port" })
            return Effect.flatMap(Clock.currentTimeMillis, (now) => resolveWithin(address, deadline - now)).pipe(
              Effect.map((addresses): JoinSeed => ({ seed, addresses })),
              Effect.catch((error) => Effect.succeed({ seed, addresses: error.message }))
            )
          },
          { concurrency: MAX_BACKGROUND_EXCHANGES }
        )

      /** One join attempt through the engine: how many seeds answered, and what went wrong with the others. */
      const joinOnce = (seeds: ReadonlyArray<string>, deadline: number) =>
        Effect.gen(function* () {
          const resolved = yield* resolveSeeds(seeds, deadline)
          const ticket = ++tickets
          const done = Deferred.makeUnsafe<JoinResult>()
          joins.set(ticket, done)
          yield* feed({ _tag: "Join", ticket, seeds: resolved, deadline })
          return yield* Deferred.await(done)
        })

      const join = (seeds: ReadonlyArray<string>) =>
        Effect.gen(function* () {
          if (seeds.length === 0) return 0
          const started = yield* Clock.currentTimeMillis
          const deadline = started + Duration.toMillis(config.joinTimeout)
          let backoff = 100
          let lastFailures: ReadonlyArray<string> = []
          while (true) {
            const { answered, failures } = yield* joinOnce(seeds, deadline)
            if (answered > 0) {
              yield* Effect.logDebug("joined").pipe(Effect.annotateLogs({ seeds: seeds.join(","), answered }))
              return answered
            }
            // an attempt cut short by the deadline tried nothing: keep the reasons of the last one that did
            if (failures.length > 0) lastFailures = failures
            const now = yield* Clock.currentTimeMillis
            if (now >= deadline) break
            const wait = Math.min(backoff, deadline - now)
            yield* Effect.sleep(Duration.millis(wait * (0.8 + 0.4 * (yield* Random.next))))
            backoff = Math.min(backoff * 2, 2000)
          }
          return yield* new JoinFailed({
            seeds: [...seeds],
            reason:
              lastFailures.length === 0
                ? `no seed answered within ${Duration.format(config.joinTimeout)}`
                : `no seed answered within ${Duration.format(config.joinTimeout)} (${lastFailures.join("; ")})`
          })
        })

      const leave = Effect.suspend(() => {
        const ticket = ++tickets
        const done = Deferred.makeUnsafe<void>()
        leaves.set(ticket, done)
        return Effect.andThen(feed({ _tag: "Leave", ticket }), Deferred.await(done))
      })

      const reach = (targets: ReadonlyArray<NodeId>, maxMillis = Number.POSITIVE_INFINITY) =>
        Effect.gen(function* () {
          const now = yield* Clock.currentTimeMillis
          const budget = Math.max(0, Math.min(settings.probeInterval * (engine.awareness + 1), maxMillis))
          const deadline = now + budget
          const pending = targets.map((target) => {
            const request = ++tickets
            const done = Deferred.makeUnsafe<ReachResult>()
            reaches.set(request, done)
            return { request, target, done }
          })
          for (const { request, target } of pending) yield* feed({ _tag: "Reach", request, target, deadline })
          // The engine answers every check by its deadline; the slack only bounds the shell's own wait.
          return yield* Effect.forEach(pending, ({ done, request, target }) =>
            Effect.flatMap(Clock.currentTimeMillis, (at) =>
              Deferred.await(done).pipe(
                Effect.timeoutOrElse({
                  duration: Duration.millis(Math.max(0, deadline + REACH_SLACK_MILLIS - at)),
                  orElse: () =>
                    Effect.sync((): ReachResult => {
                      reaches.delete(request)
                      return { target, route: "none", rtt: undefined, helpers: 0, nacks: 0 }
                    })
                })
              )
            )
          )
        })

      // This node's own row, published at construction.
      yield* execute(engine.takeOutputs(), yield* Clock.currentTimeMillis)

      return Swim.of({
        config,
        localNode: Effect.sync(() => engine.localNode),
        handlePackets,
        handleStream,
        start: Effect.asVoid(feed({ _tag: "Start" })),
        stop: Effect.asVoid(feed({ _tag: "Stop" })),
        join,
        leave,
        setTags: (tags) => Effect.map(feed({ _tag: "SetTags", tags }), () => engine.localNode),
        reach,
        awareness: Effect.sync(() => engine.awareness),
        stats: Effect.sync(() => engine.stats())
      })
    })

  /** {@link Swim.make} as a layer. */
  static readonly layer = (config: ClusterConfig): Layer.Layer<Swim, never, Transport | NodeRegistry | PhiDetector> =>
    Layer.effect(Swim, Swim.make(config))
}
