package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/engine"
	"github.com/stepflow-dev/stepflow/pkg/eval"
	"github.com/stepflow-dev/stepflow/pkg/graph"
	"github.com/stepflow-dev/stepflow/pkg/journal"
	"github.com/stepflow-dev/stepflow/pkg/op"
)

// FuzzTick builds a run from the input (3 to 12 steps, StepByStep or DAG,
// dependsOn on earlier steps, step groups, ifs, inputs and outputs,
// timeouts, retries, step types that succeed, wait, suspend, fail or error)
// and drives it through
// ticks, clock moves and operations taken from the rest of the input. After
// every tick it checks that:
//
//   - Tick returned, without error, within tickLimit;
//   - a finished run is succeeded, failed or terminated, with every step
//     finished;
//   - once the run is finished, ticks change neither its phase nor any
//     step's nor call any op, until a restart or a retry from a step;
//   - in a run that is neither finished nor suspended, every step whose
//     dependencies are done has left pending, and a running step makes the
//     tick ask for a wake-up;
//   - a second tick at the same instant changes nothing;
//   - a step suspended by the operator stays suspended (or times out: a
//     hold does not pause timeouts) until a resume, terminate, restart or
//     retry-from;
//   - every failed step has a reason and a message, a failed run a message.
func FuzzTick(f *testing.F) {
	for _, seed := range fuzzSeeds() {
		f.Add(seed)
	}
	ev, err := eval.New(eval.Options{Ops: fuzzCatalog(), EvalTimeout: 2 * time.Second})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		newFuzzRun(t, ev, data).play()
	})
}

// fuzzSeeds are inputs from a fixed pseudo-random source, long enough for
// runs of every size and a few dozen operations; go test runs them.
func fuzzSeeds() [][]byte {
	out := [][]byte{nil, {1, 1, 1}}
	for i, n := range []int{48, 64, 96, 128, 160, 192, 256, 320, 384, 512} {
		r := rand.New(rand.NewPCG(uint64(i), 2026))
		b := make([]byte, n)
		for k := range b {
			b[k] = byte(r.UintN(256))
		}
		out = append(out, b)
	}
	return out
}

// tickLimit bounds one Tick.
const tickLimit = 5 * time.Second

var fuzzT0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fuzzTypes are the step types a fuzzed run draws from, some more often
// than others; "halt" suspends (as the shipped suspend does) and "missing"
// has no definition.
var fuzzTypes = []string{
	"ok", "ok", "ok", "ok", "effect", "effect", "wait", "wait", "halt", "halt", "flaky", "flaky",
	"fail", "error", "missing",
}

var fuzzDefinitions = engine.DefinitionMap{
	"ok":     {Name: "ok", Template: `do: {#provider: "fz", #do: "ok"}`},
	"effect": {Name: "effect", Template: "post: {#provider: \"fz\", #do: \"effect\"}\ncheck: {#provider: \"fz\", #do: \"ok\", id: post.$returns.id}"},
	"wait":   {Name: "wait", Template: "parameter: after: *0 | int\nw: {#provider: \"fz\", #do: \"wait\", after: parameter.after}"},
	"halt":   {Name: "halt", Template: "parameter: duration: *\"\" | string\ns: {#provider: \"fz\", #do: \"suspend\", duration: parameter.duration}\nthen: {#provider: \"fz\", #do: \"ok\"}"},
	"fail":   {Name: "fail", Template: `f: {#provider: "fz", #do: "fail", msg: "boom"}`},
	"error":  {Name: "error", Template: `e: {#provider: "fz", #do: "error"}`},
	"flaky":  {Name: "flaky", Template: `e: {#provider: "fz", #do: "flaky"}`},
}

// fuzzParams are the parameters of every fz op.
type fuzzParams struct {
	After    int    `json:"after"`
	Duration string `json:"duration"`
	Msg      string `json:"msg"`
	ID       string `json:"id"`
}

type fuzzOp struct{ class op.Class }

func (fuzzOp) NewParams() any       { return &fuzzParams{} }
func (o fuzzOp) Class(any) op.Class { return o.class }
func (fuzzOp) Run(context.Context, *op.Call) (op.Result, error) {
	return op.Result{}, errors.New("fz ops are run by the fuzz runner")
}

