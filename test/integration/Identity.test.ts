/**
 * Per-member identity on real sockets: in-process members on 127.0.0.1 with
 * a gossip keyring (every datagram and push-pull sealed) and identities from
 * one DevTls authority, `requireIdentities` on, at the default probe timings
 * (1 s interval, 500 ms ping timeout, as KeyRotation.test.ts runs them).
 *
 * - Four members form, a crash (the scope closed without leaving) is seen as
 *   Dead everywhere, a graceful leave as Left.
 * - A key holder — a member of the cluster with its own valid certificate
 *   under its own id — sends sealed datagrams from a raw socket to every
 *   member: a `Left`, a `Dead` and a retagged `Alive` about a live victim at
 *   the victim's incarnation + 1, the `Left` and the `Alive` unsigned and
 *   signed with the attacker's key. For five probe intervals no honest member
 *   ever holds the victim Left, Dead or with the forged tag (views sampled,
 *   and every membership event watched), the refusals are counted, and the
 *   victim stays Alive. The same attack on the same cluster without
 *   `requireIdentities` makes members hold it Left, Dead and retagged (so
 *   the test can fail).
 * - A member whose certificate comes from another CA never appears in the
 *   view of a cluster that requires identities.
 *
 * Every wait is a poll with a deadline; the attack window is a fixed span
 * over which views are sampled, not a sleep standing in for an assertion.
 */
import { randomUUID, X509Certificate } from "node:crypto"
import * as Dgram from "node:dgram"
import { assert, describe, expect, it } from "@effect/vitest"
import { Context, Effect, Exit, Layer, Result, Scope, Stream } from "effect"
import { Cluster, type LayerOptions } from "../../src/cluster/Cluster.ts"
import type * as ClusterConfig from "../../src/cluster/Config.ts"
import type { ClusterEvent } from "../../src/cluster/Events.ts"
import * as Codec from "../../src/cluster/gossip/Codec.ts"
import { claimBytes } from "../../src/cluster/gossip/engine/Claims.ts"
import { generateKey, Keyring, makeKey } from "../../src/cluster/gossip/Keyring.ts"
import { loadIdentity, signClaim } from "../../src/cluster/gossip/MemberIdentity.ts"
import { NodeStateUpdate, PushPull } from "../../src/cluster/gossip/Messages.ts"
import { sealFrame } from "../../src/cluster/gossip/SecureTransport.ts"
import { type Address, type ClusterNode, formatAddress, type NodeId, type NodeState } from "../../src/cluster/Node.ts"
import * as DevTls from "../../src/testing/DevTls.ts"
import { waitFor } from "../fixtures/live.ts"
import { rawExchange } from "../fixtures/raw-stream.ts"

// -- members -----------------------------------------------------------------------

interface Member {
  readonly cluster: Cluster["Service"]
  readonly scope: Scope.Closeable
  readonly self: ClusterNode
}

/** KeyRotation.test.ts's timings: the default probe interval (1 s) and ping timeout (500 ms). */
const timings: ClusterConfig.Input = {
  bindAddress: "127.0.0.1:0",
  gossipInterval: "100 millis",
  pushPullInterval: "5 seconds",
  leaveTimeout: "1 second",
  joinTimeout: "5 seconds"
}

const PROBE_INTERVAL = 1_000 // the default

const key = generateKey()
const keyring = new Keyring([Result.getOrThrow(makeKey(key))])
const ca = DevTls.makeAuthority({ name: "shoal-test-ca" })

const newId = () => randomUUID() as NodeId

/** An identity for `id` issued by `authority`, as configuration takes it. */
const identityOf = (id: NodeId, authority: DevTls.Authority = ca) => {
  const pair = authority.issue({ nodeId: id })
  return {
    identityCertificate: pair.certificate.pem,
    identityKey: pair.key,
    identityCa: authority.certificate.pem
  } satisfies ClusterConfig.Input
}

