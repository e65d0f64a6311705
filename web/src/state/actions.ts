// The run actions as the UI offers them: which are enabled (only what the
// server's RunDetail.actions says; the rules are never repeated here), what
// the confirmation asks, and the body of a set-context.

import type { Actions, Verb } from "../api/types";
import { jsonOrString } from "./schemaform";

export interface ActionSpec {
  verb: Verb;
  /** The button's text. */
  label: string;
  /** The confirm button's text. */
  confirm: string;
}

/** The run-wide actions, in the order of their buttons. */
export const runActions: ActionSpec[] = [
  { verb: "resume", label: "Resume", confirm: "Resume" },
  { verb: "suspend", label: "Suspend", confirm: "Suspend" },
  { verb: "terminate", label: "Terminate", confirm: "Terminate" },
  { verb: "retry", label: "Retry", confirm: "Retry" },
];

export const retryFromAction: ActionSpec = { verb: "retry-from", label: "Retry from this step", confirm: "Retry from here" };
export const contextAction: ActionSpec = { verb: "context", label: "Set context", confirm: "Set context" };

/** Whether the server says the action is valid now; retry-from for the given step. No actions known → none. */
export function enabled(a: Actions | undefined, verb: Verb, step = ""): boolean {
  if (!a) return false;
  switch (verb) {
    case "resume":
      return a.resume;
    case "suspend":
      return a.suspend;
    case "terminate":
      return a.terminate;
    case "retry":
      return a.retry;
    case "context":
      return a.setContext;
    case "retry-from":
      return step !== "" && (a.retryFrom ?? []).includes(step);
  }
}

/** The question the confirmation asks. */
export function question(verb: Verb, run: string, step = "", context?: Record<string, unknown>): string {
  switch (verb) {
    case "resume":
      return `Resume ${run}? Its suspended steps continue.`;
    case "suspend":
      return `Suspend ${run}? No new step starts until it is resumed.`;
    case "terminate":
      return `Terminate ${run}? Its running steps stop and it cannot be resumed.`;
    case "retry":
      return `Retry ${run}? Its failed steps run again.`;
    case "retry-from":
      return `Retry ${run} from step ${step}? That step and the ones after it run again.`;
    case "context":
      return `Set ${Object.entries(context ?? {})
        .map(([k, v]) => `${k} = ${JSON.stringify(v)}`)
        .join(", ")} in the context of ${run}?`;
  }
}

/** A set-context body from one key and its value's text (JSON when it parses, else a string), or why not. */
export function contextBody(key: string, value: string): { ok: true; context: Record<string, unknown> } | { ok: false; error: string } {
  const k = key.trim();
  if (k === "") return { ok: false, error: "the key is empty" };
  return { ok: true, context: { [k]: jsonOrString(value) } };
}