func fuzzCatalog() *op.Registry {
	reg := op.NewRegistry()
	for do, class := range map[string]op.Class{
		"ok": op.Idempotent, "effect": op.Effect, "error": op.Idempotent, "flaky": op.Idempotent,
		"wait": op.Control, "suspend": op.Control, "fail": op.Control,
	} {
		reg.Register(op.Name{Provider: "fz", Do: do}, fuzzOp{class: class})
	}
	return reg
}

// fuzzInput reads the fuzz input a byte at a time; past its end it reads 0.
type fuzzInput struct {
	b []byte
	i int
}

func (in *fuzzInput) next() int {
	if in.i >= len(in.b) {
		return 0
	}
	c := in.b[in.i]
	in.i++
	return int(c)
}

func (in *fuzzInput) intn(n int) int { return in.next() % n }
func (in *fuzzInput) left() bool     { return in.i < len(in.b) }

func pick[T any](in *fuzzInput, xs ...T) T { return xs[in.intn(len(xs))] }

type fuzzRun struct {
	t     *testing.T
	in    *fuzzInput
	ev    *eval.Evaluator
	run   *v1alpha1.WorkflowRun
	g     *graph.Graph
	names []string
	j     *journal.Journal
	now   time.Time
	wake  time.Time
	log   []string

	// exports are the steps built so far that have an output.
	exports map[string]bool

	mu    sync.Mutex
	calls int
	flaky map[string]int
}

func newFuzzRun(t *testing.T, ev *eval.Evaluator, data []byte) *fuzzRun {
	fr := &fuzzRun{t: t, in: &fuzzInput{b: data}, ev: ev, now: fuzzT0, flaky: map[string]int{}, exports: map[string]bool{}}
	steps, mode := fr.buildSteps()
	fr.run = &v1alpha1.WorkflowRun{
		ObjectMeta: metav1.ObjectMeta{Name: "fuzz", Namespace: "default", UID: "uid-fuzz"},
		Spec: v1alpha1.WorkflowRunSpec{
			Mode:         mode,
			WorkflowSpec: &v1alpha1.WorkflowSpec{Steps: steps},
			Context:      &runtime.RawExtension{Raw: []byte(pick(fr.in, `{"flag": true}`, `{"flag": false}`, `{}`))},
		},
	}
	g, err := graph.Build(steps, mode)
	if err != nil {
		t.Fatalf("the fuzzer built an invalid run: %v\n%s", err, fr.spec())
	}
	fr.g = g
	for _, s := range g.All() {
		fr.names = append(fr.names, s.Name)
	}
	j, err := journal.Open(context.Background(), journal.NewMemory(), journal.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	fr.j = j
	return fr
}

func (fr *fuzzRun) buildSteps() ([]v1alpha1.WorkflowStep, *v1alpha1.WorkflowExecuteMode) {
	in := fr.in
	n := 3 + in.intn(10)
	mode := &v1alpha1.WorkflowExecuteMode{
		Steps:    pick(in, v1alpha1.WorkflowModeStep, v1alpha1.WorkflowModeDAG),
		SubSteps: pick(in, "", v1alpha1.WorkflowModeStep, v1alpha1.WorkflowModeDAG),
	}
	var steps []v1alpha1.WorkflowStep
	var all []string
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("s%d", i)
		var ws v1alpha1.WorkflowStep
		if in.intn(5) == 4 {
			ws.WorkflowStepBase = fr.stepBase(name, graph.StepGroup, all)
			if m := in.intn(3); m > 0 {
				ws.Mode = ptrTo(pick(in, v1alpha1.WorkflowModeStep, v1alpha1.WorkflowModeDAG))
			}
			var subs []string
			for k := 0; k < 1+in.intn(3); k++ {
				sub := fr.stepBase(fmt.Sprintf("%sx%d", name, k), pick(in, fuzzTypes...), append(all, subs...))
				sub.DependsOn = fr.dependsOn(subs)
				ws.SubSteps = append(ws.SubSteps, sub)
				subs = append(subs, sub.Name)
			}
			all = append(all, subs...)
		} else {
			ws.WorkflowStepBase = fr.stepBase(name, pick(in, fuzzTypes...), all)
		}
		ws.DependsOn = fr.dependsOn(topNames(steps))
		steps = append(steps, ws)
		all = append(all, name)
	}
	return steps, mode
}

