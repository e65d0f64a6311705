package eval

import (
	"fmt"
	"strings"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/format"
)

// CUE returns the evaluated template as CUE source, for `stepflow def
// render`: each field with its value as far as evaluation got, references
// resolved and defaults taken. A type not filled yet shows as the type
// (statusCode: int); a field that waits for a value not there yet (an op
// result that was not filled) shows as _ with a comment saying what it
// lacks. Definitions and hidden fields (#provider, #do) are left out.
func (v *Value) CUE() (string, error) {
	var out []byte
	var ferr error
	err := v.use("formatting the evaluated template", func(_ *shard, x cue.Value) {
		st, err := renderStruct(x, 0)
		if err != nil {
			ferr = err
			return
		}
		out, ferr = format.Node(&ast.File{Decls: st.Elts}, format.Simplify())
	})
	if err != nil {
		return "", err
	}
	return string(out), ferr
}

// renderStruct renders the regular fields of struct x one by one: the
// exporter shows a struct with any field still incomplete (or the root,
// which has imports) as the template's expressions, not their values.
func renderStruct(x cue.Value, depth int) (*ast.StructLit, error) {
	it, err := x.Fields()
	if err != nil {
		return nil, fmt.Errorf("evaluated template: %s", describe(err))
	}
	st := &ast.StructLit{}
	for it.Next() {
		e, err := renderValue(it.Value(), depth+1)
		if err != nil {
			return nil, err
		}
		st.Elts = append(st.Elts, &ast.Field{Label: ast.NewStringLabel(it.Selector().Unquoted()), Value: e})
	}
	return st, nil
}

// maxRenderDepth bounds how deep render descends into structs; deeper
// ones are shown as CUE exports them.
const maxRenderDepth = 64

func renderValue(x cue.Value, depth int) (ast.Expr, error) {
	if depth < maxRenderDepth && x.IncompleteKind() == cue.StructKind && x.Validate(cue.Concrete(true)) != nil {
		return renderStruct(x, depth)
	}
	if e, ok := x.Syntax(cue.Final()).(ast.Expr); ok && !hasLet(e) {
		return e, nil
	}
	// An expression over a value not there yet: CUE shows it as a let
	// over the referenced op, which says less than the reason.
	e := ast.NewIdent("_")
	why := "not known yet"
	if err := x.Validate(cue.Concrete(true)); err != nil {
		why = strings.ReplaceAll(describe(err), "\n", "; ")
	}
	ast.AddComment(e, &ast.CommentGroup{Line: true, Position: 10, List: []*ast.Comment{{Text: "// " + why}}})
	return e, nil
}

// hasLet says whether e holds a let clause.
func hasLet(e ast.Expr) bool {
	found := false
	ast.Walk(e, func(n ast.Node) bool {
		if _, ok := n.(*ast.LetClause); ok {
			found = true
		}
		return !found
	}, nil)
	return found
}
