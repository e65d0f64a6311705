package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
)

// --context picks a context of the kubeconfig, with its namespace; without
// it the current context is used.
func TestCLIContextFlag(t *testing.T) {
	c := newCluster(t)
	c.createRun("here", v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunExecuting}, "a:say")
	cfg, err := clientcmd.LoadFromFile(c.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	real := cfg.Contexts[cfg.CurrentContext].DeepCopy()
	real.Namespace = c.ns
	cfg.Contexts = map[string]*clientcmdapi.Context{
		"real":    real,
		"nowhere": {Cluster: "nowhere", AuthInfo: real.AuthInfo},
	}
	cfg.Clusters["nowhere"] = &clientcmdapi.Cluster{Server: "https://127.0.0.1:1"}
	cfg.CurrentContext = "nowhere"
	kc := writeFile(t, "kubeconfig", "")
	if err := clientcmd.WriteToFile(*cfg, kc); err != nil {
		t.Fatal(err)
	}

	code, out, errs := stepflow(t, "--kubeconfig", kc, "--context", "real", "list", "-o", "name")
	if code != 0 || out != "workflowrun.core.oam.dev/here\n" {
		t.Errorf("--context real list -o name: exit %d, stdout %q, stderr %q; want the run of the context's namespace", code, out, errs)
	}
	if code, _, errs := stepflow(t, "--kubeconfig", kc, "list"); code == 0 || !strings.Contains(errs, "127.0.0.1:1") {
		t.Errorf("list with the current context: exit %d, stderr %q; want it to reach 127.0.0.1:1 and fail", code, errs)
	}
	if code, _, errs := stepflow(t, "--kubeconfig", kc, "--context", "nope", "list"); code == 0 || !strings.Contains(errs, `"nope"`) {
		t.Errorf("--context nope: exit %d, stderr %q; want an error naming the context", code, errs)
	}
}

// list sorts newest first, filters by --status, prints -o name as kubectl
// does, and -o wide adds the duration and message.
func TestCLIListFiltersAndColumns(t *testing.T) {
	c := newCluster(t)
	start := metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	end := metav1.NewTime(start.Add(90 * time.Second))
	failed := step("deploy", "say", v1alpha1.WorkflowStepPhaseFailed, "deploy-1")
	c.createRun("a-old", v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunFailed, Finished: true, Message: "step deploy failed",
		StartTime: start, EndTime: end, Steps: []v1alpha1.WorkflowStepStatus{failed}}, "deploy:say", "check:say")
	// Creation times have a resolution of one second: a-old must be older
	// for "newest first" to differ from name order.
	time.Sleep(time.Until(c.get("a-old").CreationTimestamp.Add(1100 * time.Millisecond)))
	c.createRun("b-new", v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunExecuting}, "deploy:say")

	for _, tc := range []struct {
		args []string
		want string // a regexp of the whole output
	}{
		{[]string{"list"}, `NAME +PHASE +STEPS +AGE\nb-new +executing +0/1 +\d+s\na-old +failed +1/2 +\d+s\n`},
		{[]string{"list", "-o", "wide"}, `NAME +PHASE +STEPS +AGE +DURATION +MESSAGE\n` +
			`b-new +executing +0/1 +\d+s +- +-\na-old +failed +1/2 +\d+s +90s +step deploy failed\n`},
		{[]string{"list", "-o", "name"}, `workflowrun\.core\.oam\.dev/b-new\nworkflowrun\.core\.oam\.dev/a-old\n`},
		{[]string{"list", "--status", "failed"}, `NAME +PHASE +STEPS +AGE\na-old +failed +1/2 +\d+s\n`},
		{[]string{"list", "--status", "failed", "-o", "name"}, `workflowrun\.core\.oam\.dev/a-old\n`},
	} {
		out := c.ok(tc.args...)
		if !regexp.MustCompile(`^` + tc.want + `$`).MatchString(out) {
			t.Errorf("%s: got\n%s\nwant (regexp)\n%s", strings.Join(tc.args, " "), out, tc.want)
		}
	}
	out := c.ok("list", "-A", "--status", "failed", "-o", "wide")
	if !regexp.MustCompile(`^NAMESPACE +NAME +PHASE +STEPS +AGE +DURATION +MESSAGE\n`).MatchString(out) ||
		!regexp.MustCompile(`\n`+c.ns+` +a-old +failed +1/2 +\d+s +90s +step deploy failed\n`).MatchString(out) ||
		strings.Contains(out, "b-new") {
		t.Errorf("list -A --status failed -o wide:\n%s", out)
	}
	var list v1alpha1.WorkflowRunList
	if err := json.Unmarshal([]byte(c.ok("list", "--status", "failed", "-o", "json")), &list); err != nil ||
		len(list.Items) != 1 || list.Items[0].Name != "a-old" {
		t.Errorf("list --status failed -o json: %v, %+v", err, list.Items)
	}
	if code, out, errs := c.run("list", "--status", "succeeded"); code != 0 || out != "" ||
		errs != "No workflowruns found in namespace "+c.ns+" with status succeeded.\n" {
		t.Errorf("list --status succeeded: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	c.fails(`--status "done": want one of initializing, executing, suspending, succeeded, failed, terminated, skipped`, "list", "--status", "done")
}
