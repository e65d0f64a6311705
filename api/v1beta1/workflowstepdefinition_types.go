package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// WorkflowStepDefinition defines a step type: steps whose type is this
// object's name run its CUE template.
//
// +kubebuilder:object:root=true
// +kubebuilder:storageversion
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories={oam},shortName={workflowstep}
// +kubebuilder:printcolumn:name="READY",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="DESCRIPTION",type=string,JSONPath=".metadata.annotations.definition\\.oam\\.dev/description"
// +kubebuilder:printcolumn:name="AGE",type=date,JSONPath=`.metadata.creationTimestamp`
type WorkflowStepDefinition struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +optional
	Spec WorkflowStepDefinitionSpec `json:"spec,omitempty"`
	// +optional
	Status WorkflowStepDefinitionStatus `json:"status,omitempty"`
}

// WorkflowStepDefinitionSpec holds the step type's template. Only
// schematic.cue is executed; the other fields are KubeVela's, accepted so
// existing definitions apply, and not used by Stepflow.
type WorkflowStepDefinitionSpec struct {
	// Schematic holds the template of the step type.
	// +optional
	Schematic *Schematic `json:"schematic,omitempty"`

	// Version is the definition's version, informational.
	// +optional
	Version string `json:"version,omitempty"`

	// Reference points at a CustomResourceDefinition; KubeVela compatibility
	// only.
	// +optional
	Reference *DefinitionReference `json:"definitionRef,omitempty"`

	// Alias is a display name; KubeVela compatibility only.
	// +optional
	Alias string `json:"alias,omitempty"`

	// ManageHealthCheck is KubeVela's flag for definitions that do their own
	// health checking; accepted and ignored.
	// +optional
	ManageHealthCheck bool `json:"manageHealthCheck,omitempty"`

	// Compensate is the default compensation of steps of this type: the
	// step that undoes one when its run rolls back. A step's own
	// compensate overrides it or switches it off (Stepflow extension).
	// +optional
	Compensate *DefaultCompensation `json:"compensate,omitempty"`
}

// DefaultCompensation is a definition's default compensation.
//
// Stepflow extension.
type DefaultCompensation struct {
	// Type names the WorkflowStepDefinition of the compensating step.
	// +kubebuilder:validation:MinLength=1
	Type string `json:"type"`

	// Properties are the compensating step's parameters. Without them it
	// gets the original step's properties.
	// +optional
	// +kubebuilder:pruning:PreserveUnknownFields
	Properties *runtime.RawExtension `json:"properties,omitempty"`
}

// Schematic is the encapsulation of a step type.
type Schematic struct {
	// CUE is the template in CUE.
	// +optional
	CUE *CUE `json:"cue,omitempty"`

	// Terraform is KubeVela's Terraform schematic, kept as it is written so
	// such definitions apply. Stepflow does not run it.
	// +optional
	// +kubebuilder:pruning:PreserveUnknownFields
	Terraform *runtime.RawExtension `json:"terraform,omitempty"`
}

// CUE is a template written in CUE.
type CUE struct {
	// Template is the CUE source that one attempt of the step evaluates.
	// It reads the step's properties as parameter.
	Template string `json:"template"`
}

// DefinitionReference names a CustomResourceDefinition and, optionally, one
// of its versions.
type DefinitionReference struct {
	// Name is the CustomResourceDefinition's name.
	Name string `json:"name"`
	// Version is one of its versions; the first is meant when empty.
	// +optional
	Version string `json:"version,omitempty"`
}

// WorkflowStepDefinitionStatus is what the controller found in the
// definition.
type WorkflowStepDefinitionStatus struct {
	// Conditions hold Ready: True when the template compiles.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// ObservedGeneration is the spec generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// ParameterSchema is the JSON Schema (draft 2020-12) of the template's
	// parameter, for UIs and tools: types, enums, required fields,
	// defaults and descriptions (`// +usage=` comments). It is set when
	// the template compiles and is at most 64 KiB; a larger one is left
	// out, and so is one that cannot be derived, with the
	// ParameterSchema condition saying why. A run's properties are
	// checked against the CUE parameter itself, not this schema.
	//
	// Stepflow extension: KubeVela keeps a definition's OpenAPI schema in
	// a ConfigMap named by status.configMapRef instead.
	// +optional
	// +kubebuilder:validation:Type=object
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:pruning:PreserveUnknownFields
	ParameterSchema *runtime.RawExtension `json:"parameterSchema,omitempty"`
}

// ConditionParameterSchema is the condition of a definition whose
// template compiles but whose parameter's JSON Schema is not on its status:
// False, saying why (too large, not derivable). It is absent when the
// schema is there.
const ConditionParameterSchema = "ParameterSchema"

// ConditionReady is the condition type that says whether a definition's
// template compiles.
const ConditionReady = "Ready"

// WorkflowStepDefinitionList is a list of WorkflowStepDefinitions.
//
// +kubebuilder:object:root=true
type WorkflowStepDefinitionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []WorkflowStepDefinition `json:"items"`
}
