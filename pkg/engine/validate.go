package engine

import (
	"encoding/json"
	"errors"

	"github.com/stepflow-dev/stepflow/pkg/eval"
)

// checkProperties checks every step's properties against its definition's
// parameter while no step has begun (the run's status has no steps), so
// that a run whose properties do
// not fit fails at once with all its problems listed, instead of step by
// step after the earlier steps have had their effects. It is one
// evaluator call for the whole run (the definitions are compiled and
// cached for the steps anyway).
//
// Only the problems of properties fail the run (an *eval.ParameterError).
// A step whose type is unknown, whose properties are not a JSON object or
// whose template does not compile is left to fail when it runs, as it
// would without this check; so is a check the evaluator could not finish
// over its bounds. An interrupted check (eval.ErrInterrupted: the
// evaluator's trouble) is returned: no step begins, and the next tick
// checks again.
func (t *tick) checkProperties() error {
	if len(t.in.Run.Status.Steps) > 0 {
		return nil
	}
	var checks []eval.ParameterCheck
	for _, s := range t.g.All() {
		if s.IsGroup() {
			continue
		}
		def, err := t.in.Definitions.Lookup(s.Spec.Type)
		if err != nil {
			continue
		}
		props := map[string]any{}
		if raw := s.Spec.Properties; raw != nil && len(raw.Raw) > 0 {
			if err := json.Unmarshal(raw.Raw, &props); err != nil {
				continue
			}
		}
		c := eval.ParameterCheck{Step: s.Name, Definition: def, Parameters: props,
			Context: t.stepContext(s, t.stepID(s.Name, 1))}
		for _, in := range s.Spec.Inputs {
			if in.ParameterKey != "" {
				c.Later = append(c.Later, in.ParameterKey)
			}
		}
		checks = append(checks, c)
	}
	if len(checks) == 0 {
		return nil
	}
	err := t.in.Evaluator.ValidateParameters(checks)
	var perr *eval.ParameterError
	if errors.As(err, &perr) || errors.Is(err, eval.ErrInterrupted) {
		return err
	}
	return nil
}
