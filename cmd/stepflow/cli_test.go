package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/api/v1beta1"
	"github.com/stepflow-dev/stepflow/pkg/cli"
	"github.com/stepflow-dev/stepflow/pkg/journal"
	"github.com/stepflow-dev/stepflow/pkg/journal/kubestore"
)

// cluster is a namespace of its own on the test API server and a kubeconfig
// that reaches it.
type cluster struct {
	t          *testing.T
	ns         string
	kubeconfig string
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	kc, err := env.Kubeconfig(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "cli-"}}
	if err := env.Client.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return &cluster{t: t, ns: ns.Name, kubeconfig: kc}
}

// run runs stepflow against the cluster, in its namespace unless args say
// otherwise.
func (c *cluster) run(args ...string) (int, string, string) {
	c.t.Helper()
	return stepflow(c.t, append([]string{"--kubeconfig", c.kubeconfig, "-n", c.ns}, args...)...)
}

// ok runs stepflow and fails the test unless it exits 0.
func (c *cluster) ok(args ...string) string {
	c.t.Helper()
	code, out, errs := c.run(args...)
	if code != 0 {
		c.t.Fatalf("stepflow %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

// fails runs stepflow and returns its stderr, failing the test unless it
// exits non-zero with an error mentioning want.
func (c *cluster) fails(want string, args ...string) string {
	c.t.Helper()
	code, out, errs := c.run(args...)
	if code == 0 || !strings.Contains(errs, want) {
		c.t.Fatalf("stepflow %s: exit %d, stderr %q (stdout %q); want a non-zero exit and an error containing %q",
			strings.Join(args, " "), code, errs, out, want)
	}
	return errs
}

func (c *cluster) key(name string) types.NamespacedName {
	return types.NamespacedName{Namespace: c.ns, Name: name}
}

func (c *cluster) get(name string) *v1alpha1.WorkflowRun {
	c.t.Helper()
	var run v1alpha1.WorkflowRun
	if err := env.Client.Get(context.Background(), c.key(name), &run); err != nil {
		c.t.Fatal(err)
	}
	return &run
}

// createRun creates a run of the given steps (name:type) and gives it
// status st, as a controller would have written it.
func (c *cluster) createRun(name string, st v1alpha1.WorkflowRunStatus, steps ...string) *v1alpha1.WorkflowRun {
	c.t.Helper()
	run := &v1alpha1.WorkflowRun{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: c.ns},
		Spec: v1alpha1.WorkflowRunSpec{WorkflowSpec: &v1alpha1.WorkflowSpec{}}}
	for _, s := range steps {
		n, typ, _ := strings.Cut(s, ":")
		run.Spec.WorkflowSpec.Steps = append(run.Spec.WorkflowSpec.Steps,
			v1alpha1.WorkflowStep{WorkflowStepBase: v1alpha1.WorkflowStepBase{Name: n, Type: typ}})
	}
	ctx := context.Background()
	if err := env.Client.Create(ctx, run); err != nil {
		c.t.Fatal(err)
	}
	run.Status = st
	if err := env.Client.Status().Update(ctx, run); err != nil {
		c.t.Fatal(err)
	}
	return run
}

// saveJournal writes the run's journal ConfigMap as the controller does and
// records it in the run's status.
func (c *cluster) saveJournal(run *v1alpha1.WorkflowRun, d journal.Data) {
	c.t.Helper()
	ctx := context.Background()
	store := kubestore.New(env.Client, run, nil)
	if err := store.Save(ctx, d); err != nil {
		c.t.Fatal(err)
	}
	run = c.get(run.Name)
	run.Status.ContextBackend = store.Reference()
	if err := env.Client.Status().Update(ctx, run); err != nil {
		c.t.Fatal(err)
	}
}

// journalOf reads the run's journal ConfigMap.
func (c *cluster) journalOf(name string) (journal.Data, string) {
	c.t.Helper()
	var cm corev1.ConfigMap
	if err := env.Client.Get(context.Background(), c.key(kubestore.ContextConfigMapName(name)), &cm); err != nil {
		c.t.Fatal(err)
	}
	var d journal.Data
	if err := json.Unmarshal([]byte(cm.Data["journal"]), &d); err != nil {
		c.t.Fatal(err)
	}
	return d, cm.ResourceVersion
}

func step(name, typ string, phase v1alpha1.WorkflowStepPhase, id string) v1alpha1.WorkflowStepStatus {
	return v1alpha1.WorkflowStepStatus{StepStatus: v1alpha1.StepStatus{ID: id, Name: name, Type: typ, Phase: phase, Attempt: 1}}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

const manifests = `apiVersion: core.oam.dev/v1alpha1
kind: WorkflowRun
metadata:
  name: by-ref
spec:
  workflowRef: greet
---
apiVersion: core.oam.dev/v1alpha1
kind: Workflow
metadata:
  name: greet
steps:
- name: hello
  type: say
- name: bye
  type: say
---
# a comment-only document is skipped
---
apiVersion: core.oam.dev/v1beta1
kind: WorkflowStepDefinition
metadata:
  name: say
  annotations:
    definition.oam.dev/description: Say something
spec:
  schematic:
    cue:
      template: |
        import "vela/op"
        msg: op.#Message & {message: "hi"}
---
apiVersion: core.oam.dev/v1alpha1
kind: WorkflowRun
metadata:
  name: inline
spec:
  workflowSpec:
    steps:
    - name: only
      type: say
`

func TestCLIRunGetList(t *testing.T) {
	c := newCluster(t)
	f := writeFile(t, "runs.yaml", manifests)
	out := c.ok("run", "-f", f)
	want := "workflowstepdefinition.core.oam.dev/say created\n" +
		"workflow.core.oam.dev/greet created\n" +
		"workflowrun.core.oam.dev/by-ref created\n" +
		"workflowrun.core.oam.dev/inline created\n"
	if diff := cmp.Diff(want, out); diff != "" {
		t.Errorf("run -f: definitions first, then workflows, then runs (-want +got):\n%s", diff)
	}
	if out := c.ok("run", "-f", f); strings.Count(out, " unchanged\n") != 4 {
		t.Errorf("applying again:\n%s", out)
	}
	if err := os.WriteFile(f, []byte(strings.Replace(manifests, "- name: bye", "- name: goodbye", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := c.ok("run", "-f", f); !strings.Contains(out, "workflow.core.oam.dev/greet configured\n") {
		t.Errorf("applying a changed workflow:\n%s", out)
	}

	// get: the steps come from the Workflow, merged with the status.
	run := c.get("by-ref")
	run.Status = v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunExecuting, Steps: []v1alpha1.WorkflowStepStatus{
		step("hello", "say", v1alpha1.WorkflowStepPhaseFailed, "hello-1"),
	}}
	run.Status.Steps[0].Reason, run.Status.Steps[0].Message = "Timeout", "took too long"
	if err := env.Client.Status().Update(context.Background(), run); err != nil {
		t.Fatal(err)
	}
	out = c.ok("get", "by-ref")
	for _, re := range []string{
		`^workflowrun ` + c.ns + `/by-ref: executing\n`,
		`\nNAME +TYPE +PHASE +STARTED +DURATION +DEPENDS ON +REASON +MESSAGE\n`,
		`\nhello +say +failed +- +- +- +Timeout +took too long\n`,
		`\ngoodbye +say +pending +- +- +- +- +-\n`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("get: no match for %q in\n%s", re, out)
		}
	}
	var got v1alpha1.WorkflowRun
	if err := json.Unmarshal([]byte(c.ok("get", "by-ref", "-o", "json")), &got); err != nil {
		t.Fatal(err)
	}
	if got.Kind != "WorkflowRun" || got.Spec.WorkflowRef != "greet" || got.Status.Steps[0].Reason != "Timeout" || got.ManagedFields != nil {
		t.Errorf("get -o json = %+v", got)
	}

	out = c.ok("list")
	for _, re := range []string{`^NAME +PHASE +STEPS +AGE\n`, `\nby-ref +executing +1/2 +\d+s\n`, `\ninline +- +0/1 +\d+s\n`} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("list: no match for %q in\n%s", re, out)
		}
	}
	if out := c.ok("list", "-A"); !regexp.MustCompile(`\n` + c.ns + ` +inline +`).MatchString(out) {
		t.Errorf("list -A:\n%s", out)
	}
	var labelled v1alpha1.WorkflowRun
	if err := env.Client.Get(context.Background(), c.key("by-ref"), &labelled); err != nil {
		t.Fatal(err)
	}
	labelled.Labels = map[string]string{"stepflow.dev/category": "ROLLBACK"}
	if err := env.Client.Update(context.Background(), &labelled); err != nil {
		t.Fatal(err)
	}
	if out := c.ok("list", "-l", "stepflow.dev/category=ROLLBACK"); !strings.Contains(out, "\nby-ref ") || strings.Contains(out, "inline") {
		t.Errorf("list -l stepflow.dev/category=ROLLBACK:\n%s", out)
	}
	c.fails(`--selector "a==b==c"`, "list", "-l", "a==b==c")
	var list v1alpha1.WorkflowRunList
	if err := json.Unmarshal([]byte(c.ok("list", "-o", "json")), &list); err != nil || len(list.Items) != 2 {
		t.Errorf("list -o json: %v, %d items", err, len(list.Items))
	}

	c.fails("workflowrun "+c.ns+"/nope not found", "get", "nope")
	c.fails(`unknown output format "table"`, "get", "by-ref", "-o", "table")
	bad := writeFile(t, "bad.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n")
	c.fails(`v1 ConfigMap "x" is not a WorkflowRun, Workflow, WorkflowStepDefinition`, "run", "-f", bad)
	typo := writeFile(t, "typo.yaml", "apiVersion: core.oam.dev/v1alpha1\nkind: WorkflowRun\nmetadata:\n  name: x\nspec:\n  workflowRefs: greet\n")
	c.fails(`unknown field "spec.workflowRefs"`, "run", "-f", typo)
	other := writeFile(t, "other.yaml", "apiVersion: core.oam.dev/v1alpha1\nkind: WorkflowRun\nmetadata:\n  name: x\n  namespace: elsewhere\n")
	c.fails(`is in namespace "elsewhere", not "`+c.ns+`"`, "run", "-f", other)
	c.fails("--watch follows one WorkflowRun", "run", "-f", f, "--watch")
}

func TestCLIRunWatch(t *testing.T) {
	for _, tc := range []struct {
		name  string
		end   v1alpha1.WorkflowRunStatus
		code  int
		lines []string
		err   string
	}{{
		name: "succeeded",
		end: v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunSucceeded, Finished: true, Steps: []v1alpha1.WorkflowStepStatus{
			step("deploy", "say", v1alpha1.WorkflowStepPhaseSucceeded, "deploy-1"),
		}},
		lines: []string{`deploy +running`, `deploy +succeeded`, `workflowrun \S+/watched succeeded`},
	}, {
		name: "failed",
		end: v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunFailed, Finished: true, Message: "step deploy failed",
			Steps: []v1alpha1.WorkflowStepStatus{{StepStatus: v1alpha1.StepStatus{ID: "deploy-1", Name: "deploy",
				Phase: v1alpha1.WorkflowStepPhaseFailed, Reason: "Execute", Message: "boom"}}}},
		code:  1,
		lines: []string{`deploy +running`, `deploy +failed +Execute: boom`},
		err:   "/watched failed: step deploy failed",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t)
			f := writeFile(t, "run.yaml", `apiVersion: core.oam.dev/v1alpha1
kind: WorkflowRun
metadata:
  name: watched
spec:
  workflowSpec:
    steps:
    - name: deploy
      type: say
`)
			// The controller's part: the step runs, then the run ends.
			done := make(chan error, 1)
			go func() {
				done <- func() error {
					ctx := context.Background()
					var run v1alpha1.WorkflowRun
					for env.Client.Get(ctx, c.key("watched"), &run) != nil {
						time.Sleep(20 * time.Millisecond)
					}
					run.Status = v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunExecuting, Steps: []v1alpha1.WorkflowStepStatus{
						step("deploy", "say", v1alpha1.WorkflowStepPhaseRunning, "deploy-1"),
					}}
					if err := env.Client.Status().Update(ctx, &run); err != nil {
						return err
					}
					time.Sleep(200 * time.Millisecond)
					run.Status = tc.end
					return env.Client.Status().Update(ctx, &run)
				}()
			}()
			code, out, errs := c.run("run", "-f", f, "--watch")
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if code != tc.code || !strings.Contains(errs, tc.err) {
				t.Errorf("exit %d, stderr %q; want exit %d and an error containing %q", code, errs, tc.code, tc.err)
			}
			for _, l := range tc.lines {
				if !regexp.MustCompile(`(?m)^(\d\d:\d\d:\d\d  )?` + l + `$`).MatchString(out) {
					t.Errorf("no line matching %q in\n%s", l, out)
				}
			}
		})
	}
}

