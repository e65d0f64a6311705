package definition_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	nethttp "net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/stepflow-dev/stepflow/api"
	"github.com/stepflow-dev/stepflow/internal/testenv"
	"github.com/stepflow-dev/stepflow/pkg/definition"
	"github.com/stepflow-dev/stepflow/pkg/eval"
	"github.com/stepflow-dev/stepflow/pkg/op"
	"github.com/stepflow-dev/stepflow/pkg/op/builtin"
	httpop "github.com/stepflow-dev/stepflow/pkg/op/http"
	"github.com/stepflow-dev/stepflow/pkg/op/kube"
	"github.com/stepflow-dev/stepflow/pkg/op/transform"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	// The binary's scheme and the chart's CRDs, so definitions of both
	// kinds can be looked up in the cluster.
	scheme, err := api.NewScheme()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var stop func()
	env, stop = testenv.StartMain(testenv.WithScheme(scheme), testenv.WithCRDs())
	code := m.Run()
	stop()
	os.Exit(code)
}

// realOps wires every op family against the test API server.
func realOps() *op.Registry {
	clusters := kube.Local(env.Client)
	return op.NewRegistry().Add(
		builtin.New(), builtin.NewLog(), kube.New(clusters),
		httpop.New(httpop.Options{Secrets: kube.Secrets(clusters)}), transform.New(),
	)
}

func shipped(t *testing.T, name string) eval.Definition {
	t.Helper()
	src, err := definition.FromFile(filepath.Join("..", "..", "definitions", name+".cue"))
	if err != nil {
		t.Fatal(err)
	}
	if src.Name != name {
		t.Fatalf("definitions/%s.cue names itself %q", name, src.Name)
	}
	return src.Definition
}

// counter is an HTTP endpoint that counts hits per method and path.
type counter struct {
	mu   sync.Mutex
	hits map[string]int
	last map[string]string
	keys []string
}

func newCounter(t *testing.T, status int, body string) (*counter, *httptest.Server) {
	c := &counter{hits: map[string]int{}, last: map[string]string{}}
	srv := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		b, _ := io.ReadAll(r.Body)
		c.mu.Lock()
		c.hits[r.Method+" "+r.URL.Path]++
		c.last[r.Method+" "+r.URL.Path] = string(b)
		if k := r.Header.Get("Idempotency-Key"); k != "" {
			c.keys = append(c.keys, k)
		}
		c.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}))
	t.Cleanup(srv.Close)
	return c, srv
}

func evaluate(t *testing.T, def eval.Definition, params map[string]any) eval.Outcome {
	t.Helper()
	ev, err := eval.New(eval.Options{Ops: realOps()})
	if err != nil {
		t.Fatal(err)
	}
	return ev.Evaluate(context.Background(), eval.Request{
		Definition: def, Parameters: params,
		Context: map[string]any{"name": "run", "namespace": "default", "stepName": def.Name, "stepSessionID": def.Name + "-1"},
		Step:    op.Step{RunUID: "uid-1", RunName: "run", Namespace: "default", StepName: def.Name, StepID: def.Name + "-1"},
		Env:     op.Env{Vars: builtin.MapVars{}},
	})
}

func eq(t *testing.T, v *eval.Value, expr string, want any) {
	t.Helper()
	got, err := v.Eval(expr)
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	gb, _ := json.Marshal(got)
	wb, _ := json.Marshal(want)
	if string(gb) != string(wb) {
		t.Errorf("%s = %s, want %s", expr, gb, wb)
	}
}

func TestShippedRequest(t *testing.T) {
	hits, srv := newCounter(t, 200, `{"id": 7}`)
	out := evaluate(t, shipped(t, "request"), map[string]any{"url": srv.URL + "/items", "method": "POST", "body": map[string]any{"name": "x"}})
	if out.Phase != eval.Succeeded {
		t.Fatalf("%s: %s", out.Phase, out.Message)
	}
	eq(t, out.Value, "response.id", 7)
	if hits.hits["POST /items"] != 1 || hits.last["POST /items"] != `{"name":"x"}` {
		t.Errorf("server saw %v %v", hits.hits, hits.last)
	}
}

func TestShippedRequestFailsOnErrorStatus(t *testing.T) {
	_, srv := newCounter(t, 503, `{}`)
	out := evaluate(t, shipped(t, "request"), map[string]any{"url": srv.URL + "/down"})
	if out.Phase != eval.Failed || !strings.Contains(out.Message, "status 503") {
		t.Fatalf("%s: %s", out.Phase, out.Message)
	}
}

