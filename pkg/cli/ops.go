package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
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

// Operations on a run read it from the API server, apply the engine's
// operation to a copy of its status (and, for context variables, to its
// journal), and write the status back. The controller
// acts on the new status at its next tick.

func newOpCmds(deps Deps, g *globals) []*cobra.Command {
	return []*cobra.Command{
		newStepOpCmd(deps, g, stepOp{
			verb: "suspend", done: "suspended",
			short: "Suspend a run until it is resumed, or suspend one running step",
			apply: func(st *v1alpha1.WorkflowRunStatus, step string) error { return engine.Suspend(st, step) },
		}),
		newStepOpCmd(deps, g, stepOp{
			verb: "resume", done: "resumed",
			short: "Resume a suspended run and its suspending steps, or one suspending step",
			apply: func(st *v1alpha1.WorkflowRunStatus, step string) error { return engine.Resume(st, step) },
		}),
		newStepOpCmd(deps, g, stepOp{
			verb: "terminate", done: "terminated",
			short: "Stop a run for good, or fail one unfinished step",
			apply: func(st *v1alpha1.WorkflowRunStatus, step string) error {
				return engine.Terminate(st, step, time.Now())
			},
		}),
		newRestartCmd(deps, g),
		newRetryCmd(deps, g),
		newContextCmd(deps, g),
	}
}

// stepOp is an operation on a whole run or, with --step, on one step.
type stepOp struct {
	verb, done, short string
	apply             func(st *v1alpha1.WorkflowRunStatus, step string) error
}

