package eval

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"cuelang.org/go/cue"
	cuejson "cuelang.org/go/encoding/json"

	"github.com/stepflow-dev/stepflow/pkg/op"
	"github.com/stepflow-dev/stepflow/stdlib"
)

// Options configure an Evaluator.
type Options struct {
	// Ops resolves op names found in templates. Required.
	Ops op.Catalog
	// EvalTimeout bounds each stretch of CUE work in one evaluation
	// (default 10s).
	EvalTimeout time.Duration
	// Unbounded runs CUE work on the caller's goroutine with no timer:
	// for an evaluator whose whole process is bounded from outside and
	// killed on overrun (an eval worker, pkg/sandbox). Panics are still
	// caught. It saves a goroutine, its stack growth and a timer per
	// stretch of CUE work.
	Unbounded bool
	// MaxRounds bounds the rounds of one evaluation (default 256).
	MaxRounds int
	// Concurrency bounds the op calls of one step run at once (default 8).
	Concurrency int
	// CacheSize bounds the compiled templates kept per shard (default 1024);
	// the least recently used are evicted.
	CacheSize int
	// MaxNesting bounds how deep structs and lists may nest in a template,
	// in parameters and context, and in op results (default 100).
	MaxNesting int
	// Shards is the number of independent CUE contexts evaluations are
	// spread over (default GOMAXPROCS). CUE values are not safe for
	// concurrent use, so one context evaluates one step at a time; shards
	// let steps evaluate on every core.
	Shards int
}

// Evaluator evaluates steps. It is safe for concurrent use.
type Evaluator struct {
	opts   Options
	pkgs   map[string][]stdlib.File
	shards []atomic.Pointer[shard]
	next   atomic.Uint32
}

// shard picks the CUE context for the next piece of work, round robin.
func (e *Evaluator) shard() (int, *shard) {
	i := int(e.next.Add(1)) % len(e.shards)
	return i, e.shards[i].Load()
}

// New returns an Evaluator with the embedded stdlib.
func New(opts Options) (*Evaluator, error) {
	if opts.Ops == nil {
		return nil, errors.New("eval: Options.Ops is required")
	}
	if opts.EvalTimeout <= 0 {
		opts.EvalTimeout = 10 * time.Second
	}
	if opts.MaxRounds <= 0 {
		opts.MaxRounds = 256
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 8
	}
	if opts.CacheSize <= 0 {
		opts.CacheSize = 1024
	}
	if opts.MaxNesting <= 0 {
		opts.MaxNesting = 100
	}
	pkgs, err := stdlib.Packages()
	if err != nil {
		return nil, fmt.Errorf("eval: reading stdlib: %w", err)
	}
	if opts.Shards <= 0 {
		opts.Shards = runtime.GOMAXPROCS(0)
	}
	e := &Evaluator{opts: opts, pkgs: pkgs, shards: make([]atomic.Pointer[shard], opts.Shards)}
	for i := range e.shards {
		e.shards[i].Store(e.newShard())
	}
	return e, nil
}

func (e *Evaluator) newShard() *shard {
	return newShard(e.pkgs, e.opts.CacheSize, e.opts.MaxNesting)
}

// replace puts a fresh shard in sh's slot. An abandoned shard is never used
// again; a retired one only by the evaluations that already hold its
// values.
func (e *Evaluator) replace(slot int, sh *shard, abandon bool) {
	if abandon {
		sh.abandon()
	}
	if e.shards[slot].Load() == sh {
		e.shards[slot].CompareAndSwap(sh, e.newShard())
	}
}

// Request is one evaluation of a step.
type Request struct {
	Definition Definition
	// Parameters are the step's properties: a Go value (map[string]any, ...)
	// or JSON (json.RawMessage or []byte). nil means none.
	Parameters any
	// Context is filled in as context.* (name, namespace, stepName,
	// stepSessionID, run context variables, ...).
	Context map[string]any
	// Step identifies the step attempt; it is passed to every op call.
	Step op.Step
	// Env is passed to every op call.
	Env op.Env
	// Runner runs the op calls; nil means op.Direct.
	Runner op.Runner
	// Outputs are CUE expressions over the evaluated template (outputs[].
	// valueFrom) read into Outcome.Outputs when the step succeeds.
	Outputs []string
	// Data asks for Outcome.Data, the evaluated template as plain data.
	Data bool
}

// evaluation is the state of one Evaluate call.
type evaluation struct {
	e      *Evaluator
	ctx    context.Context
	slot   int
	sh     *shard
	req    Request
	runner op.Runner
	v      cue.Value
	// fills are the op results filled into v after prepare, in order: what
	// rebuilds v on another shard.
	fills []fill
	// stale means v belongs to an abandoned shard and must be rebuilt.
	stale bool
	done  map[string]bool
	out   Outcome
	ended bool
}