func TestShippedRequestUnreachable(t *testing.T) {
	srv := httptest.NewServer(nethttp.NotFoundHandler())
	url := srv.URL
	srv.Close()
	out := evaluate(t, shipped(t, "request"), map[string]any{"url": url})
	if out.Phase != eval.Broken || !strings.Contains(out.Message, `definition "request"`) || !strings.Contains(out.Message, "request.cue:") {
		t.Fatalf("%s: %s", out.Phase, out.Message)
	}
}

func TestShippedWebhookSendsIdempotencyKey(t *testing.T) {
	hits, srv := newCounter(t, 202, `{}`)
	out := evaluate(t, shipped(t, "webhook"), map[string]any{"url": srv.URL + "/hook", "data": map[string]any{"text": "hi"}})
	if out.Phase != eval.Succeeded {
		t.Fatalf("%s: %s", out.Phase, out.Message)
	}
	if hits.hits["POST /hook"] != 1 || len(hits.keys) != 1 || hits.keys[0] == "" {
		t.Errorf("hits %v keys %v", hits.hits, hits.keys)
	}
}

func TestShippedApplyReadExport(t *testing.T) {
	cm := map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": "applied"}, "data": map[string]any{"k": "v"}}
	out := evaluate(t, shipped(t, "apply-object"), map[string]any{"value": cm})
	if out.Phase != eval.Succeeded {
		t.Fatalf("apply-object: %s: %s", out.Phase, out.Message)
	}
	eq(t, out.Value, "apply.$returns.value.metadata.namespace", "default")
	uid, err := out.Value.Eval("apply.$returns.value.metadata.uid")
	if err != nil || uid == "" {
		t.Fatalf("no uid from the server: %v %v", uid, err)
	}

	out = evaluate(t, shipped(t, "read-object"), map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "name": "applied"})
	if out.Phase != eval.Succeeded {
		t.Fatalf("read-object: %s: %s", out.Phase, out.Message)
	}
	eq(t, out.Value, "output.$returns.value.metadata.uid", uid)

	out = evaluate(t, shipped(t, "read-object"), map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "name": "missing"})
	if out.Phase != eval.Succeeded {
		t.Fatalf("read-object of a missing object: %s: %s", out.Phase, out.Message)
	}
	if e, err := out.Value.Eval("output.$returns.err"); err != nil || !strings.Contains(fmt.Sprint(e), "not found") {
		t.Errorf("missing object: err = %v (%v)", e, err)
	}

	out = evaluate(t, shipped(t, "export2config"), map[string]any{"configName": "exported", "data": map[string]any{"a": "1"}})
	if out.Phase != eval.Succeeded {
		t.Fatalf("export2config: %s: %s", out.Phase, out.Message)
	}
	var got corev1.ConfigMap
	if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: "default", Name: "exported"}, &got); err != nil {
		t.Fatal(err)
	}
	if got.Data["a"] != "1" {
		t.Errorf("exported data = %v", got.Data)
	}
}

// The flat vela/op dialect drives the same implementations.
func TestFlatDialectAgainstRealOps(t *testing.T) {
	hits, srv := newCounter(t, 200, `{"ready": true}`)
	def := eval.Definition{Name: "flat", Template: `
import "vela/op"

apply: op.#Apply & {
	value: {apiVersion: "v1", kind: "ConfigMap", metadata: name: "flat", data: step: context.stepName}
}
// Refers to a field only the server sets, so it reads after the apply.
read: op.#Read & {
	value: {apiVersion: "v1", kind: "ConfigMap", metadata: {name: apply.value.metadata.name, namespace: "default", uid: apply.value.metadata.uid}}
}
check: op.#HTTPGet & {url: parameter.url + "/ready?uid=" + apply.value.metadata.uid}
wait: op.#ConditionalWait & {continue: read.value.data.step == "flat" && check.response.statusCode == 200}
list: op.#List & {
	resource: {apiVersion: "v1", kind: "ConfigMap"}
	filter: namespace: "default"
}
count: len(list.list.items)
parameter: url: string
`}
	out := evaluate(t, def, map[string]any{"url": srv.URL})
	if out.Phase != eval.Succeeded {
		t.Fatalf("%s: %s\ncalls %v", out.Phase, out.Message, out.Calls)
	}
	if hits.hits["GET /ready"] != 1 {
		t.Errorf("hits = %v", hits.hits)
	}
	n, err := out.Value.Eval("count")
	if c, ok := n.(int64); err != nil || !ok || c < 1 {
		t.Errorf("count = %v (%v)", n, err)
	}
}

func TestKubeOpWithUnknownCluster(t *testing.T) {
	out := evaluate(t, shipped(t, "apply-object"), map[string]any{"cluster": "mars",
		"value": map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "x"}}})
	if out.Phase != eval.Failed || !strings.Contains(out.Message, `unknown cluster "mars"`) {
		t.Fatalf("%s: %s", out.Phase, out.Message)
	}
}
