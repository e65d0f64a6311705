package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/cli"
	"github.com/stepflow-dev/stepflow/pkg/journal"
)

// stepflowIn runs stepflow with stdin as its standard input.
func stepflowIn(stdin string, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := cli.Main(cli.Deps{Stdout: &out, Stderr: &errb, Stdin: strings.NewReader(stdin), Ops: buildOps}, args)
	return code, out.String(), errb.String()
}

// commands walks the command tree as the tests run it.
func commands(t *testing.T, visit func(path []string, cmd *cobra.Command)) {
	t.Helper()
	var walk func(path []string, cmd *cobra.Command)
	walk = func(path []string, cmd *cobra.Command) {
		visit(path, cmd)
		for _, sub := range cmd.Commands() {
			walk(append(append([]string(nil), path...), sub.Name()), sub)
		}
	}
	walk(nil, cli.NewRoot(cli.Deps{Stdout: io.Discard, Stderr: io.Discard, Ops: buildOps}))
}

// Every parent command (def, context, step, cluster, ...) fails on a verb
// it does not have, naming the verbs it has, and prints its help alone.
func TestCLIUnknownVerbs(t *testing.T) {
	noKubeconfig(t)
	var parents [][]string
	commands(t, func(path []string, cmd *cobra.Command) {
		if len(path) > 0 && cmd.HasSubCommands() {
			parents = append(parents, path)
		}
	})
	for _, want := range []string{"def", "context", "step"} {
		found := false
		for _, p := range parents {
			found = found || strings.Join(p, " ") == want
		}
		if !found {
			t.Errorf("no parent command %q among %v", want, parents)
		}
	}
	for _, p := range parents {
		name := strings.Join(p, " ")
		t.Run(name, func(t *testing.T) {
			code, out, errs := stepflow(t, append(p, "nope")...)
			if code == 0 || !strings.Contains(errs, `unknown command "nope" for "stepflow `+name+`" (its commands: `) {
				t.Errorf("stepflow %s nope: exit %d, stdout %q, stderr %q; want a non-zero exit and an unknown-command error", name, code, out, errs)
			}
			code, out, errs = stepflow(t, p...)
			if code != 0 || !strings.Contains(out, "Available Commands:") {
				t.Errorf("stepflow %s: exit %d, stderr %q; want its help and exit 0", name, code, errs)
			}
		})
	}
	// The cases the issue names, and the suggestion of a near verb.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"def", "del"}, `unknown command "del" for "stepflow def" (its commands: apply, doc, get, init, list, render, test, vet)`},
		{[]string{"step", "nope"}, `unknown command "nope" for "stepflow step" (its commands: run)`},
		{[]string{"def", "lis"}, `did you mean "list"?`},
		{[]string{"nope"}, `unknown command "nope" for "stepflow"`},
	} {
		if code, _, errs := stepflow(t, tc.args...); code == 0 || !strings.Contains(errs, tc.want) {
			t.Errorf("stepflow %v: exit %d, stderr %q; want an error containing %q", tc.args, code, errs, tc.want)
		}
	}
}

// argsFor returns arguments cmd accepts: none, one or more placeholders.
func argsFor(cmd *cobra.Command) ([]string, bool) {
	for _, args := range [][]string{nil, {"x"}, {"x", "k=v"}, {"x", "y", "z"}} {
		if cmd.Args == nil || cmd.Args(cmd, args) == nil {
			return args, true
		}
	}
	return nil, false
}

