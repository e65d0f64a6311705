// The run list's filters: kept in the page's query string, sent to
// /ui/api/runs, and applied again to each run an event brings (the events
// stream is filtered by namespace only).

import type { RunSummary } from "../api/types";

export interface Filters {
  namespace: string;
  app: string;
  category: string;
  phase: string;
  /** A Kubernetes label selector: "a=b,c!=d,e,!f,g in (x,y),h notin (z)". */
  label: string;
}

export const emptyFilters: Filters = { namespace: "", app: "", category: "", phase: "", label: "" };

const keys: (keyof Filters)[] = ["namespace", "app", "category", "phase", "label"];

/** Reads the filters from a query string ("?namespace=x&phase=running"); unknown keys are ignored. */
export function filtersFromQuery(search: string): Filters {
  const q = new URLSearchParams(search);
  const f = { ...emptyFilters };
  for (const k of keys) f[k] = (q.get(k) ?? "").trim();
  return f;
}

/** The query string of the filters, without empty ones; "" when none is set. */
export function filtersToQuery(f: Filters): string {
  const q = new URLSearchParams();
  for (const k of keys) if (f[k]) q.set(k, f[k]);
  const s = q.toString();
  return s ? `?${s}` : "";
}

type Requirement =
  | { op: "eq" | "neq"; key: string; value: string }
  | { op: "exists" | "notexists"; key: string }
  | { op: "in" | "notin"; key: string; values: string[] };

/** A parsed label selector, or an error naming the part that could not be read. */
export type Selector = { ok: true; reqs: Requirement[] } | { ok: false; error: string };

/** Parses a Kubernetes label selector (equality and set based). "" selects everything. */
export function parseSelector(sel: string): Selector {
  const reqs: Requirement[] = [];
  for (const part of splitTop(sel)) {
    const p = part.trim();
    if (p === "") continue;
    let m: RegExpMatchArray | null;
    if ((m = p.match(/^([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)$/))) {
      const values = m[3].split(",").map((v) => v.trim()).filter((v) => v !== "");
      reqs.push({ op: m[2] as "in" | "notin", key: m[1], values });
    } else if ((m = p.match(/^([\w./-]+)\s*(!=|==|=)\s*([\w.-]*)$/))) {
      reqs.push({ op: m[2] === "!=" ? "neq" : "eq", key: m[1], value: m[3] });
    } else if ((m = p.match(/^!\s*([\w./-]+)$/))) {
      reqs.push({ op: "notexists", key: m[1] });
    } else if ((m = p.match(/^([\w./-]+)$/))) {
      reqs.push({ op: "exists", key: m[1] });
    } else {
      return { ok: false, error: `label selector: cannot read "${p}"` };
    }
  }
  return { ok: true, reqs };
}

// Splits on commas outside parentheses.
function splitTop(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    if (s[i] === "(") depth++;
    else if (s[i] === ")") depth = Math.max(0, depth - 1);
    else if (s[i] === "," && depth === 0) {
      out.push(s.slice(start, i));
      start = i + 1;
    }
  }
  out.push(s.slice(start));
  return out;
}

/** Whether labels satisfy every requirement of a selector. */
export function selectorMatches(reqs: Requirement[], labels: Record<string, string>): boolean {
  return reqs.every((r) => {
    const has = Object.prototype.hasOwnProperty.call(labels, r.key);
    const v = labels[r.key];
    switch (r.op) {
      case "eq":
        return has && v === r.value;
      case "neq":
        return !has || v !== r.value;
      case "exists":
        return has;
      case "notexists":
        return !has;
      case "in":
        return has && r.values.includes(v);
      case "notin":
        return !has || !r.values.includes(v);
    }
  });
}

/**
 * Whether a run passes the filters, as the server would decide. A selector
 * that cannot be parsed matches nothing (the server answers 400 for it).
 */
export function runMatches(f: Filters, r: RunSummary): boolean {
  if (f.namespace && r.namespace !== f.namespace) return false;
  if (f.app && r.appId !== f.app) return false;
  if (f.category && r.category !== f.category) return false;
  if (f.phase && r.phase.toLowerCase() !== f.phase.toLowerCase()) return false;
  if (f.label) {
    const s = parseSelector(f.label);
    if (!s.ok || !selectorMatches(s.reqs, r.labels ?? {})) return false;
  }
  return true;
}
