package sandbox

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/stepflow-dev/stepflow/pkg/defschema"
	"github.com/stepflow-dev/stepflow/pkg/eval"
	"github.com/stepflow-dev/stepflow/pkg/op"
)

// ParameterSchema derives a definition's parameter schema in a worker, as
// eval.Evaluator.ParameterSchema does. Work over its time or memory bound
// is an *eval.OverrunError.
func (p *Pool) ParameterSchema(def eval.Definition) (*defschema.Schema, error) {
	known, done := p.templates.enter(def)
	if known != nil {
		return nil, known
	}
	d, err := p.once(&message{Kind: kindSchema, Schema: &def}, fmt.Sprintf("definition %q: deriving the parameter's JSON Schema", def.Name))
	done(err)
	if err != nil {
		return nil, err
	}
	if d.Err != "" {
		return nil, errors.New(d.Err)
	}
	s := new(defschema.Schema)
	if err := json.Unmarshal(d.Schema, s); err != nil {
		return nil, fmt.Errorf("definition %q: the parameter's JSON Schema from the eval worker: %v", def.Name, err)
	}
	return s, nil
}

// ValidateParameters checks steps' properties in a worker, as
// eval.Evaluator.ValidateParameters does: the problems come back as an
// *eval.ParameterError.
//
// A runaway template costs a worker each time it is compiled, so the
// check must not add to what its steps cost: the steps of a template known
// to overrun are not checked, and a template is compiled by one check
// (or Check) at a time until it is known not to (see templateGate). A
// run's steps are checked in one session; when that overruns and the run
// has several templates, each is checked again alone to find the one.
func (p *Pool) ValidateParameters(checks []eval.ParameterCheck) error {
	groups := map[[32]byte][]eval.ParameterCheck{}
	var keys [][32]byte
	for _, c := range checks {
		k := templateKey(c.Definition)
		if _, ok := groups[k]; !ok {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], c)
	}
	// Entered in one order, so that two checks never wait for each other.
	sort.Slice(keys, func(i, j int) bool { return bytes.Compare(keys[i][:], keys[j][:]) < 0 })
	var todo []eval.ParameterCheck
	var open [][32]byte
	dones := map[[32]byte]func(error){}
	for _, k := range keys {
		known, done := p.templates.enter(groups[k][0].Definition)
		if known != nil {
			continue
		}
		open = append(open, k)
		dones[k] = done
		todo = append(todo, groups[k]...)
	}
	if len(todo) == 0 {
		return nil
	}
	problems, err := p.validate(todo)
	var over *eval.OverrunError
	if errors.As(err, &over) && len(open) > 1 {
		problems, err = nil, nil
		for _, k := range open {
			pr, gerr := p.validate(groups[k])
			dones[k](gerr)
			delete(dones, k)
			if errors.As(gerr, &over) {
				continue
			}
			if gerr != nil && err == nil {
				err = gerr
			}
			problems = append(problems, pr...)
		}
	}
	for _, done := range dones {
		done(err)
	}
	if err != nil {
		return err
	}
	if len(problems) > 0 {
		return &eval.ParameterError{Problems: problems}
	}
	return nil
}

// validate runs one ValidateParameters session.
func (p *Pool) validate(checks []eval.ParameterCheck) ([]eval.ParameterProblem, error) {
	d, err := p.once(&message{Kind: kindParams, Params: checks}, "checking the steps' properties")
	switch {
	case err != nil:
		return nil, err
	case d.Err != "":
		return nil, errors.New(d.Err)
	}
	return d.Problems, nil
}

// templateGate keeps a runaway template from costing more than one worker
// in the sessions that compile a definition for itself (Check,
// ParameterSchema, ValidateParameters): until a template is known either
// to compile within the bounds or to overrun, one such session at a time
// compiles it and the others wait for its answer; one known to overrun is
// answered with its overrun at once. Templates are known by content. Its
// zero value is ready.
type templateGate struct {
	mu      sync.Mutex
	overran map[[32]byte]error
	settled map[[32]byte]bool
	busy    map[[32]byte]chan struct{}
}

