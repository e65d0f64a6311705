package eval

import (
	"fmt"
	"sort"
	"strconv"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/ast/astutil"
	"cuelang.org/go/cue/parser"
	"cuelang.org/go/cue/token"
)

// Templates written for an older CUE (as many community definitions are)
// are upgraded when they are compiled, on the syntax tree, so positions in
// errors stay those of the source:
//
//   - `a + b` on two lists, which CUE dropped in v0.11, becomes
//     list.Concat([a, b]) (importing "list" when the template does not).
//     Only an addition whose operands are lists whatever the inputs is
//     rewritten: list literals and comprehensions, a reference to a field,
//     let or alias whose value is one (parameter.env with env?: [...string]),
//     disjunctions of lists, and additions already rewritten. Any other
//     `+` (numbers, strings, references whose kind only evaluation knows)
//     is left as written.
//   - an import the template never uses, which CUE refuses, is dropped.
//
// Each change is a warning: compiling goes on, and the definition
// reconciler reports them on the definition (see Rewrites).

// maxRefChain bounds how many references listValued follows, so that a
// reference cycle (a: b, b: a) ends.
const maxRefChain = 16

// Rewrites lists the changes compiling def makes to its template, one line
// each with its position: what `def vet` and a definition's status show.
// It returns the template's syntax error if it does not parse (Check
// reports that one).
func Rewrites(def Definition) ([]string, error) {
	if err := checkSourceNesting(def.filename(), []byte(def.Template), defaultMaxNesting); err != nil {
		return nil, err
	}
	f, err := parser.ParseFile(def.filename(), def.Template)
	if err != nil {
		return nil, err
	}
	// The caller (the definition reconciler) runs outside the evaluator's
	// boundary: a panic on some syntax tree must not take it down.
	var warnings []string
	if err := catch(func() { warnings = upgrade(f) }); err != nil {
		return nil, fmt.Errorf("%s: upgrading the template: %v", def.filename(), err)
	}
	return warnings, nil
}

// defaultMaxNesting is Options.MaxNesting's default.
const defaultMaxNesting = 100

// upgrade rewrites f in place (see above) and returns a warning per change,
// in source order.
func upgrade(f *ast.File) []string {
	u := &upgrader{file: f, concats: map[*ast.CallExpr]token.Pos{}}
	astutil.Apply(f, nil, func(c astutil.Cursor) bool {
		if x, ok := c.Node().(*ast.BinaryExpr); ok && x.Op == token.ADD &&
			u.listValued(x.X, 0) && u.listValued(x.Y, 0) {
			c.Replace(u.concat(x))
		}
		return true
	})
	type warning struct {
		pos token.Pos
		msg string
	}
	var ws []warning
	for _, pos := range u.concats {
		ws = append(ws, warning{pos, fmt.Sprintf("%s: list addition (+) rewritten to list.Concat: CUE since v0.11 has no arithmetic on lists", pos)})
	}
	for _, spec := range dropUnusedImports(f) {
		ws = append(ws, warning{spec.Pos(), fmt.Sprintf("%s: unused import %s removed", spec.Pos(), spec.Path.Value)})
	}
	sort.SliceStable(ws, func(i, j int) bool { return ws[i].pos.Compare(ws[j].pos) < 0 })
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = w.msg
	}
	return out
}

type upgrader struct {
	file *ast.File
	// list is the identifier of the "list" import, once one is needed.
	list *ast.ImportSpec
	// concats are the list.Concat calls made, outermost ones only, with
	// the position of the first + each replaced.
	concats map[*ast.CallExpr]token.Pos
}

// concat returns list.Concat([x.X..., x.Y...]) for a list addition, taking
// in the operands of additions rewritten before: a + b + c is one call.
func (u *upgrader) concat(x *ast.BinaryExpr) *ast.CallExpr {
	var lists []ast.Expr
	at := x.OpPos
	for _, operand := range []ast.Expr{x.X, x.Y} {
		if call, ok := operand.(*ast.CallExpr); ok {
			if pos, ours := u.concats[call]; ours {
				lists = append(lists, call.Args[0].(*ast.ListLit).Elts...)
				delete(u.concats, call)
				if pos.Compare(at) < 0 {
					at = pos
				}
				continue
			}
		}
		lists = append(lists, operand)
	}
	spec := u.listImport()
	name, _ := astutil.ParseImportSpec(spec)
	fun := &ast.SelectorExpr{X: &ast.Ident{Name: name.Ident, Node: spec}, Sel: ast.NewIdent("Concat")}
	ast.SetPos(fun, x.Pos())
	call := &ast.CallExpr{Fun: fun, Args: []ast.Expr{&ast.ListLit{Elts: lists}}}
	ast.SetPos(call, x.Pos())
	u.concats[call] = at
	return call
}

