// Package v1beta1 holds the definition side of Stepflow's API:
// WorkflowStepDefinition in group core.oam.dev, version v1beta1, the same
// kind and shape as KubeVela's, so its community step definitions apply
// unchanged.
//
// A WorkflowStepDefinition gives a step type its behaviour. Its name is the
// type that steps name (type: apply-object); its spec.schematic.cue.template
// is the CUE program one attempt of such a step evaluates, with the step's
// properties as parameter. Its description, category and other catalogue
// data are metadata annotations and labels (definition.oam.dev/description),
// not spec fields.
//
// The controller reads definitions and reports on them in status (Ready,
// with the observed generation); nothing else about a definition changes at
// run time.
//
// This package holds types, constants and generated deep copies only.
//
// +kubebuilder:object:generate=true
// +groupName=core.oam.dev
package v1beta1