func TestCLISuspendResumeTerminate(t *testing.T) {
	c := newCluster(t)
	c.createRun("r", v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunExecuting, Steps: []v1alpha1.WorkflowStepStatus{
		step("a", "say", v1alpha1.WorkflowStepPhaseRunning, "a-1"),
		step("b", "say", v1alpha1.WorkflowStepPhaseRunning, "b-1"),
	}}, "a:say", "b:say")
	phases := func() (bool, string) {
		run := c.get("r")
		var ps []string
		for _, s := range run.Status.Steps {
			ps = append(ps, string(s.Phase))
		}
		return run.Status.Suspend, strings.Join(ps, ",")
	}
	for _, tc := range []struct {
		args    []string
		out     string
		suspend bool
		phases  string
	}{
		{[]string{"suspend", "r"}, "workflowrun NS/r suspended", true, "running,running"},
		{[]string{"suspend", "r", "--step", "a"}, "workflowrun NS/r: step a suspended", true, "suspending,running"},
		{[]string{"resume", "r", "--step", "a"}, "workflowrun NS/r: step a resumed", true, "running,running"},
		{[]string{"resume", "r"}, "workflowrun NS/r resumed", false, "running,running"},
		{[]string{"terminate", "r", "--step", "b"}, "workflowrun NS/r: step b terminated", false, "running,failed"},
	} {
		out := c.ok(tc.args...)
		if want := strings.ReplaceAll(tc.out, "NS", c.ns) + "\n"; out != want {
			t.Errorf("%v: printed %q, want %q", tc.args, out, want)
		}
		if suspend, ps := phases(); suspend != tc.suspend || ps != tc.phases {
			t.Errorf("after %v: suspend %v, phases %s; want %v, %s", tc.args, suspend, ps, tc.suspend, tc.phases)
		}
	}
	c.fails(`no such step: step "b" is not running`, "suspend", "r", "--step", "b")
	c.ok("terminate", "r")
	run := c.get("r")
	if run.Status.Phase != v1alpha1.WorkflowRunTerminated || !run.Status.Finished || run.Status.Steps[0].Reason != "Terminate" {
		t.Errorf("after terminate: %+v", run.Status)
	}
	for _, op := range []string{"suspend", "resume", "terminate"} {
		c.fails("cannot "+op+" workflowrun "+c.ns+"/r: the run is finished (terminated)", op, "r")
	}
	c.fails("workflowrun "+c.ns+"/gone not found", "suspend", "gone")
}