// Every command refuses an -o it does not print, before it does anything;
// those that print data accept their formats.
func TestCLIOutputFlag(t *testing.T) {
	noKubeconfig(t)
	accepted := map[string][]string{
		"version": {"json", "yaml"}, "get": {"wide", "json", "yaml"}, "list": {"wide", "json", "yaml"},
		"logs": {"json", "yaml"}, "debug": {"json", "yaml"}, "context get": {"json", "yaml"},
		"def get": {"json", "yaml", "cue"}, "def list": {"wide", "json", "yaml"}, "def render": {"cue", "json", "yaml"},
		"def doc": {"markdown", "json"}, "step run": {"json", "yaml"}, "submit": {"name", "json", "yaml"},
	}
	n := 0
	commands(t, func(path []string, cmd *cobra.Command) {
		if len(path) == 0 || !cmd.Runnable() || cmd.HasSubCommands() {
			return
		}
		name := strings.Join(path, " ")
		args, ok := argsFor(cmd)
		if !ok {
			t.Errorf("stepflow %s: no placeholder arguments it accepts", name)
			return
		}
		n++
		t.Run(name, func(t *testing.T) {
			code, out, errs := stepflow(t, append(append(path, args...), "-o", "bogus")...)
			if code == 0 || !(strings.Contains(errs, `unknown output format "bogus"`) || strings.Contains(errs, "does not print -o bogus")) {
				t.Errorf("stepflow %s -o bogus: exit %d, stdout %q, stderr %q; want it refused", name, code, out, errs)
			}
			if _, prints := accepted[name]; !prints {
				if code, _, errs := stepflow(t, append(append(path, args...), "-o", "json")...); code == 0 || !strings.Contains(errs, "stepflow "+name+" does not print -o json") {
					t.Errorf("stepflow %s -o json: exit %d, stderr %q; want it refused", name, code, errs)
				}
			}
			for _, f := range accepted[name] {
				if _, _, errs := stepflow(t, append(append(path, args...), "-o", f)...); strings.Contains(errs, "output format") || strings.Contains(errs, "does not print") {
					t.Errorf("stepflow %s -o %s refused: %s", name, f, errs)
				}
			}
		})
	})
	if n < 20 {
		t.Errorf("walked %d commands; the tree has more", n)
	}
}

