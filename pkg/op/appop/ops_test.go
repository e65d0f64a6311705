package appop

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/app"
	"github.com/stepflow-dev/stepflow/pkg/op"
)

// bigConfig is the gray-release example with a global parameter large
// enough that a launch keeps it in a ConfigMap.
func bigConfig(t *testing.T) []byte {
	t.Helper()
	src := grayRelease(t)
	blob := "    - name: blob\n      value: " + strings.Repeat("x", app.InlineLimit) + "\n"
	out := bytes.Replace(src, []byte("  parameterValues:\n"), []byte("  parameterValues:\n"+blob), 1)
	if len(out) <= app.InlineLimit {
		t.Fatal("the big configuration is not big")
	}
	return out
}

func TestComponentsReadsTheRunsStoredConfiguration(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  func(*testing.T) []byte
	}{
		{"inline", grayRelease},
		{"in a configmap", bigConfig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := newNamespace(t)
			run := launch(t, ns, "v1", "DEPLOY", tc.src(t))
			ids := &identities{}
			got := mustCall(t, New(env.Client, ids), "components", run, &componentsParams{
				Components: []Selector{{"K8S_MICROSERVICE", "clustermanage"}},
				Policies:   []string{"topology-e2e-env", "override-e2e-env"},
				Context:    map[string]any{"clusterId": "master", "name": run.Name},
			})
			want := map[string]any{"appId": "testapp", "components": []any{map[string]any{
				"type": "K8S_MICROSERVICE", "name": "clustermanage", "version": "_",
				"revisionName": "K8S_MICROSERVICE|clustermanage|_", "namespace": "abm-daily", "clusters": []any{},
				"properties": map[string]any{
					"name":   "master",
					"values": map[string]any{"image": map[string]any{"repository": "nginx", "tag": "latest"}, "replicaCount": int64(3)},
				},
			}}}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("returns (-want +got):\n%s", d)
			}
			if asked := ids.calls(); len(asked) != 0 {
				t.Errorf("components asked for clusters %v; it reads only the step's own run", asked)
			}
		})
	}
}

func TestComponentsFailures(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	handWritten := &v1alpha1.WorkflowRun{
		ObjectMeta: metav1.ObjectMeta{Name: "by-hand", Namespace: ns},
		Spec:       v1alpha1.WorkflowRunSpec{WorkflowSpec: &v1alpha1.WorkflowSpec{}},
	}
	if err := env.Client.Create(ctx, handWritten); err != nil {
		t.Fatal(err)
	}
	malformed := &v1alpha1.WorkflowRun{
		ObjectMeta: metav1.ObjectMeta{Name: "malformed", Namespace: ns, Annotations: map[string]string{
			app.AnnotationConfiguration: string(bytes.Replace(grayRelease(t), []byte("K8S_MICROSERVICE|clustermanage|_"), []byte("K8S_MICROSERVICE|clustermanage"), 1)),
		}},
		Spec: v1alpha1.WorkflowRunSpec{WorkflowSpec: &v1alpha1.WorkflowSpec{}},
	}
	if err := env.Client.Create(ctx, malformed); err != nil {
		t.Fatal(err)
	}
	launched := launch(t, ns, "v1", "DEPLOY", grayRelease(t))
	recreated := launched.DeepCopy()
	recreated.UID = "the-uid-of-a-deleted-run"
	edited := launch(t, ns, "edited", "DEPLOY", grayRelease(t))
	edited.Annotations[app.AnnotationConfiguration] = strings.Replace(edited.Annotations[app.AnnotationConfiguration], "abm-daily", "elsewhere", 1)
	if err := env.Client.Update(ctx, edited); err != nil {
		t.Fatal(err)
	}
	big := launch(t, ns, "big", "DEPLOY", bigConfig(t))
	if err := env.Client.Delete(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: big.Annotations[app.AnnotationConfigMap]}}); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name      string
		run       *v1alpha1.WorkflowRun
		params    componentsParams
		permanent bool
		want      string
	}{
		{"a run not launched from an application", handWritten, componentsParams{}, true,
			"workflowrun " + ns + "/by-hand was not launched from an application"},
		{"a run of the step's name that is not the step's run", recreated, componentsParams{}, true,
			"it was deleted and created again"},
		{"a component not in the configuration", launched, componentsParams{Components: []Selector{{"K8S_MICROSERVICE", "nope"}}}, true,
			"component K8S_MICROSERVICE|nope is not in the application configuration"},
		{"an unknown policy", launched, componentsParams{Policies: []string{"nope"}}, true,
			`policy "nope" is not in the application configuration's spec.policies`},
		{"a data input without a value", launched, componentsParams{}, true,
			`component K8S_MICROSERVICE|clustermanage: dataInputs[0]: data output "Global.clusterId" has no value`},
		{"a malformed revisionName", malformed, componentsParams{}, true,
			`spec.components[1]: revisionName "K8S_MICROSERVICE|clustermanage": want TYPE|NAME|VERSION`},
		{"a configuration changed after the launch", edited, componentsParams{}, true,
			"it was changed after the launch"},
		{"a configuration configmap not there (yet)", big, componentsParams{}, false,
			"configuration configmap big-configuration"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := call(New(env.Client, &identities{}), "components", tc.run, &tc.params)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if got := op.IsPermanent(err); got != tc.permanent {
				t.Errorf("permanent = %v, want %v: %v", got, tc.permanent, err)
			}
		})
	}
}

