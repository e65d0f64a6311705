// Builders of contract values for the tests.
import type { RunSummary, StepNode } from "../api/types";

export function run(over: Partial<RunSummary> = {}): RunSummary {
  return {
    namespace: "default",
    name: "r",
    uid: "u",
    phase: "executing",
    appId: "",
    category: "",
    labels: {},
    created: "2026-12-06T12:00:00Z",
    started: "2026-12-06T12:00:01Z",
    finished: "",
    durationSeconds: 1,
    progress: "0/1",
    waitingOn: "",
    message: "",
    resourceVersion: "100",
    ...over,
  };
}

export function step(name: string, over: Partial<StepNode> = {}): StepNode {
  return {
    id: `id-${name}`,
    name,
    type: "noop",
    parent: "",
    phase: "pending",
    reason: "",
    message: "",
    started: "",
    finished: "",
    attempt: 0,
    dependsOn: [],
    inputs: [],
    outputs: [],
    properties: {},
    ...over,
  };
}
