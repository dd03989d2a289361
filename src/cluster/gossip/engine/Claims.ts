/**
 * Signed claims: per-member identity on top of the shared gossip key.
 *
 * A keyring keeps strangers out, but every key holder can say anything about
 * anyone. With identities each member holds a certificate from the cluster
 * CA binding its node id, and signs what only it may say of itself: its
 * `Alive` announcements (id, incarnation, name, addresses, tags) and its
 * `Left`. With `requireIdentities` a receiver applies an `Alive` or `Left`
 * about a member only with a valid signature by that member's certificate,
 * and takes a `Dead` about another member as a `Suspect`: an accusation is
 * evidence, the verdict is each node's own suspicion timer, so a live member
 * refutes (with a signed `Alive`) before anyone holds it dead. A key holder
 * can still accuse — make a member Suspect for a suspicion timeout — but not
 * evict, retag or impersonate it.
 *
 * The cost stays off the hot path: a member signs once per own incarnation
 * (the signature is cached with the claim), a receiver checks a signature
 * only for an announcement that would change its view (old news is dropped
 * by the precedence rules first), and caches each verdict by the claim's
 * bytes and signature, so a claim heard from many peers is verified once.
 * Certificates are too large for a datagram: they travel in push-pull
 * entries (the join exchange is one), are checked against the CA once, and
 * are kept per member, at most `maxMembers`, forgotten with the member's
 * tombstone.
 *
 * The engine stays pure: the crypto is the shell's ({@link Identities},
 * built by `MemberIdentity` from `node:crypto`), passed in as plain
 * functions; this module decides what to sign, what to check and what to
 * keep.
 *
 * @since 0.1.0
 */
import type { ClusterNode, NodeId, NodeState } from "../../Node.ts"
import { formatAddress } from "../../Node.ts"
import type { NodeStateUpdate } from "../Messages.ts"

/** Checks one signature against a member's verified certificate key. */
export type ClaimVerifier = (message: Uint8Array, signature: Uint8Array) => boolean

/**
 * What the shell gives the engine for signed claims: this node's certificate
 * and signing key (as a function), and a way to check a member's
 * certificate against the cluster CA.
 */
export interface Identities {
  /** Whether claims must be signed (`requireIdentities`); otherwise this node signs its own but checks none. */
  readonly required: boolean
  /** This node's certificate, DER. */
  readonly certificate: Uint8Array
  /** Signs `message` with this node's private key (64-byte ECDSA P-256, IEEE P1363). */
  readonly sign: (message: Uint8Array) => Uint8Array
  /**
   * The verifier of `certificate` (DER) when the cluster CA issued it for
   * `id` and it is valid now; `undefined` otherwise.
   */
  readonly certify: (id: NodeId, certificate: Uint8Array) => ClaimVerifier | undefined
}

/** Verdicts cached at most; the cache is emptied when full, so hostile traffic cannot grow it. */
export const MAX_CACHED_VERDICTS = 4096

const encoder = new TextEncoder()

/** Whether a claim in `state` is one only the member itself may make (and so signs). */
export const isSelfClaim = (state: NodeState): boolean => state === "Alive" || state === "Left"

/**
 * The canonical text a member signs for a claim about itself: the cluster
 * label (a signature from one cluster means nothing in another), the id,
 * state and incarnation, and — for an `Alive` — the name, both addresses and
 * the tags in key order. A `Left` signs only id, state and incarnation, so
 * its bare form (in gossip) and its full form (in push-pull) carry the same
 * signature.
 */
export const claimText = (label: string, update: NodeStateUpdate): string => {
  const head: Array<unknown> = ["shoal-claim/1", label, update.nodeId, update.state, update.incarnation]
  if (update.state === "Alive") {
    const tags = update.tags ?? {}
    head.push(
      update.name ?? null,
      update.gossipAddress === undefined ? null : formatAddress(update.gossipAddress),
      update.rpcAddress === undefined ? null : formatAddress(update.rpcAddress),
      Object.keys(tags)
        .sort()
        .map((key) => [key, tags[key]])
    )
  }
  return JSON.stringify(head)
}

/** {@link claimText} as the bytes signed. */
export const claimBytes = (label: string, update: NodeStateUpdate): Uint8Array =>
  encoder.encode(claimText(label, update))

/** What became of a received claim's signature. */
export type Verdict = "valid" | "invalid" | "unsigned" | "unknownCertificate"

/** A member's last verified signed claim, kept to pass on in push-pull. */
interface Signed {
  readonly state: NodeState
  readonly incarnation: number
  readonly signature: Uint8Array
}

