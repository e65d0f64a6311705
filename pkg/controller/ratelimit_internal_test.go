package controller

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stepflow-dev/stepflow/pkg/ratelimit"
)

// The rateLimits section as the configuration file gives it: the limits
// the controller applies, or an error naming the entry at fault.
func TestRateLimitConfig(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		want       map[string]ratelimit.Limit
		err        string // a substring of the error; "" for none
	}{
		{name: "none", file: "rateLimits: {}\n", want: map[string]ratelimit.Limit{}},
		{name: "type, kind, default burst", file: `
rateLimits:
  steps:
  - {type: apply-object, qps: 5, burst: 10}
  - {kind: random, qps: 1}
  - {type: webhook, kind: webhook, qps: 0.5}
`, want: map[string]ratelimit.Limit{
			"apply-object": {QPS: 5, Burst: 10}, "random": {QPS: 1, Burst: 1}, "webhook": {QPS: 0.5, Burst: 1},
		}},
		{name: "misspelt key", file: "rateLimits:\n  steps:\n  - {type: a, qsp: 1}\n", err: `unknown field "qsp"`},
		{name: "no type", file: "rateLimits:\n  steps:\n  - {qps: 1}\n", err: "rateLimits.steps[0]: no type"},
		{name: "type and kind differ", file: "rateLimits:\n  steps:\n  - {type: a, kind: b, qps: 1}\n", err: `rateLimits.steps[0]: type "a" and kind "b" differ`},
		{name: "twice", file: "rateLimits:\n  steps:\n  - {type: a, qps: 1}\n  - {kind: a, qps: 2}\n", err: `rateLimits.steps[1]: step type "a" is limited twice`},
		{name: "no qps", file: "rateLimits:\n  steps:\n  - {type: a}\n", err: `rateLimits.steps[0] (step type "a"): qps 0: want a number above 0`},
		{name: "negative burst", file: "rateLimits:\n  steps:\n  - {type: a, qps: 1, burst: -1}\n", err: `rateLimits.steps[0] (step type "a"): burst -1`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.yaml")
			if err := os.WriteFile(path, []byte(tc.file), 0o600); err != nil {
				t.Fatal(err)
			}
			c, err := LoadConfig(path)
			var got map[string]ratelimit.Limit
			if err == nil {
				got, err = c.RateLimits.stepLimits()
			}
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("limits (-want +got):\n%s", d)
			}
		})
	}
}

// Without a limit the runs get no limiter at all: not even a lookup per
// step start.
func TestNoRateLimitNoLimiter(t *testing.T) {
	lim, err := RateLimitConfig{}.stepLimiter(nil, nil)
	if err != nil || lim != nil {
		t.Errorf("stepLimiter of no limits = %v, %v; want nil, nil", lim, err)
	}
	if _, err := (RateLimitConfig{Steps: []StepRateLimit{{Type: "a"}}}).stepLimiter(nil, nil); err == nil {
		t.Error("stepLimiter of a limit without qps: no error")
	}
}

// The section's cluster limits, as clusters.Options takes them.
func TestClusterRateLimitConfig(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		want       map[string]ratelimit.Limit
		err        string
	}{
		{name: "none", file: "rateLimits: {steps: [{type: a, qps: 1}]}\n"},
		{name: "default burst", file: "rateLimits:\n  clusters:\n  - {name: edge, qps: 20, burst: 40}\n  - {name: prod, qps: 2}\n",
			want: map[string]ratelimit.Limit{"edge": {QPS: 20, Burst: 40}, "prod": {QPS: 2, Burst: 1}}},
		{name: "no name", file: "rateLimits:\n  clusters:\n  - {qps: 1}\n", err: "rateLimits.clusters[0]: no name"},
		{name: "local", file: "rateLimits:\n  clusters:\n  - {name: local, qps: 1}\n", err: "rateLimits.clusters[0]: the local cluster cannot be limited here"},
		{name: "twice", file: "rateLimits:\n  clusters:\n  - {name: a, qps: 1}\n  - {name: a, qps: 2}\n", err: `rateLimits.clusters[1]: cluster "a" is limited twice`},
		{name: "no qps", file: "rateLimits:\n  clusters:\n  - {name: a}\n", err: `rateLimits.clusters[0] (cluster "a"): qps 0`},
		{name: "misspelt", file: "rateLimits:\n  clusters:\n  - {cluster: a, qps: 1}\n", err: `unknown field "cluster"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.yaml")
			if err := os.WriteFile(path, []byte(tc.file), 0o600); err != nil {
				t.Fatal(err)
			}
			c, err := LoadConfig(path)
			var got map[string]ratelimit.Limit
			if err == nil {
				got, err = c.RateLimits.clusterLimits()
			}
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				if c.RateLimits.Validate() == nil && !strings.Contains(tc.err, "unknown field") {
					t.Errorf("Validate passed")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("limits (-want +got):\n%s", d)
			}
		})
	}
}
