/**
 * A `Transport` whose every datagram and stream frame travels sealed in the
 * keyring's AES-256-GCM envelope (see `Keyring`): what the engine hands it is
 * sealed on the way out, what arrives is opened — or dropped and counted —
 * before the engine sees a byte. The engine itself never knows.
 *
 * The header stays in the clear with the envelope bit set and is the
 * associated data. A packet is refused when no key of the ring opens it
 * (forged, mutated, another cluster's key), when the replay guard has seen it
 * or finds it too old or too new, and — unless `requireEncryption` is off —
 * when it is not sealed at all. Moving a running cluster from plaintext to
 * encryption takes three rolling restarts: every node with the keyring but
 * `encryptOutgoing` and `requireEncryption` off (it reads both, sends
 * plaintext), then `encryptOutgoing` on everywhere, then `requireEncryption`.
 *
 * It also serves the keyring's own commands (`KeyringCommand`): a request of
 * kind `Codec.KIND_KEYRING`, sealed like everything else, so only a key holder
 * can install, use or remove a key on another member.
 *
 * @module
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import { NetworkError } from "../Errors.ts"
import type { Address } from "../Node.ts"
import * as Codec from "./Codec.ts"
import { type Keyring, open, type ReplayGuard, seal } from "./Keyring.ts"
import type { Packet, StreamHandler, Transport } from "./Transport.ts"

/** How a node encrypts: its keyring, its upgrade stage, and its replay guard. */
export interface EncryptionSettings {
  readonly keyring: Keyring
  readonly encryptOutgoing: boolean
  readonly requireEncryption: boolean
  readonly replayGuard: ReplayGuard
}

/** Why a sealed transport refused some bytes. */
export type EnvelopeRefusal = "not shoal" | "plaintext" | "unauthentic" | "replayed" | "too old" | "from the future"

/** Running totals of refusals, by reason. */
export type EnvelopeRejections = Readonly<Record<EnvelopeRefusal, number>>

/** No refusals (a transport without a keyring). */
export const noRejections: EnvelopeRejections = {
  "not shoal": 0,
  plaintext: 0,
  unauthentic: 0,
  replayed: 0,
  "too old": 0,
  "from the future": 0
}

const rejectedMetric = Metric.counter("shoal_gossip_envelope_rejected", {
  description: "datagrams and stream frames refused by the keyring: unsealed, unauthentic, replayed or out of time",
  incremental: true
})

/** Where a frame's body starts (`undefined` for bytes without a shoal header). */
const bodyOffset = (bytes: Uint8Array): number | undefined => {
  if (bytes.length < 5 || bytes[0] !== Codec.MAGIC) return undefined
  const offset = 5 + bytes[4]!
  return offset <= bytes.length ? offset : undefined
}

/** The frame sealed: its header with the envelope bit set (the associated data), then the envelope. */
export const sealFrame = (keyring: Keyring, bytes: Uint8Array, nowMillis: number): Uint8Array => {
  const offset = bodyOffset(bytes)
  if (offset === undefined) return bytes
  const header = bytes.slice(0, offset)
  header[2] = header[2]! | Codec.FLAG_ENVELOPE
  return seal(keyring, header, bytes.subarray(offset), nowMillis, true)
}

/** A frame opened: the plaintext frame (header without the envelope bit), or why it was refused. */
export const openFrame = (
  settings: EncryptionSettings,
  bytes: Uint8Array,
  nowMillis: number
): { readonly frame: Uint8Array } | { readonly refused: EnvelopeRefusal } => {
  const offset = bodyOffset(bytes)
  if (offset === undefined) return { refused: "not shoal" }
  if ((bytes[2]! & Codec.FLAG_ENVELOPE) === 0) {
    return settings.requireEncryption ? { refused: "plaintext" } : { frame: bytes }
  }
  const header = bytes.subarray(0, offset)
  const opened = open(settings.keyring, header, bytes.subarray(offset))
  if (opened === undefined) return { refused: "unauthentic" }
  const verdict = settings.replayGuard.check(opened, nowMillis)
  if (verdict !== "fresh") return { refused: verdict }
  const frame = new Uint8Array(offset + opened.plaintext.length)
  frame.set(header, 0)
  frame[2] = frame[2]! & ~Codec.FLAG_ENVELOPE
  frame.set(opened.plaintext, offset)
  return { frame }
}

