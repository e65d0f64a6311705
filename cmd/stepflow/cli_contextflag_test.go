package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/stepflow-dev/stepflow/pkg/definition"
)

// twoContexts writes a kubeconfig whose context "real" reaches the test
// API server in namespace ns and whose current context "nowhere" reaches
// nothing (127.0.0.1:1).
func twoContexts(t *testing.T, c *cluster) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(c.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	real := cfg.Contexts[cfg.CurrentContext].DeepCopy()
	real.Namespace = c.ns
	cfg.Contexts = map[string]*clientcmdapi.Context{
		"real":    real,
		"nowhere": {Cluster: "nowhere", AuthInfo: real.AuthInfo, Namespace: c.ns},
	}
	cfg.Clusters["nowhere"] = &clientcmdapi.Cluster{Server: "https://127.0.0.1:1"}
	cfg.CurrentContext = "nowhere"
	kc := filepath.Join(t.TempDir(), "two-contexts")
	if err := clientcmd.WriteToFile(*cfg, kc); err != nil {
		t.Fatal(err)
	}
	return kc
}

// --context picks the kubeconfig context on the commands whose own
// --context once meant run context variables (launch, step run, def
// render) or the joined cluster's context (cluster join); those are
// --run-context and --join-context now, and run context variables given
// to --context are refused with a hint.
func TestCLIContextFlagEverywhere(t *testing.T) {
	c := newCluster(t)
	kc := twoContexts(t, c)
	on := func(kubeContext string, args ...string) (int, string, string) {
		return stepflow(t, append([]string{"--kubeconfig", kc, "--context", kubeContext}, args...)...)
	}
	const unreachable = "127.0.0.1:1"

	t.Run("launch", func(t *testing.T) {
		app := "../../pkg/app/testdata/gray-release.yaml"
		code, out, errs := on("real", "launch", "-f", app, "--category", "DEPLOY", "--name", "v1", "--run-context", "image=nginx:1")
		if code != 0 || out != "workflowrun.core.oam.dev/v1 created\n" {
			t.Fatalf("launch --context real: exit %d, stdout %q, stderr %q", code, out, errs)
		}
		if got := string(c.get("v1").Spec.Context.Raw); got != `{"image":"nginx:1"}` {
			t.Errorf("--run-context: spec.context %s", got)
		}
		if code, _, errs := on("nowhere", "launch", "-f", app, "--category", "DEPLOY", "--name", "v2"); code == 0 || !strings.Contains(errs, unreachable) {
			t.Errorf("launch --context nowhere: exit %d, stderr %q; want it to reach %s and fail", code, errs, unreachable)
		}
	})

	t.Run("step run", func(t *testing.T) {
		props := `{"value": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "by-context"}}}`
		code, out, errs := on("real", "step", "run", "-o", "json", "-f", "../../definitions/apply-object.cue", "--properties", props)
		if code != 0 || !strings.Contains(out, `"outcome": "succeeded"`) {
			t.Fatalf("step run --context real: exit %d, stdout %s, stderr %q", code, out, errs)
		}
		if err := env.Client.Get(context.Background(), c.key("by-context"), &corev1.ConfigMap{}); err != nil {
			t.Errorf("the ConfigMap step run applied in the context's namespace: %v", err)
		}
		code, out, errs = on("nowhere", "step", "run", "-o", "json", "-f", "../../definitions/apply-object.cue", "--properties", props)
		if code != 0 || !strings.Contains(out, `"outcome": "failed"`) || !strings.Contains(out, unreachable) {
			t.Errorf("step run --context nowhere: exit %d, stdout %s, stderr %q; want a failed kube op that reached %s", code, out, errs, unreachable)
		}
	})

	t.Run("def render", func(t *testing.T) {
		def := filepath.Join(t.TempDir(), "hello.cue")
		if err := os.WriteFile(def, []byte("greeting: \"hello \\(context.who)\"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		code, out, errs := on("real", "def", "render", "-f", def, "--run-context", `{"who": "ops"}`, "-o", "json")
		if code != 0 || !strings.Contains(out, `"greeting": "hello ops"`) {
			t.Errorf("def render --context real --run-context: exit %d, stdout %s, stderr %q", code, out, errs)
		}
	})

	t.Run("cluster join", func(t *testing.T) {
		sys := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: definition.DefaultSystemNamespace}}
		if err := env.Client.Create(context.Background(), sys); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
		// The hub is reached in the context --context picks; the joined
		// cluster's endpoint is read from --join-context.
		code, out, errs := on("real", "cluster", "join", "ctx-flag-a", "--kubeconfig", kc, "--join-context", "nowhere", "--hub-kubeconfig", kc)
		if code != 0 || out != "cluster ctx-flag-a joined: https://"+unreachable+"\n" {
			t.Fatalf("cluster join --context real --join-context nowhere: exit %d, stdout %q, stderr %q", code, out, errs)
		}
		t.Cleanup(func() { on("real", "cluster", "remove", "ctx-flag-a") })
		code, _, errs = on("nowhere", "cluster", "join", "ctx-flag-b", "--kubeconfig", kc, "--join-context", "real", "--hub-kubeconfig", kc)
		if code == 0 || !strings.Contains(errs, unreachable) {
			t.Errorf("cluster join --context nowhere: exit %d, stderr %q; want it to reach the hub at %s and fail", code, errs, unreachable)
		}
	})

	// The old spellings: run context variables given to --context.
	for _, args := range [][]string{
		{"--context", `{"who": "ops"}`, "def", "render", "-f", "x.cue"},
		{"--context", "@ctx.json", "step", "run", "-f", "x.cue"},
		{"--context", "image=nginx:1", "launch", "-f", "x.yaml", "--category", "DEPLOY"},
	} {
		code, _, errs := stepflow(t, append([]string{"--kubeconfig", kc}, args...)...)
		if code == 0 || !strings.Contains(errs, "--context picks a kubeconfig context; to set the run's context variables use --run-context") {
			t.Errorf("%v: exit %d, stderr %q; want the --run-context hint", args, code, errs)
		}
	}
}
