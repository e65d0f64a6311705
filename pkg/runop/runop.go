// Package runop changes a WorkflowRun from outside, the one way the CLI
// and the REST API both do it, so they can never disagree.
//
// The model: an operation is a function of a pkg/engine operation applied
// to a copy of the run's status (and, for context variables, to its
// journal). Update reads the run from the API server itself (never a
// cache), calls the function, and writes what it changed: the journal
// first, then the run's kubestore.VersionAnnotation, then the status, each
// write carrying the resourceVersion it read, so a write by someone else
// in between (the controller) is never overwritten: Update reads and
// applies the function again, a few times. A caller that names the
// version it saw (Options.LockVersion, the REST API's lockVersion or
// If-Match) gets a *StaleError instead of a retry. Once the status is
// written, who did it is recorded on the run (AnnotationOperatedBy,
// AnnotationOperation). The controller acts on the new status at its
// next tick. A Checker applies the same functions to a copy of a run and
// writes nothing: whether an operation would be done now (the UI enables
// only those).
package runop

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/engine"
	"github.com/stepflow-dev/stepflow/pkg/graph"
	"github.com/stepflow-dev/stepflow/pkg/journal"
	"github.com/stepflow-dev/stepflow/pkg/journal/kubestore"
)

// Annotations recording the last operation on a run from outside.
const (
	// AnnotationOperatedBy is who did it (the user name).
	AnnotationOperatedBy = "stepflow.dev/operated-by"
	// AnnotationOperation is what they did and when: "resume at
	// 2026-12-06T15:04:05Z".
	AnnotationOperation = "stepflow.dev/operation"
)

// Options say who operates and on which version of the run.
type Options struct {
	// Verb names the operation (resume, terminate, ...) in the audit
	// annotation and in errors.
	Verb string
	// Actor is who operates; empty: nothing is recorded.
	Actor string
	// LockVersion, when set, is the run's resourceVersion as the caller
	// last saw it: if the run has changed since, Update changes nothing
	// and returns a *StaleError.
	LockVersion string
	// Now is the clock of the audit annotation; nil: time.Now.
	Now func() time.Time
}

// Tries bounds the attempts at an operation while other writers (the
// controller) keep changing the run first.
const Tries = 5

// ErrGaveUp is returned when the run kept changing under every try.
var ErrGaveUp = fmt.Errorf("the run kept changing (tried %d times); try again", Tries)

// RefusedError is an operation the engine refused for the run as it is.
type RefusedError struct {
	Err error
	// Phase is the run's phase when it refused.
	Phase v1alpha1.WorkflowRunPhase
	// Run is the run as it was read.
	Run *v1alpha1.WorkflowRun
}

func (r *RefusedError) Error() string { return r.Err.Error() }
func (r *RefusedError) Unwrap() error { return r.Err }

// StaleError is an operation sent with a version of the run that is no
// longer its version.
type StaleError struct {
	Want, Have string
}

func (e *StaleError) Error() string {
	return fmt.Sprintf("the run changed since version %s (it is at version %s): read it again", e.Want, e.Have)
}

// Change is one attempt at an operation: the run as read, a copy of its
// status for the operation to change and, once opened, its journal.
type Change struct {
	Ctx context.Context
	// Run is the run as read; operations change Status, not Run.Status.
	Run    *v1alpha1.WorkflowRun
	Status *v1alpha1.WorkflowRunStatus

	r     Runs
	store *kubestore.Store
	j     *journal.Journal
	// checker is set for a Checker's try: the journal is a copy and
	// nothing is written.
	checker *Checker
}

// Journal opens the run's journal from its ConfigMap, once per attempt.
// What the operation changes in it is saved before the status.
func (ch *Change) Journal() (*journal.Journal, error) {
	if ch.j != nil {
		return ch.j, nil
	}
	if ch.checker != nil {
		j, err := ch.checker.journal(ch.Ctx)
		if err != nil {
			return nil, err
		}
		ch.j = j
		return j, nil
	}
	// WithLive reads the ConfigMap even before the controller has
	// recorded it in the status, when an earlier operation wrote it.
	ch.store = kubestore.New(ch.r.Client, ch.Run, nil).WithLive(ch.r.Reader)
	j, err := journal.Open(ch.Ctx, ch.store, journal.Limits{})
	if err != nil {
		return nil, fmt.Errorf("workflowrun %s/%s: its journal: %w", ch.Run.Namespace, ch.Run.Name, err)
	}
	ch.j = j
	return j, nil
}

