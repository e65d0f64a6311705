// Package controller runs WorkflowRuns on Kubernetes with controller-runtime.
//
// The WorkflowRun reconciler is thin: it reads the run, its Workflow (for
// workflowRef), its step definitions and its journal through the informer
// cache, runs one engine.Tick, writes the status back in one patch, and asks
// to be called again at the tick's wake-up time. Reads never go to the API
// server, and a lookup known to miss (the journal ConfigMap of a run that
// has none yet) is not made.
//
// The WorkflowStepDefinition reconciler compiles each definition and
// reports the result as its Ready condition, so a template error shows on
// the definition itself.
package controller