func TestCLIContextSet(t *testing.T) {
	c := newCluster(t)
	c.createRun("r", v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunExecuting, Steps: []v1alpha1.WorkflowStepStatus{
		step("a", "say", v1alpha1.WorkflowStepPhaseSuspending, "a-1"),
	}}, "a:say")
	out := c.ok("context", "set", "r", "n=42", "s=hello", `o={"x": [true]}`, `q="7"`)
	if strings.Count(out, "set\n") != 4 {
		t.Errorf("printed %q", out)
	}
	d, rv := c.journalOf("r")
	want := map[string]any{"n": 42.0, "s": "hello", "o": map[string]any{"x": []any{true}}, "q": "7"}
	if diff := cmp.Diff(want, d.Vars); diff != "" {
		t.Errorf("journal vars (-want +got):\n%s", diff)
	}
	run := c.get("r")
	if got := run.Annotations[kubestore.VersionAnnotation]; got != rv {
		t.Errorf("annotation %s = %q, want the ConfigMap's resourceVersion %q", kubestore.VersionAnnotation, got, rv)
	}
	if run.Status.ContextBackend == nil || run.Status.ContextBackend.Name != kubestore.ContextConfigMapName("r") {
		t.Errorf("status.contextBackend = %+v", run.Status.ContextBackend)
	}
	if run.Status.Steps[0].Phase != v1alpha1.WorkflowStepPhaseSuspending {
		t.Errorf("setting a variable changed the steps: %+v", run.Status.Steps)
	}

	// A second set keeps the first one's variables.
	c.ok("context", "set", "r", "n=43")
	d, rv = c.journalOf("r")
	if d.Vars["n"] != 43.0 || d.Vars["s"] != "hello" {
		t.Errorf("vars after a second set: %v", d.Vars)
	}
	if got := c.get("r").Annotations[kubestore.VersionAnnotation]; got != rv {
		t.Errorf("annotation %q, ConfigMap at %q", got, rv)
	}

	c.fails("want KEY=VALUE", "context", "set", "r", "novalue")
	c.fails("want KEY=VALUE", "context", "set", "r", "=1")
	c.createRun("done", v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunSucceeded, Finished: true})
	c.fails("cannot set context variables of workflowrun "+c.ns+"/done: the run is finished (succeeded)", "context", "set", "done", "a=1")
}