func topNames(steps []v1alpha1.WorkflowStep) []string {
	var out []string
	for _, s := range steps {
		out = append(out, s.Name)
	}
	return out
}

func ptrTo[T any](v T) *T { return &v }

// dependsOn picks up to two of the earlier steps of a level.
func (fr *fuzzRun) dependsOn(earlier []string) []string {
	if len(earlier) == 0 {
		return nil
	}
	var out []string
	for k := fr.in.intn(3); k > 0; k-- {
		out = append(out, earlier[fr.in.intn(len(earlier))])
	}
	return out
}

// stepBase is a step of type typ; seen are the steps before it, which its
// if may name.
func (fr *fuzzRun) stepBase(name, typ string, seen []string) v1alpha1.WorkflowStepBase {
	in := fr.in
	s := v1alpha1.WorkflowStepBase{Name: name, Type: typ}
	other := name
	if len(seen) > 0 {
		other = seen[in.intn(len(seen))]
	}
	switch in.intn(24) {
	case 1:
		s.If = "always"
	case 2:
		s.If = fmt.Sprintf("status.%s.succeeded", other)
	case 3:
		s.If = fmt.Sprintf(`status.%s.phase != "failed" && !status.%s.timeout`, other, other)
	case 4:
		s.If = `context.flag == true`
	case 5:
		s.If = "status.nope.succeeded"
	case 6, 7:
		// An input from a step before this one (available only once that
		// step succeeded), passed as a parameter or only visible as inputs.
		if fr.exports[other] {
			s.Inputs = v1alpha1.StepInputs{{From: "o-" + other}}
		}
	case 8:
		if fr.exports[other] {
			s.Inputs = v1alpha1.StepInputs{{From: "o-" + other, ParameterKey: "in.value"}}
		}
	case 9:
		s.If = fmt.Sprintf("inputs[%q] != _|_", "o-"+other)
	}
	// Every step of a defined type exports an output; step groups have
	// nothing to read it from.
	if _, ok := fuzzDefinitions[typ]; ok {
		s.Outputs = v1alpha1.StepOutputs{{Name: "o-" + name, ValueFrom: "context.stepName"}}
		fr.exports[name] = true
	}
	s.Timeout = pick(in, "", "", "", "2s", "10s", "1m", "30s")
	if in.intn(3) == 0 {
		s.Retry = &v1alpha1.RetryPolicy{Limit: ptrTo(int32(in.intn(3))), Backoff: &v1alpha1.RetryBackoff{Initial: "1s", Factor: "2", Max: "4s"}}
	}
	var props map[string]any
	switch typ {
	case "wait":
		props = map[string]any{"after": in.intn(90)}
	case "halt":
		props = map[string]any{"duration": pick(in, "", "", "3s", "1m")}
	}
	if props != nil {
		raw, err := json.Marshal(props)
		if err != nil {
			fr.t.Fatal(err)
		}
		s.Properties = &runtime.RawExtension{Raw: raw}
	}
	return s
}

// Run is the ops of the fuzzed run.
func (fr *fuzzRun) Run(ctx context.Context, call *op.Call) (op.Result, error) {
	if err := ctx.Err(); err != nil {
		return op.Result{}, err
	}
	p := call.Params.(*fuzzParams)
	fr.mu.Lock()
	fr.calls++
	now := fr.now
	fr.flaky[call.Step.StepName]++
	flaky := fr.flaky[call.Step.StepName]
	fr.mu.Unlock()
	switch call.Name.Do {
	case "ok":
		return op.Result{Returns: map[string]any{"ok": true}}, nil
	case "effect":
		return op.Result{Returns: map[string]any{"id": call.Step.StepID}}, nil
	case "wait":
		if now.Before(fuzzT0.Add(time.Duration(p.After) * time.Second)) {
			return op.Result{Stop: &op.Stop{Kind: op.Wait, Message: "not yet"}}, nil
		}
		return op.Result{}, nil
	case "suspend":
		var d time.Duration
		if p.Duration != "" {
			var err error
			if d, err = time.ParseDuration(p.Duration); err != nil {
				return op.Result{}, op.Permanent(err)
			}
		}
		return op.Result{Stop: &op.Stop{Kind: op.Suspend, Duration: d}}, nil
	case "fail":
		return op.Result{Stop: &op.Stop{Kind: op.Fail, Message: p.Msg}}, nil
	case "error":
		return op.Result{}, errors.New("connection refused")
	case "flaky":
		if flaky%2 == 1 {
			return op.Result{}, errors.New("connection reset")
		}
		return op.Result{}, nil
	}
	return op.Result{}, op.Permanentf("no fz op %q", call.Name.Do)
}

