import { assert, describe, it } from "@effect/vitest"
import { Duration, Option } from "effect"
import { parseDuration } from "../../src/cluster/DurationText.ts"

const millis = (text: string) => Option.map(parseDuration(text), Duration.toMillis)

describe("parseDuration", () => {
  it("reads a bare number as milliseconds", () => {
    assert.deepStrictEqual(millis("250"), Option.some(250))
    assert.deepStrictEqual(millis(" 1.5 "), Option.some(1.5))
  })

  it("reads Go-style shorthand, compound included", () => {
    assert.deepStrictEqual(millis("200ms"), Option.some(200))
    assert.deepStrictEqual(millis("1s"), Option.some(1000))
    assert.deepStrictEqual(millis("1.5s"), Option.some(1500))
    assert.deepStrictEqual(millis("2m"), Option.some(120_000))
    assert.deepStrictEqual(millis("1h"), Option.some(3_600_000))
    assert.deepStrictEqual(millis("1m30s"), Option.some(90_000))
    assert.deepStrictEqual(millis("500us"), Option.some(0.5))
    assert.deepStrictEqual(millis("500µs"), Option.some(0.5))
  })

  it("reads what Duration.fromInput reads", () => {
    assert.deepStrictEqual(millis("500 millis"), Option.some(500))
    assert.deepStrictEqual(millis("1 second"), Option.some(1000))
    assert.deepStrictEqual(millis("2 minutes"), Option.some(120_000))
    assert.isTrue(Option.exists(parseDuration("Infinity"), (d) => !Duration.isFinite(d)))
  })

  it("rejects everything else", () => {
    for (const text of ["", "soon", "1x", "ms", "1 s", "1s2", "-", "1,5s", "s1"]) {
      assert.isTrue(Option.isNone(parseDuration(text)), `"${text}" should not parse`)
    }
  })
})