func TestCLIRetryRestart(t *testing.T) {
	c := newCluster(t)
	run := c.createRun("r", v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunFailed, Finished: true, Message: "step b failed",
		Steps: []v1alpha1.WorkflowStepStatus{
			step("a", "say", v1alpha1.WorkflowStepPhaseSucceeded, "a-1"),
			step("b", "say", v1alpha1.WorkflowStepPhaseFailed, "b-1"),
			step("c", "say", v1alpha1.WorkflowStepPhaseSkipped, "c-1"),
		}}, "a:say", "b:say", "c:say")
	c.saveJournal(run, journal.Data{
		Entries: map[string]journal.Entry{"a-1/http": {Message: "a"}, "b-1/http": {Message: "b"}},
		Vars:    map[string]any{"v": "kept until restart", "w": "set after b ran"},
		// What b's attempt saw: a retry from b restores it.
		Snapshots: map[string]map[string]any{"b-1": {"v": "kept until restart"}},
	})

	c.fails(`cannot retry workflowrun `+c.ns+`/r: no such step: "nope"`, "retry", "r", "--from-step", "nope")
	c.ok("retry", "r", "--from-step", "b")
	run = c.get("r")
	var got []string
	for _, s := range run.Status.Steps {
		got = append(got, s.Name+":"+string(s.Phase))
	}
	if diff := cmp.Diff([]string{"a:succeeded", "b:pending", "c:pending"}, got); diff != "" || run.Status.Finished || run.Status.Steps[1].Attempt != 2 {
		t.Errorf("after retry (finished %v, b attempt %d): (-want +got):\n%s", run.Status.Finished, run.Status.Steps[1].Attempt, diff)
	}
	// The journal is not touched: the controller drops the abandoned
	// attempt's entries once it reads the saved status (a lost status
	// write must not cost the old attempt its records).
	d, rv := c.journalOf("r")
	if len(d.Entries) != 2 || d.Vars["v"] == nil || d.Vars["w"] != nil {
		t.Errorf("journal after retry: %+v", d)
	}

	c.ok("restart", "r")
	run = c.get("r")
	if run.Status.RestartCount != 1 || len(run.Status.Steps) != 0 || run.Status.Finished || run.Status.ContextBackend == nil {
		t.Errorf("after restart: %+v", run.Status)
	}
	if d2, rv2 := c.journalOf("r"); rv2 != rv || len(d2.Entries) != 2 {
		t.Errorf("journal written by restart (%s, was %s): %+v", rv2, rv, d2)
	}
	// A variable set after the restart, before the controller's next tick,
	// does not bring back those set before it.
	c.ok("context", "set", "r", "w=1")
	d, rv = c.journalOf("r")
	if len(d.Vars) != 1 || d.Vars["w"] != 1.0 || d.Restarts != 1 {
		t.Errorf("journal after restart and context set: %+v", d)
	}
	if run = c.get("r"); run.Annotations[kubestore.VersionAnnotation] != rv {
		t.Errorf("annotation %q, ConfigMap at %q", run.Annotations[kubestore.VersionAnnotation], rv)
	}
}

