import { describe, expect, it } from "vitest";
import type { Edge } from "../api/types";
import { buildGraph, isGroup, layoutGraph } from "./graph";
import { step } from "./testdata";

const pairs = (l: { from: string; to: string }[]) => l.map((e) => `${e.from}>${e.to}`);

describe("buildGraph", () => {
  it("nests sub-steps under their group and keeps spec order", () => {
    const m = buildGraph(
      [step("a"), step("g"), step("g1", { parent: "g" }), step("g2", { parent: "g" }), step("b")],
      [],
    );
    expect(m.roots).toEqual(["a", "g", "b"]);
    expect(m.children.get("g")).toEqual(["g1", "g2"]);
    expect(isGroup(m, "g")).toBe(true);
    expect(isGroup(m, "a")).toBe(false);
    expect(m.problems).toEqual([]);
  });

  it("drops edges to unknown steps and duplicate pairs, and says so for the unknown", () => {
    const edges: Edge[] = [
      { from: "a", to: "b", kind: "dependsOn" },
      { from: "a", to: "b", kind: "input" },
      { from: "a", to: "ghost", kind: "order" },
    ];
    const m = buildGraph([step("a"), step("b")], edges);
    expect(m.edges).toEqual([{ from: "a", to: "b", kind: "dependsOn" }]);
    expect(m.problems).toEqual(["edge a → ghost (order): ghost is not a step of this run"]);
  });

  it("shows a step whose group is unknown at the top level", () => {
    const m = buildGraph([step("x", { parent: "nope" })], []);
    expect(m.roots).toEqual(["x"]);
    expect(m.problems).toHaveLength(1);
  });

  it("lays out a group's edges from its last and to its first steps", () => {
    // a → g → b; inside g: g1 → g2, and g3 on its own.
    const m = buildGraph(
      [step("a"), step("g"), step("g1", { parent: "g" }), step("g2", { parent: "g" }), step("g3", { parent: "g" }), step("b")],
      [
        { from: "a", to: "g", kind: "order" },
        { from: "g1", to: "g2", kind: "dependsOn" },
        { from: "g", to: "b", kind: "order" },
      ],
    );
    expect(pairs(m.layoutEdges)).toEqual(["a>g1", "a>g3", "g1>g2", "g2>b", "g3>b"]);
    expect(m.layoutEdges[0].of).toEqual({ from: "a", to: "g", kind: "order" });
  });

  it("routes through nested groups down to their leaves", () => {
    const m = buildGraph(
      [step("a"), step("outer"), step("inner", { parent: "outer" }), step("x", { parent: "inner" })],
      [{ from: "a", to: "outer", kind: "dependsOn" }],
    );
    expect(pairs(m.layoutEdges)).toEqual(["a>x"]);
  });

  it("does not lay out an edge between a group and its own step", () => {
    const m = buildGraph([step("g"), step("g1", { parent: "g" })], [{ from: "g", to: "g1", kind: "order" }]);
    expect(m.layoutEdges).toEqual([]);
    expect(m.problems).toEqual(["edge g → g1: between a group and its own step; not drawn"]);
  });
});

describe("layoutGraph", () => {
  const m = buildGraph(
    [step("a"), step("g"), step("g1", { parent: "g" }), step("g2", { parent: "g" }), step("b")],
    [
      { from: "a", to: "g", kind: "order" },
      { from: "g1", to: "g2", kind: "dependsOn" },
      { from: "g", to: "b", kind: "order" },
    ],
  );
  const l = layoutGraph(m);
  const box = (n: string) => {
    const b = l.boxes.find((x) => x.name === n);
    if (!b) throw new Error(`no box for ${n}`);
    return b;
  };

  it("places every step, left to right along the edges", () => {
    expect(l.boxes.map((b) => b.name).sort()).toEqual(["a", "b", "g", "g1", "g2"]);
    expect(box("a").x + box("a").width).toBeLessThanOrEqual(box("g1").x);
    expect(box("g1").x + box("g1").width).toBeLessThanOrEqual(box("g2").x);
    expect(box("g2").x + box("g2").width).toBeLessThanOrEqual(box("b").x);
  });

  it("draws a group as a box around its steps, behind them", () => {
    const g = box("g");
    expect(g.group).toBe(true);
    for (const n of ["g1", "g2"]) {
      const c = box(n);
      expect(c.depth).toBe(1);
      expect(c.x).toBeGreaterThanOrEqual(g.x);
      expect(c.y).toBeGreaterThan(g.y);
      expect(c.x + c.width).toBeLessThanOrEqual(g.x + g.width);
      expect(c.y + c.height).toBeLessThanOrEqual(g.y + g.height);
    }
    expect(l.boxes.findIndex((b) => b.name === "g")).toBeLessThan(l.boxes.findIndex((b) => b.name === "g1"));
  });

  it("gives each laid-out edge points and fits everything in the drawing", () => {
    expect(l.edges).toHaveLength(m.layoutEdges.length);
    for (const e of l.edges) expect(e.points.length).toBeGreaterThanOrEqual(2);
    for (const b of l.boxes) {
      expect(b.x).toBeGreaterThanOrEqual(0);
      expect(b.y).toBeGreaterThanOrEqual(0);
      expect(b.x + b.width).toBeLessThanOrEqual(l.width);
      expect(b.y + b.height).toBeLessThanOrEqual(l.height);
    }
  });

  it("fits an edge that dagre routes around the nodes into the drawing", () => {
    // As in a gray release: deploy → checks → approve → promote, and promote
    // reads deploy's output, an edge that skips three ranks.
    const m2 = buildGraph(
      [step("deploy"), step("checks"), step("smoke", { parent: "checks" }), step("metrics", { parent: "checks" }), step("approve"), step("promote")],
      [
        { from: "deploy", to: "checks", kind: "order" },
        { from: "checks", to: "approve", kind: "order" },
        { from: "approve", to: "promote", kind: "dependsOn" },
        { from: "deploy", to: "promote", kind: "input" },
      ],
    );
    const l2 = layoutGraph(m2);
    for (const e of l2.edges) {
      for (const p of e.points) {
        expect(p.x).toBeGreaterThanOrEqual(0);
        expect(p.y).toBeGreaterThanOrEqual(0);
        expect(p.x).toBeLessThanOrEqual(l2.width);
        expect(p.y).toBeLessThanOrEqual(l2.height);
      }
    }
  });

  it("is the same for the same model", () => {
    expect(layoutGraph(m)).toEqual(l);
  });
});
