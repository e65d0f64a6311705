package kube

import (
	"context"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/pkg/op"
)

// job is a minimal batch/v1 Job named name in ns with labels.
func job(ns, name string, labels map[string]any) map[string]any {
	meta := map[string]any{"name": name}
	if ns != "" {
		meta["namespace"] = ns
	}
	if labels != nil {
		meta["labels"] = labels
	}
	return map[string]any{
		"apiVersion": "batch/v1", "kind": "Job", "metadata": meta,
		"spec": map[string]any{"template": map[string]any{"spec": map[string]any{
			"restartPolicy": "Never",
			"containers":    []any{map[string]any{"name": "main", "image": "busybox"}},
		}}},
	}
}

// jobsIn returns the names of the Jobs in ns, sorted.
func jobsIn(t *testing.T, ns string) []string {
	t.Helper()
	var jobs batchv1.JobList
	if err := env.Client.List(context.Background(), &jobs, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, j := range jobs.Items {
		if j.DeletionTimestamp == nil {
			names = append(names, j.Name)
		}
	}
	sort.Strings(names)
	return names
}

// A delete that names an object and gives a label filter deletes what the
// filter matches (clean-jobs names the run and means its Jobs), in the
// filter's namespace; a filter of a namespace only moves a delete by name.
func TestDeleteNamedWithFilter(t *testing.T) {
	run := map[string]any{"workflowrun.oam.dev/name": "build"}
	other := map[string]any{"workflowrun.oam.dev/name": "other"}
	for _, tc := range []struct {
		name string
		// params builds the delete's params from the namespace of the step
		// (stepNS) and another one (otherNS).
		params func(stepNS, otherNS string) *deleteParams
		// objects are created in the other namespace, as the step's are.
		wantStep, wantOther []string
	}{{
		name: "name and matchingLabels delete by the labels",
		params: func(stepNS, _ string) *deleteParams {
			return &deleteParams{
				Value:  job(stepNS, "build", nil),
				Filter: &filter{Namespace: stepNS, MatchingLabels: map[string]string{"workflowrun.oam.dev/name": "build"}},
			}
		},
		wantStep:  []string{"build", "unlabelled", "x-other"},
		wantOther: []string{"a", "b", "build", "c", "unlabelled", "x-other"},
	}, {
		name: "matchingLabels without filter.namespace use value's namespace",
		params: func(_, otherNS string) *deleteParams {
			return &deleteParams{
				Value:  job(otherNS, "build", nil),
				Filter: &filter{MatchingLabels: map[string]string{"workflowrun.oam.dev/name": "build"}},
			}
		},
		wantStep:  []string{"a", "b", "build", "c", "unlabelled", "x-other"},
		wantOther: []string{"build", "unlabelled", "x-other"},
	}, {
		name: "filter.namespace wins over value's",
		params: func(stepNS, otherNS string) *deleteParams {
			return &deleteParams{
				Value:  job(stepNS, "build", nil),
				Filter: &filter{Namespace: otherNS, MatchingLabels: map[string]string{"workflowrun.oam.dev/name": "build"}},
			}
		},
		wantStep:  []string{"a", "b", "build", "c", "unlabelled", "x-other"},
		wantOther: []string{"build", "unlabelled", "x-other"},
	}, {
		name: "a filter of a namespace only deletes the named object there",
		params: func(_, otherNS string) *deleteParams {
			return &deleteParams{Value: job("", "unlabelled", nil), Filter: &filter{Namespace: otherNS}}
		},
		wantStep:  []string{"a", "b", "build", "c", "unlabelled", "x-other"},
		wantOther: []string{"a", "b", "build", "c", "x-other"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			stepNS, otherNS := newNamespace(t), newNamespace(t)
			for _, ns := range []string{stepNS, otherNS} {
				for _, j := range []map[string]any{
					job(ns, "a", run), job(ns, "b", run), job(ns, "c", run),
					job(ns, "unlabelled", nil), job(ns, "x-other", other), job(ns, "build", nil),
				} {
					mustRun(t, "apply", ns, &applyParams{Value: j})
				}
			}
			if got := mustRun(t, "delete", stepNS, tc.params(stepNS, otherNS)); len(got) != 0 {
				t.Errorf("returns %v, want {}", got)
			}
			if diff := cmp.Diff(tc.wantStep, jobsIn(t, stepNS)); diff != "" {
				t.Errorf("Jobs left in the step's namespace (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantOther, jobsIn(t, otherNS)); diff != "" {
				t.Errorf("Jobs left in the other namespace (-want +got):\n%s", diff)
			}
		})
	}
}

// A read after a delete by filter does not return an object the family
// applied a moment before and the filter deleted.
func TestReadAfterDeleteByFilter(t *testing.T) {
	ns := newNamespace(t)
	f := New(Local(opClient))
	call := func(do string, params any) map[string]any {
		t.Helper()
		o := f.Ops()[do]
		res, err := op.Direct.Run(context.Background(), &op.Call{
			Name: op.Name{Provider: "kube", Do: do}, Path: "test." + do, Op: o, Params: params, Class: o.Class(params),
			Step: op.Step{RunUID: "uid", RunName: "run", Namespace: ns, StepName: "step", StepID: "step-1"},
		})
		if err != nil {
			t.Fatalf("%s: %v", do, err)
		}
		return res.Returns.(map[string]any)
	}
	call("apply", &applyParams{Value: job(ns, "a", map[string]any{"del": "yes"})})
	call("delete", &deleteParams{Value: job(ns, "a", nil), Filter: &filter{MatchingLabels: map[string]string{"del": "yes"}}})
	if got := call("read", &readParams{Value: job(ns, "a", nil)}); got["err"] == nil {
		t.Errorf("read after the delete returned %v, want a not-found err", got)
	}
}
