package controller_test

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
)

// cleanRunJobs is a step type in the style of KubeVela's clean-jobs,
// written for this test: a flat op.#Delete that names an object (the run)
// and gives a label filter, meaning every Job the filter matches.
const cleanRunJobs = `import "vela/op"

parameter: labelselector?: [string]: string

_selector: [string]: string
if parameter.labelselector != _|_ {_selector: parameter.labelselector}
if parameter.labelselector == _|_ {_selector: "workflowrun.oam.dev/name": context.name}

jobs: op.#Delete & {
	value: {
		apiVersion: "batch/v1"
		kind:       "Job"
		metadata: {name: context.name, namespace: context.namespace}
	}
	filter: {
		namespace:      context.namespace
		matchingLabels: _selector
	}
}
`

// A clean-jobs step deletes the run's Jobs by their label, not the one Job
// named like the run: 3 labelled Jobs gone, the unlabelled ones left.
func TestCleanJobsDeletesByFilter(t *testing.T) {
	ns := namespace(t, "clean-jobs")
	grantRunner(t, ns, "deletecollection", "batch", "jobs", rbacv1.PolicyRule{
		APIGroups: []string{"batch"}, Resources: []string{"jobs"}, Verbs: []string{"get", "list", "watch", "delete", "deletecollection"},
	})
	ctx := context.Background()
	newJob := func(name string, labels map[string]string) {
		t.Helper()
		j := &batchv1.Job{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
			Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever,
				Containers:    []corev1.Container{{Name: "main", Image: "busybox"}},
			}}},
		}
		if err := env.Client.Create(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	mine := map[string]string{"workflowrun.oam.dev/name": "build"}
	for _, name := range []string{"build-a", "build-b", "build-c"} {
		newJob(name, mine)
	}
	newJob("unlabelled", nil)
	newJob("build", nil) // named like the run, not labelled: kept
	newJob("other-run", map[string]string{"workflowrun.oam.dev/name": "other"})

	stepDef(t, ns, "clean-jobs", cleanRunJobs) // before the controller's cache starts
	startController(t, ns)
	applyYAML(t, &v1alpha1.WorkflowRun{}, fmt.Sprintf(`
metadata: {name: build, namespace: %s}
spec:
  workflowSpec:
    steps:
    - {name: clean, type: clean-jobs}
`, ns))
	run := waitRun(t, ns, "build", 30*time.Second, finishedRun)
	if run.Status.Phase != v1alpha1.WorkflowRunSucceeded {
		t.Fatalf("run is %s: %q", run.Status.Phase, run.Status.Steps[0].Message)
	}
	var jobs batchv1.JobList
	if err := env.Client.List(ctx, &jobs, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, j := range jobs.Items {
		if j.DeletionTimestamp == nil {
			left = append(left, j.Name)
		}
	}
	sort.Strings(left)
	if want := fmt.Sprint([]string{"build", "other-run", "unlabelled"}); fmt.Sprint(left) != want {
		t.Errorf("Jobs left: %v, want %s", left, want)
	}
}