// fill is one op's results, filled into the call at path: at $returns and,
// for a flat-dialect call, at the fields its schema's #results names.
type fill struct {
	path cue.Path
	data any
	// results maps a field of the call to the field of $returns it
	// receives ("" for all of $returns): the call's #results.
	results map[string]string
}

// value encodes f on ctx. Results are filled from outside, never copied by
// a reference inside the op's definition: a reference inside a definition
// closes the struct it reaches, and a field absent from a closed struct is
// an error, where from open data it is incomplete (the object may not have
// it yet).
func (f fill) value(ctx *cue.Context) cue.Value {
	// Encoded first: FillPath makes a Go nil _ (never concrete), Encode
	// makes it null, as the op returned.
	if f.results == nil {
		return ctx.Encode(f.data)
	}
	m, isMap := f.data.(map[string]any)
	out := make(map[string]any, len(f.results)+1)
	out[selReturns.String()] = f.data
	for field, from := range f.results {
		switch {
		case from == "":
			out[field] = f.data
		case isMap:
			if x, ok := m[from]; ok {
				out[field] = x
			}
		default:
			return f.encodeTyped(ctx)
		}
	}
	return ctx.Encode(out)
}

// encodeTyped is value for results that are a Go struct (an op's typed
// Returns), whose fields are only known once encoded.
func (f fill) encodeTyped(ctx *cue.Context) cue.Value {
	r := ctx.Encode(f.data)
	v := ctx.Encode(map[string]any{}).FillPath(cue.MakePath(selReturns), r)
	for field, from := range f.results {
		x := r
		if from != "" {
			x = r.LookupPath(cue.MakePath(cue.Str(from)))
		}
		if x.Exists() {
			v = v.FillPath(cue.MakePath(cue.Str(field)), x)
		}
	}
	return v
}

// selResults is where a flat-dialect op's schema says which of its fields
// receive its results (stdlib/vela/op).
var selResults = cue.MakePath(cue.Def("#results"))

// resultsInto reads a call's #results: nil when it has none.
func resultsInto(call cue.Value) (map[string]string, error) {
	rv := call.LookupPath(selResults)
	if !rv.Exists() {
		return nil, nil
	}
	var m map[string]string
	if err := rv.Decode(&m); err != nil {
		return nil, fmt.Errorf("reading #results: %w", err)
	}
	return m, nil
}

// Evaluate runs the step to its outcome.
func (e *Evaluator) Evaluate(ctx context.Context, req Request) Outcome {
	slot, sh := e.shard()
	ev := &evaluation{e: e, ctx: ctx, slot: slot, sh: sh, req: req, runner: req.Runner, done: map[string]bool{}}
	if ev.runner == nil {
		ev.runner = op.Direct
	}
	ev.run(ctx)
	ev.out.readValue(req)
	return ev.out
}

func (ev *evaluation) end(phase Phase, reason, msg string) {
	ev.out.Phase, ev.out.Reason, ev.out.Message = phase, reason, msg
	ev.ended = true
}

// failf ends the evaluation as failed, naming the step and definition.
func (ev *evaluation) failf(reason, format string, args ...any) {
	ev.end(Failed, reason, ev.where()+fmt.Sprintf(format, args...))
}

func (ev *evaluation) where() string { return Where(ev.req.Step.StepName, ev.req.Definition.Name) }

// Where names a step and its definition at the start of a message:
// `step "s" (definition "d"): `, or `definition "d": ` with no step.
func Where(step, definition string) string {
	if step != "" {
		return fmt.Sprintf("step %q (definition %q): ", step, definition)
	}
	return fmt.Sprintf("definition %q: ", definition)
}

// cue runs fn on the evaluation's shard and reports whether the evaluation
// goes on. When the shard was abandoned while the evaluation waited for it
// (another evaluation overran), the evaluation moves to the replacement and
// rebuilds its value there first: waiting costs it nothing. Its own overrun
// or a panic in CUE fails the step.
func (ev *evaluation) cue(fn func()) bool {
	for lost := 0; ; lost++ {
		err := ev.e.withCUE(ev.ctx, ev.slot, ev.sh, func() {
			if ev.stale {
				ev.stale = false
				ev.rebuild()
				if ev.ended {
					return
				}
			}
			fn()
		})
		var perr *panicError
		switch {
		case err == nil:
			return !ev.ended
		case errors.Is(err, errShardLost) && lost < maxShardLosses:
			ev.sh = ev.e.shards[ev.slot].Load()
			ev.stale = ev.v.Exists()
		case errors.Is(err, errShardLost):
			ev.end(Broken, ReasonTimeout, ev.where()+"the evaluator was reset too often by other evaluations overrunning; try again")
			return false
		case errors.Is(err, errTimeout):
			ev.failf(ReasonTimeout, "CUE evaluation did not finish within %s", ev.e.opts.EvalTimeout)
			return false
		case errors.As(err, &perr):
			ev.failf(ReasonTemplate, "CUE failed evaluating the template: %v", perr)
			return false
		default:
			ev.end(Broken, ReasonOp, ev.where()+"evaluation cancelled: "+err.Error())
			return false
		}
	}
}

