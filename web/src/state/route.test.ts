import { describe, expect, it } from "vitest";
import { parseRoute, runPath } from "./route";

describe("parseRoute", () => {
  it.each([
    ["/", "", { view: "list", search: "" }],
    ["/runs", "?phase=failed", { view: "list", search: "?phase=failed" }],
    ["/runs/default/r1", "", { view: "run", namespace: "default", name: "r1", step: "" }],
    ["/runs/default/r1/", "", { view: "run", namespace: "default", name: "r1", step: "" }],
    ["/runs/prod/gray/steps/approve", "", { view: "run", namespace: "prod", name: "gray", step: "approve" }],
    ["/runs/ns/n/steps/a%20b", "", { view: "run", namespace: "ns", name: "n", step: "a b" }],
    ["/runs/ns", "", { view: "notfound", path: "/runs/ns" }],
    ["/runs/ns/n/logs/x", "", { view: "notfound", path: "/runs/ns/n/logs/x" }],
    ["/runs/ns/%E0%A4%A/x", "", { view: "notfound", path: "/runs/ns/%E0%A4%A/x" }],
    ["/definitions", "", { view: "notfound", path: "/definitions" }],
  ])("%s%s", (path, search, want) => {
    expect(parseRoute(path, search)).toEqual(want);
  });

  it("reads back what runPath writes", () => {
    for (const [ns, name, step] of [
      ["default", "r1", ""],
      ["a", "b/c", "d e"],
      ["x", "y", "ü?#"],
    ]) {
      expect(parseRoute(runPath(ns, name, step))).toEqual({ view: "run", namespace: ns, name, step });
    }
  });
});
