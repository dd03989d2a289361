/**
 * The node's gossip keyring as a service: it seals the node's Transport (see
 * `SecureTransport`) when the configuration has a keyring, answers other
 * members' keyring commands, and runs a command across the cluster — here
 * first, then on every live member — reporting who acknowledged.
 *
 * A rotation is three such commands, each acknowledged everywhere before the
 * next: `install` the new key (everyone can now read it), `use` it (everyone
 * now seals with it, and can still read the old one), `remove` the old one.
 * No member is ever sent a packet it cannot open, so nobody is suspected on
 * the way. A member that was unreachable is reported as failed: run the
 * command again once it is back (it is idempotent).
 *
 * @module
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Result from "effect/Result"
import type { ClusterConfig } from "../Config.ts"
import { InvalidConfiguration } from "../Errors.ts"
import type { ClusterNode } from "../Node.ts"
import { type Keyring, makeKeyring, ReplayGuard } from "./Keyring.ts"
import {
  apply,
  decodeAnswer,
  decodeCommand,
  encodeAnswer,
  encodeCommand,
  KeyringAnswer,
  type KeyringCommand
} from "./KeyringCommand.ts"
import * as SecureTransport from "./SecureTransport.ts"
import { Transport } from "./Transport.ts"

/** One member's answer to a keyring command. */
export interface MemberKeys {
  readonly id: string
  readonly name: string
  /** Its fingerprints afterwards, primary first (absent when it did not answer). */
  readonly keys?: ReadonlyArray<string> | undefined
  /** Why it did not acknowledge: no answer in time, or its refusal. */
  readonly error?: string | undefined
}

/** What a keyring command did across the cluster. */
export interface KeyringReport {
  /** This node's fingerprints afterwards, primary first. */
  readonly local: ReadonlyArray<string>
  /** Why this node refused the command, if it did (the others were then not asked). */
  readonly refused?: string | undefined
  readonly members: ReadonlyArray<MemberKeys>
  readonly acknowledged: number
  readonly failed: number
}

/** How long a member has to answer a keyring command. */
const COMMAND_TIMEOUT = Duration.seconds(5)

/** Members asked at once. */
const COMMAND_CONCURRENCY = 16

export class GossipKeys extends Context.Service<
  GossipKeys,
  {
    /** Whether gossip is sealed (the configuration has a keyring). */
    readonly enabled: boolean
    /** This node's fingerprints, primary first (empty without a keyring). */
    readonly local: Effect.Effect<ReadonlyArray<string>>
    /** Packets and frames the keyring refused, by reason (all zero without one). */
    readonly rejections: Effect.Effect<SecureTransport.EnvelopeRejections>
    /**
     * Runs `command` here and then on each of `members` (their gossip
     * addresses), in parallel, each within 5 s. Without a keyring it fails
     * with `InvalidConfiguration`.
     */
    readonly run: (
      command: KeyringCommand,
      members: ReadonlyArray<ClusterNode>
    ) => Effect.Effect<KeyringReport, InvalidConfiguration>
  }
>()("shoal/cluster/gossip/GossipKeys") {
  /**
   * The Transport in context, sealed when `config` has a keyring, and the
   * service that manages the keyring.
   */
  static readonly layer = (
    config: ClusterConfig
  ): Layer.Layer<Transport | GossipKeys, InvalidConfiguration, Transport> =>
    Layer.effectContext(
      Effect.gen(function* () {
        const inner = yield* Transport
        if (config.keyring === undefined) {
          const disabled = GossipKeys.of({
            enabled: false,
            local: Effect.succeed([]),
            rejections: Effect.succeed(SecureTransport.noRejections),
            run: () =>
              Effect.fail(
                new InvalidConfiguration({
                  field: "keyring",
                  reason: "no keyring is configured: gossip is in the clear"
                })
              )
          })
          return Context.make(Transport, inner).pipe(Context.add(GossipKeys, disabled))
        }
        const made = makeKeyring(config.keyring)
        if (Result.isFailure(made)) return yield* made.failure
        const keyring: Keyring = made.success
        const secure = SecureTransport.make(inner, {
          keyring,
          encryptOutgoing: config.encryptOutgoing,
          requireEncryption: config.requireEncryption,
          replayGuard: new ReplayGuard(Duration.toMillis(config.replayWindow))
        })
        const label = config.clusterLabel
        yield* secure.serveKeyring((request) =>
          Effect.sync(() => {
            const command = decodeCommand(label, request)
            return Result.isFailure(command)
              ? encodeAnswer(label, new KeyringAnswer({ keys: keyring.list(), refused: command.failure }))
              : encodeAnswer(label, apply(keyring, command.success))
          })
        )

        const ask = (command: KeyringCommand, member: ClusterNode): Effect.Effect<MemberKeys> =>
          secure
            .exchange(member.gossipAddress, encodeCommand(label, command), {
              timeout: COMMAND_TIMEOUT,
              maxBytes: 64 * 1024
            })
            .pipe(
              Effect.map((bytes): MemberKeys => {
                const answer = decodeAnswer(label, bytes)
                if (Result.isFailure(answer)) return { id: member.id, name: member.name, error: answer.failure }
                return answer.success.refused === undefined
                  ? { id: member.id, name: member.name, keys: answer.success.keys }
                  : { id: member.id, name: member.name, keys: answer.success.keys, error: answer.success.refused }
              }),
              Effect.catch((error) =>
                Effect.succeed<MemberKeys>({ id: member.id, name: member.name, error: error.message })
              )
            )

        const run = Effect.fn("GossipKeys.run")(function* (
          command: KeyringCommand,
          members: ReadonlyArray<ClusterNode>
        ) {
          const here = apply(keyring, command)
          if (here.refused !== undefined) {
            return {
              local: here.keys,
              refused: here.refused,
              members: [],
              acknowledged: 0,
              failed: 0
            } satisfies KeyringReport
          }
          const answers = yield* Effect.forEach(members, (member) => ask(command, member), {
            concurrency: COMMAND_CONCURRENCY
          })
          const failed = answers.filter((answer) => answer.error !== undefined).length
          yield* Effect.logInfo(
            `keyring ${command.op}: ${answers.length - failed} of ${answers.length} members acknowledged`
          )
          return {
            local: here.keys,
            members: answers,
            acknowledged: answers.length - failed,
            failed
          } satisfies KeyringReport
        })

        const service = GossipKeys.of({
          enabled: true,
          local: Effect.sync(() => keyring.list()),
          rejections: secure.rejections,
          run
        })
        return Context.make(Transport, secure as Transport["Service"]).pipe(Context.add(GossipKeys, service))
      })
    )
}
