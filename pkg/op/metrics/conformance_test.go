package metrics_test

import (
	"testing"
	"time"

	"github.com/stepflow-dev/stepflow/pkg/op"
	"github.com/stepflow-dev/stepflow/pkg/op/builtin"
	"github.com/stepflow-dev/stepflow/pkg/op/metrics"
	"github.com/stepflow-dev/stepflow/pkg/op/optest"
)

func TestConformance(t *testing.T) {
	prom := startPrometheus(t)
	slow, inFlight := optest.BlockingServer(t)
	fixed := func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }
	optest.Run(t, optest.Suite{
		New: func() op.Family { return metrics.New(metrics.Options{Now: fixed}) },
		Blocking: []optest.Blocking{{
			Name: "slow Prometheus", Do: "promCheck", InFlight: inFlight,
			Params: func() any {
				return &metrics.Params{Query: "up", MetricEndpoint: slow, Condition: "==1", Duration: "1m", FailDuration: "1m"}
			},
		}},
		Cases: []optest.Case{{
			Name: "check",
			Do:   "promCheck",
			Env:  op.Env{Vars: builtin.MapVars{}},
			Params: func() any {
				return &metrics.Params{Query: "up", MetricEndpoint: prom.URL, Condition: "==1", Duration: "1m", FailDuration: "1m"}
			},
		}, {
			Name:    "invalid condition",
			Do:      "promCheck",
			Env:     op.Env{Vars: builtin.MapVars{}},
			Params:  func() any { return &metrics.Params{Query: "up", MetricEndpoint: prom.URL, Condition: "1"} },
			Invalid: true,
		}},
	})
}
