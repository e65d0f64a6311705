package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Workflow is a reusable list of steps that WorkflowRuns name in
// spec.workflowRef. Like KubeVela's, it has no spec and no status: mode and
// steps sit at the top level.
//
// +kubebuilder:object:root=true
// +kubebuilder:storageversion
// +kubebuilder:resource:categories={oam},shortName={wfl}
type Workflow struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Mode is the default execution mode of runs of this workflow.
	// +optional
	Mode *WorkflowExecuteMode `json:"mode,omitempty"`

	// ServiceAccountName is the ServiceAccount, in the namespace of the
	// runs, that runs of this workflow act as when they name none
	// themselves (see WorkflowRunSpec.ServiceAccountName). Stepflow
	// extension.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	ServiceAccountName string `json:"serviceAccountName,omitempty"`

	// Orchestration: the queue, rollback and callback of runs of this
	// workflow (Stepflow extension); a run's own fields win.
	Orchestration `json:",inline"`

	// SuccessfulRunsHistoryLimit keeps at most this many succeeded runs
	// of this workflow; older ones are deleted (Stepflow extension).
	// Runs that are rollback targets are always kept.
	// +optional
	// +kubebuilder:validation:Minimum=0
	SuccessfulRunsHistoryLimit *int32 `json:"successfulRunsHistoryLimit,omitempty"`

	// FailedRunsHistoryLimit keeps at most this many failed or terminated
	// runs of this workflow (Stepflow extension).
	// +optional
	// +kubebuilder:validation:Minimum=0
	FailedRunsHistoryLimit *int32 `json:"failedRunsHistoryLimit,omitempty"`

	WorkflowSpec `json:",inline"`
}

// WorkflowSpec is an ordered list of steps.
type WorkflowSpec struct {
	// Steps are the top-level steps.
	// +optional
	Steps []WorkflowStep `json:"steps,omitempty"`
}

// WorkflowList is a list of Workflows.
//
// +kubebuilder:object:root=true
type WorkflowList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Workflow `json:"items"`
}
