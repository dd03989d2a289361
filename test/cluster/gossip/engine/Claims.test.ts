/**
 * Signed claims in the engine (`engine/Claims.ts`), with real DevTls keys:
 * with identities required, a member's Alive or Left applies only with its
 * own valid signature (not with tampered tags, another member's signature,
 * or before its certificate is held), a Dead is taken as a Suspect, and a
 * node signs once per own incarnation. Without `requireIdentities` nothing
 * changes.
 */
import { describe, expect, it } from "@effect/vitest"
import { Result } from "effect"
import { claimBytes } from "../../../../src/cluster/gossip/engine/Claims.ts"
import * as MemberIdentity from "../../../../src/cluster/gossip/MemberIdentity.ts"
import { NodeStateUpdate, PushPull } from "../../../../src/cluster/gossip/Messages.ts"
import type { NodeId, NodeState, Tags } from "../../../../src/cluster/Node.ts"
import * as DevTls from "../../../../src/testing/DevTls.ts"
import { Driver, peerAddress, peerId, SELF_ID } from "./harness.ts"

const ca = DevTls.makeAuthority()
const load = (id: NodeId) => {
  const pair = ca.issue({ nodeId: id })
  return Result.getOrThrow(
    MemberIdentity.loadIdentity({ certificate: pair.certificate.pem, key: pair.key, ca: ca.certificate.pem })
  )
}
const self = load(SELF_ID)
const peer = load(peerId(1))
const rogue = load(peerId(9))

const TRUSTED = { disableChecks: true } as const

const sign = (signer: MemberIdentity.LoadedIdentity, update: NodeStateUpdate) =>
  new NodeStateUpdate(
    { ...update, signature: MemberIdentity.signClaim(signer.privateKey, claimBytes("shoal", update)) },
    TRUSTED
  )

const alive = (incarnation: number, tags: Tags = {}) =>
  new NodeStateUpdate(
    { nodeId: peerId(1), state: "Alive", incarnation, name: "p1", gossipAddress: peerAddress(1), tags },
    TRUSTED
  )

const bare = (state: NodeState, incarnation: number) =>
  new NodeStateUpdate({ nodeId: peerId(1), state, incarnation, from: peerId(2) }, TRUSTED)

const driverWith = (required: boolean, seed = 1) => {
  const identities = MemberIdentity.identities(self, { required })
  let signs = 0
  const driver = new Driver({
    seed,
    identities: {
      ...identities,
      sign: (message) => {
        signs++
        return identities.sign(message)
      }
    }
  })
  return { driver, signs: () => signs }
}

const deliver = (driver: Driver, updates: ReadonlyArray<NodeStateUpdate>) =>
  driver.handle({ _tag: "Datagram", from: peerAddress(2), payload: { messages: [], updates } })

/** A push-pull from peer 1 whose own entry carries its certificate (and its signature, if given). */
const pushPullFrom = (driver: Driver, entry: NodeStateUpdate) =>
  driver.handle({
    _tag: "StreamRequest",
    request: 1,
    from: peerAddress(1),
    payload: new PushPull(
      {
        from: peerId(1),
        join: false,
        nodes: [new NodeStateUpdate({ ...entry, certificate: peer.certificate }, TRUSTED)]
      },
      TRUSTED
    )
  })

const viewOf = (driver: Driver) => driver.engine.table.get(peerId(1))
const stats = (driver: Driver) => driver.engine.stats()

