// A step's #Log lines as the panel keeps them while it follows the log
// stream: each (re)opened stream sends the lines from the first, so the
// panel starts over on open; at most maxLines are kept (the newest).

import type { LogLine } from "../api/types";
import { isFinal } from "./phase";

export const maxLines = 2000;

/** The lines with l added, dropping the oldest beyond max. */
export function appendLog(lines: LogLine[], l: LogLine, max = maxLines): LogLine[] {
  const out = lines.length >= max ? lines.slice(lines.length - max + 1) : lines.slice();
  out.push(l);
  return out;
}

/**
 * Whether to open the log stream again: it ended (the server's time bound,
 * or the step finished) but the step, as the run now shows it, is not
 * finished (still running, or retried since).
 */
export function refollow(ended: boolean, stepPhase: string): boolean {
  return ended && stepPhase !== "" && !isFinal(stepPhase);
}