// rebuild makes ev.v again on ev.sh: the template filled with parameters,
// context and the op results so far.
func (ev *evaluation) rebuild() {
	ev.prepare()
	for _, f := range ev.fills {
		if ev.ended {
			return
		}
		ev.v = ev.v.FillPath(f.path, f.value(ev.sh.ctx))
	}
	ev.out.Value = ev.value()
}

// value is the evaluated template as it stands, for the outcome.
func (ev *evaluation) value() *Value {
	return &Value{e: ev.e, slot: ev.slot, step: ev.req.Step.StepName, definition: ev.req.Definition.Name,
		sh: ev.sh, v: ev.v, rebuild: ev.rebuilder()}
}

// rebuilder returns a function that makes the value as it stands now again
// on another shard, for a Value that outlives its shard.
func (ev *evaluation) rebuilder() func(sh *shard) (cue.Value, error) {
	fills := ev.fills[:len(ev.fills):len(ev.fills)]
	req := ev.req
	return func(sh *shard) (cue.Value, error) {
		re := &evaluation{e: ev.e, ctx: context.Background(), slot: ev.slot, sh: sh, req: req, fills: fills}
		re.rebuild()
		if re.ended {
			return cue.Value{}, errors.New(re.out.Message)
		}
		return re.v, nil
	}
}

func (ev *evaluation) run(ctx context.Context) {
	if !ev.cue(ev.prepare) {
		return
	}
	for round := 0; ; round++ {
		if err := ctx.Err(); err != nil {
			ev.end(Broken, ReasonOp, ev.where()+"evaluation cancelled: "+err.Error())
			return
		}
		if round == ev.e.opts.MaxRounds {
			ev.failf(ReasonTemplate, "op calls did not settle after %d rounds", round)
			return
		}
		var p plan
		if !ev.cue(func() { p = ev.plan() }) {
			return
		}
		switch {
		case p.control != nil:
			res, err := ev.call(ctx, p.control.call)
			if !ev.finish(ctx, []*planned{p.control}, []op.Result{res}, []error{err}) {
				return
			}
		case len(p.batch) > 0:
			results, errs := ev.runBatch(ctx, p.batch)
			if !ev.finish(ctx, p.batch, results, errs) {
				return
			}
		case len(p.pending) > 0:
			ev.stuck(p.pending)
			return
		default:
			ev.cue(ev.succeed)
			return
		}
	}
}

// prepare compiles the template and fills parameter and context.
func (ev *evaluation) prepare() {
	base, err := ev.sh.compile(ev.req.Definition)
	if err != nil {
		ev.failf(ReasonTemplate, "%s", describe(err))
		return
	}
	// Each FillPath evaluates the whole template again, so parameter and
	// context given as Go data go in together, in one.
	v := base
	fill := make(map[string]any, 2)
	switch p := ev.req.Parameters.(type) {
	case nil:
	case json.RawMessage:
		v = ev.fillJSON(v, p)
	case []byte:
		v = ev.fillJSON(v, p)
	default:
		data, err := plainData("parameter", p, ev.e.opts.MaxNesting)
		if err != nil {
			ev.failf(ReasonParameter, "%v", err)
			return
		}
		fill["parameter"] = data
	}
	if ev.ended {
		return
	}
	if ev.req.Context != nil {
		data, err := plainData("context", ev.req.Context, ev.e.opts.MaxNesting)
		if err != nil {
			ev.failf(ReasonParameter, "%v", err)
			return
		}
		fill["context"] = data
	}
	if len(fill) > 0 {
		// Encoded first: FillPath makes a Go nil _, Encode makes it null.
		v = v.FillPath(cue.Path{}, ev.sh.ctx.Encode(fill))
	}
	params := v.LookupPath(cue.MakePath(cue.Str("parameter")))
	if err := params.Validate(); err != nil {
		ev.failf(ReasonParameter, "invalid parameter: %s", describe(err))
		return
	}
	if err := params.Validate(cue.Concrete(true)); err != nil {
		ev.failf(ReasonParameter, "missing parameter: %s", describe(err))
		return
	}
	if err := v.Validate(); err != nil {
		if err := undecided(err, v, ev.req.Definition); err != nil {
			// The value as far as it goes, for debugging the failure.
			ev.v = v
			ev.out.Value = ev.value()
			ev.failf(ReasonTemplate, "%s", describe(err))
			return
		}
	}
	ev.v = v
	ev.out.Value = ev.value()
}