func TestCLILogsAndDebug(t *testing.T) {
	c := newCluster(t)
	run := c.createRun("r", v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunExecuting, Steps: []v1alpha1.WorkflowStepStatus{
		step("b", "say", v1alpha1.WorkflowStepPhaseSucceeded, "b-1"),
		step("a", "say", v1alpha1.WorkflowStepPhaseRunning, "a-1"),
	}}, "b:say", "a:say", "quiet:say")
	c.saveJournal(run, journal.Data{Logs: map[string][]string{"a": {"a one", "a two"}, "b": {"b one"}}})

	if out := c.ok("logs", "r"); out != "[b] b one\n[a] a one\n[a] a two\n" {
		t.Errorf("logs: %q", out)
	}
	if out := c.ok("logs", "r", "--step", "a"); out != "a one\na two\n" {
		t.Errorf("logs --step a: %q", out)
	}
	if out := c.ok("logs", "r", "--step", "quiet"); out != "" {
		t.Errorf("logs of a step without lines: %q", out)
	}
	c.fails(`workflowrun `+c.ns+`/r has no step "nope"`, "logs", "r", "--step", "nope")

	c.fails(`annotate it with workflowrun.oam.dev/debug: "true"`, "debug", "r", "--step", "a")
	run = c.get("r")
	metav1.SetMetaDataAnnotation(&run.ObjectMeta, "workflowrun.oam.dev/debug", "true")
	if err := env.Client.Update(context.Background(), run); err != nil {
		t.Fatal(err)
	}
	c.fails(`no value kept for step "a"`, "debug", "r", "--step", "a")
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "workflow-r-debug", Namespace: c.ns},
		Data: map[string]string{"a": `{"id": "a-1", "value": {"msg": {"message": "hi"}}}`}}
	if err := env.Client.Create(context.Background(), cm); err != nil {
		t.Fatal(err)
	}
	var value any
	if err := json.Unmarshal([]byte(c.ok("debug", "r", "--step", "a")), &value); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]any{"msg": map[string]any{"message": "hi"}}, value); diff != "" {
		t.Errorf("debug value (-want +got):\n%s", diff)
	}
	var dv cli.DebugValue
	if err := json.Unmarshal([]byte(c.ok("debug", "r", "--step", "a", "-o", "json")), &dv); err != nil || dv.ID != "a-1" || dv.Step != "a" {
		t.Errorf("debug -o json: %+v, %v", dv, err)
	}
}

