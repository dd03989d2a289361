/**
 * Durations as people type them on a command line. `Duration.fromInput`
 * only knows `"500 millis"`-style text (a number, a space, a long unit), but
 * operators coming from Serf, Consul or Go tools type `500ms`, `1s`, `1m30s`.
 * This accepts both, plus a bare number of milliseconds, so every timing
 * flag and `SHOAL_*` duration variable reads the same way.
 *
 * @module
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Option from "effect/Option"

/** Milliseconds per Go-style unit suffix. */
const UNIT_MILLIS: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000
}

const PLAIN_NUMBER = /^\d+(?:\.\d+)?$/
const SHORTHAND = /^(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+$/
const SHORTHAND_PART = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g

/**
 * Parses a duration:
 *
 * - a bare number: milliseconds (`250`, `1.5`);
 * - Go-style shorthand, possibly compound: `100ns`, `500us`, `200ms`, `1s`,
 *   `1.5s`, `2m`, `1h`, `1m30s`;
 * - anything `Duration.fromInput` accepts as text: `"500 millis"`,
 *   `"1 second"`, `"2 minutes"`, `"Infinity"`.
 *
 * Returns `None` for anything else. Range checks (positive, finite, below
 * the probe interval…) are the configuration's job, not this parser's.
 */
export const parseDuration = (text: string): Option.Option<Duration.Duration> => {
  const trimmed = text.trim()
  if (PLAIN_NUMBER.test(trimmed)) return Option.some(Duration.millis(Number(trimmed)))
  if (SHORTHAND.test(trimmed)) {
    let millis = 0
    for (const [, value, unit] of trimmed.matchAll(SHORTHAND_PART)) millis += Number(value) * UNIT_MILLIS[unit!]!
    return Option.some(Duration.millis(millis))
  }
  return Duration.fromInput(trimmed as Duration.Input)
}

/**
 * A duration as configuration accepts it: anything `Duration.Input` is, or
 * text in the forms {@link parseDuration} reads (`"200ms"`, `"1m30s"`).
 */
export type DurationInput = Duration.Input | string

/** What {@link parseDuration} accepts, for help texts and error messages. */
export const DURATION_SYNTAX = `a duration such as "200ms", "1.5s", "1m30s", "500 millis" or a number of milliseconds`