func (ev *evaluation) fillJSON(v cue.Value, data []byte) cue.Value {
	if len(data) == 0 {
		return v
	}
	if !json.Valid(data) { // checked first: Extract parses CUE before JSON
		ev.failf(ReasonParameter, "properties are not valid JSON")
		return v
	}
	expr, err := cuejson.Extract("properties", data)
	if err != nil {
		ev.failf(ReasonParameter, "properties are not valid JSON: %v", err)
		return v
	}
	if expr == nil {
		ev.failf(ReasonParameter, "properties are not valid JSON")
		return v
	}
	if err := checkNesting(expr, ev.e.opts.MaxNesting); err != nil {
		ev.failf(ReasonParameter, "properties: %s", describe(err))
		return v
	}
	return v.FillPath(cue.MakePath(cue.Str("parameter")), ev.sh.ctx.BuildExpr(expr))
}

// planned is a call chosen to run, with the site it came from.
type planned struct {
	site site
	call *op.Call
}

type pendingCall struct {
	site site
	err  error
}

// plan is what one round will do: one control op alone, or a batch of
// ready non-control calls. pending are the calls that cannot run yet.
type plan struct {
	control *planned
	batch   []*planned
	pending []pendingCall
}

func (ev *evaluation) plan() (p plan) {
	sites := discover(ev.v, ev.req.Definition.filename())
	for _, s := range sites {
		if ev.done[s.key] {
			continue
		}
		o, ok := ev.e.opts.Ops.Lookup(s.name)
		if !ok {
			ev.failf(ReasonTemplate, "unknown op %s at %s (%s)", s.name, s.key, posString(s.v.Pos()))
			return
		}
		params := o.NewParams()
		if err := decodeParams(s.params, params); err != nil {
			if verr := s.params.Validate(); verr != nil {
				if verr = undecided(verr, ev.v, ev.req.Definition); verr != nil {
					ev.failf(ReasonTemplate, "op %s at %s: %s", s.name, s.key, describe(verr))
					return
				}
			}
			p.pending = append(p.pending, pendingCall{site: s, err: err})
			if o.Class(o.NewParams()) == op.Control {
				return // a barrier: nothing after it runs yet
			}
			continue
		}
		class := o.Class(params)
		if s.class != nil && class != op.Control {
			class = *s.class
		}
		pl := &planned{site: s, call: &op.Call{
			Name: s.name, Path: s.key, Op: o, Params: params, Class: class,
			Step: ev.req.Step, Env: ev.req.Env,
		}}
		if class == op.Control {
			if len(p.batch) == 0 {
				p.control = pl
			}
			return
		}
		p.batch = append(p.batch, pl)
	}
	return p
}

func (ev *evaluation) runBatch(ctx context.Context, batch []*planned) ([]op.Result, []error) {
	results := make([]op.Result, len(batch))
	errs := make([]error, len(batch))
	if len(batch) == 1 {
		results[0], errs[0] = ev.call(ctx, batch[0].call)
		return results, errs
	}
	sem := make(chan struct{}, ev.e.opts.Concurrency)
	var wg sync.WaitGroup
	for i, pl := range batch {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int, c *op.Call) {
			defer wg.Done()
			defer func() { <-sem }()
			results[i], errs[i] = ev.call(ctx, c)
		}(i, pl.call)
	}
	wg.Wait()
	return results, errs
}

// call runs one op call. An op that panics fails the step instead of taking
// the process down.
func (ev *evaluation) call(ctx context.Context, c *op.Call) (res op.Result, err error) {
	perr := catch(func() { res, err = ev.runner.Run(ctx, c) })
	if perr != nil {
		return op.Result{}, op.Permanent(fmt.Errorf("op %s at %s: %w", c.Name, c.Path, perr))
	}
	return res, err
}

