package eval

import (
	"crypto/sha256"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/build"
	"cuelang.org/go/cue/cuecontext"
	cueerrors "cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/parser"
	"cuelang.org/go/cue/token"

	"github.com/stepflow-dev/stepflow/stdlib"
)

// Definition is a step type: its name and CUE template.
type Definition struct {
	Name     string
	Template string
}

func (d Definition) filename() string { return d.Name + ".cue" }

// Templates are written without a package clause, as in KubeVela. Each is
// compiled as package stepPkg together with a second file that declares the
// fields every template may refer to without declaring them itself
// (context, and parameter for templates without one); their values are
// filled per evaluation.
const stepPkg = "step"

const implicitDecls = "package " + stepPkg + "\n\ncontext: _\nparameter: {...}\n"

// shard is one CUE context with its compiled templates. All use of its values
// holds mu.
type shard struct {
	mu       sync.Mutex
	ctx      *cue.Context
	bctx     *build.Context
	pkgs     map[string][]stdlib.File
	cache    map[[32]byte]compiled
	maxCache int
	poisoned atomic.Bool
}

type compiled struct {
	v   cue.Value
	err error
}

func newShard(pkgs map[string][]stdlib.File, maxCache int) *shard {
	return &shard{
		ctx:      cuecontext.New(),
		bctx:     build.NewContext(),
		pkgs:     pkgs,
		cache:    map[[32]byte]compiled{},
		maxCache: maxCache,
	}
}

// compile returns the template's compiled value, from the cache when the
// same definition was compiled before. Callers hold sh.mu.
func (sh *shard) compile(def Definition) (cue.Value, error) {
	key := sha256.Sum256([]byte(def.Name + "\x00" + def.Template))
	if c, ok := sh.cache[key]; ok {
		return c.v, c.err
	}
	v, err := sh.build(def)
	if len(sh.cache) >= sh.maxCache {
		for k := range sh.cache { // evict an arbitrary entry
			delete(sh.cache, k)
			break
		}
	}
	sh.cache[key] = compiled{v: v, err: err}
	return v, err
}

func (sh *shard) build(def Definition) (cue.Value, error) {
	f, err := parser.ParseFile(def.filename(), def.Template)
	if err != nil {
		return cue.Value{}, err
	}
	pkg := stepPkg
	if name := f.PackageName(); name != "" {
		pkg = name
	} else {
		f.Decls = append([]ast.Decl{&ast.Package{Name: ast.NewIdent(stepPkg)}}, f.Decls...)
	}
	decls, err := parser.ParseFile("stepflow-implicit.cue", strings.Replace(implicitDecls, stepPkg, pkg, 1))
	if err != nil {
		return cue.Value{}, err
	}
	inst := sh.bctx.NewInstance("", sh.load)
	if err := inst.AddSyntax(f); err != nil {
		return cue.Value{}, err
	}
	if err := inst.AddSyntax(decls); err != nil {
		return cue.Value{}, err
	}
	if err := inst.Complete(); err != nil {
		return cue.Value{}, err
	}
	if inst.Err != nil {
		return cue.Value{}, inst.Err
	}
	v := sh.ctx.BuildInstance(inst)
	if err := v.Validate(); err != nil {
		return cue.Value{}, err
	}
	return v, nil
}

// load resolves an import: the vela/* packages come from the embedded
// stdlib; any other path is left to CUE's own standard library.
func (sh *shard) load(pos token.Pos, path string) *build.Instance {
	files, ok := sh.pkgs[path]
	if !ok {
		if strings.HasPrefix(path, "vela/") || strings.Contains(strings.SplitN(path, "/", 2)[0], ".") {
			inst := sh.bctx.NewInstance(path, nil)
			inst.Err = cueerrors.Newf(pos, "unknown package %q (stepflow provides %s and CUE's standard library)", path, sh.pkgList())
			return inst
		}
		return nil
	}
	inst := sh.bctx.NewInstance(path, sh.load)
	inst.ImportPath = path
	for _, f := range files {
		if err := inst.AddFile(f.Name, f.Source); err != nil {
			return inst
		}
	}
	if err := inst.Complete(); err != nil && inst.Err == nil {
		inst.Err = cueerrors.Promote(err, "stdlib "+path)
	}
	return inst
}

func (sh *shard) pkgList() string {
	names := make([]string, 0, len(sh.pkgs))
	for p := range sh.pkgs {
		names = append(names, p)
	}
	sortStrings(names)
	return strings.Join(names, ", ")
}

// Check compiles def (through the cache) and reports its CUE errors with
// positions, without evaluating it. It is what `def vet` and a
// definition's Ready condition use.
func (e *Evaluator) Check(def Definition) error {
	slot, sh := e.shard()
	var cerr error
	err := e.withCUE(slot, sh, func() {
		v, err := sh.compile(def)
		if err == nil {
			err = staticError(v, 0)
		}
		if err != nil {
			cerr = fmt.Errorf("definition %q: %s", def.Name, describe(err))
		}
	})
	if err != nil {
		return fmt.Errorf("definition %q: compiling did not finish within %s", def.Name, e.opts.EvalTimeout)
	}
	return cerr
}

// staticErrors are field errors no parameter, context or op result can
// cure. CUE reports most of them only on the field, not on the root.
var staticErrors = []string{"undefined field: #", "conflicting values", "cycle", "not allowed"}

// staticError returns the first field error in v that no later fill can
// cure, such as a reference to a definition the stdlib does not have.
func staticError(v cue.Value, depth int) error {
	if depth > maxDepth {
		return nil
	}
	it, err := v.Fields(cue.Definitions(true))
	if err != nil {
		return nil
	}
	for it.Next() {
		fv := it.Value()
		if ferr := fv.Err(); ferr != nil {
			for _, e := range cueerrors.Errors(ferr) {
				msg := e.Error()
				for _, s := range staticErrors {
					if strings.Contains(msg, s) && !strings.Contains(msg, "$returns") {
						return e
					}
				}
			}
			continue
		}
		if fv.IncompleteKind()&cue.StructKind != 0 {
			if err := staticError(fv, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}
