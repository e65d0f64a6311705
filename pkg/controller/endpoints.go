package controller

import (
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// Endpoint is a listener of the controller's.
type Endpoint struct {
	// Addr is host:port; "0" disables the endpoint.
	Addr string
	// Secure serves HTTPS and lets through only requests whose bearer
	// token the API server authenticates (TokenReview) and authorizes for
	// a get of the path (SubjectAccessReview): a ClusterRole with
	// nonResourceURLs ["/metrics"]. The controller needs create on
	// tokenreviews and subjectaccessreviews.
	Secure bool
	// CertDir holds tls.crt and tls.key for Secure; without them the
	// controller makes a self-signed certificate.
	CertDir string
}

// MetricsServer returns the manager's metrics options serving at e.
func MetricsServer(e Endpoint) metricsserver.Options {
	o := metricsserver.Options{BindAddress: e.Addr}
	if e.Secure {
		o.SecureServing = true
		o.FilterProvider = filters.WithAuthenticationAndAuthorization
		o.CertDir = e.CertDir
	}
	return o
}
