package cli

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/api"
	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/runop"
)

// client connects to the kubeconfig's cluster. Reads go to the API server
// itself (no cache), so a command always acts on what is there now.
func (g *globals) client() (client.WithWatch, error) {
	cfg, err := g.restConfig()
	if err != nil {
		return nil, err
	}
	s, err := api.NewScheme()
	if err != nil {
		return nil, err
	}
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: s})
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", cfg.Host, err)
	}
	return c, nil
}

// apiError turns the errors a user can act on into sentences about what
// the command acted on ("workflowrun default/x").
func apiError(err error, what string) error {
	switch {
	case err == nil:
		return nil
	case apierrors.IsNotFound(err):
		return fmt.Errorf("%s not found", what)
	case meta.IsNoMatchError(err):
		return fmt.Errorf("%s: the cluster does not serve this kind: are the Stepflow CRDs installed? (%v)", what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// described names an object as errors and messages do: "workflowrun ns/name".
func described(kind string, key types.NamespacedName) string {
	return kind + " " + key.String()
}

// getRun reads a run from the API server.
func getRun(ctx context.Context, c client.Reader, key types.NamespacedName) (*v1alpha1.WorkflowRun, error) {
	var run v1alpha1.WorkflowRun
	if err := c.Get(ctx, key, &run); err != nil {
		return nil, apiError(err, described("workflowrun", key))
	}
	return &run, nil
}

// runSteps returns the run's steps and mode, as the controller resolves
// them.
func runSteps(ctx context.Context, c client.Reader, run *v1alpha1.WorkflowRun) ([]v1alpha1.WorkflowStep, *v1alpha1.WorkflowExecuteMode, error) {
	return runop.Steps(ctx, c, run)
}
