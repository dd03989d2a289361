/**
 * How the RPC layer fails, beyond the cluster's own errors: starting a server
 * reports `InvalidConfiguration` (bad or unreadable PEM files), `NetworkError`
 * (the port is taken) and the cluster's `JoinFailed`; a client reports the
 * errors below. A call that reached a server and broke keeps effect/rpc's
 * `RpcClientError`, whose `reason` says how the socket failed.
 *
 * @module
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"

/**
 * A connection could not be opened: refused, timed out, or the TLS handshake
 * failed (an untrusted or mismatched server certificate, or a server that
 * demands a client certificate this client does not have).
 */
export class ConnectionFailed extends Schema.TaggedError<ConnectionFailed>()("ConnectionFailed", {
  address: Schema.String,
  reason: Schema.String,
  cause: Schema.optionalKey(Schema.Defect())
}) {
  override get message(): string {
    return `could not connect to ${this.address}: ${this.reason}`
  }
}

/** A member was asked to take calls but does not advertise an RPC address. */
export class NoRpcAddress extends Schema.TaggedError<NoRpcAddress>()("NoRpcAddress", {
  nodeId: Schema.String,
  nodeName: Schema.String
}) {
  override get message(): string {
    return `member ${this.nodeName} (${this.nodeId}) does not advertise an RPC address`
  }
}

/** No alive member carrying the requested tags could take the call. */
export class NoMemberAvailable extends Schema.TaggedError<NoMemberAvailable>()("NoMemberAvailable", {
  tags: Schema.Record(Schema.String, Schema.String),
  reason: Schema.String
}) {
  override get message(): string {
    const tags = Object.entries(this.tags)
      .map(([key, value]) => `${key}=${value}`)
      .join(", ")
    return `no member with tags {${tags}} could take the call: ${this.reason}`
  }
}

/** Anything the cluster client adds to a call's errors. */
export type ClusterCallError = ConnectionFailed | NoMemberAvailable
