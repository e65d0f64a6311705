package eval

import (
	"fmt"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/parser"
)

// Value is an evaluated template. Its methods take the evaluator's CUE lock.
type Value struct {
	e    *Evaluator
	slot int
	sh   *shard
	v    cue.Value
}

// Data returns the concrete part of the value as plain Go data (maps,
// slices, strings, numbers, bools). Fields that are not concrete, such as
// unfilled schemas, are left out.
func (v *Value) Data() (any, error) {
	var out any
	err := v.e.withCUE(v.slot, v.sh, func() { out = concrete(v.v, 0) })
	return out, err
}

// Eval evaluates a CUE expression with the value's fields in scope, as in an
// output's valueFrom ("apply.value.status.podIP"), and returns it as Go data.
func (v *Value) Eval(expr string) (any, error) {
	var out any
	var evalErr error
	err := v.e.withCUE(v.slot, v.sh, func() {
		// BuildExpr, not CompileString: a compiled string is kept in the
		// context's index for good, and with it the whole scope value.
		ast, err := parser.ParseExpr("valueFrom", expr)
		if err != nil {
			evalErr = fmt.Errorf("%q: %s", expr, describe(err))
			return
		}
		x := v.sh.ctx.BuildExpr(ast, cue.Scope(v.v), cue.InferBuiltins(true))
		if err := x.Validate(cue.Concrete(true)); err != nil {
			evalErr = fmt.Errorf("%q: %s", expr, describe(err))
			return
		}
		if err := x.Decode(&out); err != nil {
			evalErr = fmt.Errorf("%q: %s", expr, describe(err))
		}
	})
	if err != nil {
		return nil, err
	}
	return out, evalErr
}

func concrete(v cue.Value, depth int) any {
	if depth > 64 {
		return nil
	}
	switch k := v.IncompleteKind(); {
	case k&cue.StructKind != 0:
		it, err := v.Fields()
		if err != nil {
			return nil
		}
		m := map[string]any{}
		for it.Next() {
			if c := concrete(it.Value(), depth+1); c != nil {
				m[it.Selector().Unquoted()] = c
			}
		}
		return m
	case k&cue.ListKind != 0:
		it, err := v.List()
		if err != nil {
			return nil
		}
		l := []any{}
		for it.Next() {
			l = append(l, concrete(it.Value(), depth+1))
		}
		return l
	}
	if err := v.Validate(cue.Concrete(true)); err != nil {
		return nil
	}
	var x any
	if err := v.Decode(&x); err != nil {
		return nil
	}
	return x
}

// Condition evaluates a boolean CUE expression, such as a step's if, with
// the fields of scope in scope: `status["deploy"].failed`,
// `inputs.approved == "yes"`, `context.env == "prod"`.
func (e *Evaluator) Condition(expr string, scope map[string]any) (bool, error) {
	slot, sh := e.shard()
	var out bool
	var condErr error
	err := e.withCUE(slot, sh, func() {
		sv := sh.ctx.Encode(scope)
		if err := sv.Err(); err != nil {
			condErr = fmt.Errorf("condition scope: %v", err)
			return
		}
		ast, err := parser.ParseExpr("if", expr)
		if err != nil {
			condErr = fmt.Errorf("if %q: %s", expr, describe(err))
			return
		}
		x := sh.ctx.BuildExpr(ast, cue.Scope(sv), cue.InferBuiltins(true))
		b, err := x.Bool()
		if err != nil {
			condErr = fmt.Errorf("if %q: %s", expr, describe(err))
			return
		}
		out = b
	})
	if err != nil {
		return false, fmt.Errorf("if %q: evaluation did not finish within %s", expr, e.opts.EvalTimeout)
	}
	return out, condErr
}
