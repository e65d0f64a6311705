package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// ComponentDefinition defines a component type: components whose type is
// this object's name are rendered by its CUE template, whose output (and
// outputs) are the objects the component produces.
//
// +kubebuilder:object:root=true
// +kubebuilder:storageversion
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories={oam},shortName={comp}
// +kubebuilder:printcolumn:name="WORKLOAD-KIND",type=string,JSONPath=".spec.workload.definition.kind"
// +kubebuilder:printcolumn:name="DESCRIPTION",type=string,JSONPath=".metadata.annotations.definition\\.oam\\.dev/description"
type ComponentDefinition struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +optional
	Spec ComponentDefinitionSpec `json:"spec,omitempty"`
	// +optional
	Status ComponentDefinitionStatus `json:"status,omitempty"`
}

// ComponentDefinitionSpec holds the component type's template and the kind
// of workload it renders. Only schematic.cue is executed; workload names
// the main object's kind. The other fields are KubeVela's, accepted so
// existing definitions apply, and not used by Stepflow.
type ComponentDefinitionSpec struct {
	// Workload describes the main object the template renders as output.
	// +optional
	Workload WorkloadTypeDescriptor `json:"workload,omitempty"`
	// Schematic holds the template of the component type. Its CUE
	// template reads the component's properties as parameter and the
	// render context (context.name, context.namespace, context.appName,
	// ...) as context, and writes the main object as output and the
	// others as outputs.
	// +optional
	Schematic *Schematic `json:"schematic,omitempty"`
	// Version is the definition's version, informational.
	// +optional
	Version string `json:"version,omitempty"`
	// ChildResourceKinds lists the kinds the workload creates; KubeVela
	// compatibility only.
	// +optional
	ChildResourceKinds []ChildResourceKind `json:"childResourceKinds,omitempty"`
	// RevisionLabel is KubeVela's label for the workload's revisions;
	// accepted and ignored.
	// +optional
	RevisionLabel string `json:"revisionLabel,omitempty"`
	// PodSpecPath is where the workload keeps its pod spec; accepted and
	// ignored.
	// +optional
	PodSpecPath string `json:"podSpecPath,omitempty"`
	// Status is KubeVela's custom health policy and status message;
	// accepted and not yet used.
	// +optional
	Status *WorkloadStatus `json:"status,omitempty"`
	// Extension is free-form data for platform builders; KubeVela
	// compatibility only.
	// +optional
	// +kubebuilder:pruning:PreserveUnknownFields
	Extension *runtime.RawExtension `json:"extension,omitempty"`
}

// WorkloadTypeDescriptor names the kind of a component type's main object,
// either by a type name or by its apiVersion and kind.
type WorkloadTypeDescriptor struct {
	// Type is a workload type name (KubeVela's "autodetects.core.oam.dev"
	// for templates that say what they render themselves).
	// +optional
	Type string `json:"type,omitempty"`
	// Definition is the main object's apiVersion and kind.
	// +optional
	Definition WorkloadGVK `json:"definition,omitempty"`
}

// WorkloadGVK is an apiVersion and a kind.
type WorkloadGVK struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
}

// ChildResourceKind is a kind a workload creates, with the labels that
// select its objects.
type ChildResourceKind struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	// +optional
	Selector map[string]string `json:"selector,omitempty"`
}

// WorkloadStatus is KubeVela's custom status of a component type: CUE
// that decides health and writes a message from the rendered objects.
type WorkloadStatus struct {
	// +optional
	CustomStatus string `json:"customStatus,omitempty"`
	// +optional
	HealthPolicy string `json:"healthPolicy,omitempty"`
	// +optional
	Details string `json:"details,omitempty"`
}

// ComponentDefinitionStatus is what the controller found in the
// definition, as for a WorkflowStepDefinition.
type ComponentDefinitionStatus struct {
	// Conditions hold Ready: True when the template compiles.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// ObservedGeneration is the spec generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
}

// ComponentDefinitionList is a list of ComponentDefinitions.
//
// +kubebuilder:object:root=true
type ComponentDefinitionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ComponentDefinition `json:"items"`
}