describe("signed claims", () => {
  it("an Alive applies with its member's signature once the certificate is held; before that a push-pull is asked of the sender", () => {
    const { driver } = driverWith(true)
    const outputs = deliver(driver, [sign(peer, alive(1))])
    expect(viewOf(driver)).toBeUndefined()
    expect(stats(driver).claimsUnverifiable).toBe(1)
    expect(outputs.some((o) => o._tag === "OpenExchange" && String(o.to) === String(peerAddress(2)))).toBe(true)
    pushPullFrom(driver, sign(peer, alive(1)))
    expect(viewOf(driver)).toMatchObject({ state: "Alive", incarnation: 1 })
    expect(driver.engine.footprint().certificates).toBe(1)
  })

  it("refuses an unsigned Alive, tampered tags, and another member's signature; counts each", () => {
    const { driver } = driverWith(true)
    pushPullFrom(driver, sign(peer, alive(1)))
    const signed = sign(peer, alive(2, { role: "db" }))
    deliver(driver, [alive(2, { role: "evil" })])
    deliver(driver, [new NodeStateUpdate({ ...alive(2, { role: "evil" }), signature: signed.signature! }, TRUSTED)])
    deliver(driver, [sign(rogue, alive(2, { role: "evil" }))])
    expect(viewOf(driver)).toMatchObject({ incarnation: 1, tags: {} })
    expect(stats(driver).claimsRefused).toBe(3)
    deliver(driver, [signed])
    expect(viewOf(driver)).toMatchObject({ incarnation: 2, tags: { role: "db" } })
  })

  it("a Left applies only signed by the member; a forged one is refused", () => {
    const { driver } = driverWith(true)
    pushPullFrom(driver, sign(peer, alive(1)))
    deliver(driver, [bare("Left", 2)])
    deliver(driver, [sign(rogue, bare("Left", 2))])
    expect(viewOf(driver)?.state).toBe("Alive")
    expect(stats(driver).claimsRefused).toBe(2)
    deliver(driver, [sign(peer, new NodeStateUpdate({ nodeId: peerId(1), state: "Left", incarnation: 2 }, TRUSTED))])
    expect(viewOf(driver)?.state).toBe("Left")
  })

  it("a received Dead is taken as a Suspect; the node's own suspicion timer declares the death", () => {
    const { driver } = driverWith(true)
    pushPullFrom(driver, sign(peer, alive(1)))
    driver.handle({ _tag: "Start" })
    deliver(driver, [bare("Dead", 1)])
    expect(viewOf(driver)?.state).toBe("Suspect")
    expect(stats(driver).deathsDowngraded).toBe(1)
    // nothing refutes (the peer never answers): the timer decides
    driver.runUntil(driver.now + 120_000)
    expect(viewOf(driver)?.state).toBe("Dead")
  })

  it("signs its own announcement once per incarnation, however often it is sent", () => {
    const { driver, signs } = driverWith(true)
    pushPullFrom(driver, sign(peer, alive(1)))
    driver.handle({ _tag: "Start" })
    driver.runUntil(driver.now + 60_000)
    pushPullFrom(driver, sign(peer, alive(1)))
    expect(signs()).toBe(1)
    const sent = driver.outputs.flatMap((o) => (o._tag === "Send" ? o.packet.updates : []))
    const own = sent.filter((u) => u.nodeId === SELF_ID && u.state === "Alive")
    expect(own.length).toBeGreaterThan(0)
    for (const update of own) expect(update.signature?.length).toBe(64)
    driver.handle({ _tag: "SetTags", tags: { role: "web" } })
    driver.runUntil(driver.now + 5_000)
    expect(signs()).toBe(2)
    expect(driver.engine.claimWork().signs).toBe(2)
  })

  it("each announcement is verified once, however many peers repeat it", () => {
    const { driver } = driverWith(true)
    pushPullFrom(driver, sign(peer, alive(1)))
    const before = driver.engine.claimWork().verifications
    const forged = sign(rogue, alive(2, { role: "evil" }))
    for (let i = 0; i < 10; i++) deliver(driver, [new NodeStateUpdate({ ...forged }, TRUSTED)])
    expect(driver.engine.claimWork().verifications - before).toBe(1)
    expect(stats(driver).claimsRefused).toBe(10)
  })

  it("without requireIdentities, unsigned claims apply as before (and this node still signs its own)", () => {
    const { driver, signs } = driverWith(false)
    deliver(driver, [alive(1, { role: "db" })])
    expect(viewOf(driver)).toMatchObject({ state: "Alive", tags: { role: "db" } })
    deliver(driver, [bare("Dead", 1)])
    expect(viewOf(driver)?.state).toBe("Dead")
    expect(signs()).toBe(1)
  })
})
