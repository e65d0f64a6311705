package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/tools/txtar"
	"sigs.k8s.io/yaml"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/definition"
	"github.com/stepflow-dev/stepflow/pkg/engine"
	"github.com/stepflow-dev/stepflow/pkg/eval"
	"github.com/stepflow-dev/stepflow/pkg/graph"
	"github.com/stepflow-dev/stepflow/pkg/journal"
	"github.com/stepflow-dev/stepflow/pkg/op"
	"github.com/stepflow-dev/stepflow/pkg/op/builtin"
	"github.com/stepflow-dev/stepflow/pkg/op/transform"
)

var update = flag.Bool("update", false, "rewrite the want section of scenario files")

// A scenario is a txtar archive:
//
//	-- definitions/NAME.cue --  step definitions (vela def layout or a bare template)
//	-- run.yaml --              the WorkflowRun
//	-- script --                one command a line (see runScript)
//	-- want --                  the transcript the script produces
//
// Run with -update to rewrite want from what the engine does now; review
// the diff.
func TestScenarios(t *testing.T) {
	files, _ := filepath.Glob("testdata/scenarios/*.txtar")
	if len(files) == 0 {
		t.Fatal("no scenarios")
	}
	for _, f := range files {
		f := f
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txtar"), func(t *testing.T) {
			ar, err := txtar.ParseFile(f)
			if err != nil {
				t.Fatal(err)
			}
			sc := newScenario(t, ar)
			got := sc.runScript(t, string(section(ar, "script")))
			want := string(section(ar, "want"))
			if got == want {
				return
			}
			if *update {
				setSection(ar, "want", got)
				if err := os.WriteFile(f, txtar.Format(ar), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			t.Errorf("transcript differs (run with -update to accept):\n--- got\n%s--- want\n%s", got, want)
		})
	}
}

func section(ar *txtar.Archive, name string) []byte {
	for _, f := range ar.Files {
		if f.Name == name {
			return f.Data
		}
	}
	return nil
}

func setSection(ar *txtar.Archive, name, data string) {
	for i := range ar.Files {
		if ar.Files[i].Name == name {
			ar.Files[i].Data = []byte(data)
			return
		}
	}
	ar.Files = append(ar.Files, txtar.File{Name: name, Data: []byte(data)})
}

