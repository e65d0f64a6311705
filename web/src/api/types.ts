// The UI's API as fixed in the server contract (docs/ui.md): what
// /ui/api/runs, /ui/api/runs/{ns}/{name} and /ui/api/events return.

/** One run as the list and the events show it. Times are RFC 3339 or "". */
export interface RunSummary {
  namespace: string;
  name: string;
  uid: string;
  phase: string;
  appId: string;
  category: string;
  labels: Record<string, string>;
  created: string;
  started: string;
  finished: string;
  /** Seconds from start to finish, or to now while running (as of the server's answer). */
  durationSeconds: number;
  /** "done/total", e.g. "2/5". */
  progress: string;
  /** The step the run waits on (suspended or running), or "". */
  waitingOn: string;
  message: string;
  resourceVersion: string;
}

export interface NamedValue {
  name: string;
  value: unknown;
}

/** One step of the spec with its status merged in; groups included. */
export interface StepNode {
  id: string;
  name: string;
  type: string;
  /** "" for a top-level step, else the name of its group. */
  parent: string;
  phase: string;
  reason: string;
  message: string;
  started: string;
  finished: string;
  attempt: number;
  dependsOn: string[];
  inputs: NamedValue[];
  outputs: NamedValue[];
  properties: Record<string, unknown>;
}

export type EdgeKind = "dependsOn" | "input" | "order";

export interface Edge {
  from: string;
  to: string;
  kind: EdgeKind;
}

export interface RunDetail {
  run: RunSummary;
  steps: StepNode[];
  edges: Edge[];
  context: Record<string, unknown>;
}

/** The payload of an `event: deleted`. */
export interface RunRef {
  namespace: string;
  name: string;
}