/** A member with the cluster's key and its own identity from `ca` (`requireIdentities` unless told otherwise). */
const withIdentity = (id: NodeId, requireIdentities = true): ClusterConfig.Input => ({
  keyring: [key],
  ...identityOf(id),
  requireIdentities
})

/** A member on 127.0.0.1, closed with the test at the latest. */
const start = (input: ClusterConfig.Input, options: LayerOptions = {}) =>
  Effect.gen(function* () {
    const scope = yield* Scope.make()
    yield* Effect.addFinalizer(() => Scope.close(scope, Exit.void))
    const context = yield* Layer.buildWithScope(Cluster.layer({ ...timings, ...input }, options), scope).pipe(
      Effect.onError(() => Scope.close(scope, Exit.void))
    )
    const cluster = Context.get(context, Cluster)
    return { cluster, scope, self: yield* cluster.localNode } satisfies Member
  })

const stop = (member: Member) => Scope.close(member.scope, Exit.void)

const seedOf = (member: Member) => formatAddress(member.self.gossipAddress)

/** `inputs.length` members joined through the first, all seeing all Alive. */
const startCluster = (inputs: ReadonlyArray<ClusterConfig.Input>, crashable: ReadonlyArray<number> = []) =>
  Effect.gen(function* () {
    const first = yield* start({ ...inputs[0]!, nodeName: "m0" })
    const members = [first]
    for (let i = 1; i < inputs.length; i++) {
      members.push(
        yield* start(
          { ...inputs[i]!, nodeName: `m${i}`, seedNodes: [seedOf(first)] },
          { leaveOnClose: !crashable.includes(i) }
        )
      )
    }
    yield* waitFor("the cluster formed: every view all Alive", allSee(members, members, "Alive"), 20_000)
    return members
  })

const memberOf = (observer: Member, id: NodeId) =>
  Effect.map(observer.cluster.members, (members) => members.find((m) => m.id === id))

const allSee = (observers: ReadonlyArray<Member>, subjects: ReadonlyArray<Member>, state: NodeState) =>
  Effect.gen(function* () {
    for (const o of observers) {
      for (const s of subjects) if ((yield* memberOf(o, s.self.id))?.state !== state) return false
    }
    return true
  })

const statsOf = (member: Member) => Effect.orDie(member.cluster.stats)

// -- the attacker ----------------------------------------------------------------------

/** A plain UDP socket on 127.0.0.1 (the attacker's), closed with the test. */
const rawSocket = Effect.acquireRelease(
  Effect.callback<Dgram.Socket, Error>((resume) => {
    const socket = Dgram.createSocket("udp4")
    socket.once("error", (error) => resume(Effect.fail(error)))
    socket.bind(0, "127.0.0.1", () => {
      socket.on("error", () => {})
      resume(Effect.succeed(socket))
    })
  }),
  (socket) =>
    Effect.callback<void>((resume) => {
      try {
        socket.close(() => resume(Effect.void))
      } catch {
        resume(Effect.void)
      }
    })
)

const send = (socket: Dgram.Socket, to: Address, bytes: Uint8Array) =>
  Effect.callback<void>((done) => {
    socket.send(bytes, to.port, to.host, () => done(Effect.void))
  })

/** The attacker's signing key: a valid identity of the cluster's CA, for its own id (not the victim's). */
type Signer = (message: Uint8Array) => Uint8Array

const signerFor = (identity: ReturnType<typeof identityOf>): Signer => {
  const loaded = Result.getOrThrow(
    loadIdentity({ certificate: identity.identityCertificate, key: identity.identityKey, ca: identity.identityCa })
  )
  return (message: Uint8Array) => signClaim(loaded.privateKey, message)
}

type Forgery = "Left" | "Dead" | "retagged"
const FORGERIES: ReadonlyArray<Forgery> = ["Left", "Dead", "retagged"]