type scenario struct {
	run   *v1alpha1.WorkflowRun
	defs  engine.DefinitionMap
	ev    *eval.Evaluator
	store *journal.Memory
	j     *journal.Journal
	stub  *stubOps
	t0    time.Time
	now   time.Time
	wake  time.Time
}

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func newScenario(t *testing.T, ar *txtar.Archive) *scenario {
	t.Helper()
	sc := &scenario{defs: engine.DefinitionMap{}, store: journal.NewMemory(), stub: newStubOps(), t0: t0, now: t0}
	for _, f := range ar.Files {
		if name, ok := strings.CutPrefix(f.Name, "definitions/"); ok {
			src, err := eval.ParseDefinitionSource(name, f.Data)
			if err != nil {
				t.Fatal(err)
			}
			sc.defs[src.Name] = src.Definition
		}
	}
	// Runs may use the shipped suspend step type, as a cluster with the
	// chart installed has it; an archive may define its own.
	if _, ok := sc.defs["suspend"]; !ok {
		src, err := definition.FromFile(filepath.Join("..", "..", "definitions", "suspend.cue"))
		if err != nil {
			t.Fatal(err)
		}
		sc.defs[src.Name] = src.Definition
	}
	sc.run = &v1alpha1.WorkflowRun{}
	if err := yaml.UnmarshalStrict(section(ar, "run.yaml"), sc.run); err != nil {
		t.Fatalf("run.yaml: %v", err)
	}
	if sc.run.UID == "" {
		sc.run.UID = "run-uid"
	}
	if sc.run.Namespace == "" {
		sc.run.Namespace = "default"
	}
	ev, err := eval.New(eval.Options{Ops: scenarioCatalog()})
	if err != nil {
		t.Fatal(err)
	}
	sc.ev = ev
	sc.j, err = journal.Open(context.Background(), sc.store, journal.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func (sc *scenario) steps() ([]v1alpha1.WorkflowStep, *v1alpha1.WorkflowExecuteMode) {
	if sc.run.Spec.WorkflowSpec == nil {
		return nil, sc.run.Spec.Mode
	}
	return sc.run.Spec.WorkflowSpec.Steps, sc.run.Spec.Mode
}

func (sc *scenario) tick(t *testing.T) engine.Result {
	steps, mode := sc.steps()
	res, err := engine.Tick(context.Background(), engine.Input{
		Run: sc.run, Steps: steps, Mode: mode, Definitions: sc.defs, Evaluator: sc.ev,
		Ops: sc.stub, Journal: sc.j, Now: func() time.Time { return sc.now },
	})
	if err != nil {
		t.Fatalf("tick: %v", err)
	}
	sc.run.Status = res.Status
	sc.wake = res.WakeAt
	return res
}

// runScript runs the commands and returns the transcript:
//
//	tick                     run one tick; print the status and the ops called
//	ticks N                  run N ticks; print the status once, after them
//	advance D                move the clock by a Go duration
//	wait                     move the clock to the wake-up time the last tick asked for
//	resume [STEP] | suspend [STEP] | terminate [STEP] | restart | retry-from STEP
//	context KEY JSON         set a run context variable
//	http PATH STATUS [BODY]  answer HTTP calls whose URL ends in PATH
//	http-error PATH MESSAGE  fail HTTP calls whose URL ends in PATH
//	crash                    drop the journal's memory and reload it from its store
//	hits                     print how often each URL path was called, and the Idempotency-Keys
//	order                    print the op calls of the last tick in the order they were made
//	conditions               print the run's conditions
func (sc *scenario) runScript(t *testing.T, script string) string {
	var b strings.Builder
	for _, line := range strings.Split(script, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fmt.Fprintf(&b, "> %s\n", line)
		f := strings.Fields(line)
		arg := func(i int) string {
			if i < len(f) {
				return f[i]
			}
			return ""
		}
		var opErr error
		switch f[0] {
		case "tick":
			sc.stub.resetCalls()
			sc.tick(t)
			b.WriteString(sc.render())
		case "ticks":
			sc.stub.resetCalls()
			var n int
			fmt.Sscan(arg(1), &n)
			for i := 0; i < n; i++ {
				sc.tick(t)
			}
			b.WriteString(sc.render())
		case "advance":
			d, err := time.ParseDuration(arg(1))
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			sc.now = sc.now.Add(d)
		case "wait":
			if sc.wake.IsZero() {
				t.Fatalf("%s: the last tick asked for no wake-up", line)
			}
			sc.now = sc.wake
		case "resume":
			opErr = engine.Resume(&sc.run.Status, arg(1))
		case "suspend":
			opErr = engine.Suspend(&sc.run.Status, arg(1))
		case "terminate":
			// As the CLI and REST API do: a run whose onTerminate is
			// Compensate is left for its next tick to roll back.
			opErr = engine.TerminateFor(&sc.run.Status, engine.ResolveOrchestration(sc.run, nil), arg(1), sc.now)
		case "restart":
			engine.Restart(&sc.run.Status)
		case "retry-from":
			steps, mode := sc.steps()
			g, err := graph.Build(steps, mode)
			if err != nil {
				t.Fatal(err)
			}
			opErr = engine.RetryFrom(&sc.run.Status, g, arg(1), nil)
		case "context":
			var v any
			if err := json.Unmarshal([]byte(strings.Join(f[2:], " ")), &v); err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			opErr = engine.SetContext(&sc.run.Status, sc.j, arg(1), v)
		case "http":
			var code int
			fmt.Sscan(arg(2), &code)
			sc.stub.setHTTP(arg(1), code, strings.Join(f[min(3, len(f)):], " "), "")
		case "http-error":
			sc.stub.setHTTP(arg(1), 0, "", strings.Join(f[2:], " "))
		case "crash":
			j, err := journal.Open(context.Background(), sc.store, journal.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			sc.j = j
		case "hits":
			b.WriteString(sc.stub.renderHits())
		case "order":
			fmt.Fprintf(&b, "order %s\n", strings.Join(sc.stub.inOrder(), " "))
		case "conditions":
			for _, c := range sc.run.Status.Conditions {
				fmt.Fprintf(&b, "condition %s=%s (%s)\n", c.Type, c.Status, c.Reason)
			}
		default:
			t.Fatalf("unknown command %q", line)
		}
		if opErr != nil {
			fmt.Fprintf(&b, "error: %v\n", opErr)
		}
	}
	return b.String()
}

func (sc *scenario) rel(tm time.Time) string {
	return "+" + tm.Sub(sc.t0).String()
}

func (sc *scenario) render() string {
	var b strings.Builder
	st := sc.run.Status
	fmt.Fprintf(&b, "run %s", st.Phase)
	if st.Suspend {
		fmt.Fprintf(&b, " suspend(%s)", st.SuspendState)
	}
	if st.Finished {
		b.WriteString(" finished")
	}
	if st.Message != "" {
		fmt.Fprintf(&b, " %q", st.Message)
	}
	if st.RollbackError != "" {
		fmt.Fprintf(&b, " rollbackError=%q", st.RollbackError)
	}
	b.WriteString("\n")
	line := func(indent string, ss v1alpha1.StepStatus) {
		fmt.Fprintf(&b, "%s%s %s", indent, ss.Name, ss.Phase)
		if ss.Reason != "" {
			fmt.Fprintf(&b, " (%s)", ss.Reason)
		}
		if ss.Attempt > 1 {
			fmt.Fprintf(&b, " attempt=%d", ss.Attempt)
		}
		if ss.ResumeTime != nil {
			fmt.Fprintf(&b, " resume@%s", sc.rel(ss.ResumeTime.Time))
		}
		if ss.NextAttemptTime != nil {
			fmt.Fprintf(&b, " next@%s", sc.rel(ss.NextAttemptTime.Time))
		}
		for _, o := range ss.Outputs {
			fmt.Fprintf(&b, " out:%s=%s", o.Name, o.Value.Raw)
		}
		for _, o := range ss.Inputs {
			fmt.Fprintf(&b, " in:%s=%s", o.Name, o.Value.Raw)
		}
		if ss.Message != "" {
			fmt.Fprintf(&b, " %q", ss.Message)
		}
		b.WriteString("\n")
		if cs := ss.Compensation; cs != nil {
			fmt.Fprintf(&b, "%s  compensation %s %s", indent, cs.Type, cs.Phase)
			if cs.Reason != "" {
				fmt.Fprintf(&b, " (%s)", cs.Reason)
			}
			if cs.Attempt > 1 {
				fmt.Fprintf(&b, " attempt=%d", cs.Attempt)
			}
			if cs.NextAttemptTime != nil {
				fmt.Fprintf(&b, " next@%s", sc.rel(cs.NextAttemptTime.Time))
			}
			if cs.Message != "" {
				fmt.Fprintf(&b, " %q", cs.Message)
			}
			b.WriteString("\n")
		}
	}
	for _, s := range st.Steps {
		line("  ", s.StepStatus)
		for _, c := range s.SubStepsStatus {
			line("    ", c)
		}
	}
	if calls := sc.stub.calls(); len(calls) > 0 {
		fmt.Fprintf(&b, "ops %s\n", strings.Join(calls, " "))
	}
	if !sc.wake.IsZero() {
		fmt.Fprintf(&b, "wake %s\n", sc.rel(sc.wake))
	}
	return b.String()
}

// stubOps answers kube ops by echoing the object (status ready) and HTTP
// calls from a table set by the script; builtin and util ops run for real.
type stubOps struct {
	mu      sync.Mutex
	http    map[string]httpReply
	made    []string
	hits    map[string]int
	keys    map[string]map[string]bool
	builtin *op.Registry
}

type httpReply struct {
	code int
	body string
	err  string
}

func newStubOps() *stubOps {
	return &stubOps{http: map[string]httpReply{}, hits: map[string]int{}, keys: map[string]map[string]bool{}}
}

func (s *stubOps) setHTTP(path string, code int, body, err string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.http[path] = httpReply{code: code, body: body, err: err}
}

func (s *stubOps) resetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.made = nil
}

func (s *stubOps) calls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := append([]string(nil), s.made...)
	sort.Strings(out)
	return out
}

// inOrder lists the calls made since resetCalls in the order they were made.
func (s *stubOps) inOrder() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.made...)
}

