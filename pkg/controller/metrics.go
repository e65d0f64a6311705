package controller

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
)

// Metrics are the controller's own Prometheus metrics. controller-runtime
// already exports reconcile durations (controller_runtime_reconcile_time_seconds),
// queue depth (workqueue_depth) and client requests (rest_client_requests_total).
type Metrics struct {
	// RunsFinished counts runs that finished, by phase.
	RunsFinished *prometheus.CounterVec
	// StepsFinished counts steps that reached a phase, by phase and type.
	StepTransitions *prometheus.CounterVec
	// StepDuration is how long steps took from first execution to finish.
	StepDuration *prometheus.HistogramVec
}

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		RunsFinished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stepflow_runs_finished_total", Help: "WorkflowRuns that finished, by phase.",
		}, []string{"phase"}),
		StepTransitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stepflow_step_transitions_total", Help: "Steps that reached a phase, by phase and step type.",
		}, []string{"phase", "type"}),
		StepDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "stepflow_step_duration_seconds", Help: "Time from a step's first execution to its end, by step type and phase.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 14),
		}, []string{"type", "phase"}),
	}
	for _, c := range []prometheus.Collector{m.RunsFinished, m.StepTransitions, m.StepDuration} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// observe records what changed between two statuses of a run.
func (m *Metrics) observe(before, after *v1alpha1.WorkflowRunStatus) {
	if m == nil {
		return
	}
	if after.Finished && !before.Finished {
		m.RunsFinished.WithLabelValues(string(after.Phase)).Inc()
	}
	old := map[string]v1alpha1.WorkflowStepPhase{}
	for _, s := range before.Steps {
		old[s.Name] = s.Phase
		for _, c := range s.SubStepsStatus {
			old[c.Name] = c.Phase
		}
	}
	record := func(s v1alpha1.StepStatus) {
		if s.Phase == old[s.Name] {
			return
		}
		m.StepTransitions.WithLabelValues(string(s.Phase), s.Type).Inc()
		switch s.Phase {
		case v1alpha1.WorkflowStepPhaseSucceeded, v1alpha1.WorkflowStepPhaseFailed:
			if !s.FirstExecuteTime.IsZero() {
				m.StepDuration.WithLabelValues(s.Type, string(s.Phase)).
					Observe(s.LastExecuteTime.Sub(s.FirstExecuteTime.Time).Seconds())
			}
		}
	}
	for _, s := range after.Steps {
		record(s.StepStatus)
		for _, c := range s.SubStepsStatus {
			record(c)
		}
	}
}