interface Certificate {
  readonly der: Uint8Array
  readonly verify: ClaimVerifier
}

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

const base64 = (bytes: Uint8Array): string => {
  let text = ""
  for (let i = 0; i < bytes.length; i++) text += String.fromCharCode(bytes[i]!)
  return btoa(text)
}

/**
 * One node's signed-claims state: its own signatures (one per incarnation),
 * the members' verified certificates and last signed claims, and the cache
 * of verdicts.
 */
export class ClaimBook {
  readonly identities: Identities
  readonly #label: string
  readonly #maxMembers: number
  readonly #certificates = new Map<NodeId, Certificate>()
  readonly #signed = new Map<NodeId, Signed>()
  readonly #verdicts = new Map<string, boolean>()
  #own: { readonly node: ClusterNode; readonly signature: Uint8Array } | undefined = undefined
  /** Signatures made, and verified, since start (for tests and the benchmark). */
  signs = 0
  verifications = 0

  constructor(identities: Identities, label: string, maxMembers: number) {
    this.identities = identities
    this.#label = label
    this.#maxMembers = maxMembers
  }

  get required(): boolean {
    return this.identities.required
  }

  /** Certificates held. */
  get certificates(): number {
    return this.#certificates.size
  }

  /** Members whose last signed claim is held. */
  get signatures(): number {
    return this.#signed.size
  }

  /**
   * The signature of this node's claim `update` about `self` (its `Alive`
   * or `Left` at `self`'s incarnation), made once per state of `self`: every
   * retransmission, push-pull and echo answer reuses it.
   */
  signOwn(self: ClusterNode, update: NodeStateUpdate): Uint8Array {
    if (this.#own?.node === self) return this.#own.signature
    const signature = this.identities.sign(claimBytes(this.#label, update))
    this.signs++
    this.#own = { node: self, signature }
    return signature
  }

  /** Whether `id`'s certificate is held. */
  hasCertificate(id: NodeId): boolean {
    return this.#certificates.has(id)
  }

  /** `id`'s certificate (DER), if held and verified. */
  certificateOf(id: NodeId): Uint8Array | undefined {
    return this.#certificates.get(id)?.der
  }

  /**
   * Takes `der` as `id`'s certificate if the CA issued it for `id` (checked
   * once: the same bytes again cost a comparison). At most `maxMembers` are
   * held; `false` when refused.
   */
  learn(id: NodeId, der: Uint8Array): boolean {
    const held = this.#certificates.get(id)
    if (held !== undefined && sameBytes(held.der, der)) return true
    if (held === undefined && this.#certificates.size >= this.#maxMembers) return false
    const verify = this.identities.certify(id, der)
    if (verify === undefined) return false
    this.#certificates.set(id, { der, verify })
    return true
  }

  /**
   * Whether `update`, a claim about member `update.nodeId` in `Alive` or
   * `Left`, carries that member's valid signature. Verdicts are cached by the
   * claim's bytes and signature, so each announcement is verified once.
   */
  verdict(update: NodeStateUpdate): Verdict {
    const signature = update.signature
    if (signature === undefined) return "unsigned"
    const certificate = this.#certificates.get(update.nodeId)
    if (certificate === undefined) return "unknownCertificate"
    const text = claimText(this.#label, update)
    const key = `${text}\u0000${base64(signature)}`
    let valid = this.#verdicts.get(key)
    if (valid === undefined) {
      valid = certificate.verify(encoder.encode(text), signature)
      this.verifications++
      if (this.#verdicts.size >= MAX_CACHED_VERDICTS) this.#verdicts.clear()
      this.#verdicts.set(key, valid)
    }
    if (!valid) return "invalid"
    this.#signed.set(update.nodeId, { state: update.state, incarnation: update.incarnation, signature })
    return "valid"
  }

  /** The signature of `member`'s claim in its current state, when the member signed it and we verified it. */
  signatureOf(member: ClusterNode): Uint8Array | undefined {
    const signed = this.#signed.get(member.id)
    return signed !== undefined && signed.state === member.state && signed.incarnation === member.incarnation
      ? signed.signature
      : undefined
  }

  /** Forgets everything about members `keep` says are gone (reaped, their tombstones expired). */
  prune(keep: (id: NodeId) => boolean): void {
    for (const id of this.#certificates.keys()) if (!keep(id)) this.#certificates.delete(id)
    for (const id of this.#signed.keys()) if (!keep(id)) this.#signed.delete(id)
  }
}
