/**
 * The crypto of member identities: a certificate binds its node id, the CA
 * check refuses another CA's certificate and one bound to another id, and a
 * claim's 64-byte signature verifies only for the same bytes and signer.
 */
import { X509Certificate } from "node:crypto"
import { assert, describe, expect, it } from "@effect/vitest"
import { Redacted, Result } from "effect"
import * as MemberIdentity from "../../../src/cluster/gossip/MemberIdentity.ts"
import type { NodeId } from "../../../src/cluster/Node.ts"
import * as DevTls from "../../../src/testing/DevTls.ts"

const idA = "3f2504e0-4f89-41d3-9a0c-0305e82c3301" as NodeId
const idB = "7c9e6679-7425-40de-944b-e07fc1f90ae7" as NodeId
const ca = DevTls.makeAuthority()
const other = DevTls.makeAuthority({ name: "outsider-ca" })
const material = (pair: DevTls.CertificatePair, authority = ca) => ({
  certificate: pair.certificate.pem,
  key: pair.key,
  ca: authority.certificate.pem
})

describe("member identity", () => {
  it("a certificate binds its node id in a urn:uuid subjectAltName", () => {
    const pair = ca.issue({ nodeId: idA })
    expect(MemberIdentity.boundNodeId(new X509Certificate(pair.certificate.pem))).toBe(idA)
    expect(MemberIdentity.boundNodeId(new X509Certificate(ca.issue().certificate.pem))).toBeUndefined()
    const loaded = Result.getOrThrow(MemberIdentity.loadIdentity(material(pair)))
    expect(loaded.nodeId).toBe(idA)
  })

  it("refuses a certificate without an id, from another CA, or with a key that is not its own", () => {
    expect(Result.isFailure(MemberIdentity.loadIdentity(material(ca.issue())))).toBe(true)
    expect(Result.isFailure(MemberIdentity.loadIdentity(material(other.issue({ nodeId: idA }))))).toBe(true)
    const mismatched = { ...material(ca.issue({ nodeId: idA })), key: ca.issue({ nodeId: idA }).key }
    const failure = MemberIdentity.loadIdentity(mismatched)
    assert.isTrue(Result.isFailure(failure))
    if (Result.isFailure(failure)) expect(failure.failure).toContain("not the certificate's")
    expect(Redacted.isRedacted(mismatched.key)).toBe(true)
  })

  it("certifies a member's certificate only for the id it binds, from the cluster CA", () => {
    const self = Result.getOrThrow(MemberIdentity.loadIdentity(material(ca.issue({ nodeId: idA }))))
    const identities = MemberIdentity.identities(self, { required: true })
    const der = (pair: DevTls.CertificatePair) => new Uint8Array(new X509Certificate(pair.certificate.pem).raw)
    const b = ca.issue({ nodeId: idB })
    expect(identities.certify(idB, der(b))).toBeDefined()
    expect(identities.certify(idA, der(b))).toBeUndefined()
    expect(identities.certify(idB, der(other.issue({ nodeId: idB })))).toBeUndefined()
    expect(identities.certify(idB, Uint8Array.of(1, 2, 3))).toBeUndefined()
    const expired = MemberIdentity.identities(self, { required: true, now: () => Date.now() + 3 * 86_400_000 })
    expect(expired.certify(idB, der(b))).toBeUndefined()
  })

  it("signs 64 bytes that verify only for the same message and signer", () => {
    const pair = ca.issue({ nodeId: idA })
    const self = Result.getOrThrow(MemberIdentity.loadIdentity(material(pair)))
    const identities = MemberIdentity.identities(self, { required: true })
    const message = new TextEncoder().encode("claim")
    const signature = identities.sign(message)
    expect(signature.length).toBe(64)
    const verify = identities.certify(idA, self.certificate)!
    expect(verify(message, signature)).toBe(true)
    expect(verify(new TextEncoder().encode("claim!"), signature)).toBe(false)
    const otherSigner = Result.getOrThrow(MemberIdentity.loadIdentity(material(ca.issue({ nodeId: idB }))))
    expect(verify(message, MemberIdentity.signClaim(otherSigner.privateKey, message))).toBe(false)
  })
})
