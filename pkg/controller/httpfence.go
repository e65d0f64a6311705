package controller

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

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
	// DenyAPIEndpoints also denies the addresses behind Service
	// default/kubernetes, where a pod reaches the API server without the
	// service IP: Setup reads them once from EndpointSlice
	// default/kubernetes (APIEndpointSlice), which the controller must be
	// allowed to get. A control plane that moves later is not followed.
	DenyAPIEndpoints bool
	// ProxyFromEnvironment sends HTTP ops through the proxies of
	// HTTP_PROXY, HTTPS_PROXY and NO_PROXY; off, they use none.
	ProxyFromEnvironment bool
}

// APIEndpointSlice is the EndpointSlice the API server keeps of its own
// addresses, behind Service default/kubernetes.
var APIEndpointSlice = client.ObjectKey{Namespace: "default", Name: "kubernetes"}

// apiServerLookupTimeout bounds resolving the API server's name and
// reading its endpoints when the fence is built.
const apiServerLookupTimeout = 30 * time.Second

// ops returns the HTTP family's options for a controller that reaches its
// API server through cfg: the fence with that server's address denied,
// and with DenyAPIEndpoints those that live reads from the API server's
// EndpointSlice.
func (h HTTPOptions) ops(cfg *rest.Config, live client.Reader) (httpop.Options, error) {
	ctx, cancel := context.WithTimeout(context.Background(), apiServerLookupTimeout)
	defer cancel()
	fc := h.Fence
	fc.APIServers = slices.Clone(fc.APIServers)
	if cfg != nil && cfg.Host != "" {
		fc.APIServers = append(fc.APIServers, cfg.Host)
	}
	if h.DenyAPIEndpoints {
		addrs, err := apiEndpoints(ctx, live)
		if err != nil {
			return httpop.Options{}, err
		}
		fc.APIServers = append(fc.APIServers, addrs...)
	}
	fence, err := netfence.New(ctx, fc)
	if err != nil {
		return httpop.Options{}, fmt.Errorf("controller: the HTTP ops' destination fence: %w", err)
	}
	return httpop.Options{Fence: fence, ProxyFromEnvironment: h.ProxyFromEnvironment}, nil
}

// apiEndpoints returns the host:port addresses of APIEndpointSlice.
func apiEndpoints(ctx context.Context, live client.Reader) ([]string, error) {
	if live == nil {
		return nil, fmt.Errorf("controller: the HTTP fence needs the API server's endpoints, but no reader was given")
	}
	var s discoveryv1.EndpointSlice
	if err := live.Get(ctx, APIEndpointSlice, &s); err != nil {
		return nil, fmt.Errorf("controller: reading EndpointSlice %s for the HTTP fence's API server denies (the controller needs get on it; --in-cluster-defaults=false skips it): %w", APIEndpointSlice, err)
	}
	var addrs []string
	for _, e := range s.Endpoints {
		for _, a := range e.Addresses {
			for _, p := range s.Ports {
				if p.Port != nil {
					addrs = append(addrs, net.JoinHostPort(a, strconv.Itoa(int(*p.Port))))
				}
			}
		}
	}
	return addrs, nil
}