func TestLatestRun(t *testing.T) {
	ns := newNamespace(t)
	t0 := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	src := grayRelease(t)
	otherScope := bytes.ReplaceAll(src, []byte("abm-daily"), []byte("abm-prod"))
	for _, r := range []struct {
		name, category string
		src            []byte
		phase          v1alpha1.WorkflowRunPhase
		end            time.Duration
	}{
		{"v1", "DEPLOY", src, v1alpha1.WorkflowRunSucceeded, 1 * time.Hour},
		{"v2", "DEPLOY", src, v1alpha1.WorkflowRunSucceeded, 2 * time.Hour},
		{"v2-failed", "DEPLOY", src, v1alpha1.WorkflowRunFailed, 3 * time.Hour},
		{"v2-rollback", "ROLLBACK", src, v1alpha1.WorkflowRunSucceeded, 4 * time.Hour},
		{"prod", "DEPLOY", otherScope, v1alpha1.WorkflowRunSucceeded, 5 * time.Hour},
		{"v3", "DEPLOY", src, v1alpha1.WorkflowRunSucceeded, 6 * time.Hour},
	} {
		run := launch(t, ns, r.name, r.category, r.src)
		finish(t, run, r.phase, t0.Add(r.end))
	}
	var own v1alpha1.WorkflowRun
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "v3"}, &own); err != nil {
		t.Fatal(err)
	}

	ids := &identities{}
	f := New(env.Client, ids)
	for _, tc := range []struct {
		name   string
		params latestRunParams
		want   map[string]any
	}{
		{"the newest succeeded DEPLOY of the app and scope, not the step's own run",
			latestRunParams{Category: "DEPLOY", Phase: "succeeded"},
			map[string]any{"found": true, "name": "v2", "endTime": "2026-01-02T05:00:00Z"}},
		{"another phase", latestRunParams{Category: "DEPLOY", Phase: "failed"},
			map[string]any{"found": true, "name": "v2-failed", "endTime": "2026-01-02T06:00:00Z"}},
		{"another category", latestRunParams{Category: "ROLLBACK", Phase: "succeeded"},
			map[string]any{"found": true, "name": "v2-rollback", "endTime": "2026-01-02T07:00:00Z"}},
		{"none", latestRunParams{Category: "DEPLOY", Phase: "terminated"}, map[string]any{"found": false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := mustCall(t, f, "latest-run", &own, &tc.params)
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("returns (-want +got):\n%s", d)
			}
		})
	}
	if d := cmp.Diff([]string{"rollback@", "rollback@", "rollback@", "rollback@"}, ids.calls()); d != "" {
		t.Errorf("clusters asked (-want +got), each list must be the step's identity's:\n%s", d)
	}

	t.Run("same end time: the greater name", func(t *testing.T) {
		ns := newNamespace(t)
		for _, name := range []string{"a", "c", "b"} {
			finish(t, launch(t, ns, name, "DEPLOY", src), v1alpha1.WorkflowRunSucceeded, t0)
		}
		own := launch(t, ns, "own", "DEPLOY", src)
		got := mustCall(t, f, "latest-run", own, &latestRunParams{Category: "DEPLOY", Phase: "succeeded"})
		if got["name"] != "c" {
			t.Errorf("found %v, want c", got)
		}
	})

	// End times have whole seconds: two deployments through the REST API
	// (generated names) that end in the same second are told apart by
	// their instance ids, which are handed out in launch order.
	t.Run("same end time: the higher instance id, whatever the names", func(t *testing.T) {
		ns := newNamespace(t)
		for _, r := range []struct {
			name string
			id   int64
		}{{"testapp-deploy-zzzzz", 7}, {"testapp-deploy-aaaaa", 8}} {
			l, err := app.Build(app.Request{Configuration: src, AppID: "testapp", Category: "DEPLOY", Namespace: ns, Name: r.name, Creator: "alice"})
			if err != nil {
				t.Fatal(err)
			}
			l.SetInstanceID(r.id)
			if err := l.Create(context.Background(), env.Client); err != nil {
				t.Fatal(err)
			}
			finish(t, l.Run, v1alpha1.WorkflowRunSucceeded, t0)
		}
		own := launch(t, ns, "own", "DEPLOY", src)
		got := mustCall(t, f, "latest-run", own, &latestRunParams{Category: "DEPLOY", Phase: "succeeded"})
		if got["name"] != "testapp-deploy-aaaaa" {
			t.Errorf("found %v, want testapp-deploy-aaaaa (instance id 8)", got)
		}
	})
}

