import { describe, expect, it } from "vitest";
import { emptyFilters } from "./filters";
import { applyDeleted, applyRunEvent, isStale, sortRuns } from "./runlist";
import { run } from "./testdata";

const names = (l: { namespace: string; name: string }[]) => l.map((r) => `${r.namespace}/${r.name}`);

describe("applyRunEvent", () => {
  const a = run({ name: "a", created: "2026-12-06T12:00:00Z" });
  const b = run({ name: "b", created: "2026-12-06T11:00:00Z" });
  const list = [a, b];

  it("inserts a new run newest first", () => {
    const c = run({ name: "c", created: "2026-12-06T13:00:00Z" });
    const d = run({ name: "d", created: "2026-12-06T11:30:00Z" });
    const e = run({ name: "e", created: "2026-12-06T10:00:00Z" });
    let l = applyRunEvent(list, c, emptyFilters);
    l = applyRunEvent(l, d, emptyFilters);
    l = applyRunEvent(l, e, emptyFilters);
    expect(names(l)).toEqual(["default/c", "default/a", "default/d", "default/b", "default/e"]);
    expect(names(list)).toEqual(["default/a", "default/b"]); // not changed in place
  });

  it("orders runs created in the same second as the server does: namespace, then name from the greater", () => {
    const at = "2026-12-06T14:00:00Z";
    const l = [run({ namespace: "b", name: "x", created: at }), run({ namespace: "a", name: "y", created: at })].reduce(
      (l, r) => applyRunEvent(l, r, emptyFilters),
      [run({ namespace: "a", name: "z", created: at })],
    );
    expect(names(l)).toEqual(["a/z", "a/y", "b/x"]);
    expect(names(sortRuns([...l].reverse()))).toEqual(["a/z", "a/y", "b/x"]);
  });

  it("replaces a known run in its place", () => {
    const a2 = run({ name: "a", created: a.created, phase: "succeeded", resourceVersion: "101" });
    const l = applyRunEvent(list, a2, emptyFilters);
    expect(names(l)).toEqual(["default/a", "default/b"]);
    expect(l[0].phase).toBe("succeeded");
  });

  it("keeps the list as it is for an event of a version it has (a stream's opening burst)", () => {
    expect(applyRunEvent(list, run({ name: "a", created: a.created, resourceVersion: a.resourceVersion }), emptyFilters)).toBe(list);
  });

  it("drops a stale event (a smaller resourceVersion)", () => {
    const old = run({ name: "a", created: a.created, phase: "initializing", resourceVersion: "99" });
    expect(applyRunEvent(list, old, emptyFilters)).toBe(list);
  });

  it("removes a run that no longer passes the filters, and ignores one that never did", () => {
    const f = { ...emptyFilters, phase: "executing" };
    const done = run({ name: "a", created: a.created, phase: "succeeded", resourceVersion: "101" });
    expect(names(applyRunEvent(list, done, f))).toEqual(["default/b"]);
    const other = run({ name: "z", phase: "failed" });
    expect(applyRunEvent(list, other, f)).toBe(list);
  });

  it("tells runs of different namespaces apart", () => {
    const x = run({ namespace: "other", name: "a", created: a.created });
    expect(names(applyRunEvent(list, x, emptyFilters))).toEqual(["default/a", "other/a", "default/b"]);
  });
});

describe("applyDeleted", () => {
  it("removes the run, and returns the same list for an unknown one", () => {
    const list = [run({ name: "a" }), run({ name: "b" })];
    expect(names(applyDeleted(list, { namespace: "default", name: "a" }))).toEqual(["default/b"]);
    expect(applyDeleted(list, { namespace: "x", name: "a" })).toBe(list);
  });
});

describe("isStale", () => {
  it.each([
    ["100", "99", true],
    ["100", "100", false],
    ["99", "100", false],
    ["9", "10", false], // compared as numbers, not as strings
    ["18446744073709551615", "18446744073709551614", true],
    ["abc", "1", false], // opaque: the event wins
  ])("current %s, event %s → %s", (cur, next, want) => {
    expect(isStale(run({ resourceVersion: cur }), run({ resourceVersion: next }))).toBe(want);
  });
});

describe("sortRuns", () => {
  it("orders by creation time, newest first, then by namespace, then name from the greater (as the server)", () => {
    const l = sortRuns([
      run({ name: "b", created: "2026-12-06T12:00:00Z" }),
      run({ name: "a", created: "2026-12-06T12:00:00Z" }),
      run({ name: "c", created: "2026-12-06T13:00:00Z" }),
    ]);
    expect(names(l)).toEqual(["default/c", "default/b", "default/a"]);
  });
});
