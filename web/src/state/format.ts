// Formatting of durations and times. `now` is always passed in, so these
// are pure and tests need no fake timers.

/** A duration in seconds as "850ms", "42s", "3m 05s", "2h 07m", "3d 4h". Negative or NaN → "—". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "—";
  if (seconds < 1) return `${Math.round(seconds * 1000)}ms`;
  const s = Math.floor(seconds);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${pad(s % 60)}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h ${pad(m % 60)}m`;
  const d = Math.floor(h / 24);
  return `${d}d ${h % 24}h`;
}

function pad(n: number): string {
  return n < 10 ? `0${n}` : `${n}`;
}

/** Parses an RFC 3339 time; "" or garbage → undefined. */
export function parseTime(t: string): Date | undefined {
  if (!t) return undefined;
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

/**
 * A time relative to now: "just now", "12s ago", "5m ago", "3h ago",
 * "2d ago", or "in 5m" for a time ahead of now (clock skew). "" → "".
 */
export function formatRelative(t: string, now: Date): string {
  const d = parseTime(t);
  if (!d) return "";
  const diff = Math.round((now.getTime() - d.getTime()) / 1000);
  const abs = Math.abs(diff);
  if (abs < 5) return "just now";
  let text: string;
  if (abs < 60) text = `${abs}s`;
  else if (abs < 3600) text = `${Math.floor(abs / 60)}m`;
  else if (abs < 86400) text = `${Math.floor(abs / 3600)}h`;
  else text = `${Math.floor(abs / 86400)}d`;
  return diff >= 0 ? `${text} ago` : `in ${text}`;
}

/** The absolute time shown on hover: ISO 8601 in UTC, to the second. */
export function formatAbsolute(t: string): string {
  const d = parseTime(t);
  if (!d) return "";
  return d.toISOString().replace(/\.\d{3}Z$/, "Z").replace("T", " ");
}

/**
 * The duration of a run or step: finished−started when finished, now−started
 * while running, or the server's figure advanced by the time since it was
 * received when only that is known.
 */
export function elapsedSeconds(started: string, finished: string, now: Date): number {
  const s = parseTime(started);
  if (!s) return NaN;
  const f = parseTime(finished) ?? now;
  return Math.max(0, (f.getTime() - s.getTime()) / 1000);
}

/** A value of an input, output or property as one line of text for the details panel. */
export function formatValue(v: unknown): string {
  if (v === undefined) return "";
  if (typeof v === "string") return v;
  return JSON.stringify(v, null, 2);
}
