/**
 * Every way the cluster can fail, as tagged errors: callers match on `_tag`
 * with `Effect.catchTag`, and each error reads as a sentence when printed.
 * Failures of the layers below (socket errors, schema issues) are converted to
 * these at the boundary where they occur, so no foreign error type leaks out.
 *
 * @module
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Schema from "effect/Schema"

/** A lookup named a member that the registry does not hold. */
export class NodeNotFound extends Schema.TaggedError<NodeNotFound>()("NodeNotFound", {
  nodeId: Schema.String
}) {
  override get message(): string {
    return `no cluster member with id ${this.nodeId}`
  }
}

/** A socket could not be opened, written or read. */
export class NetworkError extends Schema.TaggedError<NetworkError>()("NetworkError", {
  message: Schema.String,
  address: Schema.optionalKey(Schema.String),
  cause: Schema.optionalKey(Schema.Defect())
}) {}

/** Bytes that could not be decoded (or a value that could not be encoded). */
export class SerializationError extends Schema.TaggedError<SerializationError>()("SerializationError", {
  message: Schema.String,
  cause: Schema.optionalKey(Schema.Defect())
}) {}

/** A health check that did not answer within its timeout. */
export class HealthCheckTimeout extends Schema.TaggedError<HealthCheckTimeout>()("HealthCheckTimeout", {
  check: Schema.String,
  timeout: Schema.Duration
}) {
  override get message(): string {
    return `health check "${this.check}" did not answer within ${Duration.format(this.timeout)}`
  }
}

/** A configuration value that cannot work; `field` names it as the user wrote it. */
export class InvalidConfiguration extends Schema.TaggedError<InvalidConfiguration>()("InvalidConfiguration", {
  field: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `invalid configuration for ${this.field}: ${this.reason}`
  }
}

/** Seeds were configured, and none of them answered within `joinTimeout`. */
export class JoinFailed extends Schema.TaggedError<JoinFailed>()("JoinFailed", {
  seeds: Schema.Array(Schema.String),
  reason: Schema.String
}) {
  override get message(): string {
    return `could not join the cluster through ${this.seeds.join(", ")}: ${this.reason}`
  }
}

/**
 * An operation on a cluster that can no longer do it: its scope has closed
 * (`reason: "closed"`: every operation fails so), or this node has left
 * (`reason: "left"`: what would change or use its membership — new tags,
 * health checks, a cluster client — fails so; reading the last view still
 * works, and a second `leave` does nothing).
 */
export class ClusterClosed extends Schema.TaggedError<ClusterClosed>()("ClusterClosed", {
  operation: Schema.String,
  reason: Schema.Literals(["closed", "left"])
}) {
  override get message(): string {
    return this.reason === "closed"
      ? `${this.operation}: the cluster is closed (its scope ended)`
      : `${this.operation}: this node has left the cluster`
  }
}

/**
 * `forceLeave` named a member that has not failed. Only a member held `Dead`
 * may be forced out: an `Alive` or `Suspect` one would refute the claim at
 * once (it is the only authority on its own liveness), and a `Left` one has
 * already gone.
 */
export class NotFailed extends Schema.TaggedError<NotFailed>()("NotFailed", {
  nodeId: Schema.String,
  name: Schema.String,
  state: Schema.String
}) {
  override get message(): string {
    return `${this.name} (${this.nodeId}) is ${this.state}, not failed: only a failed member can be forced to leave`
  }
}

/** Any error the cluster reports. */
export type ClusterError =
  | NodeNotFound
  | NetworkError
  | SerializationError
  | HealthCheckTimeout
  | InvalidConfiguration
  | JoinFailed
  | ClusterClosed
  | NotFailed

/** The schema of {@link ClusterError}, for carrying errors over RPC or logging them structurally. */
export const ClusterError = Schema.Union([
  NodeNotFound,
  NetworkError,
  SerializationError,
  HealthCheckTimeout,
  InvalidConfiguration,
  JoinFailed,
  ClusterClosed,
  NotFailed
])
