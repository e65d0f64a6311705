package cli

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/spf13/cobra"

	"github.com/stepflow-dev/stepflow/pkg/deftest"
	"github.com/stepflow-dev/stepflow/pkg/eval"
)

func newDefTestCmd(deps Deps, g *globals) *cobra.Command {
	var run string
	var verbose bool
	cmd := &cobra.Command{
		Use:   "test [DIR|FILE.cue]...",
		Short: "Run step definitions' test cases without a cluster",
		Long: `Runs the test cases of step definitions without a cluster: each case's
properties and context are filled into the definition's template, its op calls
are answered from the results the case recorded (none is run; pure and control
ops such as wait, suspend and fail run as they would), and the outcome,
outputs, op calls and values are compared with what the case wants.

Layout (default DIR: the current directory):

  DIR/NAME.cue                   a definition in 'vela def' layout, named NAME
  DIR/testdata/NAME/CASE.txtar   its test cases

A FILE.cue argument runs that definition's cases only. A case is a txtar
archive (` + "`stepflow def init`" + ` writes one):

  -- properties.json --  the step's properties
  -- context.json --     the run context; name, namespace, stepName and
                         stepSessionID are added when missing
  -- ops.json --         recorded results by op call path:
                         {"<path>": {"returns": ..., "error": "...", "permanent": bool}}
  -- outputs.json --     the step's outputs, as in a run's step:
                         [{"name": "...", "valueFrom": "<cue expr>"}]
  -- want.json --        {"outcome": "succeeded|waiting|suspending|failed|terminating|broken",
                          "reason", "message", "messageContains": [...],
                          "calls": ["<op> <path>", ...] (every call made, in order),
                          "params": {"<path>": <the call's decoded params>},
                          "value": {"<cue expr>": <json>},
                          "outputs": {"<name>": <json>}}

Only want.json is required, and only its outcome is always checked. A call
without a recorded result fails the case. Outputs are read as the engine
exports them: from a succeeded step, and one that cannot be read fails the
step (reason OutputError).

Prints "ok NAME/CASE" or "FAIL NAME/CASE" with what differs (-want +got) for
each case, and exits non-zero if any fails.`,
		Example: `  stepflow def init my-step --dir steps && stepflow def test steps
  stepflow def test definitions/ --run 'request/.*'`,
		RunE: func(cmd *cobra.Command, args []string) error {
			var filter *regexp.Regexp
			if run != "" {
				var err error
				if filter, err = regexp.Compile(run); err != nil {
					return fmt.Errorf("--run: %v", err)
				}
			}
			if len(args) == 0 {
				args = []string{"."}
			}
			reg, err := deps.Ops(g.restConfig)
			if err != nil {
				return err
			}
			ev, err := eval.New(eval.Options{Ops: reg})
			if err != nil {
				return err
			}
			t := &defTester{deps: deps, ev: ev, filter: filter, verbose: verbose}
			for _, a := range args {
				if err := t.path(cmdContext(cmd), a); err != nil {
					return err
				}
			}
			switch {
			case t.failed > 0:
				return fmt.Errorf("%d of %d cases failed", t.failed, t.total)
			case t.total == 0:
				return fmt.Errorf("no test cases found (want testdata/NAME/*.txtar beside NAME.cue)")
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&run, "run", "", "run only the cases whose NAME/CASE matches this regular expression")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "print each case's outcome and message, passed or not")
	return cmd
}

func cmdContext(cmd *cobra.Command) context.Context {
	if ctx := cmd.Context(); ctx != nil {
		return ctx
	}
	return context.Background()
}

// defTester runs the cases of def test and counts them.
type defTester struct {
	deps          Deps
	ev            *eval.Evaluator
	filter        *regexp.Regexp
	verbose       bool
	total, failed int
}

func (t *defTester) path(ctx context.Context, path string) error {
	suites, err := deftest.Find(path)
	if err != nil {
		return err
	}
	for _, s := range suites {
		if len(s.Cases) == 0 {
			fmt.Fprintf(t.deps.Stdout, "?    %s [no cases in %s]\n", s.Name, filepath.Join(filepath.Dir(s.File), "testdata", s.Name))
			continue
		}
		def, defErr := s.Definition()
		for _, file := range s.Cases {
			name := s.Name + "/" + strings.TrimSuffix(filepath.Base(file), ".txtar")
			if t.filter != nil && !t.filter.MatchString(name) {
				continue
			}
			t.total++
			if defErr != nil {
				t.fail(name, []string{defErr.Error()})
				continue
			}
			c, err := deftest.LoadCase(file)
			if err != nil {
				t.fail(name, []string{err.Error()})
				continue
			}
			r := deftest.Run(ctx, t.ev, def, c)
			if !r.OK() {
				t.fail(name, r.Problems)
				continue
			}
			fmt.Fprintf(t.deps.Stdout, "ok   %s\n", name)
			if t.verbose {
				fmt.Fprintf(t.deps.Stdout, "    %s\n", outcomeLine(r))
			}
		}
	}
	return nil
}

func (t *defTester) fail(name string, problems []string) {
	t.failed++
	fmt.Fprintf(t.deps.Stdout, "FAIL %s\n", name)
	for _, p := range problems {
		fmt.Fprintf(t.deps.Stdout, "    %s\n", strings.ReplaceAll(p, "\n", "\n    "))
	}
}

func outcomeLine(r *deftest.Result) string {
	s := r.Phase
	if r.Reason != "" {
		s += " " + r.Reason
	}
	if r.Message != "" {
		s += ": " + r.Message
	}
	return s
}