/**
 * The forged claims of one kind about `victim` at `incarnation`: a `Left`
 * and a retagged `Alive` come unsigned and signed with `sign` (the
 * attacker's own key); a `Dead` names the attacker as its accuser.
 */
const forge = (
  kind: Forgery,
  label: string,
  victim: ClusterNode,
  incarnation: number,
  accuser: NodeId,
  sign: Signer
): ReadonlyArray<NodeStateUpdate> => {
  const trusted = { disableChecks: true } as const
  const signed = (update: NodeStateUpdate) =>
    new NodeStateUpdate({ ...update, signature: sign(claimBytes(label, update)) }, trusted)
  switch (kind) {
    case "Left": {
      const left = new NodeStateUpdate({ nodeId: victim.id, state: "Left", incarnation }, trusted)
      return [left, signed(left)]
    }
    case "Dead":
      return [new NodeStateUpdate({ nodeId: victim.id, state: "Dead", incarnation, from: accuser }, trusted)]
    case "retagged": {
      const retagged = NodeStateUpdate.fromNode(victim.with({ incarnation, tags: { ...victim.tags, role: "evil" } }))
      return [retagged, signed(retagged)]
    }
  }
}

/** What honest members were seen to hold of the victim: each forgery that took hold, and where. */
interface Fooled {
  readonly seen: Set<Forgery>
  readonly sightings: Array<string>
}

const takenIn = (node: ClusterNode): Forgery | undefined =>
  node.state === "Left" ? "Left" : node.state === "Dead" ? "Dead" : node.tags.role === "evil" ? "retagged" : undefined

/** Records every membership event about `victim` at each of `observers` that shows a forgery taken. */
const watchFor = (observers: ReadonlyArray<Member>, victim: NodeId, fooled: Fooled) =>
  Effect.forEach(
    observers,
    (observer) =>
      Effect.gen(function* () {
        const { events } = yield* Effect.orDie(observer.cluster.watch)
        yield* Effect.forkScoped(
          Stream.runForEach(events, (event: ClusterEvent) =>
            Effect.sync(() => {
              if (event.node.id !== victim) return
              const taken = takenIn(event.node)
              if (taken === undefined) return
              fooled.seen.add(taken)
              fooled.sightings.push(
                `${observer.self.name}: ${event._tag} ${event.node.state} ${event.node.incarnation}`
              )
            })
          ),
          { startImmediately: true }
        )
      }),
    { discard: true }
  )

/** Samples every observer's view of `victim` once. */
const sample = (observers: ReadonlyArray<Member>, victim: NodeId, fooled: Fooled) =>
  Effect.gen(function* () {
    for (const observer of observers) {
      const view = yield* memberOf(observer, victim)
      if (view === undefined) {
        fooled.sightings.push(`${observer.self.name}: the victim is gone from its view`)
        fooled.seen.add("Left")
        continue
      }
      const taken = takenIn(view)
      if (taken === undefined) continue
      fooled.seen.add(taken)
      fooled.sightings.push(
        `${observer.self.name}: holds ${view.state} ${view.incarnation} ${JSON.stringify(view.tags)}`
      )
    }
  })

const ROUND_MILLIS = 250

/**
 * A key holder's attack on `victim` for `millis`: every round, one kind of
 * forgery (in turn) at the victim's incarnation + 1, sealed with the
 * cluster's key and sent to every one of `targets` — as a datagram from a
 * raw socket, or as a push-pull from a raw TCP connection whose entries
 * carry the attacker's own certificate — while each observer's view of the
 * victim is sampled every 50 ms and its events watched. Ends early once
 * `until` holds of what was seen.
 */
