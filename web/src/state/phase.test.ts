import { describe, expect, it } from "vitest";
import { isFinal, phaseText, phaseTone } from "./phase";

describe("phaseTone", () => {
  it.each([
    ["succeeded", "ok"],
    ["failed", "bad"],
    ["terminated", "bad"],
    ["rollbackFailed", "bad"],
    ["executing", "run"],
    ["running", "run"],
    ["rollingBack", "run"],
    ["suspending", "wait"],
    ["pending", "idle"],
    ["", "idle"],
    ["somethingNew", "idle"],
  ])("%s → %s", (p, want) => {
    expect(phaseTone(p)).toBe(want);
  });
});

describe("phaseText", () => {
  it("keeps the phase's own spelling and names an empty one", () => {
    expect(phaseText("rollingBack")).toBe("rollingBack");
    expect(phaseText("")).toBe("pending");
  });
});

describe("isFinal", () => {
  it.each([
    ["succeeded", true],
    ["rolledBack", true],
    ["executing", false],
    ["suspending", false],
  ])("%s → %s", (p, want) => {
    expect(isFinal(p)).toBe(want);
  });
});
