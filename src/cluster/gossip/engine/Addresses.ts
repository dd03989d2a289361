/**
 * Which live members claim which gossip address. A datagram says only where
 * it came from, so its source address is how a packet without ids (a gossip
 * packet) still counts as a heartbeat of its sender; and two live members at
 * one address mean one of them restarted under a new id.
 *
 * @since 0.1.0
 */
import { type Address, formatAddress, type NodeId } from "../../Node.ts"

const keys = new WeakMap<Address, string>()

/**
 * `host:port` of an address, memoized per `Address` object: the engine
 * looks up every datagram's source and every member's address, and decoded
 * addresses are shared objects (the codec caches them; the simulator passes
 * the same ones around).
 */
export const addressKey = (address: Address): string => {
  let key = keys.get(address)
  if (key === undefined) {
    key = formatAddress(address)
    keys.set(address, key)
  }
  return key
}

export class AddressBook {
  /** Address → the member that last claimed it. */
  readonly #current = new Map<string, NodeId>()
  /** Address → every live member that claims it: one id, or a set after a restart under a new id. */
  readonly #claims = new Map<string, NodeId | Set<NodeId>>()

  get size(): number {
    return this.#claims.size
  }

  /** The member last seen claiming `key`, if it is still live. */
  current(key: string): NodeId | undefined {
    return this.#current.get(key)
  }

  /** How many live members claim `key`. */
  claimCount(key: string): number {
    const claims = this.#claims.get(key)
    return claims === undefined ? 0 : typeof claims === "string" ? 1 : claims.size
  }

  /** The live members that claim `key`. */
  claimants(key: string): ReadonlyArray<NodeId> {
    const claims = this.#claims.get(key)
    return claims === undefined ? [] : typeof claims === "string" ? [claims] : Array.from(claims)
  }

  /** `id` is live at `key` (and the latest to say so). */
  claim(key: string, id: NodeId): void {
    this.#current.set(key, id)
    const claims = this.#claims.get(key)
    if (claims === undefined) this.#claims.set(key, id)
    else if (typeof claims === "string") {
      if (claims !== id) this.#claims.set(key, new Set([claims, id]))
    } else claims.add(id)
  }

  /** `id` no longer claims `key` (it moved, died or left). */
  release(key: string, id: NodeId): void {
    const claims = this.#claims.get(key)
    if (claims !== undefined) {
      if (typeof claims === "string") {
        if (claims === id) this.#claims.delete(key)
      } else {
        claims.delete(id)
        if (claims.size === 1) this.#claims.set(key, claims.values().next().value!)
        else if (claims.size === 0) this.#claims.delete(key)
      }
    }
    if (this.#current.get(key) === id) this.#current.delete(key)
  }
}