// listImport returns the file's import of "list", adding one when it has
// none, under a name no identifier of the file uses.
func (u *upgrader) listImport() *ast.ImportSpec {
	if u.list != nil {
		return u.list
	}
	for spec := range u.file.ImportSpecs() {
		if spec.Path.Value == strconv.Quote("list") {
			u.list = spec
			return spec
		}
	}
	used := map[string]bool{}
	ast.Walk(u.file, func(n ast.Node) bool {
		if id, ok := n.(*ast.Ident); ok {
			used[id.Name] = true
		}
		return true
	}, nil)
	name := "list"
	for used[name] {
		name += "_"
	}
	spec := &ast.ImportSpec{Path: ast.NewString("list")}
	if name != "list" {
		spec.Name = ast.NewIdent(name)
	}
	u.list = spec
	for _, d := range u.file.Decls {
		if imp, ok := d.(*ast.ImportDecl); ok {
			imp.Specs = append(imp.Specs, spec)
			u.file.Imports = append(u.file.Imports, spec)
			return spec
		}
	}
	at := 0
	for at < len(u.file.Decls) {
		switch u.file.Decls[at].(type) {
		case *ast.Package, *ast.Attribute, *ast.CommentGroup:
			at++
			continue
		}
		break
	}
	decls := append([]ast.Decl{}, u.file.Decls[:at]...)
	decls = append(decls, &ast.ImportDecl{Specs: []*ast.ImportSpec{spec}})
	u.file.Decls = append(decls, u.file.Decls[at:]...)
	u.file.Imports = append(u.file.Imports, spec)
	return spec
}

// listValued reports whether x is a list whatever the template's inputs,
// as far as the syntax tells.
func (u *upgrader) listValued(x ast.Expr, refs int) bool {
	switch x := x.(type) {
	case *ast.ListLit:
		return true
	case *ast.ParenExpr:
		return u.listValued(x.X, refs)
	case *ast.UnaryExpr:
		return x.Op == token.MUL && u.listValued(x.X, refs) // a default: *[] | ...
	case *ast.BinaryExpr:
		switch x.Op {
		case token.OR:
			return u.listValued(x.X, refs) && u.listValued(x.Y, refs)
		case token.AND:
			return u.listValued(x.X, refs) || u.listValued(x.Y, refs)
		}
	case *ast.CallExpr:
		_, ours := u.concats[x]
		return ours
	case *ast.Ident, *ast.SelectorExpr:
		if refs >= maxRefChain {
			return false
		}
		for _, v := range u.values(x, refs+1) {
			if u.listValued(v, refs+1) {
				return true
			}
		}
	}
	return false
}

// values returns the expressions a reference (a, a.b.c) stands for: the
// values of the fields, lets or aliases it resolves to in the file. A
// field declared more than once has one value per declaration. It returns
// none for references it cannot follow (imports, other files, computed
// structs).
func (u *upgrader) values(ref ast.Expr, refs int) []ast.Expr {
	if refs >= maxRefChain {
		return nil
	}
	switch ref := ref.(type) {
	case *ast.ParenExpr:
		return u.values(ref.X, refs+1)
	case *ast.Ident:
		switch n := ref.Node.(type) {
		case *ast.Field:
			return []ast.Expr{n.Value}
		case *ast.LetClause:
			return []ast.Expr{n.Expr}
		case *ast.Alias:
			return []ast.Expr{n.Expr}
		case ast.Expr:
			return []ast.Expr{n}
		}
	case *ast.SelectorExpr:
		name, _, err := ast.LabelName(ref.Sel)
		if err != nil {
			return nil
		}
		var out []ast.Expr
		for _, parent := range u.values(ref.X, refs+1) {
			st, ok := parent.(*ast.StructLit)
			if !ok {
				continue
			}
			for _, d := range st.Elts {
				if f, ok := d.(*ast.Field); ok {
					if l, _, err := ast.LabelName(f.Label); err == nil && l == name {
						out = append(out, f.Value)
					}
				}
			}
		}
		return out
	}
	return nil
}

// dropUnusedImports removes the imports no identifier of f refers to, as
// CUE's loader decides it (see build.Instance's "imported and not used"),
// and returns them.
func dropUnusedImports(f *ast.File) []*ast.ImportSpec {
	unresolved := map[string]bool{}
	for _, id := range f.Unresolved {
		unresolved[id.Name] = true
	}
	referred := map[*ast.ImportSpec]bool{}
	ast.Walk(f, func(n ast.Node) bool {
		if id, ok := n.(*ast.Ident); ok {
			if spec, ok := id.Node.(*ast.ImportSpec); ok {
				referred[spec] = true
			}
		}
		return true
	}, nil)
	var dropped []*ast.ImportSpec
	unused := func(spec *ast.ImportSpec) bool {
		info, err := astutil.ParseImportSpec(spec)
		if err != nil || info.Ident == "_" || unresolved[info.Ident] || referred[spec] {
			return false
		}
		dropped = append(dropped, spec)
		return true
	}
	decls := f.Decls[:0]
	for _, d := range f.Decls {
		if imp, ok := d.(*ast.ImportDecl); ok {
			specs := imp.Specs[:0]
			for _, spec := range imp.Specs {
				if !unused(spec) {
					specs = append(specs, spec)
				}
			}
			imp.Specs = specs
			if len(specs) == 0 {
				continue
			}
		}
		decls = append(decls, d)
	}
	f.Decls = decls
	if len(dropped) > 0 {
		imports := f.Imports[:0]
		for _, spec := range f.Imports {
			if !containsSpec(dropped, spec) {
				imports = append(imports, spec)
			}
		}
		f.Imports = imports
	}
	return dropped
}

func containsSpec(specs []*ast.ImportSpec, spec *ast.ImportSpec) bool {
	for _, s := range specs {
		if s == spec {
			return true
		}
	}
	return false
}