func (fr *fuzzRun) callCount() int {
	fr.mu.Lock()
	defer fr.mu.Unlock()
	return fr.calls
}

// tick runs one Tick under tickLimit and checks the status it returns.
func (fr *fuzzRun) tick() {
	type result struct {
		res engine.Result
		err error
	}
	done := make(chan result, 1)
	in := engine.Input{
		Run: fr.run, Steps: fr.run.Spec.WorkflowSpec.Steps, Mode: fr.run.Spec.Mode,
		Definitions: fuzzDefinitions, Evaluator: fr.ev, Ops: op.RunnerFunc(fr.Run), Journal: fr.j,
		Now: func() time.Time {
			fr.mu.Lock()
			defer fr.mu.Unlock()
			return fr.now
		},
	}
	go func() {
		res, err := engine.Tick(context.Background(), in)
		done <- result{res, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			fr.fatalf("Tick: %v", r.err)
		}
		fr.run.Status, fr.wake = r.res.Status, r.res.WakeAt
	case <-time.After(tickLimit):
		fr.fatalf("Tick did not return within %s", tickLimit)
	}
	fr.checkFinished()
	fr.checkSettled()
	fr.checkFailures()
}

// checkFailures: every failed step has a reason and a message, and a
// failed run a message; no message is over the bound.
func (fr *fuzzRun) checkFailures() {
	st := fr.run.Status
	for _, s := range st.Steps {
		for _, ss := range append([]v1alpha1.StepStatus{s.StepStatus}, s.SubStepsStatus...) {
			if ss.Phase == v1alpha1.WorkflowStepPhaseFailed && (ss.Reason == "" || ss.Message == "") {
				fr.fatalf("step %s failed with reason %q and message %q; want both", ss.Name, ss.Reason, ss.Message)
			}
			if len(ss.Message) > engine.MaxMessageBytes {
				fr.fatalf("step %s has a message of %d bytes, over %d", ss.Name, len(ss.Message), engine.MaxMessageBytes)
			}
		}
	}
	if st.Phase == v1alpha1.WorkflowRunFailed && st.Message == "" {
		fr.fatalf("the run failed with no message")
	}
}

// timedOut reports whether a held step left suspending because a timeout
// ran out: its own, its group's, or (for a group) a sub-step's. A hold does
// not pause timeouts.
func (fr *fuzzRun) timedOut(ss *v1alpha1.StepStatus) bool {
	if ss.Phase != v1alpha1.WorkflowStepPhaseFailed {
		return false
	}
	if ss.Reason == engine.ReasonTimeout {
		return true
	}
	if ss.Reason != engine.ReasonSubStepFailed {
		return false
	}
	for _, s := range fr.run.Status.Steps {
		if s.Name != ss.Name {
			continue
		}
		for _, c := range s.SubStepsStatus {
			if c.Phase == v1alpha1.WorkflowStepPhaseFailed && c.Reason == engine.ReasonTimeout {
				return true
			}
		}
	}
	return false
}

// stepStatus returns the status of a step or sub-step, nil if it has none.
func (fr *fuzzRun) stepStatus(name string) *v1alpha1.StepStatus {
	st := &fr.run.Status
	for i := range st.Steps {
		if st.Steps[i].Name == name {
			return &st.Steps[i].StepStatus
		}
		for j := range st.Steps[i].SubStepsStatus {
			if st.Steps[i].SubStepsStatus[j].Name == name {
				return &st.Steps[i].SubStepsStatus[j]
			}
		}
	}
	return nil
}

func stepDone(ss *v1alpha1.StepStatus) bool {
	if ss == nil {
		return false
	}
	switch ss.Phase {
	case v1alpha1.WorkflowStepPhaseSucceeded, v1alpha1.WorkflowStepPhaseFailed,
		v1alpha1.WorkflowStepPhaseSkipped, v1alpha1.WorkflowStepPhaseStopped:
		return true
	}
	return false
}

