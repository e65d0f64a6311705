// Package v1beta1 holds the definition side of Stepflow's API:
// WorkflowStepDefinition and ComponentDefinition in group core.oam.dev,
// version v1beta1, the same kinds and shapes as KubeVela's, so its
// community step definitions and component types apply unchanged.
//
// A WorkflowStepDefinition gives a step type its behaviour. Its name is the
// type that steps name (type: apply-object); its spec.schematic.cue.template
// is the CUE program one attempt of such a step evaluates, with the step's
// properties as parameter. Its description, category and other catalogue
// data are metadata annotations and labels (definition.oam.dev/description),
// not spec fields.
//
// A ComponentDefinition gives a component type its rendering. Its name is
// the type a component names; its spec.schematic.cue.template reads the
// component's properties as parameter and the render context (context.name,
// context.namespace, context.appName, ...) as context, and writes the
// component's main object as output and any others as outputs. The
// controller compiles it as it does a step definition's; rendering comes
// later.
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