// rollbackContext is the source run's context for the relaunch tests.
var rollbackContext = map[string]any{"clusterId": "master", "replicas": 3, "quiet": false}

func TestRelaunchCreatesOnce(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		src  func(*testing.T) []byte
	}{
		{"inline", grayRelease},
		{"in a configmap", bigConfig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := newNamespace(t)
			raw := tc.src(t)
			l, err := app.Run(ctx, env.Client, app.Request{Configuration: raw, AppID: "testapp", Category: "DEPLOY", Namespace: ns, Name: "v2", Context: rollbackContext})
			if err != nil {
				t.Fatal(err)
			}
			source := l.Run
			parent := launch(t, ns, "v3", "DEPLOY", grayRelease(t))
			ids := &identities{}
			f := New(env.Client, ids)
			params := &relaunchParams{Name: "v3-rollback-1", From: "v2", Category: "ROLLBACK", Context: map[string]any{"quiet": true}}

			first := mustCall(t, f, "relaunch", parent, params)
			// The controller was killed before it wrote the step's status:
			// the step is evaluated again.
			second := mustCall(t, f, "relaunch", parent, params)
			if d := cmp.Diff(map[string]any{"name": "v3-rollback-1", "created": true}, first); d != "" {
				t.Errorf("first call (-want +got):\n%s", d)
			}
			if d := cmp.Diff(map[string]any{"name": "v3-rollback-1", "created": false}, second); d != "" {
				t.Errorf("second call (-want +got):\n%s", d)
			}
			var rollbacks v1alpha1.WorkflowRunList
			if err := env.Client.List(ctx, &rollbacks, client.InNamespace(ns), client.MatchingLabels{app.LabelCategory: "ROLLBACK"}); err != nil {
				t.Fatal(err)
			}
			if len(rollbacks.Items) != 1 {
				t.Fatalf("%d ROLLBACK runs, want exactly 1", len(rollbacks.Items))
			}
			rb := &rollbacks.Items[0]
			wantLabels := map[string]string{app.LabelAppID: "testapp", app.LabelScope: "abm-daily", app.LabelCategory: "ROLLBACK"}
			if d := cmp.Diff(wantLabels, rb.Labels); d != "" {
				t.Errorf("labels (-want +got):\n%s", d)
			}
			for k, want := range map[string]string{
				app.AnnotationParentRun:  "v3",
				app.AnnotationLaunchedBy: string(parent.UID) + "/rollback",
				app.AnnotationCreator:    "workflowrun/v3",
				app.AnnotationRawAppID:   "testapp",
			} {
				if got := rb.Annotations[k]; got != want {
					t.Errorf("annotation %s = %q, want %q", k, got, want)
				}
			}
			if len(rb.OwnerReferences) != 0 {
				t.Errorf("the rollback run has owners %v: it must outlive its parent's cleanup", rb.OwnerReferences)
			}
			if d := cmp.Diff(source.Spec.WorkflowSpec, rb.Spec.WorkflowSpec); d != "" {
				t.Errorf("steps differ from the source's (-source +rollback):\n%s", d)
			}
			var gotCtx map[string]any
			if err := json.Unmarshal(rb.Spec.Context.Raw, &gotCtx); err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(map[string]any{"clusterId": "master", "replicas": float64(3), "quiet": true}, gotCtx); d != "" {
				t.Errorf("context (-want +got):\n%s", d)
			}
			stored, err := app.Configuration(ctx, env.Client, rb)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(stored.Raw, raw) {
				t.Errorf("the rollback run's configuration is not the source's byte for byte (%d bytes, want %d)", len(stored.Raw), len(raw))
			}
			for _, asked := range ids.calls() {
				if asked != "rollback@" {
					t.Errorf("a client for %q was asked; the step's identity on the local cluster is rollback@", asked)
				}
			}
			if len(ids.calls()) != 2 {
				t.Errorf("clusters asked %v, want once per call", ids.calls())
			}
		})
	}
}