/** The answer to a keyring command: the frame to send back. */
export type KeyringCommandHandler = (request: Uint8Array) => Effect.Effect<Uint8Array, NetworkError>

type TransportService = Transport["Service"]

/** A sealed transport, with its refusal counts for tests and the CLI. */
export interface SecureTransport extends TransportService {
  readonly rejections: Effect.Effect<EnvelopeRejections>
  /** Serves keyring commands (frames of `Codec.KIND_KEYRING`) with `handler`; the last one set wins. */
  readonly serveKeyring: (handler: KeyringCommandHandler) => Effect.Effect<void>
}

/** Wraps `inner` so that everything it carries is sealed (see the module comment). */
export const make = (inner: Transport["Service"], settings: EncryptionSettings): SecureTransport => {
  const rejections: Record<EnvelopeRefusal, number> = { ...noRejections }
  const refuse = (reason: EnvelopeRefusal, where: string, peer: Address) =>
    Effect.suspend(() => {
      rejections[reason]++
      return Metric.update(rejectedMetric, 1).pipe(
        Effect.andThen(
          Effect.logDebug(`refused a ${where}: ${reason}`).pipe(
            Effect.annotateLogs({ peer: `${peer.host}:${peer.port}` })
          )
        )
      )
    })

  const outgoing = (bytes: Uint8Array) =>
    settings.encryptOutgoing
      ? Effect.map(Clock.currentTimeMillis, (now) => sealFrame(settings.keyring, bytes, now))
      : Effect.succeed(bytes)

  const incoming = (bytes: Uint8Array, where: string, peer: Address) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => {
      const result = openFrame(settings, bytes, now)
      return "frame" in result
        ? Effect.succeed<Uint8Array | undefined>(result.frame)
        : Effect.as(refuse(result.refused, where, peer), undefined)
    })

  let keyringHandler: KeyringCommandHandler | undefined

  const receive: Transport["Service"]["receive"] = Effect.gen(function* () {
    while (true) {
      const packets = yield* inner.receive
      const opened: Array<Packet> = []
      for (const packet of packets) {
        const frame = yield* incoming(packet.payload, "datagram", packet.from)
        if (frame !== undefined) opened.push({ from: packet.from, payload: frame })
      }
      const [first, ...rest] = opened
      if (first !== undefined) return [first, ...rest] as const
    }
  })

  const serve: Transport["Service"]["serve"] = (handler: StreamHandler, options) =>
    inner.serve(
      (from, request) =>
        Effect.gen(function* () {
          const frame = yield* incoming(request, "stream request", from)
          if (frame === undefined) return yield* new NetworkError({ message: "refused by the keyring" })
          const answer =
            frame[3] === Codec.KIND_KEYRING && keyringHandler !== undefined
              ? yield* keyringHandler(frame)
              : yield* handler(from, frame)
          return yield* outgoing(answer)
        }),
      // the envelope's bytes are on top of what the handler is willing to read
      { ...options, maxBytes: options.maxBytes + 64 }
    )

  return {
    localAddress: inner.localAddress,
    send: (to, payload) => Effect.flatMap(outgoing(payload), (bytes) => inner.send(to, bytes)),
    receive,
    exchange: (to, request, options) =>
      Effect.gen(function* () {
        const response = yield* inner.exchange(to, yield* outgoing(request), {
          ...options,
          // the envelope's 28 bytes are not the caller's to count
          maxBytes: options.maxBytes + 64
        })
        const frame = yield* incoming(response, "stream response", to)
        if (frame === undefined) return yield* new NetworkError({ message: "the answer was refused by the keyring" })
        return frame
      }),
    serve,
    resolve: inner.resolve,
    stats: inner.stats,
    rejections: Effect.sync(() => ({ ...rejections })),
    serveKeyring: (handler) => Effect.sync(() => void (keyringHandler = handler))
  }
}
