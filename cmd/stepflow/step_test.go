package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	nethttp "net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/api/v1beta1"
	"github.com/stepflow-dev/stepflow/internal/testenv"
	"github.com/stepflow-dev/stepflow/pkg/cli"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, v1alpha1.AddToScheme, v1beta1.AddToScheme} {
		if err := add(scheme); err != nil {
			panic(err)
		}
	}
	var stop func()
	env, stop = testenv.StartMain(testenv.WithCRDs(), testenv.WithScheme(scheme))
	code := m.Run()
	stop()
	os.Exit(code)
}

func stepflow(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.Main(cli.Deps{Stdout: &out, Stderr: &errb, Ops: buildOps}, args)
	return code, out.String(), errb.String()
}

func stepRun(t *testing.T, args ...string) cli.StepRunResult {
	t.Helper()
	code, out, errs := stepflow(t, append([]string{"step", "run", "-o", "json"}, args...)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var res cli.StepRunResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("output is not the documented JSON: %v\n%s", err, out)
	}
	return res
}

func noKubeconfig(t *testing.T) {
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "none"))
	t.Setenv("HOME", t.TempDir())
}

func TestStepRunRequest(t *testing.T) {
	noKubeconfig(t)
	var hits atomic.Int32
	srv := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		hits.Add(1)
		fmt.Fprint(w, `{"greeting": "hi"}`)
	}))
	defer srv.Close()
	res := stepRun(t, "-f", "../../definitions/request.cue", "--properties", fmt.Sprintf(`{"url": %q}`, srv.URL))
	if res.Outcome != "succeeded" || hits.Load() != 1 {
		t.Fatalf("outcome %s (%s), %d hits", res.Outcome, res.Message, hits.Load())
	}
	if len(res.Ops) != 1 || res.Ops[0].Op != "http.do" || res.Ops[0].Path != "http" {
		t.Errorf("ops = %+v", res.Ops)
	}
	v, _ := res.Value.(map[string]any)
	if r, _ := v["response"].(map[string]any); r["greeting"] != "hi" {
		t.Errorf("value.response = %v", v["response"])
	}
}

func TestStepRunKubeOpWithoutCluster(t *testing.T) {
	noKubeconfig(t)
	res := stepRun(t, "-f", "../../definitions/apply-object.cue",
		"--properties", `{"value": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}}`)
	if res.Outcome != "failed" || !strings.Contains(res.Message, "no Kubernetes cluster configured") {
		t.Fatalf("outcome %s: %s", res.Outcome, res.Message)
	}
}

func TestStepRunKubeOpWithCluster(t *testing.T) {
	kc, err := env.Kubeconfig(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	res := stepRun(t, "--kubeconfig", kc, "-n", "default", "-f", "../../definitions/apply-object.cue",
		"--properties", `{"value": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "from-cli"}, "data": {"a": "b"}}}`)
	if res.Outcome != "succeeded" {
		t.Fatalf("outcome %s: %s", res.Outcome, res.Message)
	}
	b, _ := json.Marshal(res.Value)
	if !strings.Contains(string(b), `"uid"`) {
		t.Errorf("value lacks the server's object: %s", b)
	}
}

func TestStepRunBadTemplate(t *testing.T) {
	noKubeconfig(t)
	dir := t.TempDir()
	f := filepath.Join(dir, "broken.cue")
	os.WriteFile(f, []byte("import \"vela/op\"\n\nx: op.#Apply & {value: 1}\n"), 0o644)
	res := stepRun(t, "-f", f)
	if res.Outcome != "failed" || !strings.Contains(res.Message, `definition "broken"`) || !strings.Contains(res.Message, "broken.cue:3:") {
		t.Fatalf("outcome %s: %s", res.Outcome, res.Message)
	}
}

// A file that does not parse is a failed outcome with its position, in
// the JSON any failure prints, not a command error.
func TestStepRunUnparsableFile(t *testing.T) {
	noKubeconfig(t)
	f := filepath.Join(t.TempDir(), "cut.cue")
	os.WriteFile(f, []byte("import \"vela/op\"\nx: op.#Log & {data: \n"), 0o644)
	res := stepRun(t, "-f", f)
	if res.Outcome != "failed" || res.Reason != "TemplateError" || !strings.Contains(res.Message, "cut.cue:2:") {
		t.Fatalf("outcome %s, reason %s: %s", res.Outcome, res.Reason, res.Message)
	}
}

// context.stepSessionID is a DNS label, as in a run, whatever the
// definition is called.
func TestStepRunSessionIDIsADNSLabel(t *testing.T) {
	noKubeconfig(t)
	f := filepath.Join(t.TempDir(), "Enable_Prism.cue")
	os.WriteFile(f, []byte("id: context.stepSessionID\n"), 0o644)
	res := stepRun(t, "-f", f)
	v, _ := res.Value.(map[string]any)
	id, _ := v["id"].(string)
	if res.Outcome != "succeeded" || len(validation.IsDNS1123Label(id)) > 0 {
		t.Fatalf("outcome %s (%s): stepSessionID %q is not a DNS label", res.Outcome, res.Message, id)
	}
}

func TestStepRunYAMLDefinitionAndContext(t *testing.T) {
	noKubeconfig(t)
	f := filepath.Join(t.TempDir(), "hello.yaml")
	os.WriteFile(f, []byte(`apiVersion: core.oam.dev/v1beta1
kind: WorkflowStepDefinition
metadata:
  name: hello
spec:
  schematic:
    cue:
      template: |
        import "vela/op"
        msg: op.#Message & {message: "hello \(context.who) from \(context.stepName)"}
`), 0o644)
	res := stepRun(t, "-f", f, "--run-context", `{"who": "ops"}`)
	if res.Outcome != "succeeded" || res.Message != "hello ops from hello" {
		t.Fatalf("outcome %s: %q", res.Outcome, res.Message)
	}
}

func TestStepRunCommandErrors(t *testing.T) {
	noKubeconfig(t)
	for _, args := range [][]string{
		{"step", "run", "-f", "/no/such/file.cue"},
		{"step", "run"},
		{"step", "run", "-f", "../../definitions/request.cue", "--properties", "{not json"},
	} {
		if code, _, errs := stepflow(t, args...); code == 0 || errs == "" {
			t.Errorf("%v: exit %d, stderr %q; want a non-zero exit and an error", args, code, errs)
		}
	}
}
