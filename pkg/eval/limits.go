package eval

import (
	"errors"
	"fmt"
	"math"
	"strconv"

	"cuelang.org/go/cue/ast"
	cueerrors "cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/parser"
	"cuelang.org/go/cue/token"
)

// What users write reaches CUE through the functions in this file: an
// expression is parsed by parseExpr, a template or JSON document is checked
// by checkNesting, and Go data (parameters, context, op results) is copied
// by plainData. Each refuses what CUE cannot be trusted with.

// parseExpr parses a user's expression (an if, an output's valueFrom).
// CUE's parser gives up on some inputs ("x ==== y") by returning no
// expression and no error, and on others returns a partial expression with
// BadExpr nodes; neither may reach BuildExpr. Its expression mode also
// dereferences settings only files have ("== x", "x..."): such a panic is
// a syntax error too.
func parseExpr(filename, src string) (ast.Expr, error) {
	var x ast.Expr
	var err error
	if perr := catch(func() { x, err = parser.ParseExpr(filename, src) }); perr != nil {
		return nil, errors.New("not a CUE expression")
	}
	if err != nil {
		return nil, errors.New(describe(err))
	}
	if x == nil {
		return nil, errors.New("not a CUE expression")
	}
	var bad ast.Node
	ast.Walk(x, func(n ast.Node) bool {
		switch n.(type) {
		case *ast.BadExpr, *ast.BadDecl:
			if bad == nil {
				bad = n
			}
		}
		return bad == nil
	}, nil)
	if bad != nil {
		return nil, fmt.Errorf("syntax error at %s", posString(bad.Pos()))
	}
	return x, nil
}

// checkNesting returns an error when structs and lists in n nest deeper
// than max, naming the position of the first literal too deep. CUE
// evaluates nesting recursively; a 20,000-deep struct ties up a shard.
func checkNesting(n ast.Node, max int) error {
	depth := 0
	var deep token.Pos
	var tooDeep bool
	nests := func(n ast.Node) bool {
		switch n.(type) {
		case *ast.StructLit, *ast.ListLit:
			return true
		}
		return false
	}
	ast.Walk(n, func(n ast.Node) bool {
		if tooDeep {
			return false
		}
		if nests(n) {
			depth++
			if depth > max {
				tooDeep, deep = true, n.Pos()
				return false
			}
		}
		return true
	}, func(n ast.Node) {
		if nests(n) && !tooDeep {
			depth--
		}
	})
	if tooDeep {
		return cueerrors.Newf(deep, "structs and lists nest deeper than %d levels", max)
	}
	return nil
}

// plainData returns v (parameters, context or an op's results) ready to be
// filled into a template: the float64s that encoding/json produces for
// whole numbers become int64s, so that they unify with int fields of the
// schemas as they would had CUE read the JSON itself. v is never modified:
// maps and slices that change are copied (concurrent steps share their
// inputs). Maps and slices nested deeper than max are refused, naming the
// path under name where the limit was reached.
func plainData(name string, v any, max int) (any, error) {
	d := dataCopier{max: max}
	out, _ := d.copy(v, 0)
	if d.deep != nil {
		return nil, fmt.Errorf("%s%s: maps and lists nest deeper than %d levels", name, pathString(d.deep), max)
	}
	return out, nil
}

type dataCopier struct {
	max  int
	path []string
	deep []string // the path where max was exceeded
}

// copy returns v with whole numbers as int64s and whether that differs
// from v.
func (d *dataCopier) copy(v any, depth int) (any, bool) {
	if d.deep != nil {
		return v, false
	}
	switch x := v.(type) {
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int64(x), true
		}
	case map[string]any:
		if depth == d.max {
			d.deep = append([]string(nil), d.path...)
			return v, false
		}
		var out map[string]any
		for k, e := range x {
			d.path = append(d.path, k)
			c, changed := d.copy(e, depth+1)
			d.path = d.path[:len(d.path)-1]
			if changed {
				if out == nil {
					out = make(map[string]any, len(x))
					for k, e := range x {
						out[k] = e
					}
				}
				out[k] = c
			}
		}
		if out != nil {
			return out, true
		}
	case []any:
		if depth == d.max {
			d.deep = append([]string(nil), d.path...)
			return v, false
		}
		var out []any
		for i, e := range x {
			d.path = append(d.path, "["+strconv.Itoa(i)+"]")
			c, changed := d.copy(e, depth+1)
			d.path = d.path[:len(d.path)-1]
			if changed {
				if out == nil {
					out = append([]any(nil), x...)
				}
				out[i] = c
			}
		}
		if out != nil {
			return out, true
		}
	}
	return v, false
}

func pathString(p []string) string {
	s := ""
	for _, e := range p {
		if len(e) > 0 && e[0] == '[' {
			s += e
		} else {
			s += "." + e
		}
	}
	return s
}
