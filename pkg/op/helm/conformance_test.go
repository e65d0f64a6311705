package helm

import (
	"testing"

	"github.com/stepflow-dev/stepflow/pkg/op"
	"github.com/stepflow-dev/stepflow/pkg/op/optest"
)

func TestConformance(t *testing.T) {
	repo := serveRepo(t, web("1.0.0"))
	slow, inFlight := optest.BlockingServer(t)
	optest.Run(t, optest.Suite{
		New: func() op.Family { return New(Options{}) },
		// A repository that answers only when the call gives up.
		Blocking: []optest.Blocking{{Name: "slow repository", Do: "render", InFlight: inFlight,
			Params: func() any { return &Params{Chart: "web", Repo: slow, Release: "shop", Namespace: "apps"} }}},
		Cases: []optest.Case{{
			Name: "render from a repository",
			Do:   "render",
			Params: func() any {
				return &Params{Chart: "web", Repo: repo.URL, Version: "1.0.0", Release: "shop", Namespace: "apps",
					Values: map[string]any{"abmRolloutPartition": int64(1)}}
			},
		}, {
			Name: "render a .tgz URL",
			Do:   "render",
			Params: func() any {
				return &Params{Chart: repo.URL + "/charts/web-1.0.0.tgz", Release: "shop", Namespace: "apps"}
			},
		}, {
			Name:    "no release",
			Do:      "render",
			Params:  func() any { return &Params{Chart: "web", Repo: repo.URL, Namespace: "apps"} },
			Invalid: true,
		}, {
			Name:    "chart not in the repository",
			Do:      "render",
			Params:  func() any { return &Params{Chart: "nope", Repo: repo.URL, Release: "shop", Namespace: "apps"} },
			Invalid: true,
		}},
	})
}
