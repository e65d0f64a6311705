package eval

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	cueerrors "cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/format"
	"cuelang.org/go/cue/parser"
	"cuelang.org/go/cue/token"
	"cuelang.org/go/encoding/jsonschema"

	"github.com/stepflow-dev/stepflow/pkg/defschema"
)

// This file holds what the authoring tools and the run's first tick read
// from a definition's parameter: its JSON Schema (ParameterSchema) and the
// check of a run's properties against it (ValidateParameters).

var selParameter = cue.MakePath(cue.Str("parameter"))

// ParameterSchema compiles def and returns the JSON Schema (draft 2020-12)
// of its parameter. CUE's encoding/jsonschema derives the types, enums,
// required fields, nesting and closedness; defaults, descriptions (a
// field's `// +usage=` comment, as KubeVela writes them, else its plain
// comment) and the template's field order are added from the CUE value and
// the template's source.
func (e *Evaluator) ParameterSchema(def Definition) (*defschema.Schema, error) {
	var s *defschema.Schema
	var serr error
	err := e.withAnyShard(context.Background(), func(sh *shard) {
		v, err := sh.compile(def)
		if err != nil {
			serr = fmt.Errorf("definition %q: %s", def.Name, describe(err))
			return
		}
		s, serr = parameterSchema(sh.ctx, v.LookupPath(selParameter), parameterDocs(def), e.opts.MaxNesting)
		if serr != nil {
			serr = fmt.Errorf("definition %q: the parameter's JSON Schema: %s", def.Name, describe(serr))
		}
	})
	if err != nil {
		return nil, e.stretchError(fmt.Sprintf("definition %q: deriving the parameter's JSON Schema: ", def.Name), err)
	}
	return s, serr
}

func parameterSchema(ctx *cue.Context, p cue.Value, docs map[string]string, maxDepth int) (*defschema.Schema, error) {
	s := schemaOf(ctx, p, 0, maxDepth)
	s.SchemaURI = defschema.Draft
	annotate(s, p, "", docs, 0, maxDepth)
	return s, nil
}

// schemaOf is the JSON Schema of v: CUE's encoder's where it can write
// one, else built here, one level at a time, so that a field the encoder
// fails on (a default referring to context, a definition inside the
// parameter, a constraint it does not support) costs only that field its
// detail. A field built here has its type, enum or alternatives, its
// required fields and whether it is closed.
func schemaOf(ctx *cue.Context, v cue.Value, depth, maxDepth int) *defschema.Schema {
	if s, err := generated(ctx, v); err == nil {
		s.SchemaURI = ""
		return s
	}
	s := new(defschema.Schema)
	if depth > maxDepth {
		return s
	}
	if op, args := v.Expr(); op == cue.OrOp && len(args) > 1 {
		var enum []json.RawMessage
		for _, a := range args {
			b, err := a.MarshalJSON()
			if a.Validate(cue.Concrete(true)) != nil || err != nil {
				enum = nil
				break
			}
			enum = append(enum, b)
		}
		if enum != nil {
			s.Enum = enum
			return s
		}
		// A default taken from outside the parameter (*context.namespace)
		// says nothing of the type: an alternative of no type is left out.
		for _, a := range args {
			if alt := schemaOf(ctx, a, depth+1, maxDepth); alt.TypeName() != "any" {
				s.AnyOf = append(s.AnyOf, alt)
			}
		}
		if len(s.AnyOf) == 1 {
			return s.AnyOf[0]
		}
		return s
	}
	switch v.IncompleteKind() {
	case cue.StructKind:
		s.Type = "object"
		it, err := v.Fields(cue.Optional(true))
		if err != nil {
			return s
		}
		for it.Next() {
			name := it.Selector().Unquoted()
			if s.Properties == nil {
				s.Properties = map[string]*defschema.Schema{}
			}
			f := it.Value()
			s.Properties[name] = schemaOf(ctx, f, depth+1, maxDepth)
			if _, hasDefault := f.Default(); !it.IsOptional() && !hasDefault && !declaresDefault(f) && f.Validate(cue.Concrete(true)) != nil {
				s.Required = append(s.Required, name)
			}
		}
		switch pattern := v.LookupPath(cue.MakePath(cue.AnyString)); {
		case pattern.Exists():
			s.AdditionalProperties = &defschema.Additional{Schema: schemaOf(ctx, pattern, depth+1, maxDepth)}
		case !v.Allows(cue.Str("\x00any field")):
			s.AdditionalProperties = &defschema.Additional{Allowed: false}
		}
	case cue.ListKind:
		s.Type = "array"
		if e := v.LookupPath(cue.MakePath(cue.AnyIndex)); e.Exists() {
			s.Items = schemaOf(ctx, e, depth+1, maxDepth)
		}
	case cue.StringKind:
		s.Type = "string"
	case cue.IntKind:
		s.Type = "integer"
	case cue.FloatKind, cue.NumberKind:
		s.Type = "number"
	case cue.BoolKind:
		s.Type = "boolean"
	case cue.NullKind:
		s.Type = "null"
	}
	return s
}

