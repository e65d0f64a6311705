package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersion is the group and version of every kind in this package.
var GroupVersion = schema.GroupVersion{Group: "core.oam.dev", Version: "v1alpha1"}

var (
	// SchemeBuilder adds this package's kinds to a scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)
	// AddToScheme adds this package's kinds to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion,
		&Workflow{}, &WorkflowList{},
		&WorkflowRun{}, &WorkflowRunList{},
		&WorkflowSchedule{}, &WorkflowScheduleList{},
	)
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
