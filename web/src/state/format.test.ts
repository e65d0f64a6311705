import { describe, expect, it } from "vitest";
import { elapsedSeconds, formatAbsolute, formatDuration, formatRelative, formatValue } from "./format";

describe("formatDuration", () => {
  it.each([
    [0.25, "250ms"],
    [0, "0ms"],
    [1, "1s"],
    [59.9, "59s"],
    [60, "1m 00s"],
    [185, "3m 05s"],
    [3600, "1h 00m"],
    [7620, "2h 07m"],
    [86400 + 4 * 3600, "1d 4h"],
    [-1, "—"],
    [NaN, "—"],
    [Infinity, "—"],
  ])("%s s → %s", (s, want) => {
    expect(formatDuration(s)).toBe(want);
  });
});

describe("formatRelative", () => {
  const now = new Date("2026-12-06T12:00:00Z");
  it.each([
    ["", ""],
    ["not a time", ""],
    ["2026-12-06T12:00:00Z", "just now"],
    ["2026-12-06T11:59:58Z", "just now"],
    ["2026-12-06T11:59:48Z", "12s ago"],
    ["2026-12-06T11:55:00Z", "5m ago"],
    ["2026-12-06T09:00:00Z", "3h ago"],
    ["2026-12-04T12:00:00Z", "2d ago"],
    ["2026-12-06T12:05:00Z", "in 5m"],
  ])("%j → %j", (t, want) => {
    expect(formatRelative(t, now)).toBe(want);
  });
});

describe("formatAbsolute", () => {
  it("shows UTC to the second", () => {
    expect(formatAbsolute("2026-12-06T13:04:05.123+01:00")).toBe("2026-12-06 12:04:05Z");
    expect(formatAbsolute("")).toBe("");
  });
});

describe("elapsedSeconds", () => {
  const now = new Date("2026-12-06T12:00:00Z");
  it.each([
    ["2026-12-06T11:59:00Z", "2026-12-06T11:59:30Z", 30],
    ["2026-12-06T11:59:00Z", "", 60],
    ["2026-12-06T12:00:10Z", "", 0],
  ])("%s..%s → %s", (s, f, want) => {
    expect(elapsedSeconds(s, f, now)).toBe(want);
  });
  it("is NaN before a start", () => {
    expect(elapsedSeconds("", "", now)).toBeNaN();
  });
});

describe("formatValue", () => {
  it("shows strings as they are and the rest as JSON", () => {
    expect(formatValue("a")).toBe("a");
    expect(formatValue(3)).toBe("3");
    expect(formatValue({ a: [1] })).toBe('{\n  "a": [\n    1\n  ]\n}');
    expect(formatValue(undefined)).toBe("");
  });
});
