package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/stepflow-dev/stepflow/pkg/definition"
	"github.com/stepflow-dev/stepflow/pkg/deftest"
	"github.com/stepflow-dev/stepflow/pkg/eval"
)

// DefRender is what `def render -o json|yaml` prints.
type DefRender struct {
	Outcome string `json:"outcome"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
	// Calls are the op calls the template makes, in order, none of them
	// run.
	Calls []RenderedCall `json:"calls"`
	// Value is the concrete part of the evaluated template.
	Value any `json:"value"`
}

// RenderedCall is one op call of a rendered template.
type RenderedCall struct {
	Op     string `json:"op"`
	Path   string `json:"path"`
	Params any    `json:"params"`
	// Result says where its result came from: "not run" (absent),
	// "recorded" (--ops) or "evaluated" (a pure or control op, which has
	// no effect: wait, suspend, fail, ...).
	Result deftest.How `json:"result"`
}

type defRenderFlags struct {
	file, properties, context, ops string
}

func newDefRenderCmd(deps Deps, g *globals) *cobra.Command {
	f := &defRenderFlags{}
	cmd := &cobra.Command{
		Use:   "render -f DEFINITION [-p PROPERTIES] [--run-context JSON] [--ops RECORDED.json]",
		Short: "Print a step definition's evaluated template with its op calls shown, none run",
		Long: `Evaluates a step definition (.cue in 'vela def' layout, a bare template, or a
WorkflowStepDefinition YAML) with the given properties and context, without a
cluster and without running any op that acts: each op call is listed with its
decoded parameters, and its results stay absent, so what depends on them
shows as its type or its expression, unless --ops gives recorded results (the
format of a 'def test' case's ops.json: {"<path>": {"returns": ...}}). Pure and
control ops (wait, suspend, fail, ...) have no effect and are evaluated.

Prints the op calls and the evaluated template as CUE; -o yaml or -o json
print both as data. The outcome says where evaluation stopped: a call whose
parameters need results that are absent cannot be shown.`,
		Example: `  stepflow def render -f webhook.cue -p '{"url": "https://example.com/hook", "data": {"x": 1}}'
  stepflow def render -f request.cue -p props.yaml --ops recorded.json -o yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(g.output, "cue", outYAML, outJSON); err != nil {
				return err
			}
			res, cueText, err := renderDefinition(cmd, deps, g, f)
			if err != nil {
				return err
			}
			if g.output == outYAML || g.output == outJSON {
				return printData(deps.Stdout, g.output, res)
			}
			return printRender(deps.Stdout, res, cueText)
		},
	}
	cmd.Flags().StringVarP(&f.file, "file", "f", "", "step definition file (.cue, .yaml, .json)")
	cmd.Flags().StringVarP(&f.properties, "properties", "p", "", "step properties: a JSON or YAML object, @FILE, or a FILE")
	cmd.Flags().StringVar(&f.context, "run-context", "", "run context variables: a JSON or YAML object, @FILE, or a FILE")
	cmd.Flags().StringVar(&f.ops, "ops", "", `recorded op results by call path, a JSON file: {"<path>": {"returns": ..., "error": "..."}}`)
	_ = cmd.MarkFlagRequired("file")
	_ = cmd.MarkFlagFilename("file", "cue", "yaml", "yml", "json")
	return cmd
}

func renderDefinition(cmd *cobra.Command, deps Deps, g *globals, f *defRenderFlags) (DefRender, string, error) {
	src, err := definition.FromFile(f.file)
	if err != nil {
		return DefRender{}, "", err
	}
	props, err := readObjectArg("properties", f.properties)
	if err != nil {
		return DefRender{}, "", err
	}
	runCtx, err := readObjectArg("run-context", f.context)
	if err != nil {
		return DefRender{}, "", err
	}
	c := &deftest.Case{Context: runCtx}
	if props != nil {
		if c.Properties, err = json.Marshal(props); err != nil {
			return DefRender{}, "", fmt.Errorf("--properties: %v", err)
		}
	}
	if f.ops != "" {
		data, err := os.ReadFile(f.ops)
		if err != nil {
			return DefRender{}, "", fmt.Errorf("--ops: %w", err)
		}
		if err := json.Unmarshal(data, &c.Ops); err != nil {
			return DefRender{}, "", fmt.Errorf("--ops %s: %v", f.ops, err)
		}
	}
	reg, err := deps.Ops(g.restConfig)
	if err != nil {
		return DefRender{}, "", err
	}
	ev, err := eval.New(eval.Options{Ops: reg})
	if err != nil {
		return DefRender{}, "", err
	}
	rec := deftest.NewRecorder(c.Ops, deftest.SkipUnrecorded)
	req := deftest.Request(src.Definition, c, rec)
	out := ev.Evaluate(cmdContext(cmd), req)
	res := DefRender{Outcome: string(out.Phase), Reason: out.Reason, Message: out.Message, Calls: []RenderedCall{}, Value: out.Data}
	for _, call := range out.Calls {
		params, _ := rec.Params(call.Path)
		res.Calls = append(res.Calls, RenderedCall{Op: call.Op.String(), Path: call.Path, Params: params, Result: rec.How(call.Path)})
	}
	var text string
	if out.Value != nil && g.output != outYAML && g.output != outJSON {
		if text, err = out.Value.CUE(); err != nil {
			return DefRender{}, "", err
		}
	}
	return res, text, nil
}

// printRender prints a rendered template as CUE, the op calls and the
// outcome in comments on top.
func printRender(w io.Writer, res DefRender, cueText string) error {
	fmt.Fprintf(w, "// outcome, no op run: %s", res.Outcome)
	if res.Reason != "" {
		fmt.Fprintf(w, " (%s)", res.Reason)
	}
	fmt.Fprintln(w)
	if res.Message != "" {
		fmt.Fprintf(w, "// message: %s\n", strings.ReplaceAll(res.Message, "\n", "\n//   "))
	}
	if len(res.Calls) == 0 {
		fmt.Fprintln(w, "// op calls: none")
	} else {
		fmt.Fprintln(w, "// op calls, in order (none run; results absent unless recorded):")
	}
	for _, c := range res.Calls {
		params, err := json.Marshal(c.Params)
		if err != nil {
			return fmt.Errorf("params of %s: %v", c.Path, err)
		}
		fmt.Fprintf(w, "//   %s %s (%s)\n//     %s\n", c.Op, c.Path, c.Result, params)
	}
	if cueText != "" {
		fmt.Fprintln(w)
		_, err := io.WriteString(w, strings.TrimRight(cueText, "\n")+"\n")
		return err
	}
	return nil
}

// readObjectArg reads a flag that is a JSON or YAML object given inline,
// as @FILE, or as a FILE.
func readObjectArg(name, arg string) (map[string]any, error) {
	t := strings.TrimSpace(arg)
	if t == "" || strings.HasPrefix(t, "@") || strings.HasPrefix(t, "{") {
		return readJSONArg(name, arg)
	}
	if _, err := os.Stat(arg); err != nil {
		return nil, fmt.Errorf("--%s: neither an object ({...}) nor a file: %w", name, err)
	}
	return readJSONArg(name, "@"+arg)
}