// maxKnownTemplates bounds the templates remembered; past it, they are
// forgotten all at once.
const maxKnownTemplates = 1024

func templateKey(def eval.Definition) [32]byte {
	return sha256.Sum256([]byte(def.Name + "\x00" + def.Template))
}

// enter returns the overrun of def's template when it is known to overrun.
// Otherwise the caller may compile it and must call done with its
// session's error: an *eval.OverrunError marks the template runaway, no
// error or another answer from the worker settles it, and an interrupted
// session leaves it to the next caller.
func (g *templateGate) enter(def eval.Definition) (known error, done func(error)) {
	k := templateKey(def)
	for {
		g.mu.Lock()
		if err := g.overran[k]; err != nil {
			g.mu.Unlock()
			return err, nil
		}
		if g.settled[k] {
			g.mu.Unlock()
			return nil, func(error) {}
		}
		if ch, ok := g.busy[k]; ok {
			g.mu.Unlock()
			<-ch
			continue
		}
		if g.busy == nil {
			g.busy = map[[32]byte]chan struct{}{}
		}
		ch := make(chan struct{})
		g.busy[k] = ch
		g.mu.Unlock()
		return nil, func(err error) {
			g.mu.Lock()
			defer g.mu.Unlock()
			delete(g.busy, k)
			close(ch)
			var over *eval.OverrunError
			switch {
			case errors.As(err, &over):
				if g.overran == nil || len(g.overran) >= maxKnownTemplates {
					g.overran = map[[32]byte]error{}
				}
				if !strings.Contains(over.Message, fmt.Sprintf("%q", def.Name)) {
					err = &eval.OverrunError{Reason: over.Reason, Message: fmt.Sprintf("definition %q: %s", def.Name, over.Message)}
				}
				g.overran[k] = err
			case errors.Is(err, eval.ErrInterrupted):
			default:
				if g.settled == nil || len(g.settled) >= maxKnownTemplates {
					g.settled = map[[32]byte]bool{}
				}
				g.settled[k] = true
			}
		}
	}
}

// once runs a session that makes no op calls (Check's kind of work) on a
// worker, on another one when its worker dies under it, and says how it
// ended: its done message, or an error naming what (an
// *eval.OverrunError for a session over its bounds, eval.ErrInterrupted
// when no worker could finish it).
func (p *Pool) once(m *message, what string) (*sessionDone, error) {
	var last string
	for i := 0; i < retries; i++ {
		_, e := p.open(context.Background(), m, nil, op.Step{}, op.Env{})
		switch e.fate {
		case fateDone:
			return e.done, nil
		case fateUnsendable:
			return nil, fmt.Errorf("%s: %s", what, e.why)
		case fateTimeout:
			return nil, &eval.OverrunError{Reason: eval.ReasonTimeout,
				Message: fmt.Sprintf("%s: did not finish within %s; its worker process was stopped", what, p.opts.EvalTimeout)}
		case fateMemory:
			return nil, &eval.OverrunError{Reason: eval.ReasonMemory,
				Message: fmt.Sprintf("%s: went over the memory limit of %d MiB; its worker process died", what, p.opts.MemoryLimit>>20)}
		}
		last = e.why
	}
	return nil, fmt.Errorf("%s: %w: %s", what, eval.ErrInterrupted, last)
}

// schemaDone is the end of a ParameterSchema session in the worker.
func schemaDone(s *defschema.Schema, err error) *sessionDone {
	if err != nil {
		return &sessionDone{Err: err.Error()}
	}
	b, err := json.Marshal(s)
	if err != nil {
		return &sessionDone{Err: err.Error()}
	}
	return &sessionDone{Schema: b}
}

// paramsDone is the end of a ValidateParameters session in the worker.
func paramsDone(err error) *sessionDone {
	var perr *eval.ParameterError
	switch {
	case errors.As(err, &perr):
		return &sessionDone{Problems: perr.Problems}
	case err != nil:
		return &sessionDone{Err: err.Error()}
	}
	return &sessionDone{}
}
