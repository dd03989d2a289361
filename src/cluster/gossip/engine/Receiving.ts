/**
 * What a node does with a datagram: every packet is a heartbeat of its
 * sender for the phi detector (by source address, or by the pinger's id);
 * its piggybacked updates are applied first, so a reply carries whatever
 * they changed (a refutation, say); then each message: a ping is answered
 * (in our own name, whoever it was for — the prober learns at once that the
 * member it probes no longer lives here; a leaving node still answers), an
 * ack or nack goes to whoever waits for it, a ping-req is relayed.
 *
 * @since 0.1.0
 */
import * as Result from "effect/Result"
import type { Address, NodeId } from "../../Node.ts"
import * as Codec from "../Codec.ts"
import { Ack, type Packet } from "../Messages.ts"
import { addressKey } from "./Addresses.ts"
import { send } from "./Dissemination.ts"
import { heardFrom, learnCertificatesFrom } from "./Healing.ts"
import { updatesOfPacket } from "./Limits.ts"
import { onAck, onNack } from "./Probing.ts"
import { onPingReq } from "./Relaying.ts"
import { PHI_COALESCE_MILLIS } from "./Settings.ts"
import { type EngineState, TRUSTED } from "./State.ts"
import { applyReceived } from "./Updates.ts"

/** A datagram from `from`: decoded here when it comes as bytes (a bad one is counted and dropped). */
export const receive = (state: EngineState, from: Address, payload: Uint8Array | Packet): void => {
  if (!(payload instanceof Uint8Array)) {
    handlePacket(state, from, payload)
    return
  }
  const decoded = Codec.decodePacketResult(state.settings.clusterLabel, payload)
  if (Result.isFailure(decoded)) {
    state.counters.packetsRejected++
    state.count("packetsRejected")
    state.log("dropped a bad packet", {
      error: decoded.failure.message,
      peer: addressKey(from),
      bytes: payload.length
    })
    return
  }
  handlePacket(state, from, decoded.success)
}

const handlePacket = (state: EngineState, from: Address, packet: Packet): void => {
  const sender = state.members.addresses.current(addressKey(from))
  if (sender !== undefined) heartbeat(state, sender)
  state.claimsMissing = false
  for (const update of updatesOfPacket(state, packet.updates)) applyReceived(state, update)
  // a claim whose signer's certificate we lack: its sender, which applied it, holds the certificate
  if (state.claimsMissing) learnCertificatesFrom(state, from)
  for (const message of packet.messages) {
    switch (message._tag) {
      case "Ping":
        if (sender === undefined) heartbeat(state, message.from)
        send(state, from, [new Ack({ seq: message.seq, from: state.self.id }, TRUSTED)])
        heardFrom(state, message.from, from, true)
        break
      case "Ack":
        onAck(state, message, from)
        heardFrom(state, message.from, from, false)
        break
      case "Nack":
        onNack(state, message)
        break
      case "PingReq":
        onPingReq(state, from, message)
        break
    }
  }
}

/**
 * A packet from live member `id` is a heartbeat; packets closer together
 * than the coalescing window are one. A member with a detector is live (its
 * detector goes when it dies or leaves), so only the first heartbeat asks.
 */
const heartbeat = (state: EngineState, id: NodeId): void => {
  if (id === state.self.id || state.phi.heartbeatIfKnown(id, state.now, PHI_COALESCE_MILLIS)) return
  if (state.members.live.has(id)) state.phi.heartbeat(id, state.now)
}