// generated is the schema CUE's encoding/jsonschema writes for v.
func generated(ctx *cue.Context, v cue.Value) (*defschema.Schema, error) {
	expr, err := jsonschema.Generate(v, &jsonschema.GenerateConfig{})
	if err != nil {
		return nil, err
	}
	b, err := ctx.BuildExpr(expr).MarshalJSON()
	if err != nil {
		return nil, err
	}
	s := new(defschema.Schema)
	if err := json.Unmarshal(b, s); err != nil {
		return nil, err
	}
	return s, nil
}

// annotate adds to s, the schema CUE derived from v, what its encoder
// leaves out: the default, the description (docs, by key: the field's
// dotted path, [] for a list's elements) and the order of the fields.
func annotate(s *defschema.Schema, v cue.Value, key string, docs map[string]string, depth, maxDepth int) {
	if s == nil || !v.Exists() || depth > maxDepth {
		return
	}
	if s.Description == "" && key != "" {
		s.Description = docs[key]
	}
	if d, ok := v.Default(); ok && len(s.Default) == 0 && d.Validate(cue.Concrete(true)) == nil {
		// An open list's default, [], says nothing.
		if b, err := d.MarshalJSON(); err == nil && string(b) != "[]" {
			s.Default = b
		}
	}
	if s.Type == "array" && s.Items != nil {
		annotate(s.Items, v.LookupPath(cue.MakePath(cue.AnyIndex)), key+"[]", docs, depth+1, maxDepth)
	}
	if a := s.AdditionalProperties; a != nil && a.Schema != nil {
		annotate(a.Schema, v.LookupPath(cue.MakePath(cue.AnyString)), "", docs, depth+1, maxDepth)
	}
	if len(s.Properties) == 0 {
		return
	}
	it, err := v.Fields(cue.Optional(true))
	if err != nil {
		return
	}
	for it.Next() {
		name := it.Selector().Unquoted()
		if f, ok := s.Properties[name]; ok {
			s.Order = append(s.Order, name)
			annotate(f, it.Value(), joinKey(key, name), docs, depth+1, maxDepth)
		}
	}
}

