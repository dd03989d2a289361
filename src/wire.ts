/**
 * `shoal/wire`: the gossip protocol's bytes. `Codec` frames compound packets
 * and push-pull state (header, cluster label, size budget, hostile-length
 * guards); `Messages` holds the message classes and their plain wire schemas.
 * For tools that read or write shoal packets (a packet capture decoder, a
 * fuzzer, another implementation's tests).
 *
 * @module
 * @since 0.1.0
 */
export * as Codec from "./cluster/gossip/Codec.ts"
export * as Messages from "./cluster/gossip/Messages.ts"