func TestCLIVersion(t *testing.T) {
	code, out, errs := stepflow(t, "version")
	if code != 0 || !strings.HasPrefix(out, "stepflow ") || !strings.Contains(out, "go: "+runtime.Version()+"\n") || !strings.Contains(out, "commit: ") {
		t.Errorf("version: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	_, out, _ = stepflow(t, "version", "-o", "json")
	var v cli.VersionInfo
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.GoVersion != runtime.Version() || v.Version == "" || v.Commit == "" {
		t.Errorf("version -o json: %q: %+v, %v", out, v, err)
	}
	if _, out, _ = stepflow(t, "version", "-o", "yaml"); !strings.Contains(out, "goVersion: "+runtime.Version()) {
		t.Errorf("version -o yaml: %q", out)
	}
}

func TestCLIDelete(t *testing.T) {
	c := newCluster(t)
	done := v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunSucceeded, Finished: true}
	failed := v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunFailed, Finished: true}
	running := v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunExecuting}
	c.createRun("a", done, "s:say")
	c.createRun("b", running, "s:say")
	for name, st := range map[string]v1alpha1.WorkflowRunStatus{"c": failed, "d": running} {
		run := c.createRun(name, st, "s:say")
		run = c.get(run.Name)
		run.Labels = map[string]string{"app": "x"}
		if err := env.Client.Update(context.Background(), run); err != nil {
			t.Fatal(err)
		}
	}
	exists := func(name string) bool {
		err := env.Client.Get(context.Background(), c.key(name), &v1alpha1.WorkflowRun{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
		return err == nil
	}

	c.fails("name the runs to delete, or pass --all", "delete")
	c.fails("name the runs to delete, or pass --all", "delete", "--completed")
	c.fails("not both", "delete", "a", "--all")
	c.fails("workflowrun "+c.ns+"/b is not finished (executing): not deleted (--completed)", "delete", "b", "--completed")
	c.fails("workflowrun "+c.ns+"/nope not found", "delete", "nope")
	if !exists("b") {
		t.Fatal("delete b --completed deleted the unfinished run")
	}
	if out := c.ok("delete", "-l", "app=x", "--completed"); out != "workflowrun "+c.ns+"/c deleted\n" {
		t.Errorf("delete -l app=x --completed: %q", out)
	}
	if exists("c") || !exists("d") {
		t.Errorf("after delete -l app=x --completed: c exists %v, d exists %v; want only d", exists("c"), exists("d"))
	}
	if out := c.ok("delete", "a"); out != "workflowrun "+c.ns+"/a deleted\n" || exists("a") {
		t.Errorf("delete a: %q, a exists %v", out, exists("a"))
	}
	if out := c.ok("delete", "--all"); out != "workflowrun "+c.ns+"/b deleted\nworkflowrun "+c.ns+"/d deleted\n" {
		t.Errorf("delete --all: %q", out)
	}
	code, out, errs := c.run("delete", "--all")
	if code != 0 || out != "" || !strings.Contains(errs, "No workflowruns found in namespace "+c.ns) {
		t.Errorf("delete --all of nothing: exit %d, stdout %q, stderr %q", code, out, errs)
	}
}

func TestCLIWait(t *testing.T) {
	c := newCluster(t)
	c.createRun("ok", v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunSucceeded, Finished: true}, "s:say")
	c.createRun("bad", v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunFailed, Finished: true, Message: "step s failed",
		Steps: []v1alpha1.WorkflowStepStatus{{StepStatus: v1alpha1.StepStatus{ID: "s-1", Name: "s", Type: "say",
			Phase: v1alpha1.WorkflowStepPhaseFailed, Message: "boom"}}}}, "s:say")
	c.createRun("slow", v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunExecuting}, "s:say")

	if out := c.ok("wait", "ok"); out != "workflowrun "+c.ns+"/ok succeeded\n" {
		t.Errorf("wait ok: %q", out)
	}
	c.fails("workflowrun "+c.ns+"/bad finished failed, not succeeded: step s failed (step s failed: boom)", "wait", "bad")
	c.fails("workflowrun "+c.ns+"/bad finished failed", "wait", "ok", "bad")
	if out := c.ok("wait", "bad", "--for", "finished"); out != "workflowrun "+c.ns+"/bad failed\n" {
		t.Errorf("wait bad --for finished: %q", out)
	}
	c.fails("workflowrun "+c.ns+"/nope not found", "wait", "nope")
	c.fails(`--for "done": want succeeded or finished`, "wait", "ok", "--for", "done")
	// wait watches: one LIST, then a WATCH, for as long as it waits.
	lists, watches := workflowRunRequests(t)
	c.fails("timed out after 2s waiting for workflowrun "+c.ns+"/slow to be succeeded (it is executing)", "wait", "slow", "--timeout", "2s")
	// The server counts a WATCH when it has ended, which can be just after
	// wait returns.
	l, w := workflowRunRequests(t)
	for deadline := time.Now().Add(10 * time.Second); w == watches && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		l, w = workflowRunRequests(t)
	}
	if l-lists != 1 || w-watches != 1 {
		t.Errorf("wait for 2s made %d LIST and %d WATCH requests of workflowruns; want 1 and 1", l-lists, w-watches)
	}

	// A run that finishes while wait watches it.
	type result struct {
		code      int
		out, errs string
	}
	res := make(chan result, 1)
	go func() {
		code, out, errs := c.run("wait", "slow", "--timeout", "60s")
		res <- result{code, out, errs}
	}()
	run := c.get("slow")
	run.Status.Phase, run.Status.Finished = v1alpha1.WorkflowRunSucceeded, true
	if err := env.Client.Status().Update(context.Background(), run); err != nil {
		t.Fatal(err)
	}
	if r := <-res; r.code != 0 || r.out != "workflowrun "+c.ns+"/slow succeeded\n" {
		t.Errorf("wait slow while it finishes: exit %d, stdout %q, stderr %q", r.code, r.out, r.errs)
	}
}

func TestCLIContextGet(t *testing.T) {
	c := newCluster(t)
	run := c.createRun("r", v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunExecuting}, "s:say")
	run = c.get(run.Name)
	run.Spec.Context = &k8sruntime.RawExtension{Raw: []byte(`{"a": 1, "b": "from spec"}`)}
	if err := env.Client.Update(context.Background(), run); err != nil {
		t.Fatal(err)
	}
	c.createRun("empty", v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunExecuting}, "s:say")
	// Before any variable is set, the context is spec.context.
	if out := c.ok("context", "get", "r"); out != "a=1\nb=\"from spec\"\n" {
		t.Errorf("context get before set: %q", out)
	}
	c.ok("context", "set", "r", "b=set", `c={"x": [true]}`)

	if out := c.ok("context", "get", "r"); out != "a=1\nb=\"set\"\nc={\"x\":[true]}\n" {
		t.Errorf("context get: %q", out)
	}
	if out := c.ok("context", "get", "r", "b"); out != "\"set\"\n" {
		t.Errorf("context get r b: %q", out)
	}
	if out := c.ok("context", "get", "r", "c", "-o", "yaml"); out != "x:\n- true\n" {
		t.Errorf("context get r c -o yaml: %q", out)
	}
	var all map[string]any
	if err := json.Unmarshal([]byte(c.ok("context", "get", "r", "-o", "json")), &all); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]any{"a": 1.0, "b": "set", "c": map[string]any{"x": []any{true}}}, all); diff != "" {
		t.Errorf("context get -o json (-want +got):\n%s", diff)
	}
	c.fails(`workflowrun `+c.ns+`/r has no context variable "nope" (it has: a, b, c)`, "context", "get", "r", "nope")
	c.fails("workflowrun "+c.ns+"/gone not found", "context", "get", "gone")
	code, out, errs := c.run("context", "get", "empty")
	if code != 0 || out != "" || !strings.Contains(errs, "workflowrun "+c.ns+"/empty has no context variables") {
		t.Errorf("context get of a run without variables: exit %d, stdout %q, stderr %q", code, out, errs)
	}
}