func newStepOpCmd(deps Deps, g *globals, o stepOp) *cobra.Command {
	var step string
	cmd := &cobra.Command{
		Use:   o.verb + " RUN [--step STEP]",
		Short: o.short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			key := types.NamespacedName{Namespace: g.ns(), Name: args[0]}
			err := operate(cmd.Context(), g, key, o.verb, func(ch *runChange) error {
				return o.apply(ch.status, step)
			})
			if err != nil {
				return err
			}
			if step != "" {
				fmt.Fprintf(deps.Stdout, "%s: step %s %s\n", described("workflowrun", key), step, o.done)
			} else {
				fmt.Fprintf(deps.Stdout, "%s %s\n", described("workflowrun", key), o.done)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&step, "step", "", o.verb+" only this step (or step group)")
	return cmd
}

func newRestartCmd(deps Deps, g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "restart RUN",
		Short: "Run a run again from the beginning, with new step attempts and no context variables set at run time",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			key := types.NamespacedName{Namespace: g.ns(), Name: args[0]}
			// Only the status changes: the controller drops the old
			// attempts' journal entries and variables once it reads the
			// restarted status, so a lost write cannot re-send an effect.
			err := operate(cmd.Context(), g, key, "restart", func(ch *runChange) error {
				engine.Restart(ch.status)
				return nil
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(deps.Stdout, "%s restarted\n", described("workflowrun", key))
			return nil
		},
	}
}

func newRetryCmd(deps Deps, g *globals) *cobra.Command {
	var from string
	cmd := &cobra.Command{
		Use:   "retry RUN --from-step STEP",
		Short: "Run a step again, with the inputs it first ran with, and every step after or downstream of it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			key := types.NamespacedName{Namespace: g.ns(), Name: args[0]}
			err := operate(cmd.Context(), g, key, "retry", func(ch *runChange) error {
				steps, mode, err := runSteps(ch.ctx, ch.c, ch.run)
				if err != nil {
					return err
				}
				gr, err := graph.Build(steps, mode)
				if err != nil {
					return fmt.Errorf("the run's steps: %w", err)
				}
				return engine.RetryFrom(ch.status, gr, from)
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(deps.Stdout, "%s: retrying from step %s\n", described("workflowrun", key), from)
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from-step", "", "the step to run again")
	_ = cmd.MarkFlagRequired("from-step")
	return cmd
}

func newContextCmd(deps Deps, g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "context", Short: "Work with a run's context variables"}
	cmd.AddCommand(&cobra.Command{
		Use:   "set RUN KEY=VALUE [KEY=VALUE...]",
		Short: "Set run context variables, seen by each step's next evaluation as context.KEY",
		Long: `Sets run context variables, which each step sees at its next evaluation as
context.KEY. A VALUE that is valid JSON is set as what it encodes (42, true,
{"a": 1}, "quoted"); any other VALUE is set as a string.`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			vars, err := parseVars(args[1:])
			if err != nil {
				return err
			}
			key := types.NamespacedName{Namespace: g.ns(), Name: args[0]}
			err = operate(cmd.Context(), g, key, "set context variables of", func(ch *runChange) error {
				j, err := ch.journal()
				if err != nil {
					return err
				}
				for _, v := range vars {
					if err := engine.SetContext(ch.status, j, v.key, v.value); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
			for _, v := range vars {
				fmt.Fprintf(deps.Stdout, "%s: context.%s set\n", described("workflowrun", key), v.key)
			}
			return nil
		},
	})
	return cmd
}

type contextVar struct {
	key   string
	value any
}

// parseVars reads KEY=VALUE arguments; VALUE is JSON when it parses as
// JSON, else a string.
func parseVars(args []string) ([]contextVar, error) {
	out := make([]contextVar, 0, len(args))
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q: want KEY=VALUE", a)
		}
		var value any = v
		if json.Valid([]byte(v)) {
			if err := json.Unmarshal([]byte(v), &value); err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
		}
		out = append(out, contextVar{key: k, value: value})
	}
	return out, nil
}

// operate connects to the cluster and applies fn to the run named by key
// (see updateRun). verb names the operation in errors.
func operate(ctx context.Context, g *globals, key types.NamespacedName, verb string, fn func(*runChange) error) error {
	c, err := g.client()
	if err != nil {
		return err
	}
	err = updateRun(ctx, c, key, fn)
	if errors.Is(err, errGaveUp) {
		return fmt.Errorf("cannot %s %s: %w", verb, described("workflowrun", key), err)
	}
	var notApplied *refused
	if errors.As(err, &notApplied) {
		msg := notApplied.err.Error()
		if errors.Is(notApplied.err, engine.ErrFinished) {
			msg += fmt.Sprintf(" (%s): restart it or retry it from a step to run it again", notApplied.phase)
		}
		return fmt.Errorf("cannot %s %s: %s", verb, described("workflowrun", key), msg)
	}
	return err
}

// runChange is one attempt at an operation: the run as read, a copy of its
// status to change and, once opened, its journal.
type runChange struct {
	ctx    context.Context
	c      client.Client
	run    *v1alpha1.WorkflowRun
	status *v1alpha1.WorkflowRunStatus
	store  *kubestore.Store
	j      *journal.Journal
}

// journal opens the run's journal from its ConfigMap, once per attempt.
func (ch *runChange) journal() (*journal.Journal, error) {
	if ch.j != nil {
		return ch.j, nil
	}
	// WithLive reads the ConfigMap even before the controller has
	// recorded it in the status, when an earlier command wrote it.
	ch.store = kubestore.New(ch.c, ch.run, nil).WithLive(ch.c)
	j, err := journal.Open(ch.ctx, ch.store, journal.Limits{})
	if err != nil {
		return nil, err
	}
	ch.j = j
	return j, nil
}

// updateTries bounds the attempts at an operation while other writers
// (the controller) keep changing the run first.
const updateTries = 5

var errGaveUp = fmt.Errorf("the run kept changing (tried %d times); try again", updateTries)

// refused is an operation the engine refused for the run as it is.
type refused struct {
	err   error
	phase v1alpha1.WorkflowRunPhase
}

func (r *refused) Error() string { return r.err.Error() }

// updateRun reads the run, lets fn change a copy of its status, and writes
// the result with the run's resourceVersion, so a write from someone else
// in between is never overwritten: on a conflict it reads and applies fn
// again.
func updateRun(ctx context.Context, c client.Client, key types.NamespacedName, fn func(*runChange) error) error {
	for try := 0; try < updateTries; try++ {
		run, err := getRun(ctx, c, key)
		if err != nil {
			return err
		}
		ch := &runChange{ctx: ctx, c: c, run: run, status: run.Status.DeepCopy()}
		if err := fn(ch); err != nil {
			return &refused{err: err, phase: run.Status.Phase}
		}
		err = ch.write()
		if apierrors.IsConflict(err) {
			continue
		}
		if err != nil {
			return apiError(err, described("workflowrun", key))
		}
		return nil
	}
	return errGaveUp
}

// write saves the journal, if the operation opened it, then the status.
// In between, the run's kubestore.VersionAnnotation is set to the saved
// journal's version (a patch that fails if the run changed since it was
// read): the controller, woken by the status, then reads that journal and
// not an older one from its cache.
func (ch *runChange) write() error {
	if ch.j != nil {
		if err := ch.j.Flush(ch.ctx); err != nil {
			return err
		}
		if ch.status.ContextBackend == nil && ch.store.Exists() {
			ch.status.ContextBackend = ch.store.Reference()
		}
		if v := ch.store.Version(); v != "0" && ch.run.Annotations[kubestore.VersionAnnotation] != v {
			before := ch.run.DeepCopy()
			metav1.SetMetaDataAnnotation(&ch.run.ObjectMeta, kubestore.VersionAnnotation, v)
			if err := ch.c.Patch(ch.ctx, ch.run, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
				return err
			}
		}
	}
	if equality.Semantic.DeepEqual(ch.run.Status, *ch.status) {
		return nil
	}
	ch.run.Status = *ch.status
	return ch.c.Status().Update(ch.ctx, ch.run)
}