// Graph is the run's step graph, built from its steps as the controller
// builds it.
func (ch *Change) Graph() (*graph.Graph, error) {
	steps, mode, err := Steps(ch.Ctx, ch.r.Reader, ch.Run)
	if err != nil {
		return nil, err
	}
	g, err := graph.Build(steps, mode)
	if err != nil {
		return nil, fmt.Errorf("workflowrun %s/%s: its steps: %w", ch.Run.Namespace, ch.Run.Name, err)
	}
	return g, nil
}

// Orchestration is the run's onFailure, onTerminate, ...: its own fields
// over those of the Workflow it names (engine.ResolveOrchestration). A
// Workflow that cannot be read leaves the run's own.
func (ch *Change) Orchestration() v1alpha1.Orchestration {
	run := ch.Run
	if run.Spec.WorkflowSpec != nil || run.Spec.WorkflowRef == "" {
		return engine.ResolveOrchestration(run, nil)
	}
	var wf v1alpha1.Workflow
	if err := ch.r.Reader.Get(ch.Ctx, types.NamespacedName{Namespace: run.Namespace, Name: run.Spec.WorkflowRef}, &wf); err != nil {
		return engine.ResolveOrchestration(run, nil)
	}
	return engine.ResolveOrchestration(run, &wf)
}

// Terminate terminates the run, or one step, as its onTerminate says:
// a run that rolls back when terminated is left for the controller's next
// tick to roll back (engine.TerminateFor).
func (ch *Change) Terminate(step string, now time.Time) error {
	return engine.TerminateFor(ch.Status, ch.Orchestration(), step, now)
}

// Runs changes runs: Reader reads them from the API server itself (not a
// cache: an operation acts on the run as it is now), Client writes.
type Runs struct {
	Reader client.Reader
	Client client.Client
}