func TestCLILogsWithoutLines(t *testing.T) {
	c := newCluster(t)
	c.createRun("none", v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunExecuting}, "a:say")
	some := c.createRun("some", v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunExecuting, Steps: []v1alpha1.WorkflowStepStatus{
		step("a", "say", v1alpha1.WorkflowStepPhaseRunning, "a-1"),
		step("quiet", "say", v1alpha1.WorkflowStepPhaseRunning, "quiet-1"),
	}}, "a:say", "quiet:say")
	c.saveJournal(some, journal.Data{Logs: map[string][]string{"a": {"one"}}})
	for _, tc := range []struct {
		args []string
		out  string
		errs string
	}{
		{[]string{"logs", "none"}, "", "No log lines: workflowrun " + c.ns + "/none has written none yet (a step writes them with op.#Log)."},
		{[]string{"logs", "some", "--step", "quiet"}, "", "No log lines: step quiet of workflowrun " + c.ns + "/some has written none yet"},
		{[]string{"logs", "some", "--step", "a"}, "one\n", ""},
		{[]string{"logs", "some"}, "[a] one\n", ""},
	} {
		code, out, errs := c.run(tc.args...)
		if code != 0 || out != tc.out || !strings.Contains(errs, tc.errs) || (tc.errs == "" && errs != "") {
			t.Errorf("stepflow %v: exit %d, stdout %q, stderr %q; want stdout %q and stderr with %q", tc.args, code, out, errs, tc.out, tc.errs)
		}
	}
}

const sayYAML = `apiVersion: core.oam.dev/v1beta1
kind: WorkflowStepDefinition
metadata:
  name: say
spec:
  schematic:
    cue:
      template: |
        import "vela/op"
        msg: op.#Message & {message: "hi"}
`

// def vet - reads a CUE or YAML definition from standard input.
func TestCLIDefVetStdin(t *testing.T) {
	noKubeconfig(t)
	for _, tc := range []struct {
		name, stdin string
		code        int
		out, errs   string
	}{
		{"cue", sayCUE, 0, "ok say\n", ""},
		{"yaml", sayYAML, 0, "ok say\n", ""},
		{"cue with a typo", typoDef, 1, "", "<stdin>:11:28"},
		{"empty", "\n", 1, "", "standard input is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := stepflowIn(tc.stdin, "def", "vet", "-")
			if code != tc.code || out != tc.out || !strings.Contains(errs, tc.errs) {
				t.Errorf("def vet -: exit %d, stdout %q, stderr %q; want exit %d, stdout %q, stderr with %q", code, out, errs, tc.code, tc.out, tc.errs)
			}
		})
	}
}

// workflowRunRequests are the LIST and WATCH requests of workflowruns the
// API server has served, from its apiserver_request_total metric.
func workflowRunRequests(t *testing.T) (lists, watches int) {
	t.Helper()
	hc, err := rest.HTTPClientFor(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Get(strings.TrimSuffix(env.Config.Host, "/") + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, "apiserver_request_total{") || !strings.Contains(line, `resource="workflowruns"`) {
			continue
		}
		fields := strings.Fields(line)
		n, err := strconv.Atoi(fields[len(fields)-1])
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		switch {
		case strings.Contains(line, `verb="LIST"`):
			lists += n
		case strings.Contains(line, `verb="WATCH"`):
			watches += n
		}
	}
	return lists, watches
}
