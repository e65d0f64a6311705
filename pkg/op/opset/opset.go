// Package opset builds the registry of every op family Stepflow ships, from
// the dependencies they need; the binaries and tests that run real ops use
// it rather than listing the families each time.
package opset

import (
	"github.com/stepflow-dev/stepflow/pkg/op"
	"github.com/stepflow-dev/stepflow/pkg/op/appop"
	"github.com/stepflow-dev/stepflow/pkg/op/builtin"
	"github.com/stepflow-dev/stepflow/pkg/op/component"
	"github.com/stepflow-dev/stepflow/pkg/op/config"
	"github.com/stepflow-dev/stepflow/pkg/op/email"
	"github.com/stepflow-dev/stepflow/pkg/op/helm"
	httpop "github.com/stepflow-dev/stepflow/pkg/op/http"
	"github.com/stepflow-dev/stepflow/pkg/op/kube"
	"github.com/stepflow-dev/stepflow/pkg/op/kubevela"
	"github.com/stepflow-dev/stepflow/pkg/op/metrics"
	"github.com/stepflow-dev/stepflow/pkg/op/query"
	"github.com/stepflow-dev/stepflow/pkg/op/transform"
)

// Standard returns builtin, log, kube, http, helm, transform, email and
// metrics ops (the last two dial through http's fence), config, query and
// multicluster ops (as the step's identity through clusters; cluster
// listing when clusters is a query.Lister), the kubevela ops (each fails
// saying what of KubeVela it needs), and the
// families in extra (app ops and component rendering, built with what they
// need: appop.New, component.New). Kube
// ops and the HTTP op's Secrets resolve through clusters; observer, if not
// nil, learns which objects kube ops touch. http configures the HTTP
// family (its fence and proxies); its Secrets, when nil, are read through
// clusters.
func Standard(clusters kube.Clusters, observer kube.Observer, http httpop.Options, extra ...op.Family) *op.Registry {
	k := kube.New(clusters)
	if observer != nil {
		k.WithObserver(observer)
	}
	if http.Secrets == nil {
		http.Secrets = kube.Secrets(clusters)
	}
	return op.NewRegistry().Add(
		builtin.New(), builtin.NewLog(), k,
		httpop.New(http),
		// Charts download through the HTTP ops' fence and proxy settings.
		helm.New(helm.Options{Fence: http.Fence, ProxyFromEnvironment: http.ProxyFromEnvironment}),
		transform.New(), transform.NewKube(),
		// Mail and metric checks reach the network through the HTTP ops' fence.
		email.New(email.Options{Fence: http.Fence, Secrets: http.Secrets}),
		metrics.New(metrics.Options{Fence: http.Fence, ProxyFromEnvironment: http.ProxyFromEnvironment}),
		// Configs (vela/config) are Secrets written as the step's identity.
		config.New(clusters),
		// An app's resources and the cluster names, read as the step's
		// identity (list-clusters needs clusters to be a query.Lister).
		query.New(clusters), query.NewMulticluster(clusters),
		// vela/op's KubeVela-only ops, each failing saying what it needs.
		kubevela.New(),
	).Add(extra...)
}

// Catalog is the standard op set with no cluster behind it: enough to find
// op calls and decode their parameters, which is all an evaluator worker
// process does (pkg/sandbox); its calls are run by the controller.
func Catalog() *op.Registry {
	return Standard(kube.Local(nil), nil, httpop.Options{}, appop.New(nil, kube.Local(nil)), component.New(component.Options{}))
}
