/**
 * The wire format of shoal's RPC: effect/rpc's SchemaBinary serialization in
 * its default (field-tagged) mode.
 *
 * Measured on TLS over loopback against NDJSON, JSON-RPC over NDJSON and
 * SchemaBinary's fingerprint mode (bench/rpc, "serializations"): the binary
 * formats are the fastest on every row and the smallest on the wire. Between
 * the two binary modes the difference is within the noise, and the default
 * mode tolerates compatible schema changes (added optional fields) where the
 * fingerprint mode needs both sides to have the identical schema — so a
 * rolling upgrade of a cluster keeps working.
 *
 * A bare effect/rpc client or server talks to shoal by providing
 * {@link layer}; with a different serialization calls hang rather than fail.
 *
 * @module
 * @since 0.1.0
 */
import type * as Layer from "effect/Layer"
import * as RpcSerialization from "effect/rpc/RpcSerialization"

/** The serialization shoal's servers and clients use, reading frames of at most `maxFrameSize` bytes. */
export const layerWith = (options: {
  readonly maxFrameSize?: number | undefined
}): Layer.Layer<RpcSerialization.RpcSerialization> => RpcSerialization.layerSchemaBinary(options)

/** The serialization shoal's servers and clients use (effect/rpc's frame limit, 16 MiB). */
export const layer: Layer.Layer<RpcSerialization.RpcSerialization> = layerWith({})
