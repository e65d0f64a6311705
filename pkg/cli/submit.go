package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/app"
)

// submitFlags are the flags of stepflow submit.
type submitFlags struct {
	from, name, generateName string
	params                   []string
	watch                    bool
}

// fromKinds are the spellings of the one kind --from takes, as kubectl
// spells a Workflow: its kind, plural, short name and resource.group.
var fromKinds = []string{"workflow", "workflows", "wfl", "workflow.core.oam.dev", "workflows.core.oam.dev"}

func newSubmitCmd(deps Deps, g *globals) *cobra.Command {
	var f submitFlags
	cmd := &cobra.Command{
		Use:   "submit --from workflow/NAME [-p KEY=VALUE]... [--name N | --generate-name PREFIX] [--watch]",
		Short: "Start a run of a stored Workflow, with parameters in its context",
		Long: `Creates a WorkflowRun with workflowRef: NAME in -n, else the kubeconfig's
namespace, as argo submit --from does. The Workflow must exist there.

Each -p KEY=VALUE sets context.KEY in the run's spec.context, which every step
reads. VALUE is YAML: 3 is a number, true a bool, [a, b] a list, {x: 1} an
object, and anything else a string (quote it to keep "3" a string). A dotted
KEY nests: -p env.name=prod sets context.env.name; a key cannot be set twice,
nor both as a value and as the parent of another.

The run is named --name, else generated from --generate-name (default: the
Workflow's name and a dash). Prints the run as kubectl create does (-o name:
its name only; -o yaml|json: the run created). With --watch its steps are
followed until it finishes; the command then exits non-zero if the run failed
or was terminated.`,
		Example: `  stepflow submit --from workflow/deploy -p replicas=3 -p image.tag=v2 --watch
  stepflow submit --from workflow/deploy --name deploy-v2 -o name`,
		Args:        cobra.NoArgs,
		Annotations: map[string]string{outputAnnotation: strings.Join([]string{outName, outYAML, outJSON}, ",")},
		RunE: func(cmd *cobra.Command, _ []string) error {
			return submit(cmd, deps, g, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.from, "from", "", "the Workflow to run: workflow/NAME")
	fl.StringArrayVarP(&f.params, "parameter", "p", nil, "KEY=VALUE in the run's context (repeatable; VALUE is YAML; a dotted KEY nests)")
	fl.StringVar(&f.name, "name", "", "the run's name")
	fl.StringVar(&f.generateName, "generate-name", "", "prefix of the run's generated name (default: the Workflow's name and a dash)")
	fl.BoolVarP(&f.watch, "watch", "w", false, "follow the run's steps until it finishes")
	_ = cmd.MarkFlagRequired("from")
	cmd.MarkFlagsMutuallyExclusive("name", "generate-name")
	return cmd
}

func submit(cmd *cobra.Command, deps Deps, g *globals, f submitFlags) error {
	workflow, err := parseFrom(f.from)
	if err != nil {
		return err
	}
	params, err := parseParams(f.params)
	if err != nil {
		return err
	}
	if f.watch && (g.output == outYAML || g.output == outJSON) {
		return fmt.Errorf("--watch prints the run's steps as they change: it cannot be combined with -o %s", g.output)
	}
	c, err := g.client()
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	ns := g.ns()
	wfKey := types.NamespacedName{Namespace: ns, Name: workflow}
	if err := c.Get(ctx, wfKey, &v1alpha1.Workflow{}); err != nil {
		return fmt.Errorf("--from workflow/%s: %w", workflow, apiError(err, described("workflow", wfKey)))
	}
	run, err := app.Submission{Namespace: ns, Name: f.name, GenerateName: f.generateName, Workflow: workflow, Context: params}.Run()
	if err != nil {
		return fmt.Errorf("-p: %w", err)
	}
	if err := c.Create(ctx, run); err != nil {
		name := f.name
		if name == "" {
			name = run.GenerateName + "*"
		}
		return apiError(err, "creating "+described("workflowrun", types.NamespacedName{Namespace: ns, Name: name}))
	}
	switch g.output {
	case outName:
		fmt.Fprintf(deps.Stdout, "%s/%s\n", resourceName(kindRun), run.Name)
	case outYAML, outJSON:
		return printObject(deps.Stdout, c.Scheme(), g.output, run)
	default:
		fmt.Fprintf(deps.Stdout, "%s/%s created\n", resourceName(kindRun), run.Name)
	}
	if !f.watch {
		return nil
	}
	return follow(ctx, deps.Stdout, c, client.ObjectKeyFromObject(run), time.Now)
}

// parseFrom returns the Workflow name of --from KIND/NAME, refusing any
// kind but a Workflow.
func parseFrom(from string) (string, error) {
	kind, name, ok := strings.Cut(from, "/")
	if !ok || kind == "" || name == "" {
		return "", fmt.Errorf("--from %q: want workflow/NAME", from)
	}
	for _, k := range fromKinds {
		if strings.EqualFold(kind, k) {
			return name, nil
		}
	}
	return "", fmt.Errorf("--from %s: kind %q is not supported: submit starts runs of a Workflow only (--from workflow/NAME)", from, kind)
}

// parseParams builds the run's context from -p KEY=VALUE pairs. VALUE is
// YAML; a dotted KEY is a path of nested objects.
func parseParams(pairs []string) (map[string]any, error) {
	out := map[string]any{}
	for _, p := range pairs {
		key, v, ok := strings.Cut(p, "=")
		if !ok || key == "" {
			return nil, fmt.Errorf("-p %q: want KEY=VALUE", p)
		}
		var val any
		if err := yaml.Unmarshal([]byte(v), &val); err != nil {
			return nil, fmt.Errorf("-p %s: value %q is not YAML: %v", key, v, err)
		}
		path := strings.Split(key, ".")
		obj := out
		for i, part := range path {
			if part == "" {
				return nil, fmt.Errorf("-p %s: empty part in the dotted key", key)
			}
			prefix := strings.Join(path[:i+1], ".")
			if i == len(path)-1 {
				if _, set := obj[part]; set {
					return nil, fmt.Errorf("-p %s: %s is set twice", key, prefix)
				}
				obj[part] = val
				break
			}
			next, set := obj[part]
			if !set {
				child := map[string]any{}
				obj[part] = child
				obj = child
				continue
			}
			child, isObject := next.(map[string]any)
			if !isObject {
				return nil, fmt.Errorf("-p %s: %s is set to a value already, so it cannot hold %s", key, prefix, strings.Join(path[i+1:], "."))
			}
			obj = child
		}
	}
	return out, nil
}
