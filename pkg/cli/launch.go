package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/stepflow-dev/stepflow/pkg/app"
)

// launchFlags are the flags of stepflow launch.
type launchFlags struct {
	file, appID, category, creator, name string
	context                              []string
	watch                                bool
}

func newLaunchCmd(deps Deps, g *globals) *cobra.Command {
	var f launchFlags
	cmd := &cobra.Command{
		Use:   "launch -f APP.yaml --app ID --category DEPLOY|ROLLBACK|...",
		Short: "Launch a run of an application (an SREWorks ApplicationConfiguration)",
		Long: `Creates a WorkflowRun of the ApplicationConfiguration (core.oam.dev/v1alpha2)
in FILE ("-" reads standard input), in -n, else the kubeconfig's namespace.
Its steps are the configuration's spec.workflow.steps (an unnamed step is
TYPE-INDEX; none: a single deploy step); labels stepflow.dev/app-id,
stepflow.dev/category and stepflow.dev/scope say whose, what kind and where.
The document is kept with the run byte for byte: in the run, or when larger
than 32 KiB in an immutable ConfigMap the run owns.

--run-context KEY=VALUE (repeatable; VALUE is YAML) sets the run's initial
context, whose keys override the configuration's spec.parameterValues in
{{ Global.KEY }} placeholders (--context is the global flag that picks the
kubeconfig context). --app defaults to the configuration's appId
annotation, --creator to the user the API server knows the kubeconfig's
credentials as.

With --watch the run's steps are followed until it finishes; the command
then exits non-zero if the run failed or was terminated.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return launch(cmd, deps, g, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.file, "file", "f", "", `the ApplicationConfiguration, YAML or JSON ("-" for standard input)`)
	fl.StringVar(&f.appID, "app", "", "the application's id (default: the configuration's metadata.annotations.appId)")
	fl.StringVar(&f.category, "category", "", "the kind of launch: DEPLOY, ROLLBACK, ...")
	fl.StringVar(&f.creator, "creator", "", "who launches, recorded on the run (default: the kubeconfig's authenticated user)")
	fl.StringVar(&f.name, "name", "", "the run's name (default: generated from the app id and category)")
	fl.StringArrayVar(&f.context, "run-context", nil, "KEY=VALUE in the run's initial context (repeatable; VALUE is YAML)")
	fl.BoolVarP(&f.watch, "watch", "w", false, "follow the run's steps until it finishes")
	_ = cmd.MarkFlagRequired("file")
	_ = cmd.MarkFlagRequired("category")
	_ = cmd.MarkFlagFilename("file", "yaml", "yml", "json")
	return cmd
}

func launch(cmd *cobra.Command, deps Deps, g *globals, f launchFlags) error {
	src, err := readFile(f.file, cmd.InOrStdin())
	if err != nil {
		return err
	}
	runContext, err := parseContext(f.context)
	if err != nil {
		return err
	}
	c, err := g.client()
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	creator := f.creator
	if creator == "" {
		creator = g.whoAmI(ctx, c)
	}
	l, err := app.Run(ctx, c, app.Request{
		Configuration: src,
		AppID:         f.appID,
		Category:      f.category,
		Namespace:     g.ns(),
		Creator:       creator,
		Context:       runContext,
		Name:          f.name,
	})
	if err != nil {
		return fmt.Errorf("%s: %w", f.file, err)
	}
	fmt.Fprintf(deps.Stdout, "workflowrun.core.oam.dev/%s created\n", l.Run.Name)
	if l.ConfigMap != nil {
		fmt.Fprintf(deps.Stdout, "configmap/%s created\n", l.ConfigMap.Name)
	}
	if !f.watch {
		return nil
	}
	return follow(ctx, deps.Stdout, c, client.ObjectKeyFromObject(l.Run), time.Now)
}

func readFile(path string, stdin io.Reader) ([]byte, error) {
	if path == "-" {
		return io.ReadAll(stdin)
	}
	return os.ReadFile(path)
}

// parseContext reads KEY=VALUE pairs; VALUE is YAML, so 3 is a number,
// true a bool and [a, b] a list.
func parseContext(pairs []string) (map[string]any, error) {
	if len(pairs) == 0 {
		return nil, nil
	}
	out := make(map[string]any, len(pairs))
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--run-context %q: want KEY=VALUE", p)
		}
		var val any
		if err := yaml.Unmarshal([]byte(v), &val); err != nil {
			return nil, fmt.Errorf("--run-context %s: value %q is not YAML: %w", k, v, err)
		}
		out[k] = val
	}
	return out, nil
}

// whoAmI is the user the API server authenticates the kubeconfig's
// credentials as (a SelfSubjectReview, as kubectl auth whoami), else the
// user name of the kubeconfig's current context; empty when neither is
// known.
func (g *globals) whoAmI(ctx context.Context, c client.Client) string {
	review := &authenticationv1.SelfSubjectReview{}
	if err := c.Create(ctx, review); err == nil && review.Status.UserInfo.Username != "" {
		return review.Status.UserInfo.Username
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = g.kubeconfig
	raw, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).RawConfig()
	if err != nil {
		return ""
	}
	if kc, ok := raw.Contexts[raw.CurrentContext]; ok {
		return kc.AuthInfo
	}
	return ""
}
