package appop

import (
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/op"
	"github.com/stepflow-dev/stepflow/pkg/op/optest"
)

func TestConformance(t *testing.T) {
	ns := newNamespace(t)
	finish(t, launch(t, ns, "v2", "DEPLOY", grayRelease(t)), v1alpha1.WorkflowRunSucceeded, time.Now())
	own := launch(t, ns, "v3", "DEPLOY", grayRelease(t))
	step := stepOf(own)
	// A family whose reader of the step's run is an API server that holds
	// every request until it is given up.
	slowFamily := func(inFlight *<-chan struct{}) func() op.Family {
		url, arrived := optest.BlockingServer(t)
		*inFlight = arrived
		return func() op.Family {
			c, err := client.New(&rest.Config{Host: url}, client.Options{Scheme: env.Scheme, Mapper: env.Client.RESTMapper()})
			if err != nil {
				t.Fatal(err)
			}
			return New(c, &identities{})
		}
	}
	var componentsIn, latestIn <-chan struct{}
	optest.Run(t, optest.Suite{
		New: func() op.Family { return New(env.Client, &identities{}) },
		Blocking: []optest.Blocking{
			{Name: "components from a slow API", Do: "components", New: slowFamily(&componentsIn), InFlight: componentsIn,
				Params: func() any { return &componentsParams{} }},
			{Name: "latest-run from a slow API", Do: "latest-run", New: slowFamily(&latestIn), InFlight: latestIn,
				Params: func() any { return &latestRunParams{Category: "DEPLOY", Phase: "succeeded"} }},
		},
		Cases: []optest.Case{
			{Name: "components", Do: "components", Step: step, Params: func() any {
				return &componentsParams{Context: map[string]any{"clusterId": "master"}}
			}},
			{Name: "latest-run", Do: "latest-run", Step: step, Params: func() any {
				return &latestRunParams{Category: "DEPLOY", Phase: "succeeded"}
			}},
			// Created the first time, found the second: the rest is the same.
			{Name: "relaunch", Do: "relaunch", Step: step, Normalize: dropCreated, Params: func() any {
				return &relaunchParams{Name: "v3-rollback-c", From: "v2", Category: "ROLLBACK"}
			}},
			{Name: "components not in the configuration", Do: "components", Step: step, Invalid: true, Params: func() any {
				return &componentsParams{Components: []Selector{{"K8S_MICROSERVICE", "nope"}}, Context: map[string]any{"clusterId": "master"}}
			}},
			{Name: "relaunch without a name", Do: "relaunch", Step: step, Invalid: true, Params: func() any {
				return &relaunchParams{From: "v2", Category: "ROLLBACK"}
			}},
			{Name: "latest-run without a phase", Do: "latest-run", Step: step, Invalid: true, Params: func() any {
				return &latestRunParams{Category: "DEPLOY"}
			}},
		},
	})
}

func dropCreated(v any) any {
	m, _ := v.(map[string]any)
	out := map[string]any{}
	for k, e := range m {
		if k != "created" {
			out[k] = e
		}
	}
	return out
}
