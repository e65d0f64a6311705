package eval

import (
	"errors"
	"fmt"
	"math"
	"strconv"

	"cuelang.org/go/cue/ast"
	cueerrors "cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/parser"
	"cuelang.org/go/cue/scanner"
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

// checkSourceNesting bounds nesting in a template's source before it is
// parsed: CUE's parser takes about a second for 20,000 levels and several
// for 200,000, all of it inside the shard's lock. It
// counts brackets and chains of labels (a: b: c: 1 nests structs without
// braces) in one pass of CUE's scanner; checkNesting checks the parsed
// AST exactly.
func checkSourceNesting(filename string, src []byte, limit int) error {
	var s scanner.Scanner
	s.Init(token.NewFile(filename, -1, len(src)), src, nil, 0)
	// chains counts, per open bracket, the structs made by labels chained
	// with colons in the current field: a: b: c: 1 makes two.
	chains := []int{-1}
	depth := 0
	for {
		pos, tok, _ := s.Scan()
		top := &chains[len(chains)-1]
		switch tok {
		case token.EOF:
			return nil
		case token.LBRACE, token.LBRACK, token.LPAREN:
			chains = append(chains, -1)
			depth++
		case token.RBRACE, token.RBRACK, token.RPAREN:
			if len(chains) > 1 {
				depth -= max(*top, 0) + 1
				chains = chains[:len(chains)-1]
			}
		case token.COLON:
			if *top++; *top > 0 {
				depth++
			}
		case token.COMMA:
			depth -= max(*top, 0)
			*top = -1
		}
		if depth > limit {
			return cueerrors.Newf(pos, "structs and lists nest deeper than %d levels", limit)
		}
	}
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