// A controller killed between the create of a large rollback run and the
// create of its ConfigMap: the step evaluated again completes the launch.
func TestRelaunchCompletesAnInterruptedLaunch(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	raw := bigConfig(t)
	source := launch(t, ns, "v2", "DEPLOY", raw)
	parent := launch(t, ns, "v3", "DEPLOY", grayRelease(t))
	stored, err := app.Configuration(ctx, env.Client, source)
	if err != nil {
		t.Fatal(err)
	}
	l, err := app.Replay(app.ReplayRequest{Source: source, Stored: stored, Name: "v3-rollback-1", Category: "ROLLBACK", Parent: parent, Step: "rollback"})
	if err != nil {
		t.Fatal(err)
	}
	if l.ConfigMap == nil {
		t.Fatal("the replay keeps the large configuration inline")
	}
	if err := env.Client.Create(ctx, l.Run); err != nil { // and then the controller died
		t.Fatal(err)
	}

	got := mustCall(t, New(env.Client, &identities{}), "relaunch", parent, &relaunchParams{Name: "v3-rollback-1", From: "v2", Category: "ROLLBACK"})
	if got["created"] != false {
		t.Errorf("returns %v, want created false", got)
	}
	var rb v1alpha1.WorkflowRun
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "v3-rollback-1"}, &rb); err != nil {
		t.Fatal(err)
	}
	again, err := app.Configuration(ctx, env.Client, &rb)
	if err != nil {
		t.Fatalf("the rollback run's configuration: %v", err)
	}
	if !bytes.Equal(again.Raw, raw) {
		t.Error("the rollback run's configuration is not the source's")
	}
}

func TestRelaunchFailures(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	launch(t, ns, "v2", "DEPLOY", grayRelease(t))
	parent := launch(t, ns, "v3", "DEPLOY", grayRelease(t))
	foreign := &v1alpha1.WorkflowRun{
		ObjectMeta: metav1.ObjectMeta{Name: "taken", Namespace: ns},
		Spec:       v1alpha1.WorkflowRunSpec{WorkflowSpec: &v1alpha1.WorkflowSpec{}},
	}
	if err := env.Client.Create(ctx, foreign); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		params relaunchParams
		want   string
	}{
		{"a run of that name this step did not launch", relaunchParams{Name: "taken", From: "v2", Category: "ROLLBACK"},
			"workflowrun " + ns + "/taken exists and was not launched by this step"},
		{"a source that does not exist", relaunchParams{Name: "new", From: "v0", Category: "ROLLBACK"},
			"workflowrun " + ns + "/v0 to relaunch does not exist"},
		{"a source that was not launched from an application", relaunchParams{Name: "new", From: "taken", Category: "ROLLBACK"},
			"workflowrun " + ns + "/taken was not launched from an application"},
		{"an invalid name", relaunchParams{Name: "Not_A_Name", From: "v2", Category: "ROLLBACK"}, `run name "Not_A_Name"`},
		{"no category", relaunchParams{Name: "new", From: "v2"}, "name, from and category are required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := call(New(env.Client, &identities{}), "relaunch", parent, &tc.params)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if !op.IsPermanent(err) {
				t.Errorf("not permanent: %v", err)
			}
		})
	}
}

// The keys the engine sets in every template's context (name, namespace,
// stepName, stepSessionID) do not override global parameters of the same
// name in a step: they resolve as they did at the launch, from the
// parameters or the run's own context.
func TestComponentsResolveGlobalsAsAtTheLaunch(t *testing.T) {
	ns := newNamespace(t)
	doc := []byte(`apiVersion: core.oam.dev/v1alpha2
kind: ApplicationConfiguration
metadata: {name: shop, annotations: {appId: testapp}}
spec:
  parameterValues:
  - {name: namespace, value: prod}
  components:
  - revisionName: "K8S_MICROSERVICE|web|_"
    scopes: [{scopeRef: {kind: Namespace, name: "{{ Global.namespace }}"}}]
`)
	plain := launch(t, ns, "plain", "DEPLOY", doc)
	l, err := app.Run(context.Background(), env.Client, app.Request{Configuration: doc, Category: "DEPLOY", Namespace: ns, Name: "staged",
		Context: map[string]any{"namespace": "staging"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		run  *v1alpha1.WorkflowRun
		want string
	}{{plain, "prod"}, {l.Run, "staging"}} {
		// The template's context, as the engine builds it.
		stepCtx := map[string]any{"name": tc.run.Name, "namespace": ns, "stepName": "deploy", "stepSessionID": "x"}
		got := mustCall(t, New(env.Client, &identities{}), "components", tc.run, &componentsParams{Context: stepCtx})
		comps := got["components"].([]any)
		if n := comps[0].(map[string]any)["namespace"]; n != tc.want {
			t.Errorf("run %s: component namespace %v, want %s as at its launch", tc.run.Name, n, tc.want)
		}
	}
}
