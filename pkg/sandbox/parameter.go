package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/stepflow-dev/stepflow/pkg/defschema"
	"github.com/stepflow-dev/stepflow/pkg/eval"
	"github.com/stepflow-dev/stepflow/pkg/op"
)

// ParameterSchema derives a definition's parameter schema in a worker, as
// eval.Evaluator.ParameterSchema does. Work over its time or memory bound
// is an *eval.OverrunError.
func (p *Pool) ParameterSchema(def eval.Definition) (*defschema.Schema, error) {
	d, err := p.once(&message{Kind: kindSchema, Schema: &def}, fmt.Sprintf("definition %q: deriving the parameter's JSON Schema", def.Name))
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
func (p *Pool) ValidateParameters(checks []eval.ParameterCheck) error {
	d, err := p.once(&message{Kind: kindParams, Params: checks}, "checking the steps' properties")
	switch {
	case err != nil:
		return err
	case d.Err != "":
		return errors.New(d.Err)
	case len(d.Problems) > 0:
		return &eval.ParameterError{Problems: d.Problems}
	}
	return nil
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
