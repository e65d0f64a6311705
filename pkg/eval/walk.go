package eval

import (
	"reflect"
	"sort"
	"strings"
	"sync"

	"cuelang.org/go/cue"
	cueerrors "cuelang.org/go/cue/errors"

	"github.com/stepflow-dev/stepflow/pkg/op"
)

var (
	selDo       = cue.MakePath(cue.Def("#do"))
	selProvider = cue.MakePath(cue.Def("#provider"))
	selParams   = cue.MakePath(cue.Str("$params"))
	selClass    = cue.MakePath(cue.Def("#class"))
	selReturns  = cue.Str("$returns")
)

// maxDepth bounds the search for op calls in nested structs.
const maxDepth = 32

// site is an op call found in the evaluated template.
type site struct {
	path cue.Path
	key  string
	v    cue.Value
	name op.Name
	// params is the value to decode: $params, or the call struct itself.
	params cue.Value
	// class is the template's override of the op's class (#class), if any.
	class *op.Class
	// flat is a call of the flat dialect (no $params), whose schema may
	// name in #results the fields that receive its results.
	flat bool
}

// discover lists the op calls in v in template order. Top-level parameter
// and context are data and are not searched.
func discover(v cue.Value, templateFile string) []site {
	var out []site
	var walk func(v cue.Value, sels []cue.Selector, depth int)
	walk = func(v cue.Value, sels []cue.Selector, depth int) {
		if depth > maxDepth {
			return
		}
		switch k := v.IncompleteKind(); {
		case depth == 0 || k&cue.StructKind != 0 || k == cue.BottomKind:
			// A struct may read as bottom while a comprehension in it (an
			// if or for over an op's $returns) waits on an op's result;
			// its other fields are still there. A bottom that is no
			// struct has no fields and ends here; one is not taken for a
			// call (as before, a call is found once it reads as a struct).
			if depth > 0 && k != cue.BottomKind {
				if s, ok := asCall(v, sels); ok {
					out = append(out, s)
					return
				}
			}
			it, err := v.Fields()
			if err != nil {
				return
			}
			var kids []child
			for it.Next() {
				sel := it.Selector()
				if depth == 0 {
					if l := sel.String(); l == "parameter" || l == "context" {
						continue
					}
				}
				kids = append(kids, child{sel: sel, v: it.Value()})
			}
			order(kids, templateFile)
			for _, k := range kids {
				walk(k.v, append(sels[:len(sels):len(sels)], k.sel), depth+1)
			}
		case k&cue.ListKind != 0:
			it, err := v.List()
			if err != nil {
				return
			}
			for i := 0; it.Next(); i++ {
				walk(it.Value(), append(sels[:len(sels):len(sels)], cue.Index(i)), depth+1)
			}
		}
	}
	walk(v, nil, 0)
	return out
}

type child struct {
	sel cue.Selector
	v   cue.Value
}

// order sorts fields by where they are written in the template, so that the
// ops run in the order a reader sees them. CUE lists fields made by
// comprehensions first; positions put them back. Fields from other files
// (stdlib) keep their relative order after the template's.
func order(kids []child, templateFile string) {
	sort.SliceStable(kids, func(i, j int) bool {
		pi, pj := kids[i].v.Pos(), kids[j].v.Pos()
		ti, tj := pi.Filename() == templateFile, pj.Filename() == templateFile
		if ti != tj {
			return ti
		}
		if !ti {
			return false
		}
		return pi.Offset() < pj.Offset()
	})
}

// asCall reports whether v is an op call: a struct with concrete #provider
// and #do.
func asCall(v cue.Value, sels []cue.Selector) (site, bool) {
	prov := v.LookupPath(selProvider)
	if !prov.Exists() {
		return site{}, false
	}
	do := v.LookupPath(selDo)
	if !do.Exists() {
		return site{}, false
	}
	ps, err1 := prov.String()
	ds, err2 := do.String()
	if err1 != nil || err2 != nil {
		return site{}, false
	}
	path := cue.MakePath(sels...)
	s := site{path: path, key: path.String(), v: v, name: op.Name{Provider: ps, Do: ds}, params: v, flat: true}
	if p := v.LookupPath(selParams); p.Exists() {
		s.params, s.flat = p, false
	}
	if c, err := v.LookupPath(selClass).String(); err == nil {
		switch c {
		case "idempotent":
			s.class = ptr(op.Idempotent)
		case "effect":
			s.class = ptr(op.Effect)
		}
	}
	return s, true
}

// findCycle returns the first reference cycle among v's regular fields.
func findCycle(v cue.Value, depth int) error {
	if depth > maxDepth {
		return nil
	}
	it, err := v.Fields()
	if err != nil {
		return nil
	}
	for it.Next() {
		fv := it.Value()
		if err := fv.Err(); err != nil {
			for _, e := range cueerrors.Errors(err) {
				if strings.Contains(e.Error(), "cycle") {
					return e
				}
			}
		}
		if fv.IncompleteKind()&cue.StructKind != 0 {
			if _, isCall := asCall(fv, nil); isCall {
				continue
			}
			if err := findCycle(fv, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

// paramFields lists the json names of a params struct's fields, cached per
// type.
var paramFieldCache sync.Map // reflect.Type -> []string

func paramFields(params any) []string {
	t := reflect.TypeOf(params)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if names, ok := paramFieldCache.Load(t); ok {
		return names.([]string)
	}
	var names []string
	if t.Kind() == reflect.Struct {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" || !f.IsExported() {
				continue
			}
			if name == "" {
				name = f.Name
			}
			names = append(names, name)
		}
	}
	paramFieldCache.Store(t, names)
	return names
}

// decodeParams decodes the call's parameters into params. Decoding alone
// lets an incomplete value through as nil where the Go field is an
// interface, so every field the op reads must also be concrete. It returns
// the first incomplete or invalid error.
func decodeParams(v cue.Value, params any) error {
	if err := v.Decode(params); err != nil {
		return err
	}
	for _, name := range paramFields(params) {
		f := v.LookupPath(cue.MakePath(cue.Str(name)))
		if !f.Exists() {
			continue
		}
		if err := f.Validate(cue.Concrete(true)); err != nil {
			return err
		}
	}
	return nil
}

func ptr[T any](v T) *T { return &v }
