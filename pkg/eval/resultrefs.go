package eval

import (
	"fmt"
	"strings"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	cueerrors "cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/parser"
	"cuelang.org/go/cue/token"
)

// undecided splits err into the errors that are only references into an
// op call's value, which its result has not decided (yet), and the rest.
//
// An op call is a struct unified with a schema definition (kube.#Apply,
// op.#Read, ...), and CUE closes everything inside a definition, including
// the data a template passes in (value: parameter.data). A reference to a
// field that data lacks (app.apply.value.metadata.generation) is then an
// "undefined field" error, not an incomplete value, although the call's
// result, filled in from outside once it has run, may well have the field.
// Such a reference is as undecided as one into a result that lacks the
// field: the step waits on it (a wait's condition) or leaves it unused,
// where any other error fails the step.
//
// A reference counts when its selector chain starts at a top-level field
// of the template and passes through a call site in v. Only templates
// whose evaluation reports "undefined field" pay for the lookup (the
// template is parsed again to find the chain at the error's position).
func undecided(err error, v cue.Value, def Definition) (rest error) {
	errs := cueerrors.Errors(err)
	var chains map[string][]string
	var calls map[string]bool
	var out cueerrors.Error
	for _, e := range errs {
		if !strings.Contains(e.Error(), "undefined field: ") {
			out = cueerrors.Append(out, e)
			continue
		}
		if chains == nil {
			chains = selectorChains(def)
			calls = map[string]bool{}
			for _, s := range discover(v, def.filename()) {
				calls[s.key] = true
			}
		}
		if !throughCall(e, chains, calls) {
			out = cueerrors.Append(out, e)
		}
	}
	if out == nil {
		return nil
	}
	return out
}

// throughCall reports whether the reference e failed on passes through
// one of calls.
func throughCall(e cueerrors.Error, chains map[string][]string, calls map[string]bool) bool {
	for _, p := range cueerrors.Positions(e) {
		chain, ok := chains[posKey(p)]
		if !ok {
			continue
		}
		// The call itself is never the failing field: a prefix shorter
		// than the chain.
		for n := len(chain) - 1; n > 0; n-- {
			if calls[strings.Join(chain[:n], ".")] {
				return true
			}
		}
	}
	return false
}

// selectorChains maps the position of each field name in a selector chain
// rooted at a top-level identifier (a.b.c) to the chain up to it: b's to
// [a b], c's to [a b c].
func selectorChains(def Definition) map[string][]string {
	out := map[string][]string{}
	f, err := parser.ParseFile(def.filename(), def.Template)
	if err != nil {
		return out
	}
	ast.Walk(f, func(n ast.Node) bool {
		sel, ok := n.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		labels, root := selectorChain(sel)
		prefix := rootChain(root, f, 0)
		if prefix == nil {
			return true
		}
		chain := prefix
		for _, l := range labels {
			chain = append(chain, l.name)
			out[posKey(l.pos)] = append([]string(nil), chain...)
		}
		return false
	}, nil)
	return out
}

// rootChain is the chain a chain's root identifier stands for: itself
// when it is a top-level field, the chain of its expression when it is a
// let (let a = app.apply.value), nil otherwise.
func rootChain(root *ast.Ident, f *ast.File, depth int) []string {
	if root == nil || depth > maxDepth {
		return nil
	}
	if let, ok := root.Node.(*ast.LetClause); ok {
		switch x := let.Expr.(type) {
		case *ast.Ident:
			return rootChain(x, f, depth+1)
		case *ast.SelectorExpr:
			labels, r := selectorChain(x)
			prefix := rootChain(r, f, depth+1)
			if prefix == nil {
				return nil
			}
			for _, l := range labels {
				prefix = append(prefix, l.name)
			}
			return prefix
		}
		return nil
	}
	if !isFileScope(root, f) {
		return nil
	}
	return []string{root.Name}
}

func posKey(p token.Pos) string {
	return fmt.Sprintf("%s:%d:%d", p.Filename(), p.Line(), p.Column())
}