const sayCUE = `import "vela/op"

"say": {
	type:        "workflow-step"
	description: "Say hello"
}
template: {
	msg: op.#Message & {message: parameter.who}
	parameter: who: string
}
`

func TestCLIDefs(t *testing.T) {
	c := newCluster(t)
	cueFile := writeFile(t, "say.cue", sayCUE)
	yamlFile := writeFile(t, "defs.yaml", `apiVersion: core.oam.dev/v1beta1
kind: WorkflowStepDefinition
metadata:
  name: noop
spec:
  schematic:
    cue:
      template: |
        x: 1
`)
	out := c.ok("def", "apply", "-f", cueFile, "-f", yamlFile)
	if want := "workflowstepdefinition.core.oam.dev/say created\nworkflowstepdefinition.core.oam.dev/noop created\n"; out != want {
		t.Errorf("def apply printed %q, want %q", out, want)
	}
	if out := c.ok("def", "apply", "-f", cueFile); out != "workflowstepdefinition.core.oam.dev/say unchanged\n" {
		t.Errorf("def apply again printed %q", out)
	}
	var def v1beta1.WorkflowStepDefinition
	if err := env.Client.Get(context.Background(), c.key("say"), &def); err != nil {
		t.Fatal(err)
	}
	if def.Annotations["definition.oam.dev/description"] != "Say hello" || !strings.Contains(def.Spec.Schematic.CUE.Template, "op.#Message") {
		t.Errorf("applied definition: %+v", def)
	}
	if out := c.ok("def", "get", "say"); out != def.Spec.Schematic.CUE.Template {
		t.Errorf("def get printed %q, want the template %q", out, def.Spec.Schematic.CUE.Template)
	}
	if out := c.ok("def", "get", "say", "-o", "yaml"); !strings.Contains(out, "kind: WorkflowStepDefinition\n") {
		t.Errorf("def get -o yaml:\n%s", out)
	}
	c.fails("workflowstepdefinition "+c.ns+"/nope not found", "def", "get", "nope")

	meta.SetStatusCondition(&def.Status.Conditions, metav1.Condition{Type: "Ready", Status: metav1.ConditionTrue,
		Reason: "Compiled", ObservedGeneration: def.Generation})
	if err := env.Client.Status().Update(context.Background(), &def); err != nil {
		t.Fatal(err)
	}
	out = c.ok("def", "list")
	for _, re := range []string{`^NAME +DESCRIPTION +READY +FROM\n`, `\nnoop +- +Unknown +` + c.ns + `\n`, `\nsay +Say hello +True +` + c.ns + `\n`} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("def list: no match for %q in\n%s", re, out)
		}
	}
}

