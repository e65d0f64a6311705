package query_test

import (
	"context"
	"testing"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/stepflow-dev/stepflow/pkg/op"
	"github.com/stepflow-dev/stepflow/pkg/op/kube"
	"github.com/stepflow-dev/stepflow/pkg/op/optest"
	"github.com/stepflow-dev/stepflow/pkg/op/query"
)

func TestConformance(t *testing.T) {
	fx := newFixture(t, readRules...)
	runner := kube.LocalAs(func(context.Context, op.Step) (client.Client, error) { return fx.runner, nil })
	step := op.Step{RunUID: "uid-1", RunName: "run", Namespace: fx.ns, StepName: "step", StepID: "step-1"}
	params := func(js string) func() any {
		return func() any {
			p := query.New(nil).Ops()["listResourcesInApp"].NewParams()
			if err := yaml.Unmarshal([]byte(js), p); err != nil {
				t.Fatal(err)
			}
			return p
		}
	}
	// A family whose API server holds every request until it is given up.
	url, inFlight := optest.BlockingServer(t)
	slow := func() op.Family {
		c, err := client.New(&rest.Config{Host: url}, client.Options{Scheme: env.Scheme, Mapper: env.Client.RESTMapper()})
		if err != nil {
			t.Fatal(err)
		}
		return query.New(kube.Local(c))
	}
	optest.Run(t, optest.Suite{
		New: func() op.Family { return query.New(runner) },
		Blocking: []optest.Blocking{
			{Name: "list from a slow API", Do: "listResourcesInApp", New: slow, InFlight: inFlight, Params: params(`{"app": {"name": "shop"}}`)},
		},
		Cases: []optest.Case{
			{Name: "list", Do: "listResourcesInApp", Step: step, Params: params(`{"app": {"name": "shop"}}`)},
			{Name: "pods", Do: "collectResources", Step: step, Params: params(`{"app": {"name": "shop", "filter": {"kind": "Pod", "apiVersion": "v1"}}}`)},
			{Name: "endpoints", Do: "collectServiceEndpoints", Step: step, Params: params(`{"app": {"name": "shop"}}`)},
			{Name: "no app name", Do: "listResourcesInApp", Step: step, Invalid: true, Params: params(`{"app": {}}`)},
			{Name: "the resource tracker", Do: "listAppliedResources", Step: step, Invalid: true, Params: params(`{"app": {"name": "shop"}}`)},
		},
	})
}

func TestMulticlusterConformance(t *testing.T) {
	optest.Run(t, optest.Suite{
		New: func() op.Family { return query.NewMulticluster(kube.Local(env.Client)) },
		Cases: []optest.Case{
			{Name: "list-clusters", Do: "list-clusters", Params: func() any { return &map[string]any{} }},
		},
	})
}
