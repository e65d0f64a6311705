import { describe, expect, it } from "vitest";
import type { LogLine } from "../api/types";
import { appendLog, refollow } from "./logs";

const l = (line: string): LogLine => ({ time: "", level: 0, line });

describe("appendLog", () => {
  it("adds at the end and keeps the newest max lines", () => {
    let lines: LogLine[] = [];
    for (const s of ["a", "b", "c", "d"]) lines = appendLog(lines, l(s), 3);
    expect(lines.map((x) => x.line)).toEqual(["b", "c", "d"]);
  });
  it("does not change the lines it was given", () => {
    const before = [l("a")];
    appendLog(before, l("b"));
    expect(before).toHaveLength(1);
  });
});

describe("refollow", () => {
  it.each<[boolean, string, boolean]>([
    [false, "running", false],
    [true, "running", true],
    [true, "suspended", true],
    [true, "pending", true],
    [true, "succeeded", false],
    [true, "failed", false],
    [true, "skipped", false],
    [true, "", false],
  ])("ended=%s phase=%s", (ended, phase, want) => {
    expect(refollow(ended, phase)).toBe(want);
  });
});
