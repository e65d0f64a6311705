package cli

import (
	"fmt"
	"strings"

	"k8s.io/client-go/tools/clientcmd"
)

// --context is the kubeconfig context on every command, as in kubectl.
// launch, step run and def render once had a local --context of run
// context variables (JSON, @FILE or KEY=VALUE), now --run-context;
// cluster join's context of the joined kubeconfig is --join-context.

// checkContextFlag refuses a --context that reads as run context variables
// rather than a context name, unless the kubeconfig has a context of that
// name, so old command lines fail clearly instead of being read as the
// name of a context.
func checkContextFlag(g *globals) error {
	v := g.kubeContext
	if !strings.HasPrefix(v, "{") && !strings.HasPrefix(v, "@") && !strings.Contains(v, "=") {
		return nil
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = g.kubeconfig
	if raw, err := rules.Load(); err == nil {
		if _, ok := raw.Contexts[v]; ok {
			return nil
		}
	}
	return fmt.Errorf("--context %q: --context picks a kubeconfig context; to set the run's context variables use --run-context", v)
}
