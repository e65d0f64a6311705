package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/stepflow-dev/stepflow/pkg/definition"
	"github.com/stepflow-dev/stepflow/pkg/engine"
	"github.com/stepflow-dev/stepflow/pkg/eval"
	"github.com/stepflow-dev/stepflow/pkg/op"
	"github.com/stepflow-dev/stepflow/pkg/op/builtin"
)

func newStepCmd(deps Deps, g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "step", Short: "Work with single steps"}
	cmd.AddCommand(newStepRunCmd(deps, g))
	return cmd
}

type stepRunFlags struct {
	file       string
	properties string
	context    string
	timeout    time.Duration
}

// StepRunResult is what `step run -o json` prints.
type StepRunResult struct {
	Outcome   string         `json:"outcome"`
	Reason    string         `json:"reason,omitempty"`
	Retryable bool           `json:"retryable,omitempty"`
	Message   string         `json:"message"`
	Suspend   string         `json:"suspendFor,omitempty"`
	Value     any            `json:"value"`
	Ops       []StepRunOp    `json:"ops"`
	Logs      []string       `json:"logs,omitempty"`
	Vars      map[string]any `json:"vars,omitempty"`
}

// StepRunOp is one op call made.
type StepRunOp struct {
	Op   string `json:"op"`
	Path string `json:"path"`
	Stop string `json:"stop,omitempty"`
}

func newStepRunCmd(deps Deps, g *globals) *cobra.Command {
	f := &stepRunFlags{}
	cmd := &cobra.Command{
		Use:   "run -f DEFINITION [--properties JSON|@FILE] [--run-context JSON|@FILE]",
		Short: "Evaluate one step once, with real ops, and print its outcome",
		Long: `Evaluates a step definition (CUE in 'vela def' layout, a bare CUE template,
or WorkflowStepDefinition YAML) with the given properties, running its ops for
real: HTTP over the network, kube ops against the kubeconfig's cluster (a kube
op fails clearly when there is none). Prints the outcome, the message, the
evaluated value and the op calls made. Exits 0 whatever the outcome; non-zero
only when the command itself cannot run.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runStep(cmd.Context(), deps, g, f)
		},
	}
	cmd.Flags().StringVarP(&f.file, "file", "f", "", "step definition file (.cue, .yaml, .json)")
	cmd.Flags().StringVar(&f.properties, "properties", "", "step properties as JSON, or @FILE")
	cmd.Flags().StringVar(&f.context, "run-context", "", "run context variables as JSON, or @FILE (--context picks the kubeconfig context)")
	cmd.Flags().DurationVar(&f.timeout, "timeout", 2*time.Minute, "give up on the step after this long")
	_ = cmd.MarkFlagRequired("file")
	_ = cmd.MarkFlagFilename("file", "cue", "yaml", "yml", "json")
	return cmd
}

func readJSONArg(name, arg string) (map[string]any, error) {
	if arg == "" {
		return nil, nil
	}
	data := []byte(arg)
	if strings.HasPrefix(arg, "@") {
		b, err := os.ReadFile(arg[1:])
		if err != nil {
			return nil, fmt.Errorf("--%s: %w", name, err)
		}
		data = b
	}
	var out map[string]any
	if err := yaml.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("--%s: want a JSON object: %v", name, err)
	}
	return out, nil
}

func runStep(ctx context.Context, deps Deps, g *globals, f *stepRunFlags) error {
	if ctx == nil {
		ctx = context.Background()
	}
	// A file that cannot be read is the command's error; one that is read
	// but is no definition (it does not parse) is the step's failure,
	// printed like any other.
	if _, err := os.Stat(f.file); err != nil {
		return err
	}
	def, err := definition.FromFile(f.file)
	if err != nil {
		return printStepResult(deps.Stdout, g.output, StepRunResult{
			Outcome: string(eval.Failed), Reason: eval.ReasonTemplate, Message: err.Error(), Ops: []StepRunOp{}})
	}
	props, err := readJSONArg("properties", f.properties)
	if err != nil {
		return err
	}
	runCtx, err := readJSONArg("run-context", f.context)
	if err != nil {
		return err
	}
	reg, err := deps.Ops(g.restConfig)
	if err != nil {
		return err
	}
	ev, err := eval.New(eval.Options{Ops: reg})
	if err != nil {
		return err
	}
	// -n, else the namespace of the kubeconfig's context, else default.
	ns := g.ns()
	step := op.Step{RunUID: "cli-" + randomID(), RunName: "stepflow-cli", Namespace: ns, StepName: def.Name}
	// As the controller names an attempt: a DNS label, so a template may
	// name objects after context.stepSessionID.
	step.StepID = engine.StepID(step.RunUID, 0, def.Name, 1)
	vars := builtin.MapVars{}
	fullCtx := map[string]any{}
	for k, v := range runCtx {
		fullCtx[k] = v
		vars[k] = v
	}
	for k, v := range map[string]any{"name": step.RunName, "namespace": ns, "stepName": step.StepName, "stepSessionID": step.StepID} {
		if _, set := fullCtx[k]; !set {
			fullCtx[k] = v
		}
	}
	logs := &collectLogs{}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	var params any
	if props != nil {
		params = props
	}
	out := ev.Evaluate(ctx, eval.Request{
		Definition: def.Definition, Parameters: params, Context: fullCtx,
		Step: step, Env: op.Env{Vars: vars, Log: logs},
	})
	res := StepRunResult{Outcome: string(out.Phase), Reason: out.Reason, Message: out.Message, Ops: []StepRunOp{}, Logs: logs.lines}
	if out.Phase == eval.Broken {
		res.Outcome, res.Retryable = string(eval.Failed), true
	}
	if out.SuspendFor > 0 {
		res.Suspend = out.SuspendFor.String()
	}
	if out.Value != nil {
		if res.Value, err = out.Value.Data(); err != nil {
			return err
		}
	}
	for _, c := range out.Calls {
		res.Ops = append(res.Ops, StepRunOp{Op: c.Op.String(), Path: c.Path, Stop: c.Stop})
	}
	if len(vars) > 0 {
		res.Vars = vars
	}
	return printStepResult(deps.Stdout, g.output, res)
}

func printStepResult(w io.Writer, format string, res StepRunResult) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	case "yaml":
		b, err := yaml.Marshal(res)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	case "", "wide":
		fmt.Fprintf(w, "outcome: %s\n", res.Outcome)
		if res.Reason != "" {
			fmt.Fprintf(w, "reason:  %s\n", res.Reason)
		}
		if res.Message != "" {
			fmt.Fprintf(w, "message: %s\n", res.Message)
		}
		if res.Suspend != "" {
			fmt.Fprintf(w, "suspend: %s\n", res.Suspend)
		}
		fmt.Fprintln(w, "ops:")
		for _, o := range res.Ops {
			stop := ""
			if o.Stop != "" {
				stop = " (" + o.Stop + ")"
			}
			fmt.Fprintf(w, "  %-22s %s%s\n", o.Op, o.Path, stop)
		}
		for _, l := range res.Logs {
			fmt.Fprintf(w, "log: %s\n", l)
		}
		if format == "wide" {
			b, _ := json.MarshalIndent(res.Value, "", "  ")
			fmt.Fprintf(w, "value: %s\n", b)
		}
		return nil
	}
	return fmt.Errorf("unknown output format %q: want json, yaml or wide", format)
}

type collectLogs struct{ lines []string }

func (c *collectLogs) StepLog(_ op.Step, _ int, line string) { c.lines = append(c.lines, line) }

func randomID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
