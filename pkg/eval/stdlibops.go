package eval

import (
	"context"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/parser"

	"github.com/stepflow-dev/stepflow/pkg/defschema"
	"github.com/stepflow-dev/stepflow/pkg/op"
	"github.com/stepflow-dev/stepflow/stdlib"
)

// This file lists the op definitions of the stdlib for the reference
// (hack/gendocs writes docs/ops.md from it): the stdlib's CUE is the source
// of truth for what an op takes and returns.

// StdlibOp is one op definition of a stdlib package: a definition with
// concrete #provider and #do, as a template calls it.
type StdlibOp struct {
	// Package is the import path ("vela/http"); Name the definition
	// ("#HTTPPost").
	Package, Name string
	// Op is the implementation a call runs (http.do).
	Op op.Name
	// Doc is the definition's comment.
	Doc string
	// Flat is a call of the flat dialect (vela/op, vela/ql): parameters
	// are the call's own fields, results filled into the fields Results
	// names (and into $returns).
	Flat bool
	// Params is the schema of what the call takes: $params, or the call's
	// fields but $returns.
	Params *defschema.Schema
	// Returns is the schema of $returns; nil when the schema has none.
	Returns *defschema.Schema
	// Results maps, for a flat call, each field that receives a result to
	// the field of $returns it receives ("" for the whole of $returns).
	Results map[string]string
	// Fixed holds the parameters the definition makes concrete, or
	// defaults ("method": "POST" for #HTTPPost, "GET" for #HTTPDo); an
	// op's class may depend on them.
	Fixed map[string]any
}

// StdlibOps lists the op definitions of every stdlib package, by package
// and name.
func (e *Evaluator) StdlibOps() ([]StdlibOp, error) {
	pkgs, err := stdlib.Packages()
	if err != nil {
		return nil, err
	}
	paths := make([]string, 0, len(pkgs))
	for dir := range pkgs {
		paths = append(paths, dir)
	}
	sort.Strings(paths)
	var out []StdlibOp
	var lerr error
	err = e.withAnyShard(context.Background(), func(sh *shard) {
		for _, path := range paths {
			// A template that imports the package and exposes it as a
			// field; the import path is the stdlib's own, quoted.
			def := Definition{Name: "stdlib-" + strings.ReplaceAll(path, "/", "-"),
				Template: "import p " + strconv.Quote(path) + "\n\npkg: p\n"}
			v, err := sh.compile(def)
			if err != nil {
				lerr = fmt.Errorf("stdlib package %s: %s", path, describe(err))
				return
			}
			ops, err := stdlibOpsOf(sh.ctx, path, v.LookupPath(cue.MakePath(cue.Str("pkg"))), definitionDocs(pkgs[path]), e.opts.MaxNesting)
			if err != nil {
				lerr = err
				return
			}
			out = append(out, ops...)
		}
	})
	if err != nil {
		return nil, err
	}
	return out, lerr
}

func stdlibOpsOf(ctx *cue.Context, path string, pkg cue.Value, docs stdlibDocs, maxDepth int) ([]StdlibOp, error) {
	it, err := pkg.Fields(cue.Definitions(true))
	if err != nil {
		return nil, fmt.Errorf("stdlib package %s: %s", path, describe(err))
	}
	var out []StdlibOp
	for it.Next() {
		if !it.Selector().IsDefinition() {
			continue
		}
		v := it.Value()
		provider, perr := v.LookupPath(selProvider).String()
		do, derr := v.LookupPath(selDo).String()
		if perr != nil || derr != nil {
			continue // a schema the ops share, not an op
		}
		name := it.Selector().String()
		o := StdlibOp{Package: path, Name: name, Op: op.Name{Provider: provider, Do: do}, Doc: docs.defs[name]}
		fields := docs.fields[name]
		if params := v.LookupPath(selParams); params.Exists() {
			o.Params = schemaOf(ctx, params, 0, maxDepth)
			annotate(o.Params, params, "", under(fields, "$params"), 0, maxDepth)
			o.Fixed = fixedOf(params)
			if ret := v.LookupPath(cue.MakePath(selReturns.Optional())); ret.Exists() {
				o.Returns = schemaOf(ctx, ret, 0, maxDepth)
				annotate(o.Returns, ret, "", under(fields, "$returns"), 0, maxDepth)
			}
		} else {
			o.Flat = true
			if r := v.LookupPath(selResults); r.Exists() {
				if err := r.Decode(&o.Results); err != nil {
					return nil, fmt.Errorf("stdlib %s.%s: #results: %s", path, name, describe(err))
				}
			}
			o.Params = flatParams(ctx, v, fields, maxDepth)
			if ret := v.LookupPath(cue.MakePath(selReturns.Optional())); ret.Exists() {
				o.Returns = schemaOf(ctx, ret, 0, maxDepth)
				annotate(o.Returns, ret, "", under(fields, "$returns"), 0, maxDepth)
			}
			o.Fixed = fixedOf(v)
		}
		out = append(out, o)
	}
	return out, nil
}

