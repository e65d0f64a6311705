package eval

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/format"
	"cuelang.org/go/cue/parser"
)

// DefinitionSource is a step or component definition written in CUE, in
// the layout `vela def` uses: imports, a metadata field named after the
// definition ({type: "workflow-step" or "component", description: ...})
// and a template field. Type says which ("" for a bare template).
type DefinitionSource struct {
	Definition
	Type        string
	Description string
}

// ParseDefinitionSource reads a definition in `vela def` layout. A file
// without a top-level template field is taken as a bare template named
// after the file.
func ParseDefinitionSource(filename string, src []byte) (DefinitionSource, error) {
	f, err := parser.ParseFile(filename, src, parser.ParseComments)
	if err != nil {
		return DefinitionSource{}, fmt.Errorf("%s", describe(err))
	}
	var imports []ast.Decl
	var template *ast.StructLit
	var out DefinitionSource
	for _, d := range f.Decls {
		switch x := d.(type) {
		case *ast.ImportDecl:
			imports = append(imports, x)
		case *ast.Field:
			label, _, _ := ast.LabelName(x.Label)
			st, isStruct := x.Value.(*ast.StructLit)
			if label == "template" && isStruct {
				template = st
				continue
			}
			if isStruct && out.Name == "" {
				out.Name = label
				out.Type = stringField(st, "type")
				out.Description = stringField(st, "description")
			}
		}
	}
	if template == nil {
		out = DefinitionSource{Definition: Definition{
			Name:     strings.TrimSuffix(filepath.Base(filename), filepath.Ext(filename)),
			Template: string(src),
		}}
		return out, nil
	}
	if out.Name == "" {
		return DefinitionSource{}, fmt.Errorf("%s: no metadata field names the definition (want e.g. \"my-step\": {type: \"workflow-step\"})", filename)
	}
	if out.Type != "" && out.Type != "workflow-step" && out.Type != "component" {
		return DefinitionSource{}, fmt.Errorf("%s: %q is a %q definition, not a workflow-step or a component", filename, out.Name, out.Type)
	}
	body := &ast.File{Decls: append(imports, template.Elts...)}
	b, err := format.Node(body)
	if err != nil {
		return DefinitionSource{}, fmt.Errorf("%s: formatting template: %v", filename, err)
	}
	out.Template = string(b)
	return out, nil
}

func stringField(st *ast.StructLit, name string) string {
	for _, d := range st.Elts {
		f, ok := d.(*ast.Field)
		if !ok {
			continue
		}
		if l, _, _ := ast.LabelName(f.Label); l != name {
			continue
		}
		if lit, ok := f.Value.(*ast.BasicLit); ok {
			if s, err := strconv.Unquote(lit.Value); err == nil {
				return s
			}
		}
	}
	return ""
}