const attack = (options: {
  readonly via: "datagram" | "push-pull"
  readonly kinds: ReadonlyArray<Forgery>
  readonly targets: ReadonlyArray<Member>
  readonly observers: ReadonlyArray<Member>
  readonly victim: Member
  readonly attacker: { readonly id: NodeId; readonly certificate: Uint8Array; readonly sign: Signer }
  readonly millis: number
  readonly until?: (fooled: Fooled) => boolean
}) =>
  Effect.gen(function* () {
    const { targets, observers, victim, attacker } = options
    const socket = yield* rawSocket
    const fooled: Fooled = { seen: new Set(), sightings: [] }
    yield* watchFor(observers, victim.self.id, fooled)
    const label = victim.cluster.config.clusterLabel
    const started = Date.now()
    let sent = 0
    for (let round = 0; Date.now() - started < options.millis; round++) {
      if (options.until?.(fooled) === true) break
      const self = yield* victim.cluster.localNode
      const kind = options.kinds[round % options.kinds.length]!
      const updates = forge(kind, label, self, self.incarnation + 1, attacker.id, attacker.sign)
      for (const target of targets) {
        // encoded anew for each seal: the codec's output is a view into a shared buffer
        if (options.via === "datagram") {
          const frame = Codec.encodePacket({ label }, { messages: [], updates })
          yield* send(socket, target.self.gossipAddress, sealFrame(keyring, frame, Date.now()))
        } else {
          const nodes = updates.map(
            (update) => new NodeStateUpdate({ ...update, certificate: attacker.certificate }, { disableChecks: true })
          )
          const frame = yield* Codec.encodePushPull(label, new PushPull({ from: attacker.id, join: false, nodes }))
          yield* rawExchange(target.self.gossipAddress, sealFrame(keyring, frame, Date.now()))
        }
        sent++
      }
      const roundEnds = Date.now() + ROUND_MILLIS
      while (Date.now() < roundEnds) {
        yield* sample(observers, victim.self.id, fooled)
        yield* Effect.sleep("50 millis")
      }
    }
    yield* sample(observers, victim.self.id, fooled)
    return { fooled, sent }
  })

// -- the tests ---------------------------------------------------------------------------