func joinKey(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

// parameterDocs reads the comments of the parameter's fields from the
// template's source (compiled templates keep no comments): by dotted path,
// [] for the elements of a list. Fields declared through a definition
// (#Port) or a reference have none.
func parameterDocs(def Definition) map[string]string {
	docs := map[string]string{}
	f, err := parser.ParseFile(def.filename(), def.Template, parser.ParseComments)
	if err != nil {
		return docs
	}
	for _, d := range f.Decls {
		if fd, ok := d.(*ast.Field); ok {
			if name, _, err := ast.LabelName(fd.Label); err == nil && name == "parameter" {
				fieldDocs(docs, fd.Value)
			}
		}
	}
	return docs
}

// fieldDocs adds to docs the comments of the fields of e, a struct in
// source, by dotted path ([] for the elements of a list).
func fieldDocs(docs map[string]string, e ast.Expr) {
	var walk func(prefix string, e ast.Expr, depth int)
	walk = func(prefix string, e ast.Expr, depth int) {
		if depth > maxDepth {
			return
		}
		switch x := e.(type) {
		case *ast.StructLit:
			for _, d := range x.Elts {
				fd, ok := d.(*ast.Field)
				if !ok {
					continue
				}
				name, _, err := ast.LabelName(fd.Label)
				if err != nil {
					continue
				}
				k := joinKey(prefix, name)
				if text := usageText(ast.Comments(fd)); text != "" && docs[k] == "" {
					docs[k] = text
				}
				walk(k, fd.Value, depth+1)
			}
		case *ast.ListLit:
			for _, el := range x.Elts {
				if el, ok := el.(*ast.Ellipsis); ok {
					walk(prefix+"[]", el.Type, depth+1)
					continue
				}
				walk(prefix+"[]", el, depth+1)
			}
		case *ast.BinaryExpr:
			walk(prefix, x.X, depth+1)
			walk(prefix, x.Y, depth+1)
		case *ast.UnaryExpr:
			walk(prefix, x.X, depth+1)
		case *ast.ParenExpr:
			walk(prefix, x.X, depth+1)
		case *ast.CallExpr: // close({...})
			for _, a := range x.Args {
				walk(prefix, a, depth+1)
			}
		}
	}
	walk("", e, 0)
}

// usageText is a field's description from its comments: the text of its
// `+usage=` line, as KubeVela's definitions write it, else its doc comment
// without the lines of other markers (+short=...).
func usageText(groups []*ast.CommentGroup) string {
	var plain []string
	for _, cg := range groups {
		if !cg.Doc && !cg.Line {
			continue
		}
		for _, line := range strings.Split(cg.Text(), "\n") {
			line = strings.TrimSpace(line)
			switch {
			case strings.HasPrefix(line, "+usage="):
				return strings.TrimSpace(strings.TrimPrefix(line, "+usage="))
			case line == "" || strings.HasPrefix(line, "+"):
			default:
				plain = append(plain, line)
			}
		}
	}
	return strings.Join(plain, " ")
}

// ParameterCheck is one step's properties, to be checked against its
// definition's parameter before the run starts.
type ParameterCheck struct {
	Step       string
	Definition Definition
	// Parameters are the step's properties, as plain data (JSON objects
	// decoded into map[string]any).
	Parameters map[string]any
	// Later are the paths (dotted, as an input's parameterKey) that the
	// step's inputs fill once earlier steps have run: a field there may be
	// missing now.
	Later []string
	// Context is the step's context, as its evaluation will have it: a
	// parameter's default may refer to it (namespace: *context.namespace |
	// string).
	Context map[string]any
}

// ParameterProblem is one property that does not fit its definition's
// parameter.
type ParameterProblem struct {
	Step       string
	Definition string
	// Path is the property's path within the step's properties
	// ("ports[0].port"), empty for the properties as a whole.
	Path string
	// Message says what was found and what the parameter expects.
	Message string
}

func (p ParameterProblem) String() string {
	where := "properties"
	if p.Path != "" {
		where += "." + p.Path
	}
	return fmt.Sprintf("step %q (definition %q): %s: %s", p.Step, p.Definition, where, p.Message)
}

// ParameterError lists every property of a run that does not fit its
// definition's parameter.
type ParameterError struct {
	Problems []ParameterProblem
}

func (e *ParameterError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.String()
	}
	noun := "problems"
	if len(parts) == 1 {
		noun = "problem"
	}
	return fmt.Sprintf("the steps' properties do not fit their definitions (%d %s): %s", len(parts), noun, strings.Join(parts, "; "))
}

// ValidateParameters unifies each step's properties with its definition's
// compiled parameter, the source of truth, and returns a *ParameterError
// listing every problem of every step: a value of the wrong type, a value
// outside an enum or bound, a field a closed parameter does not have, a
// required field missing (unless an input fills it later: Later). A
// definition that does not compile is no problem of its properties: the
// step fails with the template's error when it runs. The CUE work of all
// the checks is one bounded stretch.
func (e *Evaluator) ValidateParameters(checks []ParameterCheck) error {
	var problems []ParameterProblem
	err := e.withAnyShard(context.Background(), func(sh *shard) {
		problems = nil // a retry on another shard starts over
		for _, c := range checks {
			problems = append(problems, checkParameters(sh, c, e.opts.MaxNesting)...)
		}
	})
	if err != nil {
		return e.stretchError("checking the steps' properties: ", err)
	}
	if len(problems) == 0 {
		return nil
	}
	return &ParameterError{Problems: problems}
}

