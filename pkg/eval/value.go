package eval

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"cuelang.org/go/cue"
)

// Value is an evaluated template. Its methods take the evaluator's CUE lock.
type Value struct {
	e    *Evaluator
	slot int
	// step and definition are named in errors of the CUE work itself.
	step, definition string
	// rebuild makes v again on another shard, when sh was abandoned.
	rebuild func(sh *shard) (cue.Value, error)

	mu sync.Mutex // guards sh, v, stale
	sh *shard
	v  cue.Value
	// stale means v belongs to an abandoned shard.
	stale bool
}

// use runs fn with the value on its shard, rebuilding it on the
// replacement if the shard was abandoned (another evaluation overran).
func (v *Value) use(what string, fn func(sh *shard, x cue.Value)) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	for lost := 0; ; lost++ {
		var rerr error
		err := v.e.withCUE(context.Background(), v.slot, v.sh, func() {
			if v.stale {
				if v.v, rerr = v.rebuild(v.sh); rerr != nil {
					return
				}
				v.stale = false
			}
			fn(v.sh, v.v)
		})
		switch {
		case err == nil:
			return rerr
		case errors.Is(err, errShardLost) && lost < maxShardLosses && v.rebuild != nil:
			v.sh, v.stale = v.e.shards[v.slot].Load(), true
		default:
			return v.e.stretchError(Where(v.step, v.definition)+what+": ", err)
		}
	}
}

// Data returns the concrete part of the value as plain Go data (maps,
// slices, strings, numbers, bools). Fields that are not concrete, such as
// unfilled schemas, are left out.
func (v *Value) Data() (any, error) {
	var out any
	err := v.use("reading the evaluated template", func(_ *shard, x cue.Value) { out = concrete(x, 0) })
	return out, err
}

// Eval evaluates a CUE expression with the value's fields in scope, as in an
// output's valueFrom ("apply.value.status.podIP"), and returns it as Go data.
func (v *Value) Eval(expr string) (any, error) {
	var out any
	var evalErr error
	err := v.use(fmt.Sprintf("valueFrom %q", expr), func(sh *shard, scope cue.Value) {
		// BuildExpr, not CompileString: a compiled string is kept in the
		// context's index for good, and with it the whole scope value.
		ast, err := parseValueFrom(expr)
		if err != nil {
			evalErr = fmt.Errorf("%q: %v", expr, err)
			return
		}
		x := sh.ctx.BuildExpr(ast, cue.Scope(scope), cue.InferBuiltins(true))
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
	case k&cue.StructKind != 0, k == cue.BottomKind:
		// A struct with an error in a field is bottom as a whole: its
		// other fields are still kept (a failed step's value).
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
	if _, err := parseExpr("if", expr); err != nil {
		return false, fmt.Errorf("if %q: %v", expr, err)
	}
	data, err := plainData("if scope", scope, e.opts.MaxNesting)
	if err != nil {
		return false, fmt.Errorf("if %q: %v", expr, err)
	}
	var out bool
	var condErr error
	err = e.withAnyShard(context.Background(), func(sh *shard) {
		sv := sh.ctx.Encode(data)
		if err := sv.Err(); err != nil {
			condErr = fmt.Errorf("condition scope: %v", err)
			return
		}
		// Parsed again: BuildExpr resolves the identifiers in the AST.
		ast, err := parseExpr("if", expr)
		if err != nil {
			condErr = fmt.Errorf("if %q: %v", expr, err)
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
		return false, e.stretchError(fmt.Sprintf("if %q: ", expr), err)
	}
	return out, condErr
}
