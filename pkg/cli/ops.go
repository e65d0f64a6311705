package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/types"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/engine"
	"github.com/stepflow-dev/stepflow/pkg/runop"
)

// Operations on a run are pkg/engine operations applied through
// pkg/runop, as the REST API applies them. The controller acts on the new
// status at its next tick.

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
			short:  "Stop a run for good (a run whose onTerminate is Compensate rolls back), or fail one unfinished step",
			change: func(ch *runop.Change, step string) error { return ch.Terminate(step, time.Now()) },
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
	// change, when set, is used instead of apply: for an operation that
	// needs the run itself.
	change func(ch *runop.Change, step string) error
}

func newStepOpCmd(deps Deps, g *globals, o stepOp) *cobra.Command {
	var step string
	cmd := &cobra.Command{
		Use:   o.verb + " RUN [--step STEP]",
		Short: o.short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			key := types.NamespacedName{Namespace: g.ns(), Name: args[0]}
			err := operate(cmd.Context(), g, key, o.verb, func(ch *runop.Change) error {
				if o.change != nil {
					return o.change(ch, step)
				}
				return o.apply(ch.Status, step)
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
			err := operate(cmd.Context(), g, key, "restart", func(ch *runop.Change) error {
				engine.Restart(ch.Status)
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
		Short: "Run a step of a finished run again, with the inputs and context variables its last attempt had, and every step after or downstream of it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			key := types.NamespacedName{Namespace: g.ns(), Name: args[0]}
			err := operate(cmd.Context(), g, key, "retry", func(ch *runop.Change) error {
				gr, err := ch.Graph()
				if err != nil {
					return err
				}
				j, err := ch.Journal()
				if err != nil {
					return err
				}
				return engine.RetryFrom(ch.Status, gr, from, j)
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
	cmd.AddCommand(newContextGetCmd(deps, g))
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
			err = operate(cmd.Context(), g, key, "set context variables of", func(ch *runop.Change) error {
				j, err := ch.Journal()
				if err != nil {
					return err
				}
				for _, v := range vars {
					if err := engine.SetContext(ch.Status, j, v.key, v.value); err != nil {
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
// (runop.Runs.Update), recording the kubeconfig's user as who did it. verb
// names the operation in errors.
func operate(ctx context.Context, g *globals, key types.NamespacedName, verb string, fn func(*runop.Change) error) error {
	c, err := g.client()
	if err != nil {
		return err
	}
	actor := g.whoAmI(ctx, c)
	done, err := runop.Runs{Reader: c, Client: c}.Update(ctx, key, runop.Options{Verb: verb, Actor: actor}, fn)
	var notApplied *runop.RefusedError
	switch {
	case err == nil:
		return recordOperated(ctx, c, done, verb, actor, time.Now())
	case errors.Is(err, runop.ErrGaveUp):
		return fmt.Errorf("cannot %s %s: %w", verb, described("workflowrun", key), err)
	case errors.As(err, &notApplied):
		msg := notApplied.Err.Error()
		if errors.Is(notApplied.Err, engine.ErrFinished) {
			msg += fmt.Sprintf(" (%s): restart it or retry it from a step to run it again", notApplied.Phase)
		}
		return fmt.Errorf("cannot %s %s: %s", verb, described("workflowrun", key), msg)
	}
	return apiError(err, described("workflowrun", key))
}