// flatParams is the schema of a flat call's fields but $returns: what the
// call takes, some of which (#results) also receive its results.
func flatParams(ctx *cue.Context, v cue.Value, docs map[string]string, maxDepth int) *defschema.Schema {
	s := inlineRootRef(schemaOf(ctx, v, 0, maxDepth))
	annotate(s, v, "", docs, 0, maxDepth)
	delete(s.Properties, "$returns")
	for i, name := range s.Order {
		if name == "$returns" {
			s.Order = append(s.Order[:i:i], s.Order[i+1:]...)
			break
		}
	}
	for i, name := range s.Required {
		if name == "$returns" {
			s.Required = append(s.Required[:i:i], s.Required[i+1:]...)
			break
		}
	}
	return s
}

// inlineRootRef merges into s the definition its root refers to: CUE's
// encoder writes a call built on another (#HTTPPost: #HTTPDo & {...}) as
// a reference into $defs plus its own fields, and $returns must be taken
// out of both.
func inlineRootRef(s *defschema.Schema) *defschema.Schema {
	if s == nil || s.Ref == "" {
		return s
	}
	name := s.Ref[strings.LastIndex(s.Ref, "/")+1:]
	if u, err := url.PathUnescape(name); err == nil {
		name = u
	}
	d, ok := s.Defs[name]
	if !ok {
		return s
	}
	m := *s
	m.Ref, m.Properties, m.Order = "", map[string]*defschema.Schema{}, nil
	m.Required = append(append([]string{}, s.Required...), d.Required...)
	if m.Type == "" {
		m.Type = d.Type
	}
	if m.AdditionalProperties == nil {
		m.AdditionalProperties = d.AdditionalProperties
	}
	for _, from := range []*defschema.Schema{s, d} {
		for name, f := range from.Properties {
			if _, dup := m.Properties[name]; !dup {
				m.Properties[name] = f
			}
		}
	}
	return &m
}

// fixedOf is the concrete or default value of each top-level field of v.
func fixedOf(v cue.Value) map[string]any {
	it, err := v.Fields()
	if err != nil {
		return nil
	}
	var out map[string]any
	for it.Next() {
		f := it.Value()
		if d, ok := f.Default(); ok {
			f = d
		}
		if f.Validate(cue.Concrete(true)) != nil {
			continue
		}
		var x any
		if f.Decode(&x) != nil {
			continue
		}
		if out == nil {
			out = map[string]any{}
		}
		out[it.Selector().Unquoted()] = x
	}
	return out
}

// stdlibDocs holds the comments of a package's source (compiled values
// keep none): each top-level definition's, as one paragraph, and those of
// its fields by dotted path ("$params.request.timeout").
type stdlibDocs struct {
	defs   map[string]string
	fields map[string]map[string]string
}

// definitionDocs reads the comments of a stdlib package's files. A
// definition built on another of the package (#HTTPPost: #HTTPDo & {...})
// has that one's field comments where it has none of its own.
func definitionDocs(files []stdlib.File) stdlibDocs {
	docs := stdlibDocs{defs: map[string]string{}, fields: map[string]map[string]string{}}
	bases := map[string][]string{}
	for _, file := range files {
		f, err := parser.ParseFile(file.Name, file.Source, parser.ParseComments)
		if err != nil {
			continue // the compile reports it
		}
		for _, d := range f.Decls {
			field, ok := d.(*ast.Field)
			if !ok {
				continue
			}
			name, _, err := ast.LabelName(field.Label)
			if err != nil {
				continue
			}
			var text []string
			for _, cg := range ast.Comments(field) {
				if cg.Doc {
					text = append(text, cg.Text())
				}
			}
			if len(text) > 0 {
				docs.defs[name] = strings.Join(strings.Fields(strings.Join(text, " ")), " ")
			}
			fd := map[string]string{}
			fieldDocs(fd, field.Value)
			docs.fields[name] = fd
			for e := field.Value; ; {
				b, ok := e.(*ast.BinaryExpr)
				if !ok {
					if id, ok := e.(*ast.Ident); ok {
						bases[name] = append(bases[name], id.Name)
					}
					break
				}
				if id, ok := b.Y.(*ast.Ident); ok {
					bases[name] = append(bases[name], id.Name)
				}
				e = b.X
			}
		}
	}
	for name, bs := range bases {
		for _, b := range bs {
			for k, v := range docs.fields[b] {
				if _, ok := docs.fields[name][k]; !ok {
					docs.fields[name][k] = v
				}
			}
		}
	}
	return docs
}

// under is the part of docs below prefix ("$params"), keyed from there.
func under(docs map[string]string, prefix string) map[string]string {
	out := map[string]string{}
	for k, v := range docs {
		if rest, ok := strings.CutPrefix(k, prefix+"."); ok {
			out[rest] = v
		}
	}
	return out
}
