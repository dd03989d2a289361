/**
 * What the discrete-event simulator counts: per address and in total, the
 * datagrams and bytes sent and received, the datagrams dropped and why, and
 * the exchanges started and failed — the `SimStats` the Effect-level
 * `SimNetwork` reports, so benchmarks read both the same way.
 *
 * Bytes: messages travel as objects, so a datagram's size is either the
 * codec's estimate (its per-update sizes, an upper bound), its exact
 * encoding, every 16th datagram's exact encoding counted 16 times (an
 * unbiased estimate of the exact total at a sixteenth of the cost), or not
 * counted at all.
 *
 * @since 0.1.0
 */
import * as Codec from "../Codec.ts"
import type { Packet } from "../Messages.ts"
import type { SimStats } from "../SimNetwork.ts"

export type ByteCounting = "estimate" | "exact" | "sampled" | "off"

/** One datagram in this many is encoded when bytes are `"sampled"`. */
const SAMPLE_EVERY = 16

type Counters = { -readonly [K in keyof SimStats]: SimStats[K] }

const zero = (): Counters => ({
  packetsSent: 0,
  bytesSent: 0,
  packetsReceived: 0,
  bytesReceived: 0,
  dropped: 0,
  droppedLoss: 0,
  droppedPartition: 0,
  droppedUnreachable: 0,
  exchanges: 0,
  exchangesFailed: 0
})

export class Traffic {
  bytes: ByteCounting
  readonly #byAddress = new Map<string, Counters>()
  readonly #totals = zero()
  #sampled = 0

  constructor(bytes: ByteCounting) {
    this.bytes = bytes
  }

  /** The size to count for `packet` sent under `label` within `maxPacketSize` (0 when bytes are not counted). */
  sizeOf(label: string, maxPacketSize: number, packet: Packet): number {
    switch (this.bytes) {
      case "off":
        return 0
      case "sampled":
        if (++this.#sampled % SAMPLE_EVERY !== 0) return 0
        return SAMPLE_EVERY * Codec.packCompound(label, packet.messages, packet.updates, maxPacketSize).bytes.length
      case "exact":
        return Codec.packCompound(label, packet.messages, packet.updates, maxPacketSize).bytes.length
      case "estimate": {
        let size = Codec.packetOverhead(label, packet.messages)
        for (const update of packet.updates) size += Codec.updateSize(update)
        return size
      }
    }
  }

  sent(key: string, bytes: number): void {
    const own = this.#of(key)
    own.packetsSent++
    own.bytesSent += bytes
    this.#totals.packetsSent++
    this.#totals.bytesSent += bytes
  }

  received(key: string, bytes: number): void {
    const own = this.#of(key)
    own.packetsReceived++
    own.bytesReceived += bytes
    this.#totals.packetsReceived++
    this.#totals.bytesReceived += bytes
  }

  count(
    key: string,
    counter: "dropped" | "droppedLoss" | "droppedPartition" | "droppedUnreachable" | "exchanges" | "exchangesFailed"
  ): void {
    this.#of(key)[counter]++
    this.#totals[counter]++
  }

  of(key: string): SimStats {
    return { ...(this.#byAddress.get(key) ?? zero()) }
  }

  get totals(): SimStats {
    return { ...this.#totals }
  }

  #of(key: string): Counters {
    let counters = this.#byAddress.get(key)
    if (counters === undefined) {
      counters = zero()
      this.#byAddress.set(key, counters)
    }
    return counters
  }
}