// Update applies fn to the run named by key and writes what it changed
// (see the package doc). It returns the run as written.
func (r Runs) Update(ctx context.Context, key types.NamespacedName, o Options, fn func(*Change) error) (*v1alpha1.WorkflowRun, error) {
	for try := 0; try < Tries; try++ {
		var run v1alpha1.WorkflowRun
		if err := r.Reader.Get(ctx, key, &run); err != nil {
			return nil, err
		}
		if o.LockVersion != "" && o.LockVersion != run.ResourceVersion {
			return nil, &StaleError{Want: o.LockVersion, Have: run.ResourceVersion}
		}
		ch := &Change{Ctx: ctx, Run: &run, Status: run.Status.DeepCopy(), r: r}
		if err := fn(ch); err != nil {
			return nil, &RefusedError{Err: err, Phase: run.Status.Phase, Run: &run}
		}
		read := run.ResourceVersion
		err := ch.write()
		if apierrors.IsConflict(err) {
			if o.LockVersion != "" {
				return nil, &StaleError{Want: o.LockVersion, Have: "newer than " + read}
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		if err := r.audit(ctx, ch.Run, o); err != nil {
			return ch.Run, fmt.Errorf("the %s was done, but recording who did it failed: %w", o.Verb, err)
		}
		return ch.Run, nil
	}
	return nil, ErrGaveUp
}

// write saves the journal, if the operation opened it, then the status.
// In between, the run's kubestore.VersionAnnotation is set to the saved
// journal's version (a patch that fails if the run changed since it was
// read): the controller, woken by the status, then reads that journal and
// not an older one from its cache.
func (ch *Change) write() error {
	c := ch.r.Client
	if ch.j != nil {
		if err := ch.j.Flush(ch.Ctx); err != nil {
			return err
		}
		if ch.Status.ContextBackend == nil && ch.store.Exists() {
			ch.Status.ContextBackend = ch.store.Reference()
		}
		if v := ch.store.Version(); v != "0" && ch.Run.Annotations[kubestore.VersionAnnotation] != v {
			before := ch.Run.DeepCopy()
			metav1.SetMetaDataAnnotation(&ch.Run.ObjectMeta, kubestore.VersionAnnotation, v)
			if err := c.Patch(ch.Ctx, ch.Run, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
				return err
			}
		}
	}
	if equality.Semantic.DeepEqual(ch.Run.Status, *ch.Status) {
		return nil
	}
	ch.Run.Status = *ch.Status
	return c.Status().Update(ch.Ctx, ch.Run)
}

// audit records who did the operation on the run, after it is done (a
// merge patch of two annotations, which no other writer sets).
func (r Runs) audit(ctx context.Context, run *v1alpha1.WorkflowRun, o Options) error {
	if o.Actor == "" {
		return nil
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	before := run.DeepCopy()
	metav1.SetMetaDataAnnotation(&run.ObjectMeta, AnnotationOperatedBy, o.Actor)
	metav1.SetMetaDataAnnotation(&run.ObjectMeta, AnnotationOperation, o.Verb+" at "+now().UTC().Format(time.RFC3339))
	return r.Client.Patch(ctx, run, client.MergeFrom(before))
}

// Checker asks whether operations would be applied to one run as read,
// writing nothing: the rules Update applies, asked without acting (the
// UI shows only the actions a run allows now). It reads the run's journal
// once, for the first operation that opens it, and gives each a copy. Not
// safe for concurrent use.
type Checker struct {
	r   Runs
	run *v1alpha1.WorkflowRun
	// data is the run's journal once loaded (loaded), or err.
	loaded bool
	data   journal.Data
	err    error
}

// Checker returns a Checker of run as read (it is not read again).
func (r Runs) Checker(run *v1alpha1.WorkflowRun) *Checker {
	return &Checker{r: r, run: run}
}

// Check applies fn as Update does, to a copy of the run's status (and of
// its journal, if fn opens it), and writes nothing. It returns nil when
// Update would apply fn to the run as it is, else the *RefusedError
// Update would return.
func (c *Checker) Check(ctx context.Context, fn func(*Change) error) error {
	run := c.run.DeepCopy()
	ch := &Change{Ctx: ctx, Run: run, Status: run.Status.DeepCopy(), r: c.r, checker: c}
	if err := fn(ch); err != nil {
		return &RefusedError{Err: err, Phase: run.Status.Phase, Run: run}
	}
	return nil
}

// journal is a copy of the run's journal, kept in memory only.
func (c *Checker) journal(ctx context.Context) (*journal.Journal, error) {
	if !c.loaded {
		c.loaded = true
		store := kubestore.New(c.r.Client, c.run, nil).WithLive(c.r.Reader)
		c.data, c.err = store.Load(ctx)
	}
	if c.err != nil {
		return nil, fmt.Errorf("workflowrun %s/%s: its journal: %w", c.run.Namespace, c.run.Name, c.err)
	}
	return journal.New(c.data, journal.NewMemory(), journal.Limits{}), nil
}

// Steps returns the run's steps and mode: its own workflowSpec, or the
// Workflow named by workflowRef in its namespace (as the controller
// resolves them).
func Steps(ctx context.Context, c client.Reader, run *v1alpha1.WorkflowRun) ([]v1alpha1.WorkflowStep, *v1alpha1.WorkflowExecuteMode, error) {
	if run.Spec.WorkflowSpec != nil {
		return run.Spec.WorkflowSpec.Steps, run.Spec.Mode, nil
	}
	if run.Spec.WorkflowRef == "" {
		return nil, run.Spec.Mode, nil
	}
	key := types.NamespacedName{Namespace: run.Namespace, Name: run.Spec.WorkflowRef}
	var wf v1alpha1.Workflow
	if err := c.Get(ctx, key, &wf); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil, fmt.Errorf("workflowRef: workflow %s not found", key)
		}
		return nil, nil, fmt.Errorf("workflowRef: workflow %s: %w", key, err)
	}
	mode := run.Spec.Mode
	if mode == nil {
		mode = wf.Mode
	}
	return wf.Steps, mode, nil
}

// IsRefused reports whether err is the engine refusing the operation.
func IsRefused(err error) bool {
	var r *RefusedError
	return errors.As(err, &r)
}
