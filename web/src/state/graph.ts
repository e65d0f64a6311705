// The run graph: the model built from the contract's steps and edges, and
// its layout with dagre (groups as compound nodes, drawn as nested boxes).
//
// dagre lays out edges between leaf nodes only, so an edge that starts or
// ends at a group is laid out from the group's last steps (those nothing
// inside the group follows) or to its first steps (those nothing inside the
// group precedes). The edge keeps its own from/to/kind for the view.

import dagre from "@dagrejs/dagre";
import type { Edge, EdgeKind, StepNode } from "../api/types";

export interface GraphModel {
  /** Every step by name, groups included. */
  steps: Map<string, StepNode>;
  /** The names of each group's direct children, in spec order. */
  children: Map<string, string[]>;
  /** Top-level steps in spec order. */
  roots: string[];
  /** The contract's edges whose both ends are known steps, without duplicates. */
  edges: Edge[];
  /** The edges as laid out: group ends replaced by their first/last steps. */
  layoutEdges: LayoutEdge[];
  /** What was left out, for a note under the graph (unknown ends, a group's edge into itself). */
  problems: string[];
}

export interface LayoutEdge {
  from: string;
  to: string;
  kind: EdgeKind;
  /** The contract edge this one draws. */
  of: Edge;
}

export function isGroup(m: GraphModel, name: string): boolean {
  return (m.children.get(name)?.length ?? 0) > 0;
}

/** Builds the model. Steps are keyed by name (unique within a run). */
export function buildGraph(steps: StepNode[], edges: Edge[]): GraphModel {
  const byName = new Map<string, StepNode>();
  const problems: string[] = [];
  for (const s of steps) {
    if (byName.has(s.name)) problems.push(`step "${s.name}" appears twice; the first is shown`);
    else byName.set(s.name, s);
  }
  const children = new Map<string, string[]>();
  const roots: string[] = [];
  for (const s of byName.values()) {
    if (s.parent && byName.has(s.parent) && s.parent !== s.name) {
      const c = children.get(s.parent) ?? [];
      c.push(s.name);
      children.set(s.parent, c);
    } else {
      if (s.parent) problems.push(`step "${s.name}": its group "${s.parent}" is not a step of this run`);
      roots.push(s.name);
    }
  }
  const seen = new Set<string>();
  const kept: Edge[] = [];
  for (const e of edges) {
    if (!byName.has(e.from) || !byName.has(e.to)) {
      problems.push(`edge ${e.from} → ${e.to} (${e.kind}): ${byName.has(e.from) ? e.to : e.from} is not a step of this run`);
      continue;
    }
    const k = `${e.from}\u0000${e.to}`;
    if (seen.has(k)) continue;
    seen.add(k);
    kept.push(e);
  }
  const m: GraphModel = { steps: byName, children, roots, edges: kept, layoutEdges: [], problems };
  m.layoutEdges = routeEdges(m);
  return m;
}

/** The names of the group's descendants that are not groups (the leaves). */
function leaves(m: GraphModel, name: string): string[] {
  const c = m.children.get(name);
  if (!c || c.length === 0) return [name];
  return c.flatMap((n) => leaves(m, n));
}

function isInside(m: GraphModel, name: string, group: string): boolean {
  for (let p = m.steps.get(name)?.parent; p; p = m.steps.get(p)?.parent) {
    if (p === group) return true;
    if (p === name) return false; // a cycle of parents; stop
  }
  return false;
}

// The leaves of a group that no leaf edge inside the group leaves from
// (end = "last") or arrives at (end = "first").
function ends(m: GraphModel, group: string, end: "first" | "last"): string[] {
  const inner = leaves(m, group);
  const set = new Set(inner);
  const linked = new Set<string>();
  for (const e of m.edges) {
    const from = leaves(m, e.from);
    const to = leaves(m, e.to);
    if (from.every((n) => set.has(n)) && to.every((n) => set.has(n))) {
      for (const n of end === "last" ? from : to) linked.add(n);
    }
  }
  const out = inner.filter((n) => !linked.has(n));
  return out.length > 0 ? out : inner;
}

