package main

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
)

// complete runs cobra's hidden __complete command as the shell scripts do,
// with the cluster's flags, and returns the choices offered and the
// directive (":4" is ShellCompDirectiveNoFileComp).
func (c *cluster) complete(args ...string) ([]string, string) {
	c.t.Helper()
	return completeWith(c.t, append([]string{"--kubeconfig", c.kubeconfig, "-n", c.ns}, args...)...)
}

func completeWith(t *testing.T, args ...string) ([]string, string) {
	t.Helper()
	code, out, errs := stepflow(t, append([]string{"__complete"}, args...)...)
	if code != 0 {
		t.Fatalf("__complete %s: exit %d, stderr %q", strings.Join(args, " "), code, errs)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	// cobra offers a required flag (debug's --step) beside the arguments.
	var choices []string
	for _, l := range lines[:len(lines)-1] {
		if !strings.HasPrefix(l, "-") {
			choices = append(choices, l)
		}
	}
	return choices, lines[len(lines)-1]
}

const noFiles = ":4"

// Run, step, definition and workflow names are completed from the
// cluster the command would act on.
func TestCLIDynamicCompletion(t *testing.T) {
	c := newCluster(t)
	c.createRun("alpha", v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunSucceeded, Steps: []v1alpha1.WorkflowStepStatus{
		step("build", "say", v1alpha1.WorkflowStepPhaseSucceeded, "build-1"),
		step("deploy", "say", v1alpha1.WorkflowStepPhaseFailed, "deploy-1"),
	}}, "build:say", "deploy:say", "verify:say")
	c.createRun("beta", v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunExecuting}, "a:say")
	c.createRun("bravo", v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunSuspending}, "a:say")
	all := []string{"alpha\tsucceeded", "beta\texecuting", "bravo\tsuspending"}

	t.Run("runs", func(t *testing.T) {
		// Every command whose usage line takes RUN.
		var verbs [][]string
		commands(t, func(path []string, cmd *cobra.Command) {
			if w := strings.Fields(cmd.Use); len(w) > 1 && (w[1] == "RUN" || w[1] == "RUN...") {
				verbs = append(verbs, path)
				if cmd.ValidArgsFunction == nil {
					t.Errorf("stepflow %s takes RUN but completes nothing", strings.Join(path, " "))
				}
			}
		})
		want := []string{"context get", "context set", "debug", "delete", "describe", "get", "logs",
			"restart", "resume", "retry", "suspend", "terminate", "wait"}
		var got []string
		for _, v := range verbs {
			got = append(got, strings.Join(v, " "))
		}
		for _, w := range want {
			if !strings.Contains(strings.Join(got, ","), w) {
				t.Errorf("stepflow %s: not among the commands that take RUN (%v)", w, got)
			}
		}
		for _, v := range verbs {
			name := strings.Join(v, " ")
			choices, directive := c.complete(append(v, "")...)
			if diff := cmp.Diff(all, choices); diff != "" || directive != noFiles {
				t.Errorf("%s <TAB>: directive %s, choices (-want +got):\n%s", name, directive, diff)
			}
			choices, _ = c.complete(append(v, "b")...)
			if diff := cmp.Diff(all[1:], choices); diff != "" {
				t.Errorf("%s b<TAB>: choices (-want +got):\n%s", name, diff)
			}
			// A second argument: another run where many are taken, else
			// nothing (context get's KEY and set's KEY=VALUE are not runs).
			var want []string
			if name == "delete" || name == "wait" {
				want = all[1:]
			}
			choices, directive = c.complete(append(v, "alpha", "")...)
			if diff := cmp.Diff(want, choices, emptyIsNil); diff != "" || directive != noFiles {
				t.Errorf("%s alpha <TAB>: directive %s, choices (-want +got):\n%s", name, directive, diff)
			}
		}
	})

	t.Run("steps", func(t *testing.T) {
		steps := []string{"build\tsucceeded", "deploy\tfailed", "verify\tpending"}
		for _, args := range [][]string{
			{"logs", "alpha", "--step", ""},
			{"debug", "alpha", "--step", ""},
			{"suspend", "alpha", "--step", ""},
			{"resume", "alpha", "--step", ""},
			{"terminate", "alpha", "--step", ""},
			{"retry", "alpha", "--from-step", ""},
		} {
			choices, directive := c.complete(args...)
			if diff := cmp.Diff(steps, choices); diff != "" || directive != noFiles {
				t.Errorf("%v: directive %s, choices (-want +got):\n%s", args, directive, diff)
			}
		}
		if choices, _ := c.complete("retry", "alpha", "--from-step", "de"); !cmp.Equal(choices, steps[1:2]) {
			t.Errorf("retry alpha --from-step de<TAB>: %q", choices)
		}
		// Without a run, or of a run that does not exist: nothing.
		for _, args := range [][]string{{"logs", "--step", ""}, {"logs", "gone", "--step", ""}} {
			if choices, directive := c.complete(args...); len(choices) != 0 || directive != noFiles {
				t.Errorf("%v: %q, directive %s; want nothing", args, choices, directive)
			}
		}
	})

	t.Run("definitions and workflows", func(t *testing.T) {
		sys := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "cli-sys-"}}
		if err := env.Client.Create(context.Background(), sys); err != nil {
			t.Fatal(err)
		}
		def := func(name, desc string) string {
			return `apiVersion: core.oam.dev/v1beta1
kind: WorkflowStepDefinition
metadata:
  name: ` + name + `
  annotations:
    definition.oam.dev/description: ` + desc + `
spec:
  schematic:
    cue:
      template: |
        x: 1
---
`
		}
		c.ok("run", "-f", writeFile(t, "ns.yaml", def("say", "the namespace's")+def("shout", "Shout")+`apiVersion: core.oam.dev/v1alpha1
kind: Workflow
metadata:
  name: greet
steps:
- name: hello
  type: say
`))
		c.ok("-n", sys.Name, "run", "-f", writeFile(t, "sys.yaml", def("say", "the system's")+def("apply", "Apply")))
		choices, directive := c.complete("def", "get", "--system-namespace", sys.Name, "")
		want := []string{"apply\tApply", "say\tthe namespace's", "shout\tShout"}
		if diff := cmp.Diff(want, choices); diff != "" || directive != noFiles {
			t.Errorf("def get <TAB>: directive %s, choices (-want +got):\n%s", directive, diff)
		}
		if choices, _ := c.complete("def", "get", "--system-namespace", sys.Name, "s"); !cmp.Equal(choices, want[1:]) {
			t.Errorf("def get s<TAB>: %q", choices)
		}
		for _, tc := range []struct{ typed, want string }{{"", "workflow/greet"}, {"workflow/g", "workflow/greet"}, {"wfl/", "wfl/greet"}} {
			choices, directive := c.complete("submit", "--from", tc.typed)
			if !cmp.Equal(choices, []string{tc.want}) || directive != noFiles {
				t.Errorf("submit --from %s<TAB>: %q, directive %s; want %s", tc.typed, choices, directive, tc.want)
			}
		}
	})

	// The global --context picks the cluster completions read.
	t.Run("context", func(t *testing.T) {
		kc := twoContexts(t, c)
		choices, directive := completeWith(t, "--kubeconfig", kc, "--context", "real", "get", "")
		if diff := cmp.Diff(all, choices); diff != "" || directive != noFiles {
			t.Errorf("--context real get <TAB>: directive %s, choices (-want +got):\n%s", directive, diff)
		}
		choices, directive = completeWith(t, "--kubeconfig", kc, "get", "")
		if len(choices) != 0 || directive != noFiles {
			t.Errorf("get <TAB> in the unreachable current context: %q, directive %s; want nothing", choices, directive)
		}
	})
}

var emptyIsNil = cmp.Transformer("emptyIsNil", func(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
})
