import { describe, expect, it } from "vitest";
import type { Actions, Verb } from "../api/types";
import { contextBody, enabled, question } from "./actions";

const none: Actions = { resume: false, suspend: false, terminate: false, retry: false, setContext: false, retryFrom: [] };

describe("enabled", () => {
  it.each<[string, Actions | undefined, Verb, string, boolean]>([
    ["no actions from the server", undefined, "resume", "", false],
    ["resume allowed", { ...none, resume: true }, "resume", "", true],
    ["resume not allowed", { ...none, suspend: true }, "resume", "", false],
    ["suspend", { ...none, suspend: true }, "suspend", "", true],
    ["terminate", { ...none, terminate: true }, "terminate", "", true],
    ["retry", { ...none, retry: true }, "retry", "", true],
    ["set context", { ...none, setContext: true }, "context", "", true],
    ["retry from a listed step", { ...none, retryFrom: ["deploy", "check"] }, "retry-from", "check", true],
    ["retry from a step not listed", { ...none, retryFrom: ["deploy"] }, "retry-from", "check", false],
    ["retry from without a step", { ...none, retryFrom: [""] }, "retry-from", "", false],
    ["retryFrom null", { ...none, retryFrom: null as unknown as string[] }, "retry-from", "x", false],
  ])("%s", (_, a, verb, step, want) => {
    expect(enabled(a, verb, step)).toBe(want);
  });
});

describe("contextBody", () => {
  it.each<[string, string, ReturnType<typeof contextBody>]>([
    ["continueRollout", "true", { ok: true, context: { continueRollout: true } }],
    [" replicas ", "3", { ok: true, context: { replicas: 3 } }],
    ["image", "nginx:1.27", { ok: true, context: { image: "nginx:1.27" } }],
    ["cfg", '{"a": [1]}', { ok: true, context: { cfg: { a: [1] } } }],
    ["quoted", '"3"', { ok: true, context: { quoted: "3" } }],
    ["empty", "", { ok: true, context: { empty: "" } }],
    ["  ", "x", { ok: false, error: "the key is empty" }],
  ])("%s = %s", (k, v, want) => {
    expect(contextBody(k, v)).toEqual(want);
  });
});

describe("question", () => {
  it("names the run, the step and the context", () => {
    expect(question("retry-from", "prod/gray", "deploy")).toBe("Retry prod/gray from step deploy? That step and the ones after it run again.");
    expect(question("context", "prod/gray", "", { continueRollout: true, n: "x" })).toBe('Set continueRollout = true, n = "x" in the context of prod/gray?');
  });
});
