/**
 * A member's identity: its certificate from the cluster CA, whose
 * subjectAltName carries the URI `urn:uuid:<nodeId>` binding the node id,
 * and its EC P-256 private key — usually the RPC TLS certificate, so one
 * certificate per node serves both. This module is the crypto behind signed
 * claims (`engine/Claims.ts`), with `node:crypto`: it checks a certificate
 * against the CA (issuer, CA signature, validity, the bound id, a P-256 key),
 * and signs and verifies claims as ECDSA with SHA-256 in IEEE P1363 form
 * (64 bytes, `r ‖ s`: the DER form varies in length, 70–72 bytes).
 *
 * Validity dates are checked against the wall clock (`Date.now()` unless
 * told otherwise): certificates expire in real time, whatever clock the
 * protocol runs on.
 *
 * @since 0.1.0
 */
import { createPrivateKey, type KeyObject, sign, verify, X509Certificate } from "node:crypto"
import * as Redacted from "effect/Redacted"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import { NodeId } from "../Node.ts"
import type { ClaimVerifier, Identities } from "./engine/Claims.ts"

/** The PEM material of an identity, as configuration holds it. */
export interface IdentityMaterial {
  /** This node's certificate, PEM. */
  readonly certificate: string
  /** Its private key, PEM (`Redacted`: it never reaches a log). */
  readonly key: Redacted.Redacted<string>
  /** The cluster CA's certificate, PEM: what every member's certificate must be issued by. */
  readonly ca: string
}

/** An identity read and checked: this node's id as its certificate binds it, and the keys. */
export interface LoadedIdentity {
  readonly nodeId: NodeId
  /** This node's certificate, DER (what push-pull entries carry). */
  readonly certificate: Uint8Array
  readonly privateKey: KeyObject
  readonly ca: X509Certificate
}

const URN_UUID = "URI:urn:uuid:"

const isNodeId = Schema.is(NodeId)

/** The node id a certificate binds (its subjectAltName URI `urn:uuid:<id>`), if exactly one. */
export const boundNodeId = (certificate: X509Certificate): NodeId | undefined => {
  const names = (certificate.subjectAltName ?? "").split(", ").filter((name) => name.startsWith(URN_UUID))
  if (names.length !== 1) return undefined
  const text = names[0]!.slice(URN_UUID.length).toLowerCase()
  return isNodeId(text) ? text : undefined
}

/** Why `certificate` is not a member identity issued by `ca` for `id` (at `now`), or `undefined` when it is. */
export const certificateProblem = (
  certificate: X509Certificate,
  ca: X509Certificate,
  id: NodeId | undefined,
  now: number
): string | undefined => {
  const key = certificate.publicKey
  if (key.asymmetricKeyType !== "ec" || key.asymmetricKeyDetails?.namedCurve !== "prime256v1") {
    return "its key is not EC P-256"
  }
  if (!certificate.checkIssued(ca) || !certificate.verify(ca.publicKey)) return "it was not issued by the cluster CA"
  if (now < Date.parse(certificate.validFrom) || now > Date.parse(certificate.validTo)) {
    return `it is not valid now (valid ${certificate.validFrom} to ${certificate.validTo})`
  }
  const bound = boundNodeId(certificate)
  if (bound === undefined) return "it binds no node id (a subjectAltName URI urn:uuid:<id>)"
  if (id !== undefined && bound !== id) return `it is for ${bound}, not ${id}`
  return undefined
}

/** Signs `message` as a 64-byte ECDSA P-256 / SHA-256 signature. */
export const signClaim = (key: KeyObject, message: Uint8Array): Uint8Array =>
  new Uint8Array(sign("sha256", message, { key, dsaEncoding: "ieee-p1363" }))

/** Whether `signature` is `key`'s over `message`. */
export const verifyClaim = (key: KeyObject, message: Uint8Array, signature: Uint8Array): boolean => {
  try {
    return verify("sha256", message, { key, dsaEncoding: "ieee-p1363" }, signature)
  } catch {
    return false
  }
}

/**
 * Reads and checks an identity: the CA and the certificate parse, the CA
 * issued the certificate, it is valid now and binds a node id, and the key
 * is the certificate's (a test signature verifies). Fails with what is wrong.
 */
export const loadIdentity = (material: IdentityMaterial, now = Date.now()): Result.Result<LoadedIdentity, string> => {
  let ca: X509Certificate
  let certificate: X509Certificate
  let privateKey: KeyObject
  try {
    ca = new X509Certificate(material.ca)
  } catch (cause) {
    return Result.fail(`the CA certificate does not parse (${String(cause)})`)
  }
  try {
    certificate = new X509Certificate(material.certificate)
  } catch (cause) {
    return Result.fail(`the certificate does not parse (${String(cause)})`)
  }
  try {
    privateKey = createPrivateKey(Redacted.value(material.key))
  } catch {
    return Result.fail("the private key does not parse")
  }
  const problem = certificateProblem(certificate, ca, undefined, now)
  if (problem !== undefined) return Result.fail(`the certificate is not a member identity: ${problem}`)
  const probe = new TextEncoder().encode("shoal identity key check")
  let matches = false
  try {
    matches = verifyClaim(certificate.publicKey, probe, signClaim(privateKey, probe))
  } catch {
    matches = false
  }
  if (!matches) return Result.fail("the private key is not the certificate's")
  return Result.succeed({
    nodeId: boundNodeId(certificate)!,
    certificate: new Uint8Array(certificate.raw),
    privateKey,
    ca
  })
}

/**
 * What the engine is given for signed claims: this node's certificate and
 * signer, and the CA check of members' certificates (each certificate
 * parsed and checked once; `Claims` keeps the verifier).
 */
export const identities = (
  identity: LoadedIdentity,
  options: { readonly required: boolean; readonly now?: () => number }
): Identities => {
  const now = options.now ?? Date.now
  return {
    required: options.required,
    certificate: identity.certificate,
    sign: (message) => signClaim(identity.privateKey, message),
    certify: (id, der): ClaimVerifier | undefined => {
      let certificate: X509Certificate
      try {
        certificate = new X509Certificate(der)
      } catch {
        return undefined
      }
      if (certificateProblem(certificate, identity.ca, id, now()) !== undefined) return undefined
      const key = certificate.publicKey
      return (message, signature) => verifyClaim(key, message, signature)
    }
  }
}
