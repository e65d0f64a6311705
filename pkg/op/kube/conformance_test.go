package kube

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/pkg/op"
	"github.com/stepflow-dev/stepflow/pkg/op/optest"
)

func TestConformance(t *testing.T) {
	// optest runs calls as a step in namespace "default"; use a fresh one
	// through the objects' own namespace instead.
	ns := newNamespace(t)
	if err := env.Client.Create(context.Background(), &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "to-read"}, Data: map[string]string{"k": "v"},
	}); err != nil {
		t.Fatal(err)
	}
	cmList := func() any {
		p := &listParams{Filter: &filter{Namespace: ns}}
		p.Resource.APIVersion, p.Resource.Kind = "v1", "ConfigMap"
		return p
	}
	// A family whose API server holds every request until it is given up.
	slowFamily := func(inFlight *<-chan struct{}) func() op.Family {
		url, arrived := optest.BlockingServer(t)
		*inFlight = arrived
		return func() op.Family {
			c, err := client.New(&rest.Config{Host: url}, client.Options{Mapper: opClient.RESTMapper()})
			if err != nil {
				t.Fatal(err)
			}
			return New(Local(c))
		}
	}
	var readIn, applyIn, listIn, deleteIn, patchIn <-chan struct{}
	optest.Run(t, optest.Suite{
		New: func() op.Family { return New(Local(opClient)) },
		Blocking: []optest.Blocking{
			{Name: "read from a slow API", Do: "read", New: slowFamily(&readIn), InFlight: readIn,
				Params: func() any { return &readParams{Value: configMap(ns, "to-read", nil)} }},
			{Name: "apply to a slow API", Do: "apply", New: slowFamily(&applyIn), InFlight: applyIn,
				Params: func() any { return &applyParams{Value: configMap(ns, "applied", map[string]any{"a": "1"})} }},
			{Name: "list from a slow API", Do: "list", New: slowFamily(&listIn), InFlight: listIn, Params: cmList},
			{Name: "patch on a slow API", Do: "patch", New: slowFamily(&patchIn), InFlight: patchIn, Params: func() any {
				return &patchParams{Value: configMap(ns, "to-read", nil), Patch: map[string]any{"data": map[string]any{"p": "1"}}}
			}},
			{Name: "delete on a slow API", Do: "delete", New: slowFamily(&deleteIn), InFlight: deleteIn,
				Params: func() any { return &deleteParams{Value: configMap(ns, "p1", nil)} }},
		},
		Cases: []optest.Case{
			{Name: "read", Do: "read", Params: func() any { return &readParams{Value: configMap(ns, "to-read", nil)} }},
			{Name: "read missing", Do: "read", Params: func() any { return &readParams{Value: configMap(ns, "absent", nil)} }},
			{Name: "apply", Do: "apply", Params: func() any {
				return &applyParams{Value: configMap(ns, "applied", map[string]any{"a": "1"})}
			}},
			{Name: "apply deployment", Do: "apply", Params: func() any {
				return &applyParams{Value: deployment(ns, "web", container("app", "nginx:1"))}
			}},
			{Name: "apply in parallel", Do: "apply-in-parallel", Params: func() any {
				return &applyInParallelParams{Value: []map[string]any{configMap(ns, "p1", nil), configMap(ns, "p2", nil)}}
			}},
			{Name: "list", Do: "list", Params: cmList, Normalize: dropListVersion},
			{Name: "patch", Do: "patch", Params: func() any {
				return &patchParams{Value: configMap(ns, "to-read", nil), Patch: map[string]any{"data": map[string]any{"p": "1"}}}
			}},
			{Name: "delete", Do: "delete", Params: func() any { return &deleteParams{Value: configMap(ns, "p1", nil)} }},
			{Name: "apply without kind", Do: "apply", Invalid: true, Params: func() any {
				return &applyParams{Value: map[string]any{"apiVersion": "v1", "metadata": map[string]any{"name": "x"}}}
			}},
			{Name: "read of an unknown kind", Do: "read", Invalid: true, Params: func() any {
				return &readParams{Value: map[string]any{"apiVersion": "v9", "kind": "Nothing", "metadata": map[string]any{"name": "x"}}}
			}},
			{Name: "unknown cluster", Do: "list", Invalid: true, Params: func() any {
				p := cmList().(*listParams)
				p.Cluster = "elsewhere"
				return p
			}},
		},
	})
}

// dropListVersion removes a list's resourceVersion: it is the store's
// current revision, which moves whenever anything in the cluster changes.
func dropListVersion(v any) any {
	list := v.(map[string]any)["list"].(map[string]any)
	delete(list["metadata"].(map[string]any), "resourceVersion")
	return v
}
