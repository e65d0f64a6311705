package controller

import (
	"context"
	"fmt"
	"slices"
	"time"

	"k8s.io/client-go/rest"

	"github.com/stepflow-dev/stepflow/pkg/netfence"
	httpop "github.com/stepflow-dev/stepflow/pkg/op/http"
)

// HTTPOptions are what the HTTP ops may reach and how.
type HTTPOptions struct {
	// Fence is the destination policy (pkg/netfence): the operator's allow
	// and deny lists, DenyLoopback for a cluster install, and the API
	// server's other addresses (the kubernetes.default service IP). Setup
	// adds the host of the manager's rest.Config to Fence.APIServers.
	Fence netfence.Config
	// ProxyFromEnvironment sends HTTP ops through the proxies of
	// HTTP_PROXY, HTTPS_PROXY and NO_PROXY; off, they use none.
	ProxyFromEnvironment bool
}

// apiServerLookupTimeout bounds resolving the API server's name when the
// fence is built.
const apiServerLookupTimeout = 30 * time.Second

// ops returns the HTTP family's options for a controller that reaches its
// API server through cfg: the fence with that server's address denied.
func (h HTTPOptions) ops(cfg *rest.Config) (httpop.Options, error) {
	fc := h.Fence
	if cfg != nil && cfg.Host != "" {
		fc.APIServers = append(slices.Clone(fc.APIServers), cfg.Host)
	}
	ctx, cancel := context.WithTimeout(context.Background(), apiServerLookupTimeout)
	defer cancel()
	fence, err := netfence.New(ctx, fc)
	if err != nil {
		return httpop.Options{}, fmt.Errorf("controller: the HTTP ops' destination fence: %w", err)
	}
	return httpop.Options{Fence: fence, ProxyFromEnvironment: h.ProxyFromEnvironment}, nil
}