func TestCLIDefVet(t *testing.T) {
	noKubeconfig(t)
	good := writeFile(t, "say.cue", sayCUE)
	broken := writeFile(t, "broken.cue", "import \"vela/op\"\n\nx: op.#Apply & {value: 1}\n")
	code, out, errs := stepflow(t, "def", "vet", good, "../../definitions/request.cue")
	if code != 0 || out != "ok say\nok request\n" {
		t.Errorf("vet of good definitions: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	code, out, errs = stepflow(t, "def", "vet", good, broken)
	if code == 0 || out != "ok say\n" || !strings.Contains(errs, `definition "broken"`) || !strings.Contains(errs, "broken.cue:3:") ||
		!strings.Contains(errs, "1 of 2 definitions have errors") {
		t.Errorf("vet with a broken definition: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if code, _, errs := stepflow(t, "def", "vet", "/no/such.cue"); code == 0 || !strings.Contains(errs, "no such file") {
		t.Errorf("vet of a missing file: exit %d, stderr %q", code, errs)
	}
	// A template written for an older CUE passes, with each rewrite as a
	// warning at its position.
	old := writeFile(t, "old.cue", "import (\n\t\"vela/op\"\n\t\"strings\"\n)\n\nparameter: {args: [...string]}\nall: [\"a\"] + parameter.args\nout: op.#Log & {data: \"hi\"}\n")
	code, out, errs = stepflow(t, "def", "vet", old)
	if code != 0 || out != "ok old\n" || !strings.Contains(errs, "warning: old: ") || !strings.Contains(errs, `unused import "strings" removed`) ||
		!strings.Contains(errs, "list.Concat") {
		t.Errorf("vet of an older CUE template: exit %d, stdout %q, stderr %q", code, out, errs)
	}
}

func TestCLIWithoutCluster(t *testing.T) {
	noKubeconfig(t)
	for _, args := range [][]string{{"get", "r"}, {"list"}, {"suspend", "r"}, {"def", "list"}} {
		if code, _, errs := stepflow(t, args...); code == 0 || !strings.Contains(errs, "no Kubernetes cluster configured") {
			t.Errorf("%v: exit %d, stderr %q", args, code, errs)
		}
	}
}

func TestCLICompletion(t *testing.T) {
	code, out, errs := stepflow(t, "completion", "bash")
	if code != 0 || !strings.Contains(out, "bash completion") {
		t.Errorf("completion bash: exit %d, stderr %q, %d bytes", code, errs, len(out))
	}
}

// A component type written in CUE (type: "component") is applied as a
// ComponentDefinition, as are ComponentDefinition YAML documents; neither
// becomes a step type.
func TestCLIDefApplyComponentTypes(t *testing.T) {
	c := newCluster(t)
	out := c.ok("def", "apply", "-f", "../../definitions/components/k8s-microservice.cue")
	if want := "componentdefinition.core.oam.dev/k8s-microservice created\n"; out != want {
		t.Errorf("def apply printed %q, want %q", out, want)
	}
	var comp v1beta1.ComponentDefinition
	if err := env.Client.Get(context.Background(), c.key("k8s-microservice"), &comp); err != nil {
		t.Fatalf("the component type is not a ComponentDefinition: %v", err)
	}
	var step v1beta1.WorkflowStepDefinition
	if err := env.Client.Get(context.Background(), c.key("k8s-microservice"), &step); !apierrors.IsNotFound(err) {
		t.Errorf("the component type also became a step type (err %v)", err)
	}
	yamlFile := writeFile(t, "component.yaml", `apiVersion: core.oam.dev/v1beta1
kind: ComponentDefinition
metadata:
  name: raw
spec:
  schematic:
    cue:
      template: |
        output: parameter.object
        parameter: object: {...}
`)
	if out := c.ok("def", "apply", "-f", yamlFile); out != "componentdefinition.core.oam.dev/raw created\n" {
		t.Errorf("def apply printed %q", out)
	}
}
