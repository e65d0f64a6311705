package op

import (
	"context"
	"fmt"
	"sort"
)

// Registry maps op names to implementations. It is an explicit value built by
// the caller; there is no package-level registry.
type Registry struct {
	ops map[Name]Op
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{ops: map[Name]Op{}} }

// Family is a set of ops under one provider name, as op packages export them.
type Family interface {
	Provider() string
	Ops() map[string]Op
}

// Register adds op under name. Registering a name twice is a programming
// error and panics at start-up.
func (r *Registry) Register(name Name, o Op) {
	if _, dup := r.ops[name]; dup {
		panic(fmt.Sprintf("op %s registered twice", name))
	}
	r.ops[name] = o
}

// Add registers every op of each family.
func (r *Registry) Add(families ...Family) *Registry {
	for _, f := range families {
		for do, o := range f.Ops() {
			r.Register(Name{Provider: f.Provider(), Do: do}, o)
		}
	}
	return r
}

// Lookup returns the op registered under name.
func (r *Registry) Lookup(name Name) (Op, bool) {
	o, ok := r.ops[name]
	return o, ok
}

// Names lists the registered ops, sorted.
func (r *Registry) Names() []Name {
	out := make([]Name, 0, len(r.ops))
	for n := range r.ops {
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// Direct is the base Runner: it calls the resolved op and puts any error in
// the one shape (*Error).
var Direct Runner = RunnerFunc(func(ctx context.Context, call *Call) (Result, error) {
	if err := ctx.Err(); err != nil {
		return Result{}, wrap(call, err)
	}
	res, err := call.Op.Run(ctx, call)
	return res, wrap(call, err)
})

// Catalog resolves op names; Registry implements it.
type Catalog interface {
	Lookup(name Name) (Op, bool)
}

var _ Catalog = (*Registry)(nil)