// finish records the calls' results in order: the first error or stop ends
// the evaluation; other results are filled into the template.
func (ev *evaluation) finish(ctx context.Context, calls []*planned, results []op.Result, errs []error) bool {
	return ev.cue(func() {
		for i, pl := range calls {
			rec := CallRecord{Op: pl.call.Name, Path: pl.call.Path, Class: pl.call.Class}
			res := results[i]
			if err := errs[i]; err != nil {
				ev.out.Calls = append(ev.out.Calls, rec)
				phase := Broken
				if op.IsPermanent(err) {
					phase = Failed
				}
				ev.end(phase, ReasonOp, fmt.Sprintf("%s%v (%s)", ev.where(), err, posString(pl.site.v.Pos())))
				ev.out.Err = err
				return
			}
			if res.Stop != nil {
				rec.Stop = res.Stop.Kind.String()
			}
			ev.out.Calls = append(ev.out.Calls, rec)
			ev.done[pl.site.key] = true
			if res.Message != "" {
				ev.out.Message = res.Message
			}
			if res.Returns != nil {
				data, err := plainData("$returns", res.Returns, ev.e.opts.MaxNesting)
				if err != nil {
					ev.failf(ReasonOp, "op %s at %s (%s): %v", pl.call.Name, pl.call.Path, posString(pl.site.v.Pos()), err)
					return
				}
				var into map[string]string
				if pl.site.flat {
					if into, err = resultsInto(pl.site.v); err != nil {
						ev.failf(ReasonTemplate, "op %s at %s (%s): %v", pl.call.Name, pl.call.Path, posString(pl.site.v.Pos()), describe(err))
						return
					}
				}
				f := fill{path: pl.site.path, data: data, results: into}
				if into == nil {
					f.path = pl.site.path.Append(selReturns)
				}
				ev.fills = append(ev.fills, f)
				ev.v = ev.v.FillPath(f.path, f.value(ev.sh.ctx))
			}
			if res.Stop != nil {
				ev.stop(res.Stop)
				return
			}
		}
		ev.out.Value = ev.value()
	})
}

func (ev *evaluation) stop(s *op.Stop) {
	ev.out.Value = ev.value()
	switch s.Kind {
	case op.Wait:
		ev.end(Waiting, "", s.Message)
	case op.Suspend:
		ev.end(Suspending, "", s.Message)
		ev.out.SuspendFor = s.Duration
	case op.Fail:
		msg := s.Message
		if msg == "" {
			msg = "the step called #Fail"
		}
		ev.end(Failed, ReasonFail, msg)
	case op.Terminate:
		msg := s.Message
		if msg == "" {
			msg = "the step called #Terminate"
		}
		ev.end(Terminating, ReasonTerminate, msg)
	case op.Break:
		ev.succeed()
		if ev.out.Phase == Succeeded && s.Message != "" {
			ev.out.Message = s.Message
		}
	}
}

// opWait is #ConditionalWait: when its condition cannot be decided yet
// (it reads a field an object does not have yet, such as
// status.readyReplicas of a new Deployment), the step waits.
var opWait = op.Name{Provider: "builtin", Do: "wait"}

// The parameters of #ConditionalWait.
var (
	selContinue = cue.MakePath(cue.Str("continue"))
	selMessage  = cue.MakePath(cue.Str("message"))
)

// stuck ends an evaluation whose remaining calls can never run.
func (ev *evaluation) stuck(pending []pendingCall) {
	ev.cue(func() {
		pc := pending[0]
		if pc.site.name == opWait {
			msg := ""
			if m, err := pc.site.params.LookupPath(selMessage).String(); err == nil {
				msg = m
			} else if err := pc.site.params.LookupPath(selContinue).Validate(cue.Concrete(true)); err != nil {
				// What the condition lacks, at its place in the template
				// (a field an op's result does not have yet).
				msg = "waiting: the condition is not decided yet: " + describe(err)
			} else {
				msg = "waiting: " + describe(pc.err)
			}
			ev.out.Value = ev.value()
			ev.end(Waiting, "", msg)
			return
		}
		ev.failf(ReasonTemplate, "op %s at %s (%s) cannot run: its parameters are incomplete: %s",
			pc.site.name, pc.site.key, posString(pc.site.v.Pos()), describe(pc.err))
	})
}

// succeed ends the evaluation once every call has run.
func (ev *evaluation) succeed() {
	if err := ev.v.Validate(); err != nil {
		if err := undecided(err, ev.v, ev.req.Definition); err != nil {
			ev.failf(ReasonTemplate, "%s", describe(err))
			return
		}
	}
	// Fields left incomplete are fine (unused schema parts), except a
	// reference cycle, which can never resolve.
	if err := findCycle(ev.v, 0); err != nil {
		ev.failf(ReasonTemplate, "%s", describe(err))
		return
	}
	msg := ev.out.Message
	ev.end(Succeeded, "", msg)
	ev.out.Value = ev.value()
}
