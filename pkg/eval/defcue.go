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
//
// Its Definition is the template as it stands in the file: File is the
// file's name and Template keeps the file's lines and columns (what is not
// imports or template body is blanked), so an error's position names the
// file on disk and its real line. Manifest is the same template laid out
// on its own, for a WorkflowStepDefinition's spec.schematic.cue.template.
type DefinitionSource struct {
	Definition
	Type        string
	Description string
	Manifest    string
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
				out.Compensate = compensateField(st)
			}
		}
	}
	if template == nil {
		out = DefinitionSource{Definition: Definition{
			Name:     strings.TrimSuffix(filepath.Base(filename), filepath.Ext(filename)),
			Template: string(src),
			File:     filename,
		}, Manifest: string(src)}
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
	out.Manifest = string(b)
	out.Template = inPlace(src, imports, template)
	out.File = filename
	return out, nil
}

// inPlace returns src with everything but the imports and the body of the
// template struct blanked: a template whose positions are those of src.
// Blanked characters become spaces (newlines stay), and trailing blanks
// are trimmed from each line.
func inPlace(src []byte, imports []ast.Decl, template *ast.StructLit) string {
	keep := make([]bool, len(src))
	mark := func(from, to int) {
		for i := max(from, 0); i < min(to, len(src)); i++ {
			keep[i] = true
		}
	}
	for _, d := range imports {
		mark(d.Pos().Offset(), d.End().Offset())
	}
	mark(template.Lbrace.Offset()+1, template.Rbrace.Offset())
	out := make([]byte, len(src))
	for i, c := range src {
		switch {
		case keep[i] || c == '\n':
			out[i] = c
		default:
			out[i] = ' '
		}
	}
	lines := strings.Split(string(out), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " \t\r")
	}
	return strings.TrimRight(strings.Join(lines, "\n"), "\n") + "\n"
}

// compensateField reads the metadata's default compensation,
// compensate: type: "NAME" (or compensate: {type: "NAME"}): only its type;
// the compensating step then gets the original step's properties.
func compensateField(st *ast.StructLit) *Compensation {
	for _, d := range st.Elts {
		f, ok := d.(*ast.Field)
		if !ok {
			continue
		}
		if l, _, _ := ast.LabelName(f.Label); l != "compensate" {
			continue
		}
		// The shorthand compensate: type: "NAME" is a struct too.
		body, ok := f.Value.(*ast.StructLit)
		if !ok {
			return nil
		}
		if t := stringField(body, "type"); t != "" {
			return &Compensation{Type: t}
		}
	}
	return nil
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
