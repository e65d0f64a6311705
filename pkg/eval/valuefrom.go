package eval

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/parser"
)

// parseValueFrom parses an output's valueFrom. Besides an expression it
// takes what KubeVela takes: imports of CUE's standard library before the
// expression, as in
//
//	import "strconv"
//	"Current star count: " + strconv.FormatInt(response["stargazers_count"], 10)
//
// The imports are checked and dropped: the expression is built with
// cue.InferBuiltins, which binds strconv to the package by its name, so
// an import may not rename its package.
func parseValueFrom(src string) (ast.Expr, error) {
	if !strings.HasPrefix(strings.TrimSpace(src), "import") {
		return parseExpr("valueFrom", src)
	}
	var f *ast.File
	var err error
	if perr := catch(func() { f, err = parser.ParseFile("valueFrom", src) }); perr != nil {
		return nil, errors.New("not a CUE expression after its imports")
	}
	if err != nil {
		return nil, errors.New(describe(err))
	}
	var body []ast.Decl
	for _, d := range f.Decls {
		imp, ok := d.(*ast.ImportDecl)
		if !ok {
			body = append(body, d)
			continue
		}
		for _, spec := range imp.Specs {
			path, err := strconv.Unquote(spec.Path.Value)
			if err != nil {
				return nil, fmt.Errorf("import %s at %s: %v", spec.Path.Value, posString(spec.Pos()), err)
			}
			name := path[strings.LastIndex(path, "/")+1:]
			if strings.Contains(strings.SplitN(path, "/", 2)[0], ".") || strings.HasPrefix(path, "vela/") {
				return nil, fmt.Errorf("import %q at %s: a valueFrom may import only CUE's standard library", path, posString(spec.Pos()))
			}
			if spec.Name != nil && spec.Name.Name != name {
				return nil, fmt.Errorf("import %q at %s: a valueFrom may not rename the package (%s)", path, posString(spec.Pos()), spec.Name.Name)
			}
		}
	}
	if len(body) != 1 {
		return nil, fmt.Errorf("want one expression after the imports, found %d declarations", len(body))
	}
	e, ok := body[0].(*ast.EmbedDecl)
	if !ok {
		return nil, fmt.Errorf("want an expression after the imports, found a declaration at %s", posString(body[0].Pos()))
	}
	return parseExpr("valueFrom", src[e.Expr.Pos().Offset():])
}