describe("per-member identity on 127.0.0.1 (keyring on, identities required)", () => {
  it.live(
    "four members with identities form, a crash is seen as Dead everywhere and a leave as Left",
    () =>
      Effect.gen(function* () {
        const ids = Array.from({ length: 4 }, newId)
        const members = yield* startCluster(
          ids.map((id) => withIdentity(id)),
          [3]
        )
        // the node id is the certificate's
        expect(members.map((m) => m.self.id)).toEqual(ids)
        const [a, b, leaver, crashed] = members as [Member, Member, Member, Member]

        // a crash: the scope closed without a leave, the sockets gone
        const crashedAt = Date.now()
        yield* stop(crashed)
        yield* waitFor("the crashed member Dead at every survivor", allSee([a, b, leaver], [crashed], "Dead"), 20_000)
        const detectedAfter = Date.now() - crashedAt

        // a graceful leave: the member's signed Left
        const leftAt = Date.now()
        yield* Effect.orDie(leaver.cluster.leave)
        yield* waitFor("the leaver Left at a and b", allSee([a, b], [leaver], "Left"), 10_000)
        const leftAfter = Date.now() - leftAt
        yield* stop(leaver)
        expect(yield* allSee([a, b], [a, b], "Alive")).toBe(true)
        // honest gossip was never refused: every claim carried its member's valid signature
        for (const m of [a, b]) {
          const stats = yield* statsOf(m)
          expect(stats.claimsRefused).toBe(0)
        }
        console.log(
          `identities: crash seen Dead everywhere after ${detectedAfter} ms, leave seen after ${leftAfter} ms`
        )
      }),
    40_000
  )

  it.live(
    "a gossip-key holder cannot make a live member Left, Dead or retagged; without requireIdentities it can",
    () =>
      Effect.gen(function* () {
        // the attacker is a member: its own id, a valid certificate from the cluster's CA, the gossip key
        const rogueId = newId()
        const rogueIdentity = identityOf(rogueId)
        const attacker = {
          id: rogueId,
          certificate: new Uint8Array(new X509Certificate(rogueIdentity.identityCertificate).raw),
          sign: signerFor(rogueIdentity)
        }
        const run = (requireIdentities: boolean) =>
          Effect.gen(function* () {
            const ids = Array.from({ length: 4 }, newId)
            const members = yield* startCluster([
              ...ids.map((id) => withIdentity(id, requireIdentities)),
              { keyring: [key], ...rogueIdentity, requireIdentities }
            ])
            const rogue = members[4]!
            expect(rogue.self.id).toBe(rogueId)
            const victim = members[1]!
            const honest = members.filter((m) => m !== victim && m !== rogue)
            const targets = members.filter((m) => m !== rogue)
            return { members, victim, honest, observers: honest, targets }
          })
        const deltas = (
          before: ReadonlyArray<{ claimsRefused: number; deathsDowngraded: number; claimsUnverifiable: number }>,
          after: typeof before
        ) =>
          after.map((s, i) => ({
            claimsRefused: s.claimsRefused - before[i]!.claimsRefused,
            deathsDowngraded: s.deathsDowngraded - before[i]!.deathsDowngraded,
            claimsUnverifiable: s.claimsUnverifiable - before[i]!.claimsUnverifiable
          }))

        // with identities required: five probe intervals of forged datagrams, nobody fooled
        const guarded = yield* run(true)
        const window = 5 * PROBE_INTERVAL
        const before = yield* Effect.forEach(guarded.honest, statsOf)
        const datagrams = yield* attack({ ...guarded, via: "datagram", kinds: FORGERIES, attacker, millis: window })
        const afterDatagrams = yield* Effect.forEach(guarded.honest, statsOf)
        console.log(
          `identities required: ${datagrams.sent} forged datagrams in ${window} ms; counted`,
          deltas(before, afterDatagrams),
          `; the victim refuted ${(yield* statsOf(guarded.victim)).refutations} times`
        )
        expect(datagrams.fooled.sightings).toEqual([])
        expect([...datagrams.fooled.seen]).toEqual([])
        // counted: the Left and Alive refused (unsigned or not the victim's signature), the Dead taken as a Suspect;
        // the victim's certificate was held all along, so none was merely unverifiable
        for (const d of deltas(before, afterDatagrams)) {
          expect(d.claimsRefused).toBeGreaterThan(0)
          expect(d.deathsDowngraded).toBeGreaterThan(0)
          expect(d.claimsUnverifiable).toBe(0)
        }
        // and as push-pull entries carrying the attacker's own certificate as the victim's: refused too
        const pushPulls = yield* attack({
          ...guarded,
          via: "push-pull",
          kinds: ["Left", "retagged"],
          attacker,
          millis: 2 * PROBE_INTERVAL
        })
        const afterPushPulls = yield* Effect.forEach(guarded.honest, statsOf)
        console.log(
          `identities required: ${pushPulls.sent} forged push-pulls; counted`,
          deltas(afterDatagrams, afterPushPulls)
        )
        expect(pushPulls.fooled.sightings).toEqual([])
        for (const d of deltas(afterDatagrams, afterPushPulls)) {
          expect(d.claimsRefused).toBeGreaterThan(0)
          expect(d.claimsUnverifiable).toBe(0)
        }
        // an accusation is evidence: the victim may be Suspect right after one, and it refutes
        yield* waitFor(
          "the victim Alive everywhere after the attack",
          allSee(guarded.members, [guarded.victim], "Alive"),
          5_000
        )
        for (const m of guarded.honest) {
          expect((yield* memberOf(m, guarded.victim.self.id))?.tags.role).toBeUndefined()
        }
        expect((yield* statsOf(guarded.victim)).refutations).toBeGreaterThan(0)
        yield* Effect.forEach(guarded.members, stop, { discard: true, concurrency: "unbounded" })

        // the control: the same forgeries against the same cluster without requireIdentities take hold
        const open = yield* run(false)
        const openBefore = yield* Effect.forEach(open.honest, statsOf)
        const control = yield* attack({
          ...open,
          via: "datagram",
          kinds: FORGERIES,
          attacker,
          millis: window,
          until: (f) => f.seen.size === FORGERIES.length
        })
        console.log(
          `without requireIdentities: ${control.sent} forged datagrams, taken: ${[...control.fooled.seen]}`,
          control.fooled.sightings
        )
        expect([...control.fooled.seen].sort()).toEqual([...FORGERIES].sort())
        const controlPushPulls = yield* attack({
          ...open,
          via: "push-pull",
          kinds: ["Left", "retagged"],
          attacker,
          millis: 2 * PROBE_INTERVAL,
          until: (f) => f.seen.size === 2
        })
        console.log(
          `without requireIdentities: ${controlPushPulls.sent} forged push-pulls, taken: ${[...controlPushPulls.fooled.seen]}`
        )
        expect([...controlPushPulls.fooled.seen].sort()).toEqual(["Left", "retagged"])
        for (const d of deltas(openBefore, yield* Effect.forEach(open.honest, statsOf))) {
          expect(d).toEqual({ claimsRefused: 0, deathsDowngraded: 0, claimsUnverifiable: 0 })
        }
      }),
    40_000
  )

  it.live(
    "a member whose certificate comes from another CA never appears in a cluster that requires identities",
    () =>
      Effect.gen(function* () {
        const members = yield* startCluster(Array.from({ length: 3 }, () => withIdentity(newId())))
        const before = yield* Effect.forEach(members, statsOf)
        const otherCa = DevTls.makeAuthority({ name: "another-ca" })
        const outsiderId = newId()
        const outsider = yield* Effect.result(
          start({
            nodeName: "outsider",
            keyring: [key],
            ...identityOf(outsiderId, otherCa),
            requireIdentities: true,
            seedNodes: [seedOf(members[0]!)],
            joinTimeout: "3 seconds"
          })
        )
        const joinedAt = Date.now()
        // the join's push-pull is sealed with the right key, so the seed answers it; what it
        // carries about the outsider is refused
        yield* waitFor(
          "the outsider's claims refused or unverifiable at the seed",
          Effect.map(
            statsOf(members[0]!),
            (s) => s.claimsRefused + s.claimsUnverifiable > before[0]!.claimsRefused + before[0]!.claimsUnverifiable
          ),
          5_000
        )
        // several probe intervals on, it is in nobody's view (and it holds nobody alive)
        const until = joinedAt + 4 * PROBE_INTERVAL
        while (Date.now() < until) {
          for (const m of members) expect(yield* memberOf(m, outsiderId)).toBeUndefined()
          yield* Effect.sleep("100 millis")
        }
        expect(yield* allSee(members, members, "Alive")).toBe(true)
        const seedStats = yield* statsOf(members[0]!)
        console.log(
          `other CA: seed refused ${seedStats.claimsRefused - before[0]!.claimsRefused}, unverifiable ${seedStats.claimsUnverifiable - before[0]!.claimsUnverifiable}; outsider: ${Result.isSuccess(outsider) ? JSON.stringify(yield* statsOf(outsider.success)) : outsider.failure._tag}`
        )
        if (Result.isSuccess(outsider)) {
          const view = yield* outsider.success.cluster.members
          console.log(`other CA: the join answered; the outsider holds ${view.map((m) => `${m.name} ${m.state}`)}`)
          expect(view.filter((m) => m.id !== outsiderId && m.state === "Alive")).toEqual([])
        } else {
          console.log(`other CA: the join failed with ${outsider.failure._tag}: ${outsider.failure.message}`)
          assert.strictEqual(outsider.failure._tag, "JoinFailed")
        }
      }),
    40_000
  )
})
