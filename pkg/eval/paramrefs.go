package eval

import (
	"strings"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	cueerrors "cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/token"
)

// selParamCheck is where checkParameterRefs puts a closed copy of the
// template's parameter, in a value of its own.
var selParamCheck = cue.MakePath(cue.Def("#stepflowParameter"))

// checkParameterRefs reports every reference in f to a field of the
// template's top-level parameter that the parameter cannot have: a typo
// such as \(parameter.nme) where the parameter declares name. In CUE such a
// reference into an open struct is merely incomplete, so the step would
// wait forever for a value no property can give; here it is an error with
// its position, at compile time, so `def vet`, the definition's Ready
// condition and a run of the definition all report it.
//
// A field the parameter could have is fine: a declared or optional one, or
// any field of a struct with a pattern constraint or "...". The check is
// made against a closed copy of the parameter (filled into a definition),
// so CUE's own closedness rules decide. A chain is checked up to its first
// index, call or field that is allowed but not declared. Templates that
// declare no parameter (the implicit one is open) are not checked.
func checkParameterRefs(f *ast.File, v cue.Value) error {
	if !declaresParameter(f) {
		return nil
	}
	param := v.LookupPath(cue.MakePath(cue.Str("parameter")))
	if !param.Exists() {
		return nil
	}
	closed := v.Context().CompileString("_").FillPath(selParamCheck, param).LookupPath(selParamCheck)
	var errs cueerrors.Error
	ast.Walk(f, func(n ast.Node) bool {
		sel, ok := n.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		labels, root := selectorChain(sel)
		if root == nil || root.Name != "parameter" || !isFileScope(root, f) {
			return true
		}
		if i := undefinedIn(closed, labels); i >= 0 {
			errs = cueerrors.Append(errs, cueerrors.Newf(labels[i].pos,
				"reference to parameter.%s, which the parameter does not declare (declared: %s)",
				joinLabels(labels[:i+1]), declaredFields(param, labels[:i])))
		}
		return false
	}, nil)
	return errs
}

// label is one field name in a selector chain, with its position.
type label struct {
	name string
	pos  token.Pos
}

// selectorChain returns the field names of a chain a.b.c (outermost last)
// and its root identifier; root is nil when the chain starts with anything
// else (a call, an index, a literal).
func selectorChain(sel *ast.SelectorExpr) ([]label, *ast.Ident) {
	var rev []label
	var x ast.Expr = sel
	for {
		switch e := x.(type) {
		case *ast.SelectorExpr:
			name, isIdent, err := ast.LabelName(e.Sel)
			if err != nil || !isIdent {
				return nil, nil
			}
			rev = append(rev, label{name: name, pos: e.Sel.Pos()})
			x = e.X
		case *ast.Ident:
			out := make([]label, len(rev))
			for i := range rev {
				out[i] = rev[len(rev)-1-i]
			}
			return out, e
		default:
			return nil, nil
		}
	}
}

// isFileScope reports whether id refers to a field declared at the top of
// f (the template's own parameter), not to a nested field of the same name.
func isFileScope(id *ast.Ident, f *ast.File) bool {
	return id.Scope == nil || id.Scope == f
}

func declaresParameter(f *ast.File) bool {
	for _, d := range f.Decls {
		if fd, ok := d.(*ast.Field); ok {
			if name, _, _ := ast.LabelName(fd.Label); name == "parameter" {
				return true
			}
		}
	}
	return false
}

// undefinedIn walks labels down the closed parameter and returns the
// index of the first field it does not allow, or -1.
func undefinedIn(closed cue.Value, labels []label) int {
	cur := closed
	for i, l := range labels {
		if strings.HasPrefix(l.name, "#") || strings.HasPrefix(l.name, "_") {
			return -1
		}
		s := cue.Str(l.name)
		if !cur.Allows(s) {
			return i
		}
		next := lookupField(cur, s)
		if !next.Exists() || next.IncompleteKind()&cue.StructKind == 0 {
			return -1
		}
		cur = next
	}
	return -1
}

// lookupField returns field s of v, required or optional.
func lookupField(v cue.Value, s cue.Selector) cue.Value {
	if f := v.LookupPath(cue.MakePath(s)); f.Exists() {
		return f
	}
	return v.LookupPath(cue.MakePath(s.Optional()))
}

func joinLabels(ls []label) string {
	names := make([]string, len(ls))
	for i, l := range ls {
		names[i] = l.name
	}
	return strings.Join(names, ".")
}

// declaredFields lists the fields of the parameter at path, for the error
// message.
func declaredFields(param cue.Value, path []label) string {
	cur := param
	for _, l := range path {
		cur = lookupField(cur, cue.Str(l.name))
	}
	var names []string
	if it, err := cur.Fields(cue.Optional(true)); err == nil {
		for it.Next() {
			names = append(names, strings.TrimSuffix(it.Selector().String(), "?"))
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}
