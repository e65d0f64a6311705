import { describe, expect, it } from "vitest";
import { appPath, definitionPath, definitionsPath, parseRoute, runPath } from "./route";

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
    ["/definitions", "?namespace=prod", { view: "definitions", search: "?namespace=prod" }],
    ["/definitions/WorkflowStepDefinition/stepflow-system/deploy", "?namespace=prod", { view: "definition", kind: "WorkflowStepDefinition", namespace: "stepflow-system", name: "deploy", search: "?namespace=prod" }],
    ["/definitions/WorkflowStepDefinition/ns", "", { view: "notfound", path: "/definitions/WorkflowStepDefinition/ns" }],
    ["/apps/prod/shop", "", { view: "app", namespace: "prod", appId: "shop", scope: "" }],
    ["/apps/prod/shop", "?scope=daily", { view: "app", namespace: "prod", appId: "shop", scope: "daily" }],
    ["/apps/prod", "", { view: "notfound", path: "/apps/prod" }],
    ["/workflows", "", { view: "notfound", path: "/workflows" }],
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

  it("reads back what the other paths write", () => {
    expect(definitionsPath()).toBe("/definitions");
    expect(parseRoute("/definitions", "?namespace=a%20b")).toEqual({ view: "definitions", search: "?namespace=a%20b" });
    const d = definitionPath("ComponentDefinition", "n s", "we/b", "prod");
    const [path, search] = d.split("?");
    expect(parseRoute(path, `?${search}`)).toEqual({ view: "definition", kind: "ComponentDefinition", namespace: "n s", name: "we/b", search: "?namespace=prod" });
    expect(parseRoute(appPath("prod", "a/b"))).toEqual({ view: "app", namespace: "prod", appId: "a/b", scope: "" });
    const p = appPath("prod", "a/b", "eu west");
    const q = p.indexOf("?");
    expect(parseRoute(p.slice(0, q), p.slice(q))).toEqual({ view: "app", namespace: "prod", appId: "a/b", scope: "eu west" });
  });
});
