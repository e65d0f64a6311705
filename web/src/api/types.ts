// The UI's API as fixed in the server contract (docs/ui.md): runs, their
// details and steps, the event streams, actions, definitions, launching and
// an app's DEPLOY history.

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

/** What the engine would accept now, as the server computes it (never decided in the UI). */
export interface Actions {
  resume: boolean;
  suspend: boolean;
  terminate: boolean;
  retry: boolean;
  setContext: boolean;
  /** The steps a retry-from may start at. */
  retryFrom: string[];
}

export interface RunDetail {
  run: RunSummary;
  steps: StepNode[];
  edges: Edge[];
  context: Record<string, unknown>;
  /** Absent from a server older than contract part 2: then nothing is enabled. */
  actions?: Actions;
}

/** The verbs of POST /ui/api/runs/{ns}/{name}/actions/{verb}. */
export type Verb = "resume" | "suspend" | "terminate" | "retry" | "retry-from" | "context";

export interface Attempt {
  /** 1-based. */
  attempt: number;
  id: string;
  phase: string;
  reason: string;
  message: string;
  started: string;
  finished: string;
}

/** A journal entry of the current attempt; never its parameters or results. */
export interface OpCall {
  op: string;
  path: string;
  /** "replayed" (ran once, replayed since) or "suspended". */
  state: string;
  message: string;
}

export interface LogLine {
  /** RFC 3339 or "". */
  time: string;
  level: number;
  line: string;
}

export interface DefinitionSource {
  kind: string;
  name: string;
  namespace: string;
  source: "namespace" | "system";
  description: string;
  /** The CUE source of the definition, as stored. */
  template: string;
}

export interface StepDetail {
  step: StepNode;
  /** Newest first. */
  attempts: Attempt[];
  calls: OpCall[];
  logs: LogLine[];
  definition: DefinitionSource | null;
}

/** A JSON Schema (draft 2020-12), the subset pkg/defschema writes. */
export interface JSONSchema {
  $schema?: string;
  type?: string;
  description?: string;
  default?: unknown;
  const?: unknown;
  enum?: unknown[];
  properties?: Record<string, JSONSchema>;
  required?: string[];
  additionalProperties?: boolean | JSONSchema;
  items?: JSONSchema;
  anyOf?: JSONSchema[];
  oneOf?: JSONSchema[];
  allOf?: JSONSchema[];
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  $ref?: string;
}

export type DefinitionKind = "WorkflowStepDefinition" | "ComponentDefinition";

export interface DefinitionItem {
  kind: DefinitionKind;
  name: string;
  namespace: string;
  source: "namespace" | "system";
  description: string;
  ready: boolean;
  message: string;
  schema: JSONSchema | null;
}

export interface WorkflowItem {
  namespace: string;
  name: string;
  description: string;
  steps: number;
}

/** The body of POST /ui/api/runs: a one-step run of a definition, or a run of a Workflow. */
export type LaunchRequest =
  | { namespace: string; definition: string; properties: Record<string, unknown>; name?: string }
  | { namespace: string; workflow: string; context: Record<string, unknown>; name?: string };

export interface Deploys {
  /** Newest first. */
  items: RunSummary[];
  rollbackTarget: RunRef | null;
  /** The scope the target is chosen in ("" when the app has no runs). */
  scope: string;
}

/** The payload of an `event: deleted`. */
export interface RunRef {
  namespace: string;
  name: string;
}
