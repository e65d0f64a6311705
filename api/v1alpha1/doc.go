// Package v1alpha1 holds the run-side API of Stepflow: Workflow and
// WorkflowRun in group core.oam.dev, version v1alpha1.
//
// The shapes are KubeVela Workflow's, field for field, so a WorkflowRun or
// Workflow written for KubeVela applies unchanged. Stepflow adds a few
// optional fields on top (retry on a step; attempt, outputs and wake-up
// times on a step's status). Each one is marked "Stepflow extension" where it
// is declared, and leaving them out gives KubeVela's behaviour.
//
// The model:
//
//   - A Workflow is a reusable, named list of steps. It has no spec/status
//     split and nothing reconciles it; a WorkflowRun points at it by name.
//   - A WorkflowRun is one execution. Its spec carries the steps inline
//     (workflowSpec) or by reference (workflowRef), the execution mode and an
//     initial context. Its status is owned by the controller.
//   - A step has a type, the name of a WorkflowStepDefinition
//     (core.oam.dev/v1beta1) whose CUE template does the work. A step of type
//     step-group holds subSteps. Steps run one after another (StepByStep) or
//     as their dependsOn edges allow (DAG); the mode is chosen separately for
//     top-level steps and for the sub-steps of a group.
//
// A run moves through these phases (status.status):
//
//	initializing ─▶ executing ─┬─▶ succeeded
//	                  ▲   │    ├─▶ failed
//	                  │   ▼    ├─▶ terminated
//	               suspending  └─▶ skipped
//
// and each step through these (status.steps[].phase):
//
//	pending ─▶ running ─┬─▶ succeeded
//	            ▲   │   ├─▶ failed
//	            │   ▼   └─▶ skipped
//	         suspending
//
// This package holds types, constants and generated deep copies only.
//
// +kubebuilder:object:generate=true
// +groupName=core.oam.dev
package v1alpha1