func (s *stubOps) renderHits() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var paths []string
	for p := range s.hits {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var b strings.Builder
	for _, p := range paths {
		fmt.Fprintf(&b, "hits %s=%d keys=%d\n", p, s.hits[p], len(s.keys[p]))
	}
	return b.String()
}

func (s *stubOps) Run(ctx context.Context, call *op.Call) (op.Result, error) {
	if call.Name.Provider == "builtin" || call.Name.Provider == "util" {
		return op.Direct.Run(ctx, call)
	}
	s.mu.Lock()
	s.made = append(s.made, call.Step.StepName+"/"+call.Path)
	s.mu.Unlock()
	switch call.Name.Provider {
	case "kube":
		p := call.Params.(*kubeParams)
		obj := map[string]any{}
		for k, v := range p.Value {
			obj[k] = v
		}
		obj["status"] = map[string]any{"ready": true}
		return op.Result{Returns: map[string]any{"value": obj}}, nil
	case "http":
		p := call.Params.(*httpParams)
		s.mu.Lock()
		var reply httpReply
		found := false
		for suffix, r := range s.http {
			if strings.HasSuffix(p.URL, suffix) && (!found || len(suffix) > 0) {
				reply, found = r, true
			}
		}
		path := p.URL[strings.Index(p.URL, "//")+2:]
		if i := strings.Index(path, "/"); i >= 0 {
			path = path[i:]
		}
		s.hits[path]++
		if s.keys[path] == nil {
			s.keys[path] = map[string]bool{}
		}
		if call.Class == op.Effect {
			s.keys[path][call.Step.RunUID+"/"+call.Step.StepID+"/"+call.Path] = true
		}
		s.mu.Unlock()
		if !found {
			reply = httpReply{code: 200, body: "{}"}
		}
		if reply.err != "" {
			return op.Result{}, errors.New(reply.err)
		}
		return op.Result{Returns: map[string]any{"statusCode": reply.code, "body": reply.body}}, nil
	}
	return op.Result{}, fmt.Errorf("no stub for %s", call.Name)
}

