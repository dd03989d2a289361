/**
 * What happened to a member, as the application sees it. The registry records
 * every accepted claim; most of those are protocol noise (an incarnation bump
 * while suspect, a stronger claim about a member already gone), so this module
 * turns a change of the member table into at most one event a user can act on.
 *
 * Each event is a `Schema.TaggedClass`, so events can be logged structurally,
 * sent over RPC or stored, and each carries the member's state *after* the
 * change.
 *
 * @module
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"
import { type Address, ClusterNode } from "./Node.ts"

/** A member became visible: first seen alive, or back after failing, leaving or being reaped. */
export class NodeJoined extends Schema.TaggedClass<NodeJoined>()("NodeJoined", { node: ClusterNode }) {}

/** An alive member announced something new: tags, name, addresses or just a higher incarnation. */
export class NodeUpdated extends Schema.TaggedClass<NodeUpdated>()("NodeUpdated", { node: ClusterNode }) {}

/** A member stopped answering probes; it may still refute. */
export class NodeSuspected extends Schema.TaggedClass<NodeSuspected>()("NodeSuspected", { node: ClusterNode }) {}

/** A suspected member refuted the suspicion and is alive again. */
export class NodeRecovered extends Schema.TaggedClass<NodeRecovered>()("NodeRecovered", { node: ClusterNode }) {}

/** A member was declared dead (a detected failure, as opposed to {@link NodeLeft}). */
export class NodeFailed extends Schema.TaggedClass<NodeFailed>()("NodeFailed", { node: ClusterNode }) {}

/** A member left gracefully. */
export class NodeLeft extends Schema.TaggedClass<NodeLeft>()("NodeLeft", { node: ClusterNode }) {}

/** A dead or departed member was dropped from the registry after the reap time; `node` is its last state. */
export class NodeReaped extends Schema.TaggedClass<NodeReaped>()("NodeReaped", { node: ClusterNode }) {}

/** Any membership event. */
export type ClusterEvent = NodeJoined | NodeUpdated | NodeSuspected | NodeRecovered | NodeFailed | NodeLeft | NodeReaped

/** The schema of {@link ClusterEvent}, for encoding events (JSON, SchemaBinary, RPC streams). */
export const ClusterEvent = Schema.Union([
  NodeJoined,
  NodeUpdated,
  NodeSuspected,
  NodeRecovered,
  NodeFailed,
  NodeLeft,
  NodeReaped
])

const sameAddress = (a: Address | undefined, b: Address | undefined): boolean =>
  a === b || (a !== undefined && b !== undefined && a.host === b.host && a.port === b.port)

const sameTags = (a: ClusterNode["tags"], b: ClusterNode["tags"]): boolean => {
  if (a === b) return true
  let count = 0
  for (const key in a) {
    if (!Object.hasOwn(b, key) || a[key] !== b[key]) return false
    count++
  }
  for (const _ in b) count--
  return count === 0
}

/** Whether two views of a member differ in anything a caller could observe besides the state. */
const sameAnnouncement = (a: ClusterNode, b: ClusterNode): boolean =>
  a.incarnation === b.incarnation &&
  a.name === b.name &&
  sameAddress(a.gossipAddress, b.gossipAddress) &&
  sameAddress(a.rpcAddress, b.rpcAddress) &&
  sameTags(a.tags, b.tags)

/**
 * The event a registry change means, or `undefined` when it means nothing to
 * an application. `previous` is the member as the registry held it before
 * (`undefined` when it was not a member: never seen, or reaped), `current`
 * after.
 *
 * The event names the new state; only a change *into* `Alive` depends on
 * where the member came from:
 *
 * | previous                 | current `Alive`                     | `Suspect`       | `Dead`       | `Left`     |
 * |--------------------------|-------------------------------------|-----------------|--------------|------------|
 * | not a member             | NodeJoined                          | NodeSuspected   | NodeFailed   | NodeLeft   |
 * | `Alive`                  | NodeUpdated, or nothing if identical | NodeSuspected  | NodeFailed   | NodeLeft   |
 * | `Suspect`                | NodeRecovered                       | nothing         | NodeFailed   | NodeLeft   |
 * | `Dead`                   | NodeJoined (it returned)            | NodeSuspected   | nothing      | NodeLeft   |
 * | `Left`                   | NodeJoined (it returned)            | NodeSuspected   | NodeFailed   | nothing    |
 *
 * Staying in a non-alive state (a suspicion re-raised at a newer incarnation,
 * a `Dead` member declared dead again) is not news. The registry never
 * produces the rows that `Rules.shouldApply` forbids (an unknown member
 * that is not alive, `Dead → Suspect`, `Left → Dead`…), but the function is
 * total so that it can be used on any pair, e.g. to replay a log.
 *
 * `NodeReaped` is not decided here: a reap removes the member rather than
 * changing it, and the registry reports it as such.
 */
export const classify = (previous: ClusterNode | undefined, current: ClusterNode): ClusterEvent | undefined => {
  switch (current.state) {
    case "Alive": {
      if (previous === undefined || previous.state === "Dead" || previous.state === "Left") {
        return new NodeJoined({ node: current }, { disableChecks: true })
      }
      if (previous.state === "Suspect") return new NodeRecovered({ node: current }, { disableChecks: true })
      return sameAnnouncement(previous, current)
        ? undefined
        : new NodeUpdated({ node: current }, { disableChecks: true })
    }
    case "Suspect":
      return previous?.state === "Suspect" ? undefined : new NodeSuspected({ node: current }, { disableChecks: true })
    case "Dead":
      return previous?.state === "Dead" ? undefined : new NodeFailed({ node: current }, { disableChecks: true })
    case "Left":
      return previous?.state === "Left" ? undefined : new NodeLeft({ node: current }, { disableChecks: true })
  }
}
