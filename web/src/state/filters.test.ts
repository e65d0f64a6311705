import { describe, expect, it } from "vitest";
import { emptyFilters, filtersFromQuery, filtersToQuery, parseSelector, runMatches, selectorMatches } from "./filters";
import { run } from "./testdata";

describe("filters in the query string", () => {
  it("round-trips and leaves empty ones out", () => {
    const f = { ...emptyFilters, namespace: "prod", label: "tier in (a,b),!canary" };
    const q = filtersToQuery(f);
    expect(q).toBe("?namespace=prod&label=tier+in+%28a%2Cb%29%2C%21canary");
    expect(filtersFromQuery(q)).toEqual(f);
    expect(filtersToQuery(emptyFilters)).toBe("");
  });
  it("ignores unknown keys and trims", () => {
    expect(filtersFromQuery("?phase=%20failed%20&x=1")).toEqual({ ...emptyFilters, phase: "failed" });
  });
});

describe("label selectors", () => {
  const labels = { tier: "web", env: "prod", "app.kubernetes.io/name": "shop" };
  it.each([
    ["", true],
    ["tier=web", true],
    ["tier==web", true],
    ["tier=db", false],
    ["tier!=db", true],
    ["missing!=x", true],
    ["tier", true],
    ["missing", false],
    ["!missing", true],
    ["!tier", false],
    ["tier in (db, web)", true],
    ["tier in (db)", false],
    ["missing in (a)", false],
    ["tier notin (db)", true],
    ["tier notin (web,db)", false],
    ["missing notin (a)", true],
    ["tier=web,env=prod", true],
    ["tier=web, env=dev", false],
    ["app.kubernetes.io/name=shop,tier in (web,db)", true],
  ])("%j → %s", (sel, want) => {
    const s = parseSelector(sel);
    expect(s.ok).toBe(true);
    if (s.ok) expect(selectorMatches(s.reqs, labels)).toBe(want);
  });
  it.each(["tier=(", "a b", "=x", "tier in a"])("cannot read %j", (sel) => {
    const s = parseSelector(sel);
    expect(s.ok).toBe(false);
    if (!s.ok) expect(s.error).toMatch(/^label selector: cannot read/);
  });
});

describe("runMatches", () => {
  const r = run({ namespace: "prod", appId: "shop", category: "deploy", phase: "executing", labels: { tier: "web" } });
  it.each([
    [{}, true],
    [{ namespace: "prod" }, true],
    [{ namespace: "dev" }, false],
    [{ app: "shop" }, true],
    [{ app: "other" }, false],
    [{ category: "deploy" }, true],
    [{ category: "rollback" }, false],
    [{ phase: "Executing" }, true],
    [{ phase: "failed" }, false],
    [{ label: "tier=web" }, true],
    [{ label: "tier=db" }, false],
    [{ label: "tier=(" }, false],
    [{ namespace: "prod", app: "shop", label: "tier" }, true],
  ])("%j → %s", (f, want) => {
    expect(runMatches({ ...emptyFilters, ...f }, r)).toBe(want);
  });
});
