// The run list as the page holds it: the answer of /ui/api/runs, then each
// event of /ui/api/events merged in. Every function returns a new array
// (or the same one when nothing changed), so the view re-renders on change.

import type { RunRef, RunSummary } from "../api/types";
import { type Filters, runMatches } from "./filters";

export function runKey(r: RunRef): string {
  return `${r.namespace}/${r.name}`;
}

/**
 * Whether `next` is older than `cur`. resourceVersions are opaque to
 * clients; when both are integers (as the API server's are) a smaller one is
 * a stale event (a replay after a reconnect) and is dropped. Otherwise the
 * event wins.
 */
export function isStale(cur: RunSummary, next: RunSummary): boolean {
  if (!/^\d+$/.test(cur.resourceVersion) || !/^\d+$/.test(next.resourceVersion)) return false;
  return BigInt(next.resourceVersion) < BigInt(cur.resourceVersion);
}

/** Newest created first; the same creation time by namespace, then name. */
export function compareRuns(a: RunSummary, b: RunSummary): number {
  if (a.created !== b.created) {
    const ta = Date.parse(a.created) || 0;
    const tb = Date.parse(b.created) || 0;
    if (ta !== tb) return tb - ta;
  }
  // Ties as the server breaks them (GET /ui/api/runs): namespace, then
  // name from the greater, so an event places a run where a reload would.
  if (a.namespace !== b.namespace) return a.namespace < b.namespace ? -1 : 1;
  return a.name > b.name ? -1 : a.name < b.name ? 1 : 0;
}

/** Sorts a fresh answer of /ui/api/runs (the server sends newest first; this keeps the order stable). */
export function sortRuns(items: RunSummary[]): RunSummary[] {
  return [...items].sort(compareRuns);
}

/**
 * Merges one `event: run`: a new matching run is inserted in order, a known
 * one replaced (unless the event is stale), and one that no longer passes the
 * filters (its phase changed, say) removed.
 */
export function applyRunEvent(list: RunSummary[], run: RunSummary, f: Filters): RunSummary[] {
  const i = list.findIndex((r) => r.name === run.name && r.namespace === run.namespace);
  // A stream opens with one event per run as it is: those the list already
  // has at that version change nothing (and cost no sort).
  if (i >= 0 && (isStale(list[i], run) || list[i].resourceVersion === run.resourceVersion)) return list;
  if (!runMatches(f, run)) {
    return i >= 0 ? [...list.slice(0, i), ...list.slice(i + 1)] : list;
  }
  const rest = i >= 0 ? [...list.slice(0, i), ...list.slice(i + 1)] : list;
  let at = rest.findIndex((r) => compareRuns(run, r) < 0);
  if (at < 0) at = rest.length;
  return [...rest.slice(0, at), run, ...rest.slice(at)];
}

/** Merges one `event: deleted`. */
export function applyDeleted(list: RunSummary[], ref: RunRef): RunSummary[] {
  const i = list.findIndex((r) => r.name === ref.name && r.namespace === ref.namespace);
  return i < 0 ? list : [...list.slice(0, i), ...list.slice(i + 1)];
}
