package controller

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/api/v1beta1"
)

// inventory is a Prometheus collector of what the cluster holds now:
// unfinished runs by phase (how many wait for an approval right now is
// stepflow_runs{phase="suspending"}) and step definitions by readiness.
// It lists the controller's cache when scraped, so it costs nothing per
// run; a scrape that cannot list (the cache not synced yet) reports
// nothing rather than zeros.
type inventory struct {
	reader client.Reader
	runs   *prometheus.Desc
	oldest *prometheus.Desc
	defs   *prometheus.Desc
	now    func() time.Time
}

func newInventory(reader client.Reader, now func() time.Time) *inventory {
	return &inventory{
		reader: reader, now: now,
		oldest: prometheus.NewDesc("stepflow_runs_oldest_age_seconds", "Age of the oldest WorkflowRun not finished, by phase (alert on suspending runs left waiting too long).",
			[]string{"phase"}, nil),
		runs: prometheus.NewDesc("stepflow_runs", "WorkflowRuns not finished, by phase (suspending: waiting to be resumed).",
			[]string{"phase"}, nil),
		defs: prometheus.NewDesc("stepflow_step_definitions", "WorkflowStepDefinitions by their Ready condition (True, False, Unknown).",
			[]string{"ready"}, nil),
	}
}

func (i *inventory) Describe(ch chan<- *prometheus.Desc) {
	ch <- i.runs
	ch <- i.oldest
	ch <- i.defs
}

func (i *inventory) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var runs v1alpha1.WorkflowRunList
	if err := i.reader.List(ctx, &runs, client.UnsafeDisableDeepCopy); err == nil {
		byPhase := map[string]int{}
		oldest := map[string]time.Time{}
		for _, phase := range []v1alpha1.WorkflowRunPhase{v1alpha1.WorkflowRunInitializing, v1alpha1.WorkflowRunExecuting, v1alpha1.WorkflowRunSuspending} {
			byPhase[string(phase)] = 0
		}
		for idx := range runs.Items {
			st := &runs.Items[idx].Status
			if st.Finished {
				continue
			}
			phase := string(st.Phase)
			if phase == "" {
				phase = string(v1alpha1.WorkflowRunInitializing)
			}
			byPhase[phase]++
			if created := runs.Items[idx].CreationTimestamp.Time; oldest[phase].IsZero() || created.Before(oldest[phase]) {
				oldest[phase] = created
			}
		}
		now := i.now()
		for phase, n := range byPhase {
			ch <- prometheus.MustNewConstMetric(i.runs, prometheus.GaugeValue, float64(n), phase)
			age := 0.0
			if t, ok := oldest[phase]; ok {
				age = now.Sub(t).Seconds()
			}
			ch <- prometheus.MustNewConstMetric(i.oldest, prometheus.GaugeValue, age, phase)
		}
	}
	var defs v1beta1.WorkflowStepDefinitionList
	if err := i.reader.List(ctx, &defs, client.UnsafeDisableDeepCopy); err == nil {
		byReady := map[string]int{string(metav1.ConditionTrue): 0, string(metav1.ConditionFalse): 0, string(metav1.ConditionUnknown): 0}
		for idx := range defs.Items {
			ready := string(metav1.ConditionUnknown)
			if c := meta.FindStatusCondition(defs.Items[idx].Status.Conditions, v1alpha1.ConditionReady); c != nil {
				ready = string(c.Status)
			}
			byReady[ready]++
		}
		for ready, n := range byReady {
			ch <- prometheus.MustNewConstMetric(i.defs, prometheus.GaugeValue, float64(n), ready)
		}
	}
}
