// Package cli is the stepflow command line: kubectl conventions (global
// --kubeconfig, -n/--namespace, -o), one file per command group. Commands
// get everything they act with from Deps; nothing is read from globals.
package cli

import (
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/stepflow-dev/stepflow/pkg/op"
)

// Deps are what the commands act with, built by cmd/stepflow.
type Deps struct {
	Stdout, Stderr io.Writer
	// Stdin is what "-" reads (def vet -, def apply -f -); nil is os.Stdin.
	Stdin io.Reader
	// Ops builds the op registry for a cluster connection. restConfig
	// returns the kubeconfig's connection, or an error naming why there is
	// none; it is called only when a kube op first needs it.
	Ops func(restConfig func() (*rest.Config, error)) (*op.Registry, error)
	// Commands are added to the root as they are (e.g. the controller).
	Commands []*cobra.Command
	// Terminal reports whether Stdout is a terminal (watch redraws in
	// place on one); nil asks the terminal of Stdout when it is a file.
	Terminal func() bool
}

// globals are the flags every command shares.
type globals struct {
	kubeconfig  string
	kubeContext string
	namespace   string
	output      string

	once    sync.Once
	cfg     *rest.Config
	cfgErr  error
	defNS   string
	nsIsSet bool
}

// restConfig loads the kubeconfig once: --kubeconfig, else $KUBECONFIG,
// else ~/.kube/config; its --context, else its current context.
func (g *globals) restConfig() (*rest.Config, error) {
	g.once.Do(func() {
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		rules.ExplicitPath = g.kubeconfig
		cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: g.kubeContext})
		g.cfg, g.cfgErr = cc.ClientConfig()
		if g.cfgErr != nil {
			if clientcmd.IsEmptyConfig(g.cfgErr) {
				g.cfgErr = fmt.Errorf("no Kubernetes cluster configured: pass --kubeconfig or set KUBECONFIG")
			} else {
				g.cfgErr = fmt.Errorf("loading kubeconfig: %w", g.cfgErr)
			}
			return
		}
		g.defNS, _, _ = cc.Namespace()
	})
	return g.cfg, g.cfgErr
}

// ns is the namespace to act in: -n, else the kubeconfig's, else default.
func (g *globals) ns() string {
	if g.namespace != "" {
		return g.namespace
	}
	if _, err := g.restConfig(); err == nil && g.defNS != "" {
		return g.defNS
	}
	return "default"
}

// NewRoot returns the stepflow command.
func NewRoot(deps Deps) *cobra.Command {
	if deps.Stdout == nil {
		deps.Stdout = os.Stdout
	}
	if deps.Stderr == nil {
		deps.Stderr = os.Stderr
	}
	g := &globals{}
	root := &cobra.Command{
		Use:           "stepflow",
		Short:         "Stepflow: CUE-programmable workflow steps for Kubernetes",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(deps.Stdout)
	root.SetErr(deps.Stderr)
	if deps.Stdin != nil {
		root.SetIn(deps.Stdin)
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.kubeconfig, "kubeconfig", "", "path to the kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
	pf.StringVar(&g.kubeContext, "context", "", "kubeconfig context to use (default: its current context)")
	pf.StringVarP(&g.namespace, "namespace", "n", "", "namespace to act in (default: the kubeconfig's, else \"default\")")
	pf.StringVarP(&g.output, "output", "o", "", "output format: yaml, json or wide")
	root.AddCommand(newStepCmd(deps, g))
	root.AddCommand(newRunCmd(deps, g), newGetCmd(deps, g), newListCmd(deps, g),
		newLogsCmd(deps, g), newDebugCmd(deps, g), newDefCmd(deps, g))
	root.AddCommand(newOpCmds(deps, g)...)
	root.AddCommand(newClusterCmd(deps, g))
	root.AddCommand(newLaunchCmd(deps, g))
	root.AddCommand(newDescribeCmd(deps, g))
	root.AddCommand(newVersionCmd(deps, g), newDeleteCmd(deps, g), newWaitCmd(deps, g))
	root.AddCommand(newWatchCmd(deps, g))
	root.AddCommand(newSubmitCmd(deps, g))
	root.AddCommand(deps.Commands...)
	registerCompletions(root, g)
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		if err := checkContextFlag(g); err != nil {
			return err
		}
		return checkCommandOutput(cmd, g.output)
	}
	refuseUnknownVerbs(root)
	return root
}

// Main runs the command line and returns the process exit code.
func Main(deps Deps, args []string) int {
	root := NewRoot(deps)
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		fmt.Fprintln(root.ErrOrStderr(), "error:", err)
		return 1
	}
	return 0
}
