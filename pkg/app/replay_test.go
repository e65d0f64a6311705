package app

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
)

func TestReplay(t *testing.T) {
	src := grayRelease(t)
	l, err := Build(Request{Configuration: src, AppID: "testapp", Category: "DEPLOY", Namespace: "team", Name: "v2",
		Context: map[string]any{"replicas": 3, "quiet": false}})
	if err != nil {
		t.Fatal(err)
	}
	source := l.Run
	source.Spec.ServiceAccountName = "deployer"
	stored := &Stored{Raw: src, Config: l.Config}
	parent := &v1alpha1.WorkflowRun{ObjectMeta: metav1.ObjectMeta{Name: "v3", Namespace: "team", UID: "uid-3"}}
	handWritten := &v1alpha1.WorkflowRun{ObjectMeta: metav1.ObjectMeta{Name: "by-hand", Namespace: "team"}}
	ok := ReplayRequest{Source: source, Stored: stored, Name: "v3-rollback", Category: "ROLLBACK",
		Context: map[string]any{"quiet": true}, Parent: parent, Step: "promote"}

	got, err := Replay(ok)
	if err != nil {
		t.Fatal(err)
	}
	run := got.Run
	if d := cmp.Diff(map[string]string{LabelAppID: "testapp", LabelScope: "abm-daily", LabelCategory: "ROLLBACK"}, run.Labels); d != "" {
		t.Errorf("labels (-want +got):\n%s", d)
	}
	for k, want := range map[string]string{
		AnnotationConfiguration: string(src), AnnotationSHA256: source.Annotations[AnnotationSHA256],
		AnnotationParentRun: "v3", AnnotationLaunchedBy: "uid-3/promote", AnnotationCreator: "workflowrun/v3",
		AnnotationRawAppID: "testapp", AnnotationRawScope: "abm-daily",
	} {
		if run.Annotations[k] != want {
			t.Errorf("annotation %s = %.60q, want %.60q", k, run.Annotations[k], want)
		}
	}
	if d := cmp.Diff(source.Spec.WorkflowSpec, run.Spec.WorkflowSpec); d != "" {
		t.Errorf("steps (-source +replay):\n%s", d)
	}
	if run.Spec.ServiceAccountName != "deployer" || len(run.OwnerReferences) != 0 || got.ConfigMap != nil {
		t.Errorf("serviceAccountName %q, owners %v, configmap %v", run.Spec.ServiceAccountName, run.OwnerReferences, got.ConfigMap)
	}
	if d := cmp.Diff(&runtime.RawExtension{Raw: []byte(`{"quiet":true,"replicas":3}`)}, run.Spec.Context); d != "" {
		t.Errorf("context (-want +got):\n%s", d)
	}

	for _, tc := range []struct {
		name string
		edit func(*ReplayRequest)
		want string
	}{
		{"a source not launched from an application", func(r *ReplayRequest) { r.Source = handWritten }, "it was not launched from an application"},
		{"an invalid name", func(r *ReplayRequest) { r.Name = "V3_rollback" }, `run name "V3_rollback"`},
		{"no category", func(r *ReplayRequest) { r.Category = "" }, `category ""`},
		{"a category that is not a label value", func(r *ReplayRequest) { r.Category = "roll back" }, `category "roll back"`},
		{"no parent", func(r *ReplayRequest) { r.Parent = nil }, "the parent run are all needed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := ok
			tc.edit(&req)
			if _, err := Replay(req); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// A replay carries the id its caller allocated, never the source's.
func TestReplayInstanceID(t *testing.T) {
	src := grayRelease(t)
	l, err := Build(Request{Configuration: src, AppID: "testapp", Category: "DEPLOY", Namespace: "team", Name: "v2"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetInstanceID(41)
	req := ReplayRequest{Source: l.Run, Stored: &Stored{Raw: src, Config: l.Config}, Name: "v2-rollback", Category: "ROLLBACK",
		Parent: &v1alpha1.WorkflowRun{ObjectMeta: metav1.ObjectMeta{Name: "v3", Namespace: "team", UID: "uid-3"}}, Step: "promote"}
	for _, tc := range []struct {
		id   int64
		want string
	}{{0, ""}, {42, "42"}} {
		req.InstanceID = tc.id
		got, err := Replay(req)
		if err != nil {
			t.Fatal(err)
		}
		if v := got.Run.Labels[LabelInstanceID]; v != tc.want {
			t.Errorf("InstanceID %d: label %s is %q, want %q", tc.id, LabelInstanceID, v, tc.want)
		}
	}
}
