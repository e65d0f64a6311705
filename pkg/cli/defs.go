package cli

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/stepflow-dev/stepflow/api"
	"github.com/stepflow-dev/stepflow/api/v1beta1"
	"github.com/stepflow-dev/stepflow/pkg/definition"
	"github.com/stepflow-dev/stepflow/pkg/eval"
)

// descriptionAnnotation holds a definition's description, as in KubeVela.
const descriptionAnnotation = definition.AnnotationDescription

func newDefCmd(deps Deps, g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "def", Short: "Work with step definitions (WorkflowStepDefinitions)"}
	cmd.AddCommand(newDefApplyCmd(deps, g), newDefGetCmd(deps, g), newDefListCmd(deps, g), newDefVetCmd(deps, g))
	cmd.AddCommand(newDefDocCmd(deps, g))
	cmd.AddCommand(newDefTestCmd(deps, g), newDefRenderCmd(deps, g), newDefInitCmd(deps))
	return cmd
}

func newDefApplyCmd(deps Deps, g *globals) *cobra.Command {
	var files []string
	cmd := &cobra.Command{
		Use:   "apply -f FILE...",
		Short: "Create or update step definitions from .cue (vela def layout) or YAML files",
		Long: `Creates, or updates with server-side apply, a WorkflowStepDefinition for each
.cue file (in 'vela def' layout, its description going to the annotation
` + descriptionAnnotation + `; or a bare template named after the file) and for each
WorkflowStepDefinition document of a .yaml, .yml or .json file ("-" reads
YAML from standard input). A definition without a namespace goes to -n, else
the kubeconfig's namespace.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var objs []*unstructured.Unstructured
			for _, f := range files {
				got, err := readDefinitions(f, cmd.InOrStdin())
				if err != nil {
					return err
				}
				objs = append(objs, got...)
			}
			for _, obj := range objs {
				if err := inNamespace(obj, g.ns(), g.namespace != ""); err != nil {
					return err
				}
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			for _, obj := range objs {
				what, err := apply(cmd.Context(), c, obj)
				if err != nil {
					return err
				}
				applied(deps.Stdout, obj, what)
			}
			return nil
		},
	}
	cmd.Flags().StringSliceVarP(&files, "file", "f", nil, `definition files (.cue, .yaml, .yml, .json; "-" for standard input); repeat or separate with commas`)
	_ = cmd.MarkFlagRequired("file")
	_ = cmd.MarkFlagFilename("file", "cue", "yaml", "yml", "json")
	return cmd
}

// readDefinitions reads the WorkflowStepDefinitions of one file.
func readDefinitions(path string, stdin io.Reader) ([]*unstructured.Unstructured, error) {
	switch ext := strings.ToLower(filepath.Ext(path)); {
	case ext == ".cue":
		src, err := definition.FromFile(path)
		if err != nil {
			return nil, err
		}
		return []*unstructured.Unstructured{definitionObject(src)}, nil
	case ext != ".yaml" && ext != ".yml" && ext != ".json" && path != "-":
		return nil, fmt.Errorf("%s: want a .cue, .yaml, .yml or .json step definition", path)
	}
	s, err := api.NewScheme()
	if err != nil {
		return nil, err
	}
	ms, err := readManifests(path, stdin, s, kindDefinition, kindComponent)
	if err != nil {
		return nil, err
	}
	out := make([]*unstructured.Unstructured, len(ms))
	for i, m := range ms {
		out[i] = m.obj
	}
	return out, nil
}

// definitionObject is the WorkflowStepDefinition of a CUE definition, or
// the ComponentDefinition of one of type "component".
func definitionObject(src eval.DefinitionSource) *unstructured.Unstructured {
	obj := &unstructured.Unstructured{Object: map[string]any{
		"metadata": map[string]any{"name": src.Name},
		"spec": map[string]any{"schematic": map[string]any{"cue": map[string]any{
			"template": src.Manifest,
		}}},
	}}
	obj.SetGroupVersionKind(kindDefinition)
	if src.Type == "component" {
		obj.SetGroupVersionKind(kindComponent)
	}
	if src.Description != "" {
		obj.SetAnnotations(map[string]string{descriptionAnnotation: src.Description})
	}
	return obj
}

// ready is the definition's Ready condition as of its current generation:
// True when its template compiles, False when it does not, Unknown until
// the controller has looked.
func ready(d *v1beta1.WorkflowStepDefinition) string {
	c := definition.Ready(d)
	if c == nil {
		return string(metav1.ConditionUnknown)
	}
	return string(c.Status)
}

func newDefVetCmd(deps Deps, g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "vet FILE...",
		Short: "Compile step definitions without a cluster and report their errors with positions",
		Long: `Compiles each step definition (.cue in 'vela def' layout or a bare template;
WorkflowStepDefinitions in .yaml, .yml or .json) against the op schemas, as the
controller does for a definition's Ready condition, without running any op.
Prints "ok NAME" for each definition that compiles and the error, with its
positions, for each that does not; exits non-zero if any has errors. A
template written for an older CUE (list + list, an unused import) compiles
after a rewrite: each rewrite is printed as a warning with its position.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			reg, err := deps.Ops(g.restConfig)
			if err != nil {
				return err
			}
			ev, err := eval.New(eval.Options{Ops: reg})
			if err != nil {
				return err
			}
			total, bad := 0, 0
			for _, f := range files {
				srcs, err := vetSources(f, cmd.InOrStdin())
				if err != nil {
					total++
					bad++
					fmt.Fprintln(deps.Stderr, err)
					continue
				}
				for _, src := range srcs {
					total++
					if err := ev.Check(src); err != nil {
						bad++
						fmt.Fprintf(deps.Stderr, "%s: %v\n", f, err)
						continue
					}
					fmt.Fprintf(deps.Stdout, "ok %s\n", src.Name)
					// What compiling changes in a template written for an
					// older CUE, as the definition's Rewritten condition says.
					rewrites, err := eval.Rewrites(src)
					if err != nil {
						return fmt.Errorf("%s: %s: %w", f, src.Name, err)
					}
					for _, w := range rewrites {
						fmt.Fprintf(deps.Stderr, "%s: warning: %s: %s\n", f, src.Name, w)
					}
				}
			}
			if bad > 0 {
				return fmt.Errorf("%d of %d definitions have errors", bad, total)
			}
			return nil
		},
	}
}

// vetSources reads the definitions of one file for def vet.
func vetSources(path string, stdin io.Reader) ([]eval.Definition, error) {
	if path == "-" {
		return vetStdin(stdin)
	}
	if strings.ToLower(filepath.Ext(path)) == ".cue" {
		// Read in place, so positions name the file and its real lines.
		src, err := definition.FromFile(path)
		if err != nil {
			return nil, err
		}
		return []eval.Definition{src.Definition}, nil
	}
	objs, err := readDefinitions(path, stdin)
	if err != nil {
		return nil, err
	}
	return vetObjects(path, objs)
}

// vetObjects are the definitions of WorkflowStepDefinition objects read
// from path.
func vetObjects(path string, objs []*unstructured.Unstructured) ([]eval.Definition, error) {
	out := make([]eval.Definition, 0, len(objs))
	for _, obj := range objs {
		var def v1beta1.WorkflowStepDefinition
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, &def); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		src, err := definition.FromObject(&def)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, src.Definition)
	}
	return out, nil
}