// checkSettled: after a tick of a run that is neither finished nor
// suspended by an operator, every step whose dependencies are done (inside
// a started group) has left pending, and a run with a running step asks for
// a wake-up.
func (fr *fuzzRun) checkSettled() {
	st := fr.run.Status
	if st.Finished || st.Suspend {
		return
	}
	for _, s := range fr.g.All() {
		if p := s.Parent; p != nil {
			if ps := fr.stepStatus(p.Name); ps == nil || ps.Phase == v1alpha1.WorkflowStepPhasePending || stepDone(ps) {
				continue
			}
		}
		ready := true
		for _, d := range s.Deps {
			ready = ready && stepDone(fr.stepStatus(d.Name))
		}
		ss := fr.stepStatus(s.Name)
		if ready && (ss == nil || ss.Phase == v1alpha1.WorkflowStepPhasePending) {
			fr.fatalf("step %s can start but is still pending after a tick", s.Name)
		}
		if !s.IsGroup() && ss != nil && ss.Phase == v1alpha1.WorkflowStepPhaseRunning && fr.wake.IsZero() {
			fr.fatalf("step %s is running (%s) but the tick asked for no wake-up", s.Name, ss.Reason)
		}
	}
}

// detail is the run's phase and each step's phase and reason.
func (fr *fuzzRun) detail() string {
	var b strings.Builder
	b.WriteString(fr.phases())
	for _, s := range fr.g.All() {
		if ss := fr.stepStatus(s.Name); ss != nil {
			fmt.Fprintf(&b, " %s:%s", s.Name, ss.Reason)
		}
	}
	return b.String()
}

// checkFinished: a finished run is succeeded, failed or terminated, and
// none of its steps is still pending, running or suspending.
func (fr *fuzzRun) checkFinished() {
	st := fr.run.Status
	if !st.Finished {
		return
	}
	switch st.Phase {
	case v1alpha1.WorkflowRunSucceeded, v1alpha1.WorkflowRunFailed, v1alpha1.WorkflowRunTerminated:
	default:
		fr.fatalf("finished run is %s", st.Phase)
	}
	for _, s := range st.Steps {
		for _, ss := range append([]v1alpha1.StepStatus{s.StepStatus}, s.SubStepsStatus...) {
			switch ss.Phase {
			case v1alpha1.WorkflowStepPhaseSucceeded, v1alpha1.WorkflowStepPhaseFailed, v1alpha1.WorkflowStepPhaseSkipped:
			default:
				fr.fatalf("the run is finished (%s) but step %s is %s", st.Phase, ss.Name, ss.Phase)
			}
		}
	}
}

// phases is the run's phase and every step's, for comparing.
func (fr *fuzzRun) phases() string {
	st := fr.run.Status
	var b strings.Builder
	fmt.Fprintf(&b, "%s finished=%v", st.Phase, st.Finished)
	for _, s := range st.Steps {
		fmt.Fprintf(&b, " %s=%s", s.Name, s.Phase)
		for _, c := range s.SubStepsStatus {
			fmt.Fprintf(&b, " %s=%s", c.Name, c.Phase)
		}
	}
	return b.String()
}

func (fr *fuzzRun) advance(d time.Duration) {
	fr.mu.Lock()
	defer fr.mu.Unlock()
	fr.now = fr.now.Add(d)
}

// stepArg picks the step an operation names: none (the whole run), any
// step, or most often a step in one of the phases the operation acts on.
func (fr *fuzzRun) stepArg(phases ...v1alpha1.WorkflowStepPhase) string {
	switch fr.in.intn(4) {
	case 0:
		return ""
	case 1:
		return fr.names[fr.in.intn(len(fr.names))]
	}
	var match []string
	for _, n := range fr.names {
		if ss := fr.stepStatus(n); ss != nil && slices.Contains(phases, ss.Phase) {
			match = append(match, n)
		}
	}
	if len(match) == 0 {
		return fr.names[fr.in.intn(len(fr.names))]
	}
	return match[fr.in.intn(len(match))]
}

