package eval

import (
	"container/list"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync"

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
	// File is the file name positions in the template's errors give
	// (default NAME.cue): a definition read from a file names the file.
	File string `json:",omitempty"`
	// Compensate is the definition's default compensation (a
	// WorkflowStepDefinition's spec.compensate): the step type that undoes
	// a step of this type when its run rolls back. It is not part of the
	// compiled template.
	Compensate *Compensation `json:",omitempty"`
}

// Compensation is a definition's default compensation: the compensating
// step's type, and its properties (nil: the original step's).
type Compensation struct {
	Type       string
	Properties map[string]any `json:",omitempty"`
}

// cacheKey identifies a compiled template: the same text under another
// name or file gives other positions.
func (d Definition) cacheKey() [32]byte {
	return sha256.Sum256([]byte(d.Name + "\x00" + d.File + "\x00" + d.Template))
}

func (d Definition) filename() string {
	if d.File != "" {
		return d.File
	}
	return d.Name + ".cue"
}

// Templates are written without a package clause, as in KubeVela. Each is
// compiled as package stepPkg together with a second file that declares the
// fields every template may refer to without declaring them itself
// (context, and parameter for templates without one); their values are
// filled per evaluation.
const stepPkg = "step"

const implicitDecls = "package " + stepPkg + "\n\ncontext: _\n"

// implicitParameter is added for templates that declare no parameter. One
// that does is left as declared, so that a reference to a field it does
// not declare can be found (checkParameterRefs).
const implicitParameter = "parameter: {...}\n"

// shard is one CUE context with its compiled templates. CUE values are not
// safe for concurrent use: all use of a shard's values holds its lock (sem).
//
// A shard is replaced in two ways. It is abandoned (dead is closed) when
// work on it overran its time or panicked: the runaway goroutine may still
// hold the lock, so whoever waits for it moves to the replacement. It is
// retired when its context has compiled enough templates that evicting
// them from the cache no longer frees memory (a CUE context keeps what it
// compiled): evaluations holding its values finish on it, new ones start
// on the replacement, and the garbage collector takes it after them.
type shard struct {
	sem      chan struct{}
	dead     chan struct{}
	deadOnce sync.Once
	ctx      *cue.Context
	bctx     *build.Context
	pkgs     map[string][]stdlib.File
	maxCache int
	maxDepth int
	// cache maps a definition's content to its element in lru, most
	// recently used first.
	cache map[[32]byte]*list.Element
	lru   *list.List
	// builds counts the templates compiled into ctx.
	builds int
}

type compiled struct {
	key [32]byte
	v   cue.Value
	err error
}

func newShard(pkgs map[string][]stdlib.File, maxCache, maxDepth int) *shard {
	return &shard{
		sem:      make(chan struct{}, 1),
		dead:     make(chan struct{}),
		ctx:      cuecontext.New(),
		bctx:     build.NewContext(),
		pkgs:     pkgs,
		maxCache: maxCache,
		maxDepth: maxDepth,
		cache:    map[[32]byte]*list.Element{},
		lru:      list.New(),
	}
}

// errShardLost means the shard was abandoned while the caller waited for
// it; the caller's CUE values are gone with it.
var errShardLost = errors.New("evaluator shard abandoned")

// acquire takes the shard's lock, unless the shard is abandoned first or
// ctx ends.
func (sh *shard) acquire(ctx context.Context) error {
	select {
	case <-sh.dead:
		return errShardLost
	default:
	}
	select {
	case sh.sem <- struct{}{}:
		select {
		case <-sh.dead:
			<-sh.sem
			return errShardLost
		default:
			return nil
		}
	case <-sh.dead:
		return errShardLost
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (sh *shard) release() { <-sh.sem }

// abandon marks the shard dead: nobody may use its values again.
func (sh *shard) abandon() { sh.deadOnce.Do(func() { close(sh.dead) }) }

// full reports whether the shard should be retired: its context has
// compiled templates worth twice the cache, so at least one cache's worth
// of them were evicted yet are still held by the context.
func (sh *shard) full() bool { return sh.builds >= 2*sh.maxCache }

// compile returns the template's compiled value, from the cache when the
// same definition was compiled before. Callers hold the shard's lock.
func (sh *shard) compile(def Definition) (cue.Value, error) {
	key := def.cacheKey()
	if el, ok := sh.cache[key]; ok {
		sh.lru.MoveToFront(el)
		c := el.Value.(*compiled)
		return c.v, c.err
	}
	v, err := sh.build(def)
	sh.builds++
	for sh.lru.Len() >= sh.maxCache {
		oldest := sh.lru.Back()
		sh.lru.Remove(oldest)
		delete(sh.cache, oldest.Value.(*compiled).key)
	}
	sh.cache[key] = sh.lru.PushFront(&compiled{key: key, v: v, err: err})
	return v, err
}

func (sh *shard) build(def Definition) (cue.Value, error) {
	if err := checkSourceNesting(def.filename(), []byte(def.Template), sh.maxDepth); err != nil {
		return cue.Value{}, err
	}
	f, err := parser.ParseFile(def.filename(), def.Template)
	if err != nil {
		return cue.Value{}, err
	}
	if err := checkNesting(f, sh.maxDepth); err != nil {
		return cue.Value{}, err
	}
	upgrade(f) // its warnings are the definition reconciler's to report (Rewrites)
	pkg := stepPkg
	if name := f.PackageName(); name != "" {
		pkg = name
	} else {
		f.Decls = append([]ast.Decl{&ast.Package{Name: ast.NewIdent(stepPkg)}}, f.Decls...)
	}
	implicit := strings.Replace(implicitDecls, stepPkg, pkg, 1)
	if !declaresParameter(f) {
		implicit += implicitParameter
	}
	decls, err := parser.ParseFile("stepflow-implicit.cue", implicit)
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
	if err := checkParameterRefs(f, v); err != nil {
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
	var cerr error
	err := e.withAnyShard(context.Background(), func(sh *shard) {
		v, err := sh.compile(def)
		if err == nil {
			err = staticError(v, 0)
		}
		if err != nil {
			cerr = fmt.Errorf("definition %q: %s", def.Name, describe(err))
		}
	})
	var perr *panicError
	switch {
	case errors.Is(err, errTimeout):
		return fmt.Errorf("definition %q: compiling did not finish within %s", def.Name, e.opts.EvalTimeout)
	case errors.As(err, &perr):
		return fmt.Errorf("definition %q: CUE failed compiling the template: %v", def.Name, perr)
	case err != nil:
		return fmt.Errorf("definition %q: %v", def.Name, err)
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
