package controller

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/op"
)

// Metrics are the controller's own Prometheus metrics. controller-runtime
// already exports reconcile durations (controller_runtime_reconcile_time_seconds),
// queue depth (workqueue_depth) and client requests (rest_client_requests_total).
//
// Durations are histograms whose buckets run from a millisecond (steps
// and op calls take 1-800 ms) to days (a step waiting for an approval):
// durationBuckets. Live runs by phase and definitions by readiness are
// gauges computed when scraped, from the controller's cache (Inventory),
// so they cost nothing per run.
type Metrics struct {
	// RunsFinished counts runs that finished, by phase.
	RunsFinished *prometheus.CounterVec
	// StepsFinished counts steps that reached a phase, by phase and type.
	StepTransitions *prometheus.CounterVec
	// StepDuration is how long steps took from first execution to finish.
	StepDuration *prometheus.HistogramVec
	// RunDuration is how long finished runs took, start to end, by phase.
	RunDuration *prometheus.HistogramVec
	// OpCalls counts op calls that ran (not those replayed from the
	// journal), by op and outcome; OpDuration is their latency.
	OpCalls    *prometheus.CounterVec
	OpDuration *prometheus.HistogramVec
	// QueueWaiting and QueueRunning are the runs waiting in and running
	// from each queue; QueueWait is how long runs waited, from entering
	// their queue to admission. Set only when queue caps are configured.
	QueueWaiting *prometheus.GaugeVec
	QueueRunning *prometheus.GaugeVec
	QueueWait    *prometheus.HistogramVec
}

// durationBuckets run from 1 ms to about 3 days, by factors of 4.
var durationBuckets = prometheus.ExponentialBuckets(0.001, 4, 15)

// NewMetrics creates the metrics and registers them with reg; with a
// reader (the controller's cache), also the gauges of live runs by phase
// and definitions by readiness, computed when scraped.
func NewMetrics(reg prometheus.Registerer, reader ...client.Reader) (*Metrics, error) {
	m := &Metrics{
		RunsFinished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stepflow_runs_finished_total", Help: "WorkflowRuns that finished, by phase.",
		}, []string{"phase"}),
		StepTransitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stepflow_step_transitions_total", Help: "Steps that reached a phase, by phase and step type.",
		}, []string{"phase", "type"}),
		StepDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "stepflow_step_duration_seconds", Help: "Time from a step's first execution to its end, by step type and phase.",
			Buckets: durationBuckets,
		}, []string{"type", "phase"}),
		RunDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "stepflow_run_duration_seconds", Help: "Time from a run's start to its end, by phase.",
			Buckets: durationBuckets,
		}, []string{"phase"}),
		OpCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stepflow_op_calls_total", Help: "Op calls made (not replayed from a run's journal), by op (kube.apply, http.do, ...) and outcome (ok, error, permanent).",
		}, []string{"op", "outcome"}),
		OpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "stepflow_op_call_duration_seconds", Help: "Latency of op calls made, by op and outcome.",
			Buckets: durationBuckets,
		}, []string{"op", "outcome"}),
		QueueWaiting: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "stepflow_queue_waiting_runs", Help: "WorkflowRuns waiting for a running slot, by queue.",
		}, []string{"queue"}),
		QueueRunning: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "stepflow_queue_running_runs", Help: "WorkflowRuns holding a running slot, by queue.",
		}, []string{"queue"}),
		QueueWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "stepflow_queue_wait_seconds", Help: "Time from a run entering its queue to its admission, by queue.",
			Buckets: durationBuckets,
		}, []string{"queue"}),
	}
	collectors := []prometheus.Collector{m.RunsFinished, m.StepTransitions, m.StepDuration, m.RunDuration, m.OpCalls, m.OpDuration,
		m.QueueWaiting, m.QueueRunning, m.QueueWait}
	for _, r := range reader {
		collectors = append(collectors, newInventory(r, time.Now))
	}
	for _, c := range collectors {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// instrument wraps next so that every call it makes is counted and timed.
func (m *Metrics) instrument(next op.Runner) op.Runner {
	return op.RunnerFunc(func(ctx context.Context, call *op.Call) (op.Result, error) {
		start := time.Now()
		res, err := next.Run(ctx, call)
		outcome := "ok"
		switch {
		case op.IsPermanent(err):
			outcome = "permanent"
		case err != nil:
			outcome = "error"
		}
		name := call.Name.String()
		m.OpCalls.WithLabelValues(name, outcome).Inc()
		m.OpDuration.WithLabelValues(name, outcome).Observe(time.Since(start).Seconds())
		return res, err
	})
}

// observe records what changed between two statuses of a run.
func (m *Metrics) observe(before, after *v1alpha1.WorkflowRunStatus) {
	if m == nil {
		return
	}
	if after.Finished && !before.Finished {
		m.RunsFinished.WithLabelValues(string(after.Phase)).Inc()
		if !after.StartTime.IsZero() && !after.EndTime.IsZero() {
			m.RunDuration.WithLabelValues(string(after.Phase)).Observe(after.EndTime.Sub(after.StartTime.Time).Seconds())
		}
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