function routeEdges(m: GraphModel): LayoutEdge[] {
  const out: LayoutEdge[] = [];
  const seen = new Set<string>();
  for (const e of m.edges) {
    if (e.from === e.to || isInside(m, e.to, e.from) || isInside(m, e.from, e.to)) {
      m.problems.push(`edge ${e.from} → ${e.to}: between a group and its own step; not drawn`);
      continue;
    }
    const froms = isGroup(m, e.from) ? ends(m, e.from, "last") : [e.from];
    const tos = isGroup(m, e.to) ? ends(m, e.to, "first") : [e.to];
    for (const f of froms) {
      for (const t of tos) {
        const k = `${f}\u0000${t}`;
        if (f === t || seen.has(k)) continue;
        seen.add(k);
        out.push({ from: f, to: t, kind: e.kind, of: e });
      }
    }
  }
  return out;
}

export interface Box {
  name: string;
  /** Top-left corner and size, in the SVG's units. */
  x: number;
  y: number;
  width: number;
  height: number;
  group: boolean;
  /** How many groups enclose it (0 at the top level), for drawing order. */
  depth: number;
}

export interface Layout {
  boxes: Box[];
  edges: { edge: LayoutEdge; points: { x: number; y: number }[] }[];
  width: number;
  height: number;
}

export interface LayoutOptions {
  /** The size of a step's box; the view passes one that fits its label. */
  nodeSize?: (s: StepNode) => { width: number; height: number };
  rankdir?: "LR" | "TB";
}

const defaultSize = (s: StepNode) => ({ width: Math.max(120, 16 + 7.5 * s.name.length), height: 44 });

/** Lays the model out with dagre. Pure: the same model gives the same layout. */
export function layoutGraph(m: GraphModel, opts: LayoutOptions = {}): Layout {
  const size = opts.nodeSize ?? defaultSize;
  const g = new dagre.graphlib.Graph({ compound: true, multigraph: false });
  g.setGraph({ rankdir: opts.rankdir ?? "LR", nodesep: 24, ranksep: 48, marginx: 16, marginy: 16 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const [name, s] of m.steps) {
    if (isGroup(m, name)) g.setNode(name, { label: name, paddingTop: 24 });
    else g.setNode(name, { label: name, ...size(s) });
  }
  for (const [group, kids] of m.children) for (const k of kids) g.setParent(k, group);
  for (const e of m.layoutEdges) g.setEdge(e.from, e.to);
  dagre.layout(g);

  const depth = (name: string): number => {
    let d = 0;
    for (let p = m.steps.get(name)?.parent; p && m.steps.has(p) && d < 64; p = m.steps.get(p)?.parent) d++;
    return d;
  };
  const boxes: Box[] = [];
  for (const name of m.steps.keys()) {
    const n = g.node(name);
    if (!n || n.x === undefined || n.y === undefined) continue;
    const group = isGroup(m, name);
    // dagre leaves little room above a group's first row; widen the box so its label fits.
    const pad = group ? 14 : 0;
    boxes.push({
      name,
      x: n.x - n.width / 2,
      y: n.y - n.height / 2 - pad,
      width: n.width,
      height: n.height + pad,
      group,
      depth: depth(name),
    });
  }
  boxes.sort((a, b) => a.depth - b.depth || Number(b.group) - Number(a.group));
  const edges = m.layoutEdges.map((edge) => ({
    edge,
    points: ((g.edge(edge.from, edge.to) as { points?: { x: number; y: number }[] } | undefined)?.points ?? []).map((p) => ({ x: p.x, y: p.y })),
  }));
  // dagre's own width and height leave out group labels and edges routed
  // around the nodes (a long edge may pass above the first row): fit the
  // drawing to everything it holds.
  const margin = 8;
  const xs = [...boxes.flatMap((b) => [b.x, b.x + b.width]), ...edges.flatMap((e) => e.points.map((p) => p.x))];
  const ys = [...boxes.flatMap((b) => [b.y, b.y + b.height]), ...edges.flatMap((e) => e.points.map((p) => p.y))];
  if (xs.length === 0) return { boxes, edges, width: 0, height: 0 };
  const dx = margin - Math.min(...xs);
  const dy = margin - Math.min(...ys);
  for (const b of boxes) {
    b.x += dx;
    b.y += dy;
  }
  for (const e of edges) {
    for (const p of e.points) {
      p.x += dx;
      p.y += dy;
    }
  }
  return { boxes, edges, width: Math.max(...xs) + dx + margin, height: Math.max(...ys) + dy + margin };
}
