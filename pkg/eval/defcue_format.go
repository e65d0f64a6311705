package eval

import (
	"fmt"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/format"
	"cuelang.org/go/cue/parser"
)

// Format writes the definition as a file in `vela def` layout: the
// template's imports, a metadata field named after the definition with
// its type ("workflow-step" when unset) and description, then the template
// field. ParseDefinitionSource reads the file back to the same name, type,
// description and Manifest.
func (s DefinitionSource) Format() ([]byte, error) {
	tmpl := s.Manifest
	if tmpl == "" {
		tmpl = s.Template
	}
	f, err := parser.ParseFile(s.Name+".cue", tmpl, parser.ParseComments)
	if err != nil {
		return nil, fmt.Errorf("definition %q: %s", s.Name, describe(err))
	}
	var imports, body []ast.Decl
	for _, d := range f.Decls {
		switch d.(type) {
		case *ast.ImportDecl:
			imports = append(imports, d)
		case *ast.Package:
			// A package clause has no place inside the template field.
		default:
			body = append(body, d)
		}
	}
	typ := s.Type
	if typ == "" {
		typ = "workflow-step"
	}
	header := &ast.StructLit{Elts: []ast.Decl{
		&ast.Field{Label: ast.NewIdent("type"), Value: ast.NewString(typ)},
		&ast.Field{Label: ast.NewIdent("annotations"), Value: &ast.StructLit{}},
		&ast.Field{Label: ast.NewIdent("labels"), Value: &ast.StructLit{}},
		&ast.Field{Label: ast.NewIdent("description"), Value: ast.NewString(s.Description)},
	}}
	out := &ast.File{Decls: append(imports,
		&ast.Field{Label: ast.NewString(s.Name), Value: header},
		&ast.Field{Label: ast.NewIdent("template"), Value: &ast.StructLit{Elts: body}},
	)}
	b, err := format.Node(out)
	if err != nil {
		return nil, fmt.Errorf("definition %q: formatting: %v", s.Name, err)
	}
	return b, nil
}
