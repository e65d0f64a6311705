package controller_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	nethttp "net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/api/v1beta1"
	"github.com/stepflow-dev/stepflow/internal/testenv"
	"github.com/stepflow-dev/stepflow/pkg/engine"
)

// What kubectl shows of runs and definitions, read as kubectl reads it
// (the API server's Table, wide columns included), and the conditions of
// finished runs: succeeded, failed, failed for want of a definition,
// invalid, naming no Workflow, and terminated by a user while suspended.
func TestKubectlColumnsAndFinishedConditions(t *testing.T) {
	ns := namespace(t, "kubectl")
	startController(t, ns)
	ctx := context.Background()

	say := &v1beta1.WorkflowStepDefinition{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "say",
		Annotations: map[string]string{"definition.oam.dev/description": "Says hi."}}}
	say.Spec.Schematic = &v1beta1.Schematic{CUE: &v1beta1.CUE{Template: "import \"vela/op\"\nm: op.#Message & {message: \"hi\"}\n"}}
	if err := env.Client.Create(ctx, say); err != nil {
		t.Fatal(err)
	}
	stepDef(t, ns, "broken", "import \"vela/op\"\n\nm: op.#Message & {message: 1 + }\n")
	shippedStepDef(t, ns, "suspend")

	for name, steps := range map[string]string{
		"ok":      "steps: [{name: a, type: say}, {name: b, type: say}]",
		"bad":     "steps: [{name: a, type: say}, {name: b, type: broken}]",
		"nodef":   "steps: [{name: a, type: say}, {name: b, type: nowhere}]",
		"invalid": "steps: [{name: a, type: say, dependsOn: [nowhere]}]",
		"stopped": "steps: [{name: a, type: say}, {name: hold, type: suspend}, {name: c, type: say}]",
	} {
		applyYAML(t, &v1alpha1.WorkflowRun{}, fmt.Sprintf("metadata: {name: %s, namespace: %s}\nspec:\n  workflowSpec: {%s}\n", name, ns, steps))
	}
	applyYAML(t, &v1alpha1.WorkflowRun{}, fmt.Sprintf("metadata: {name: byref, namespace: %s}\nspec: {workflowRef: nowhere}\n", ns))

	held := waitRun(t, ns, "stopped", 30*time.Second, func(r *v1alpha1.WorkflowRun) bool {
		return r.Status.Phase == v1alpha1.WorkflowRunSuspending
	})
	if !meta.IsStatusConditionTrue(held.Status.Conditions, v1alpha1.ConditionSuspended) || held.Status.Progress != "1/3" || held.Status.Duration != nil {
		t.Errorf("suspended run: conditions %+v, progress %q, duration %v; want Suspended, 1/3, none",
			held.Status.Conditions, held.Status.Progress, held.Status.Duration)
	}
	// As `stepflow terminate` and the REST API do.
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var run v1alpha1.WorkflowRun
		if err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "stopped"}, &run); err != nil {
			return err
		}
		if err := engine.Terminate(&run.Status, "", time.Now()); err != nil {
			return err
		}
		return env.Client.Status().Update(ctx, &run)
	})
	if err != nil {
		t.Fatal(err)
	}

	type want struct {
		phase      v1alpha1.WorkflowRunPhase
		progress   string
		conditions map[string]string // type: status/reason
	}
	finishedAs := func(phase string) map[string]string {
		return map[string]string{"Ready": "True/Valid", "Succeeded": "False/" + phase, "Failed": "True/" + phase, "Suspended": "False/" + phase}
	}
	wants := map[string]want{
		"ok": {v1alpha1.WorkflowRunSucceeded, "2/2",
			map[string]string{"Ready": "True/Valid", "Succeeded": "True/Succeeded", "Failed": "False/Succeeded", "Suspended": "False/Succeeded"}},
		"bad":     {v1alpha1.WorkflowRunFailed, "2/2", finishedAs("Failed")},
		"nodef":   {v1alpha1.WorkflowRunFailed, "2/2", finishedAs("Failed")},
		"invalid": {v1alpha1.WorkflowRunFailed, "", finishedAs("Failed")},
		"stopped": {v1alpha1.WorkflowRunTerminated, "2/3", finishedAs("Terminated")},
		"byref": {v1alpha1.WorkflowRunFailed, "", map[string]string{"Ready": "False/WorkflowNotFound",
			"Succeeded": "False/WorkflowNotFound", "Failed": "True/WorkflowNotFound", "Suspended": "False/WorkflowNotFound"}},
	}
	wants["nodef"].conditions["Ready"] = "False/" + engine.ReasonDefinitionNotFound
	wants["invalid"].conditions["Ready"] = "False/" + engine.ReasonInvalid

	runs := map[string]*v1alpha1.WorkflowRun{}
	for name, w := range wants {
		run := waitRun(t, ns, name, 30*time.Second, finishedRun)
		runs[name] = run
		got := map[string]string{}
		for _, c := range run.Status.Conditions {
			got[c.Type] = string(c.Status) + "/" + c.Reason
		}
		if diff := cmp.Diff(w.conditions, got); diff != "" {
			t.Errorf("run %s: conditions (-want +got):\n%s", name, diff)
		}
		if run.Status.Phase != w.phase || run.Status.Progress != w.progress {
			t.Errorf("run %s: phase %s, progress %q; want %s, %q", name, run.Status.Phase, run.Status.Progress, w.phase, w.progress)
		}
		if !run.Status.StartTime.IsZero() {
			if d := run.Status.EndTime.Sub(run.Status.StartTime.Time); run.Status.Duration == nil || run.Status.Duration.Duration != d {
				t.Errorf("run %s: duration %v, want %s (end - start)", name, run.Status.Duration, d)
			}
		}
	}
	if run := runs["stopped"]; run.Status.Suspend {
		t.Errorf("terminated run still has status.suspend")
	}

	// kubectl get wr [-o wide]: the Table the API server makes.
	cols, rows := table(t, "/apis/core.oam.dev/v1alpha1/namespaces/"+ns+"/workflowruns")
	if diff := cmp.Diff([]string{"Name/0", "PHASE/0", "AGE/0", "STEPS/1", "DURATION/1", "MESSAGE/1"}, cols); diff != "" {
		t.Errorf("workflowrun columns (-want +got):\n%s", diff)
	}
	for name, run := range runs {
		duration := ""
		if run.Status.Duration != nil {
			duration = run.Status.Duration.Duration.String()
		}
		want := []string{name, string(run.Status.Phase), run.Status.Progress, duration, run.Status.Message}
		got := rows[name]
		if len(got) == 6 {
			got = slices.Delete(slices.Clone(got), 2, 3) // AGE
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("row of run %s (-want +got):\n%s", name, diff)
		}
	}
	if bad, stopped := rows["bad"], rows["stopped"]; len(bad) != 6 || len(stopped) != 6 ||
		!strings.Contains(bad[5], `step "b" failed`) || stopped[3] != "2/3" {
		t.Errorf("wide cells: bad %q, stopped %q", rows["bad"], rows["stopped"])
	}

	// kubectl get workflowstep: READY from the Ready condition, DESCRIPTION
	// from the annotation.
	waitDefReady := func(name string) {
		deadline := time.Now().Add(20 * time.Second)
		for {
			var def v1beta1.WorkflowStepDefinition
			if err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &def); err == nil &&
				meta.FindStatusCondition(def.Status.Conditions, v1beta1.ConditionReady) != nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("definition %s has no Ready condition after 20s", name)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitDefReady("say")
	waitDefReady("broken")
	cols, rows = table(t, "/apis/core.oam.dev/v1beta1/namespaces/"+ns+"/workflowstepdefinitions")
	if diff := cmp.Diff([]string{"Name/0", "READY/0", "DESCRIPTION/0", "AGE/0"}, cols); diff != "" {
		t.Errorf("workflowstepdefinition columns (-want +got):\n%s", diff)
	}
	for name, want := range map[string][]string{"say": {"say", "True", "Says hi."}, "broken": {"broken", "False", ""}} {
		if got := rows[name]; len(got) != 4 || !cmp.Equal(want, got[:3]) {
			t.Errorf("row of definition %s = %q, want %q then the age", name, got, want)
		}
	}

	// kubectl itself, and the Workflow's short name through discovery.
	assets, err := testenv.Assets()
	if err != nil {
		t.Fatal(err)
	}
	kc, err := env.Kubeconfig(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(filepath.Join(assets, "kubectl"), "--kubeconfig", kc, "-n", ns, "get", "wr", "-o", "wide").CombinedOutput()
	header, _, _ := strings.Cut(string(out), "\n")
	if err != nil || strings.Join(strings.Fields(header), " ") != "NAME PHASE AGE STEPS DURATION MESSAGE" {
		t.Errorf("kubectl get wr -o wide: %v\n%s", err, out)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	resources, err := dc.ServerResourcesForGroupVersion(v1alpha1.GroupVersion.String())
	if err != nil {
		t.Fatal(err)
	}
	short := map[string][]string{}
	for _, r := range resources.APIResources {
		short[r.Name] = r.ShortNames
	}
	if !slices.Equal(short["workflows"], []string{"wfl"}) || !slices.Equal(short["workflowruns"], []string{"wr"}) {
		t.Errorf("short names = %v, want workflows: [wfl], workflowruns: [wr]", short)
	}
}

// table gets path as the Table kubectl asks for, and returns its columns
// as name/priority and its rows by name, each cell printed as kubectl does
// (a missing value as "").
func table(t *testing.T, path string) (columns []string, rows map[string][]string) {
	t.Helper()
	hc, err := rest.HTTPClientFor(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	req, err := nethttp.NewRequest(nethttp.MethodGet, strings.TrimSuffix(env.Config.Host, "/")+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != nethttp.StatusOK {
		t.Fatalf("GET %s as a Table: %d %v\n%s", path, resp.StatusCode, err, body)
	}
	var tbl metav1.Table
	if err := json.Unmarshal(body, &tbl); err != nil {
		t.Fatalf("GET %s: not a Table: %v", path, err)
	}
	for _, c := range tbl.ColumnDefinitions {
		columns = append(columns, fmt.Sprintf("%s/%d", c.Name, c.Priority))
	}
	rows = map[string][]string{}
	for _, r := range tbl.Rows {
		cells := make([]string, len(r.Cells))
		for i, c := range r.Cells {
			if c != nil {
				cells[i] = fmt.Sprint(c)
			}
		}
		if len(cells) > 0 {
			rows[cells[0]] = cells
		}
	}
	return columns, rows
}