// scenarioCatalog has the real builtin and util ops and kube/http ops with
// the real params shapes, run by stubOps.
func scenarioCatalog() *op.Registry {
	reg := op.NewRegistry().Add(builtin.New(), builtin.NewLog(), transform.New())
	for _, do := range []string{"apply", "read", "list", "delete", "patch"} {
		reg.Register(op.Name{Provider: "kube", Do: do}, paramsOnly[kubeParams]{class: op.Idempotent})
	}
	reg.Register(op.Name{Provider: "http", Do: "do"}, httpOp{})
	return reg
}

type kubeParams struct {
	Cluster string         `json:"cluster"`
	Value   map[string]any `json:"value"`
}

type httpParams struct {
	Method  string         `json:"method"`
	URL     string         `json:"url"`
	Request map[string]any `json:"request"`
}

type paramsOnly[P any] struct{ class op.Class }

func (paramsOnly[P]) NewParams() any       { return new(P) }
func (p paramsOnly[P]) Class(any) op.Class { return p.class }
func (paramsOnly[P]) Run(context.Context, *op.Call) (op.Result, error) {
	return op.Result{}, errors.New("run by stubOps only")
}

type httpOp struct{ paramsOnly[httpParams] }

func (httpOp) Class(p any) op.Class {
	if hp, ok := p.(*httpParams); ok && (hp.Method == "" || hp.Method == "GET" || hp.Method == "HEAD") {
		return op.Idempotent
	}
	return op.Effect
}
