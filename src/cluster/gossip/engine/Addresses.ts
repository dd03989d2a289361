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

/** Several live members at one address (a restart under a new id): all of them, and the last to claim it. */
interface Shared {
  readonly ids: Set<NodeId>
  current: NodeId | undefined
}

export class AddressBook {
  /**
   * Address → the live member that claims it (the common case: one id, no
   * object), or every member that claims it and the latest of them.
   */
  readonly #claims = new Map<string, NodeId | Shared>()

  get size(): number {
    return this.#claims.size
  }

  /** The member last seen claiming `key`, if it still does. */
  current(key: string): NodeId | undefined {
    const claims = this.#claims.get(key)
    return claims === undefined || typeof claims === "string" ? claims : claims.current
  }

  /** How many live members claim `key`. */
  claimCount(key: string): number {
    const claims = this.#claims.get(key)
    return claims === undefined ? 0 : typeof claims === "string" ? 1 : claims.ids.size
  }

  /** The live members that claim `key`. */
  claimants(key: string): ReadonlyArray<NodeId> {
    const claims = this.#claims.get(key)
    return claims === undefined ? [] : typeof claims === "string" ? [claims] : Array.from(claims.ids)
  }

  /** `id` is live at `key` (and the latest to say so). */
  claim(key: string, id: NodeId): void {
    const claims = this.#claims.get(key)
    if (claims === undefined || claims === id) this.#claims.set(key, id)
    else if (typeof claims === "string") this.#claims.set(key, { ids: new Set([claims, id]), current: id })
    else {
      claims.ids.add(id)
      claims.current = id
    }
  }

  /** `id` no longer claims `key` (it moved, died or left). */
  release(key: string, id: NodeId): void {
    const claims = this.#claims.get(key)
    if (claims === undefined) return
    if (typeof claims === "string") {
      if (claims === id) this.#claims.delete(key)
      return
    }
    claims.ids.delete(id)
    if (claims.current === id) claims.current = undefined
    if (claims.ids.size === 0) this.#claims.delete(key)
    else if (claims.ids.size === 1 && claims.current !== undefined) this.#claims.set(key, claims.current)
  }
}
