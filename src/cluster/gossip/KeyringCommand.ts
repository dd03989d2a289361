/**
 * The keyring's commands between members: list the keys, install one, make
 * one primary, remove one. A command is a stream request of kind
 * `Codec.KIND_KEYRING`, sealed by the sender's keyring like any other frame —
 * so only a holder of a key the receiver accepts can change its keyring —
 * and the answer says what the receiver holds afterwards.
 *
 * @module
 * @since 0.1.0
 */
import * as SchemaBinary from "effect/encoding/SchemaBinary"
import * as Redacted from "effect/Redacted"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as Codec from "./Codec.ts"
import { type Keyring, makeKey } from "./Keyring.ts"

/** What a command asks. `key` is the base64 key for `install`, a fingerprint for `use` and `remove`. */
export class KeyringCommand extends Schema.Class<KeyringCommand>("shoal/KeyringCommand")({
  op: Schema.Literals(["list", "install", "use", "remove"]),
  key: Schema.optionalKey(Schema.String)
}) {}

/** What a member answers: its fingerprints after the command (primary first), or why it refused. */
export class KeyringAnswer extends Schema.Class<KeyringAnswer>("shoal/KeyringAnswer")({
  keys: Schema.Array(Schema.String),
  refused: Schema.optionalKey(Schema.String)
}) {}

const commandCodec = SchemaBinary.toCodec(KeyringCommand)
const answerCodec = SchemaBinary.toCodec(KeyringAnswer)
const encodeCommandBody = Schema.encodeSync(commandCodec)
const decodeCommandBody = Schema.decodeUnknownResult(commandCodec)
const encodeAnswerBody = Schema.encodeSync(answerCodec)
const decodeAnswerBody = Schema.decodeUnknownResult(answerCodec)

/** A command as a frame of cluster `label` (it is sealed on its way out like everything else). */
export const encodeCommand = (label: string, command: KeyringCommand): Uint8Array =>
  Codec.encodeFrame(Codec.KIND_KEYRING, label, encodeCommandBody(command).slice())

export const decodeCommand = (label: string, bytes: Uint8Array): Result.Result<KeyringCommand, string> => {
  const body = Codec.frameBody(Codec.KIND_KEYRING, label, bytes)
  if (Result.isFailure(body)) return Result.fail(body.failure.message)
  return Result.mapError(decodeCommandBody(body.success), (error) => `undecodable keyring command: ${error.message}`)
}

export const encodeAnswer = (label: string, answer: KeyringAnswer): Uint8Array =>
  Codec.encodeFrame(Codec.KIND_KEYRING, label, encodeAnswerBody(answer).slice())

export const decodeAnswer = (label: string, bytes: Uint8Array): Result.Result<KeyringAnswer, string> => {
  const body = Codec.frameBody(Codec.KIND_KEYRING, label, bytes)
  if (Result.isFailure(body)) return Result.fail(body.failure.message)
  return Result.mapError(decodeAnswerBody(body.success), (error) => `undecodable keyring answer: ${error.message}`)
}

/** The command that installs `key` (its base64 text travels inside the sealed frame only). */
export const installCommand = (key: Redacted.Redacted<string>): KeyringCommand =>
  new KeyringCommand({ op: "install", key: Redacted.value(key) })

/** Carries out `command` on `keyring` and says what it holds afterwards. */
export const apply = (keyring: Keyring, command: KeyringCommand): KeyringAnswer => {
  const answer = (refused?: string) =>
    new KeyringAnswer(refused === undefined ? { keys: keyring.list() } : { keys: keyring.list(), refused })
  switch (command.op) {
    case "list":
      return answer()
    case "install": {
      const key = command.key === undefined ? undefined : makeKey(command.key)
      if (key === undefined || Result.isFailure(key)) return answer("not a key (32 bytes of base64)")
      keyring.install(key.success)
      return answer()
    }
    case "use":
      return answer(command.key === undefined ? "no fingerprint" : keyring.use(command.key))
    case "remove":
      return answer(command.key === undefined ? "no fingerprint" : keyring.remove(command.key))
  }
}
