package controller

import (
	"context"
	"errors"
	"fmt"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/stepflow-dev/stepflow/pkg/engine"
	"github.com/stepflow-dev/stepflow/pkg/op/kube"
	"github.com/stepflow-dev/stepflow/pkg/ratelimit"
)

// RateLimitConfig is a section of Config: how fast steps of a type start,
// across every run of the controller.
//
//	rateLimits:
//	  steps:
//	  - {type: apply-object, qps: 5, burst: 10}
//	  - {kind: webhook, qps: 0.5}   # kind: the reference controller's name for type
//
// A step starts when it goes from pending to running. A step over its
// type's limit stays pending with reason RateLimited and starts at its
// turn (the run's next tick is set for that moment; nothing polls, no
// worker waits). Each attempt id starts once: a retry after an op error is
// paced by its backoff and not counted, a restart or a retry from a step
// starts new attempts, which are. A type without a limit starts its steps
// when they are due, at no cost.
//
// Across controller restarts each bucket starts empty (package ratelimit),
// and is emptied again when the controller becomes the leader:
// the first step of a limited type starts one interval (1/qps) after the
// controller does, so a restart never lets more than qps×window + burst
// start in any window spanning it. Waiting steps keep their turn only while
// the controller runs; after a restart they ask again, in the order their
// runs are ticked.
//
// Clusters limits the requests the controller sends to named clusters
// (cluster Secrets, `cluster: NAME` in kube ops; not the local cluster):
// a request waits for its turn in the op, up to 10s; one whose turn is
// further away fails, retryable, naming the cluster and its limit (see
// pkg/clusters).
type RateLimitConfig struct {
	// Steps limits starts per step type.
	Steps []StepRateLimit `json:"steps,omitempty"`
	// Clusters limits requests per named cluster.
	Clusters []ClusterRateLimit `json:"clusters,omitempty"`
}

// ClusterRateLimit limits how fast requests go to one named cluster.
type ClusterRateLimit struct {
	// Name is the cluster's name (its Secret's); not "local".
	Name string `json:"name"`
	// QPS is requests per second on average; above 0.
	QPS float64 `json:"qps"`
	// Burst is how many may go at once after a quiet while; default 1.
	Burst int `json:"burst,omitempty"`
}

// StepRateLimit limits how fast steps of one type start.
type StepRateLimit struct {
	// Type is the step type (its WorkflowStepDefinition's name).
	Type string `json:"type,omitempty"`
	// Kind is another name for Type, as the reference controller
	// (SREWorks) spells it; give one of them.
	Kind string `json:"kind,omitempty"`
	// QPS is how many steps of the type start per second on average (0.1
	// is one every ten seconds); above 0.
	QPS float64 `json:"qps"`
	// Burst is how many may start at once after a quiet while; default 1.
	Burst int `json:"burst,omitempty"`
}

// stepType is Type, or Kind.
func (l StepRateLimit) stepType() string {
	if l.Type != "" {
		return l.Type
	}
	return l.Kind
}

// Validate checks every limit, naming the one at fault.
func (c RateLimitConfig) Validate() error {
	_, err := c.stepLimits()
	_, cerr := c.clusterLimits()
	return errors.Join(err, cerr)
}

// clusterLimits are the cluster limits by name, for clusters.Options.
func (c RateLimitConfig) clusterLimits() (map[string]ratelimit.Limit, error) {
	limits := map[string]ratelimit.Limit{}
	var errs []error
	for i, l := range c.Clusters {
		where := fmt.Sprintf("rateLimits.clusters[%d]", i)
		switch {
		case l.Name == "":
			errs = append(errs, fmt.Errorf("%s: no name", where))
			continue
		case l.Name == kube.LocalCluster:
			errs = append(errs, fmt.Errorf("%s: the local cluster cannot be limited here, only named clusters", where))
			continue
		}
		if _, dup := limits[l.Name]; dup {
			errs = append(errs, fmt.Errorf("%s: cluster %q is limited twice", where, l.Name))
			continue
		}
		lim := ratelimit.Limit{QPS: l.QPS, Burst: l.Burst}
		if lim.Burst == 0 {
			lim.Burst = 1
		}
		if err := lim.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("%s (cluster %q): %w", where, l.Name, err))
			continue
		}
		limits[l.Name] = lim
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("controller configuration: %w", err)
	}
	if len(limits) == 0 {
		return nil, nil
	}
	return limits, nil
}

func (c RateLimitConfig) stepLimits() (map[string]ratelimit.Limit, error) {
	limits := map[string]ratelimit.Limit{}
	var errs []error
	for i, l := range c.Steps {
		where := fmt.Sprintf("rateLimits.steps[%d]", i)
		typ := l.stepType()
		switch {
		case typ == "":
			errs = append(errs, fmt.Errorf("%s: no type", where))
			continue
		case l.Type != "" && l.Kind != "" && l.Type != l.Kind:
			errs = append(errs, fmt.Errorf("%s: type %q and kind %q differ; kind is another name for type, give one", where, l.Type, l.Kind))
			continue
		}
		if _, dup := limits[typ]; dup {
			errs = append(errs, fmt.Errorf("%s: step type %q is limited twice", where, typ))
			continue
		}
		lim := ratelimit.Limit{QPS: l.QPS, Burst: l.Burst}
		if lim.Burst == 0 {
			lim.Burst = 1
		}
		if err := lim.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("%s (step type %q): %w", where, typ, err))
			continue
		}
		limits[typ] = lim
	}
	return limits, errors.Join(errs...)
}

// stepLimiter is the engine's Limiter for c's step limits, its buckets
// empty now (the clock's time; nil is time.Now) and emptied again when
// this controller becomes the leader (a runnable added to mgr, which needs
// leader election): a standby's buckets fill while it waits, and would
// let a burst through right after the old leader's. nil without any
// limit, so runs pay nothing.
func (c RateLimitConfig) stepLimiter(mgr manager.Manager, clock func() time.Time) (engine.Limiter, error) {
	limits, err := c.stepLimits()
	if err != nil {
		return nil, fmt.Errorf("controller configuration: %w", err)
	}
	if len(limits) == 0 {
		return nil, nil
	}
	if clock == nil {
		clock = time.Now
	}
	starts, err := ratelimit.NewStarts(limits, clock())
	if err != nil {
		return nil, err
	}
	// A RunnableFunc needs leader election: it starts once this
	// controller leads.
	if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		starts.Empty(clock())
		<-ctx.Done()
		return nil
	})); err != nil {
		return nil, err
	}
	return starts, nil
}
