package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// WorkflowSchedule creates WorkflowRuns of a Workflow on a cron schedule,
// as a CronJob creates Jobs (Stepflow extension).
//
// +kubebuilder:object:root=true
// +kubebuilder:storageversion
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories={oam},shortName={wfs}
// +kubebuilder:printcolumn:name="SCHEDULE",type=string,JSONPath=`.spec.schedule`
// +kubebuilder:printcolumn:name="WORKFLOW",type=string,JSONPath=`.spec.workflowRef`
// +kubebuilder:printcolumn:name="SUSPEND",type=boolean,JSONPath=`.spec.suspend`
// +kubebuilder:printcolumn:name="LAST SCHEDULE",type=date,JSONPath=`.status.lastScheduleTime`
// +kubebuilder:printcolumn:name="AGE",type=date,JSONPath=`.metadata.creationTimestamp`
type WorkflowSchedule struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec WorkflowScheduleSpec `json:"spec"`
	// +optional
	Status WorkflowScheduleStatus `json:"status,omitempty"`
}

// ConcurrencyPolicy says what a schedule does when a run is due while an
// earlier run of it has not finished.
// +kubebuilder:validation:Enum=Allow;Forbid;Replace
type ConcurrencyPolicy string

const (
	// ConcurrencyAllow starts the new run beside the running ones.
	ConcurrencyAllow ConcurrencyPolicy = "Allow"
	// ConcurrencyForbid skips the new run.
	ConcurrencyForbid ConcurrencyPolicy = "Forbid"
	// ConcurrencyReplace terminates the running ones and starts the new run.
	ConcurrencyReplace ConcurrencyPolicy = "Replace"
)

// WorkflowScheduleSpec says when to run which Workflow.
type WorkflowScheduleSpec struct {
	// Schedule is a cron expression of five fields ("*/5 * * * *"), or a
	// descriptor such as @hourly.
	// +kubebuilder:validation:MinLength=1
	Schedule string `json:"schedule"`

	// TimeZone is the IANA time zone the schedule is read in (default the
	// controller's, UTC in the image).
	// +optional
	TimeZone *string `json:"timeZone,omitempty"`

	// WorkflowRef names the Workflow, in the schedule's namespace, that
	// each run runs.
	// +kubebuilder:validation:MinLength=1
	WorkflowRef string `json:"workflowRef"`

	// Context is the initial context of each run.
	// +optional
	// +kubebuilder:pruning:PreserveUnknownFields
	Context *runtime.RawExtension `json:"context,omitempty"`

	// ServiceAccountName is the ServiceAccount each run acts as (default:
	// the Workflow's, then the controller's).
	// +optional
	ServiceAccountName string `json:"serviceAccountName,omitempty"`

	// ConcurrencyPolicy is Allow (default), Forbid or Replace.
	// +optional
	ConcurrencyPolicy ConcurrencyPolicy `json:"concurrencyPolicy,omitempty"`

	// StartingDeadlineSeconds is how late a run may still start after its
	// scheduled time, as a CronJob's: a time missed by more (the
	// controller was down) is skipped.
	// +optional
	// +kubebuilder:validation:Minimum=0
	StartingDeadlineSeconds *int64 `json:"startingDeadlineSeconds,omitempty"`

	// SuccessfulRunsHistoryLimit keeps at most this many succeeded runs of
	// the schedule (default 3).
	// +optional
	// +kubebuilder:validation:Minimum=0
	SuccessfulRunsHistoryLimit *int32 `json:"successfulRunsHistoryLimit,omitempty"`

	// FailedRunsHistoryLimit keeps at most this many failed or terminated
	// runs of the schedule (default 1).
	// +optional
	// +kubebuilder:validation:Minimum=0
	FailedRunsHistoryLimit *int32 `json:"failedRunsHistoryLimit,omitempty"`

	// Suspend stops new runs; running ones go on.
	// +optional
	Suspend bool `json:"suspend,omitempty"`
}

// WorkflowScheduleStatus is what the schedule has done.
type WorkflowScheduleStatus struct {
	// Active are the schedule's runs that have not finished.
	// +optional
	// +listType=atomic
	Active []corev1.ObjectReference `json:"active,omitempty"`

	// LastScheduleTime is the scheduled time of the last run created.
	// +optional
	LastScheduleTime *metav1.Time `json:"lastScheduleTime,omitempty"`

	// LastSuccessfulTime is when a run of the schedule last succeeded.
	// +optional
	LastSuccessfulTime *metav1.Time `json:"lastSuccessfulTime,omitempty"`

	// Conditions: Ready is False while the schedule or its time zone
	// cannot be read.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// WorkflowScheduleList is a list of WorkflowSchedules.
//
// +kubebuilder:object:root=true
type WorkflowScheduleList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []WorkflowSchedule `json:"items"`
}