func checkParameters(sh *shard, c ParameterCheck, maxDepth int) []ParameterProblem {
	v, err := sh.compile(c.Definition)
	if err != nil {
		return nil
	}
	problem := func(path, format string, args ...any) ParameterProblem {
		return ParameterProblem{Step: c.Step, Definition: c.Definition.Name, Path: path, Message: fmt.Sprintf(format, args...)}
	}
	params := c.Parameters
	if params == nil {
		params = map[string]any{}
	}
	data, err := plainData("properties", params, maxDepth)
	if err != nil {
		return []ParameterProblem{problem("", "%v", err)}
	}
	later := map[string]bool{}
	for _, l := range c.Later {
		later[l] = true
	}
	// The parameter alone first: filling the context evaluates the whole
	// template again, which most properties, those that fit, do not need.
	// Only problems are looked at again with the context in, where a
	// default referring to it (*context.namespace | string) is decided.
	out := unifyParameters(sh, v.LookupPath(selParameter), data, later, problem, maxDepth)
	if len(out) == 0 || c.Context == nil {
		return out
	}
	cdata, err := plainData("context", c.Context, maxDepth)
	if err != nil {
		return []ParameterProblem{problem("", "%v", err)}
	}
	v = v.FillPath(cue.MakePath(cue.Str("context")), sh.ctx.Encode(cdata))
	return unifyParameters(sh, v.LookupPath(selParameter), data, later, problem, maxDepth)
}