// play runs the operations of the rest of the input, then a few ticks.
func (fr *fuzzRun) play() {
	// frozen is the phases of the run once it finished, "" while it may
	// still change; calls the op calls made until then.
	frozen, calls := "", 0
	// held are the steps an operator suspended, until the next resume,
	// terminate, restart or retry-from.
	held := map[string]bool{}
	check := func(what string) {
		for name := range held {
			ss := fr.stepStatus(name)
			if ss == nil || (ss.Phase != v1alpha1.WorkflowStepPhaseSuspending && !fr.timedOut(ss)) {
				phase, reason := v1alpha1.WorkflowStepPhase("no status"), ""
				if ss != nil {
					phase, reason = ss.Phase, ss.Reason
				}
				fr.fatalf("step %s was suspended by the operator and not resumed, but a tick made it %s (%s)", name, phase, reason)
			}
		}
		if frozen == "" {
			if fr.run.Status.Finished {
				frozen, calls = fr.phases(), fr.callCount()
			}
			return
		}
		if got := fr.phases(); got != frozen {
			fr.fatalf("%s changed a finished run:\n got %s\nwant %s", what, got, frozen)
		}
		if got := fr.callCount(); got != calls {
			fr.fatalf("%s called %d ops on a finished run", what, got-calls)
		}
	}
	for n := 0; n < 80 && fr.in.left(); n++ {
		var what string
		var err error
		switch code := fr.in.intn(16); code {
		case 0, 1, 2, 3, 12, 13:
			what = "tick"
		case 4:
			d := time.Duration(1+fr.in.intn(120)) * time.Second
			what = "advance " + d.String()
			fr.advance(d)
		case 5, 14, 15:
			what = "wait"
			if fr.wake.IsZero() {
				fr.advance(time.Second)
			} else {
				fr.mu.Lock()
				fr.now = fr.wake
				fr.mu.Unlock()
			}
		case 6:
			s := fr.stepArg(v1alpha1.WorkflowStepPhaseSuspending)
			what = "resume " + s
			err = engine.Resume(&fr.run.Status, s)
			if err == nil {
				clear(held)
			}
		case 7:
			s := fr.stepArg(v1alpha1.WorkflowStepPhaseRunning)
			what = "suspend " + s
			err = engine.Suspend(&fr.run.Status, s)
			if err == nil && s != "" {
				held[s] = true
			}
		case 8:
			s := fr.stepArg(v1alpha1.WorkflowStepPhaseRunning, v1alpha1.WorkflowStepPhaseSuspending)
			what = "terminate " + s
			err = engine.Terminate(&fr.run.Status, s, fr.now)
			clear(held)
		case 9:
			what = "restart"
			engine.Restart(&fr.run.Status)
			frozen = ""
			clear(held)
		case 10:
			s := fr.names[fr.in.intn(len(fr.names))]
			what = "retry-from " + s
			err = engine.RetryFrom(&fr.run.Status, fr.g, s, nil)
			frozen = ""
			clear(held)
		case 11:
			v := fr.in.intn(2) == 1
			what = fmt.Sprintf("context flag %v", v)
			err = engine.SetContext(&fr.run.Status, fr.j, "flag", v)
		}
		if err != nil {
			what += " (" + err.Error() + ")"
		}
		fr.log = append(fr.log, what)
		if what == "tick" {
			fr.tick()
			fr.log = append(fr.log, "  "+fr.phases())
			check(what)
			// Nothing changed: a second tick at the same instant changes
			// nothing either.
			before := fr.detail()
			fr.tick()
			if got := fr.detail(); got != before {
				fr.fatalf("a second tick at the same instant changed the run:\n got %s\nwant %s", got, before)
			}
		}
	}
	for i := 0; i < 3; i++ {
		fr.log = append(fr.log, "tick (final)")
		fr.tick()
		fr.log = append(fr.log, "  "+fr.phases())
		check("tick")
		if !fr.wake.IsZero() {
			fr.mu.Lock()
			fr.now = fr.wake
			fr.mu.Unlock()
		}
	}
}

func (fr *fuzzRun) spec() string {
	b, _ := json.MarshalIndent(fr.run.Spec, "", "  ")
	return string(b)
}

func (fr *fuzzRun) fatalf(format string, args ...any) {
	fr.t.Helper()
	fr.t.Fatalf("%s\n\nrun spec:\n%s\n\noperations:\n%s", fmt.Sprintf(format, args...), fr.spec(), strings.Join(fr.log, "\n"))
}
