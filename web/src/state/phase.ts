// Phases as the UI shows them (api/v1alpha1/phases.go for runs, the step
// phases of workflowrun_types.go for steps): always the text, plus a colour class that
// the stylesheet maps to a colour for each theme.

export type PhaseTone = "ok" | "bad" | "run" | "wait" | "idle";

const tones: Record<string, PhaseTone> = {
  succeeded: "ok",
  skipped: "idle",
  failed: "bad",
  terminated: "bad",
  stopped: "bad",
  error: "bad",
  running: "run",
  executing: "run",
  initializing: "run",
  suspended: "wait",
  suspending: "wait",
  rollingback: "run",
  rolledback: "bad",
  rollbackfailed: "bad",
  waiting: "wait",
  queued: "wait",
  pending: "idle",
  "": "idle",
};

/** The tone of a phase, case-insensitive; unknown phases are "idle". */
export function phaseTone(phase: string): PhaseTone {
  return tones[phase.toLowerCase()] ?? "idle";
}

/** The phase's text as shown: "" becomes "pending". */
export function phaseText(phase: string): string {
  return phase === "" ? "pending" : phase;
}

/** Whether a run in this phase is finished (no more events expected but deletion). */
export function isFinal(phase: string): boolean {
  const p = phase.toLowerCase();
  return ["succeeded", "failed", "terminated", "skipped", "rolledback", "rollbackfailed"].includes(p);
}