// unifyParameters returns the problems of the properties data in the
// parameter schema.
func unifyParameters(sh *shard, schema cue.Value, data any, later map[string]bool,
	problem func(path, format string, args ...any) ParameterProblem, maxDepth int) []ParameterProblem {
	filled := schema.Unify(sh.ctx.Encode(data))
	// One problem per path: CUE reports a value outside a disjunction once
	// per alternative.
	byPath := map[string]ParameterProblem{}
	var order []string
	add := func(path []string, p ParameterProblem) {
		key := strings.Join(path, "\x00")
		if _, ok := byPath[key]; !ok {
			order = append(order, key)
			byPath[key] = p
		}
	}
	for _, ce := range cueerrors.Errors(filled.Validate(cue.All())) {
		path := ce.Path()
		if len(path) > 0 && path[0] == "parameter" {
			path = path[1:]
		}
		dotted := propertyPath(path)
		if underLater(path, later) {
			continue
		}
		f, args := ce.Msg()
		msg := fmt.Sprintf(f, args...)
		switch got, found := lookupData(data, path); {
		case strings.Contains(msg, "not allowed"):
			add(path, problem(dotted, "field not allowed: the parameter%s does not have it (it has %s)",
				parentName(path), fieldNames(schema, path[:max(len(path)-1, 0)])))
		case found:
			add(path, problem(dotted, "got %s, want %s", jsonText(got), expected(schema, path, msg)))
		default:
			add(path, problem(dotted, "%s", msg))
		}
	}
	missing(filled, schema, nil, later, maxDepth, func(path []string, want string) {
		add(path, problem(propertyPath(path), "required field missing: want %s", want))
	})
	out := make([]ParameterProblem, len(order))
	for i, k := range order {
		out[i] = byPath[k]
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// missing reports the regular (not optional) fields of filled, the
// parameter with the properties in it, that have no value: neither given
// nor defaulted, nor filled later by an input.
func missing(filled, schema cue.Value, path []string, later map[string]bool, maxDepth int, report func([]string, string)) {
	if len(path) > maxDepth || underLater(path, later) {
		return
	}
	kind := filled.IncompleteKind()
	if kind == cue.BottomKind {
		// A struct with an error in one field is bottom as a whole; its
		// other fields are still looked at.
		kind = lookupSchema(schema, path).IncompleteKind()
	}
	switch kind {
	case cue.StructKind:
		it, err := filled.Fields()
		if err != nil {
			return
		}
		for it.Next() {
			sel := it.Selector()
			if !sel.IsString() {
				continue
			}
			p := append(append([]string{}, path...), sel.Unquoted())
			missing(it.Value(), schema, p, later, maxDepth, report)
		}
	case cue.ListKind:
		it, err := filled.List()
		if err != nil {
			return
		}
		for i := 0; it.Next(); i++ {
			missing(it.Value(), schema, append(append([]string{}, path...), strconv.Itoa(i)), later, maxDepth, report)
		}
	default:
		if len(path) == 0 || filled.IsConcrete() || filled.Err() != nil {
			return // an error there is reported as such
		}
		if _, ok := filled.Default(); ok || declaresDefault(lookupSchema(schema, path)) {
			// A default that is not concrete yet (*context.name | string)
			// is the template's to decide. Value.Default does not see one
			// that refers to context, which the check does not fill.
			return
		}
		want := expected(schema, path, "")
		if want == "" {
			// Not found by its path: a field of one branch of a
			// disjunction. Its kind still says what it takes.
			want = filled.IncompleteKind().String()
		}
		report(path, want)
	}
}

// declaresDefault reports whether field v is written with a default
// marked in its disjunction (*a | b).
func declaresDefault(v cue.Value) bool {
	f, ok := v.Source().(*ast.Field)
	return ok && markedDefault(f.Value)
}

func markedDefault(e ast.Expr) bool {
	switch x := e.(type) {
	case *ast.UnaryExpr:
		return x.Op == token.MUL
	case *ast.ParenExpr:
		return markedDefault(x.X)
	case *ast.BinaryExpr:
		return x.Op == token.OR && (markedDefault(x.X) || markedDefault(x.Y))
	}
	return false
}

// underLater reports whether path is, or is inside, a path an input fills.
func underLater(path []string, later map[string]bool) bool {
	for i := 1; i <= len(path); i++ {
		if later[strings.Join(path[:i], ".")] {
			return true
		}
	}
	return false
}

// propertyPath writes a path within the properties as users write it:
// ports[0].port.
func propertyPath(path []string) string {
	var b strings.Builder
	for _, p := range path {
		if _, err := strconv.Atoi(p); err == nil {
			fmt.Fprintf(&b, "[%s]", p)
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(p)
	}
	return b.String()
}

// lookupData finds the value at path in the properties.
func lookupData(data any, path []string) (any, bool) {
	for _, p := range path {
		switch d := data.(type) {
		case map[string]any:
			x, ok := d[p]
			if !ok {
				return nil, false
			}
			data = x
		case []any:
			i, err := strconv.Atoi(p)
			if err != nil || i < 0 || i >= len(d) {
				return nil, false
			}
			data = d[i]
		default:
			return nil, false
		}
	}
	return data, true
}

// lookupSchema finds the field at path, a path within the properties, in
// the parameter's schema: list indices become any element, and a field
// may be optional.
func lookupSchema(schema cue.Value, path []string) cue.Value {
	v := schema
	for _, p := range path {
		if _, err := strconv.Atoi(p); err == nil {
			v = v.LookupPath(cue.MakePath(cue.AnyIndex))
			continue
		}
		if x := v.LookupPath(cue.MakePath(cue.Str(p))); x.Exists() {
			v = x
			continue
		}
		v = v.LookupPath(cue.MakePath(cue.Str(p).Optional()))
	}
	return v
}

// maxExpected bounds the text of a field's CUE constraint in a message.
const maxExpected = 120

// expected is what the parameter declares at path, as CUE source; the
// error message msg when it has none.
func expected(schema cue.Value, path []string, msg string) string {
	f := lookupSchema(schema, path)
	if !f.Exists() {
		return msg
	}
	b, err := format.Node(f.Syntax(cue.Raw()))
	if err != nil {
		return msg
	}
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > maxExpected {
		s = s[:maxExpected] + "…"
	}
	if msg != "" && !strings.HasPrefix(msg, "conflicting values") && !strings.Contains(msg, "empty disjunction") {
		s += " (" + msg + ")"
	}
	return s
}

// parentName names the struct holding the field at path in a message.
func parentName(path []string) string {
	if len(path) <= 1 {
		return ""
	}
	return " field " + propertyPath(path[:len(path)-1])
}

// fieldNames lists the fields the parameter declares at path.
func fieldNames(schema cue.Value, path []string) string {
	it, err := lookupSchema(schema, path).Fields(cue.Optional(true))
	if err != nil {
		return "no fields"
	}
	var names []string
	for it.Next() {
		names = append(names, it.Selector().Unquoted())
	}
	if len(names) == 0 {
		return "no fields"
	}
	return strings.Join(names, ", ")
}

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	if len(b) > maxExpected {
		return string(b[:maxExpected]) + "…"
	}
	return string(b)
}
