package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/engine"
)

// suspendStep is the step the harness resumes, with -suspend.
const suspendStep = "approve"

// workload says what each run looks like.
type workload struct {
	namespace string
	// endpoint is the URL the request step GETs.
	endpoint string
	suspend  bool
	// waitReads makes the wait step read the ConfigMap itself
	// (load-wait-read) instead of taking the read step's output.
	waitReads bool
}

// steps are the names of the run's steps, in order.
func (w workload) steps() []string {
	if w.suspend {
		return []string{"apply", "read", "wait", suspendStep, "request", "export"}
	}
	return []string{"apply", "read", "wait", "request", "export"}
}

// run is the WorkflowRun called name.
func (w workload) run(name string) *v1alpha1.WorkflowRun {
	step := func(name, typ string, props map[string]any) v1alpha1.WorkflowStep {
		s := v1alpha1.WorkflowStep{WorkflowStepBase: v1alpha1.WorkflowStepBase{Name: name, Type: typ}}
		if props != nil {
			raw, err := json.Marshal(props)
			if err != nil {
				panic(err) // maps of strings always marshal
			}
			s.Properties = &runtime.RawExtension{Raw: raw}
		}
		return s
	}
	apply := step("apply", "apply-object", map[string]any{"value": map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": name + "-src"},
		"data":     map[string]any{"ready": "true", "run": name},
	}})
	read := step("read", "read-object", map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "name": name + "-src"})
	wait := step("wait", "load-wait-read", map[string]any{"name": name + "-src"})
	if !w.waitReads {
		read.Outputs = v1alpha1.StepOutputs{{Name: "data", ValueFrom: "output.$returns.value.data"}}
		wait = step("wait", "load-wait", nil)
		wait.Inputs = v1alpha1.StepInputs{{From: "data", ParameterKey: "data"}}
	}
	request := step("request", "request", map[string]any{"url": w.endpoint + "?run=" + name})
	request.Outputs = v1alpha1.StepOutputs{{Name: "answer", ValueFrom: "response.answer"}}
	export := step("export", "export2config", map[string]any{"configName": name + "-out", "data": map[string]any{"run": name}})
	export.Inputs = v1alpha1.StepInputs{{From: "answer", ParameterKey: "data.answer"}}

	steps := []v1alpha1.WorkflowStep{apply, read, wait}
	if w.suspend {
		steps = append(steps, step(suspendStep, "suspend", map[string]any{"message": "resumed by the load harness"}))
	}
	steps = append(steps, request, export)
	mode := v1alpha1.WorkflowExecuteMode{Steps: v1alpha1.WorkflowModeStep}
	return &v1alpha1.WorkflowRun{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: w.namespace, Labels: map[string]string{"stepflow.dev/load": "true"}},
		Spec:       v1alpha1.WorkflowRunSpec{Mode: &mode, WorkflowSpec: &v1alpha1.WorkflowSpec{Steps: steps}},
	}
}

// runNames are the names of n runs.
func runNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("run-%05d", i)
	}
	return names
}

// warmUp runs one run of the workload to the end before anything is
// measured: informers, definitions and compiled templates are ready after.
// A warm-up run that fails is reported, not fatal: the measured runs will
// show the same failure, with numbers.
func warmUp(ctx context.Context, c client.Client, w workload, tr *tracker) error {
	const name, limit = "warm-up", 2 * time.Minute
	logf("warm-up run %s", name)
	traces := tr.track([]string{name})
	start := time.Now()
	tr.created(traces[0], start)
	if err := c.Create(ctx, w.run(name)); err != nil {
		return fmt.Errorf("creating the warm-up run: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	finished := tr.wait(ctx, traces) == 1
	took := time.Since(start).Round(time.Millisecond)
	s := tr.snapshot(traces)[0]
	switch {
	case !finished && s.resumeLost:
		logf("warm-up run suspended again after its resume (%s): %s", took, tr.describe(traces[0]))
		return nil
	case !finished:
		return fmt.Errorf("the warm-up run did not finish within %s: %s", limit, tr.describe(traces[0]))
	case s.phase != v1alpha1.WorkflowRunSucceeded:
		logf("warm-up run %s in %s: %s", s.phase, took, tr.describe(traces[0]))
		return nil
	}
	logf("warm-up run succeeded in %s", took)
	return nil
}

// createErrors counts runs that could not be created, with the first error.
type createErrors struct {
	n     int
	first error
}

// createRuns creates the runs with parallel creators, at most rate per
// second when rate > 0. A run whose create fails is tried 3 times.
func createRuns(ctx context.Context, c client.Client, w workload, tr *tracker, traces []*trace, parallel int, rate float64) createErrors {
	next := make(chan int)
	go func() {
		defer close(next)
		start := time.Now()
		for i := range traces {
			if rate > 0 {
				due := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
				if d := time.Until(due); d > 0 {
					select {
					case <-ctx.Done():
						return
					case <-time.After(d):
					}
				}
			}
			select {
			case <-ctx.Done():
				return
			case next <- i:
			}
		}
	}()
	var mu sync.Mutex
	var errs createErrors
	var wg sync.WaitGroup
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				name := traces[i].name
				run := w.run(name)
				var err error
				for try := 0; try < 3; try++ {
					tr.created(traces[i], time.Now())
					if err = c.Create(ctx, run.DeepCopy()); err == nil || apierrors.IsAlreadyExists(err) {
						err = nil
						break
					}
				}
				if err != nil {
					mu.Lock()
					errs.n++
					if errs.first == nil {
						errs.first = fmt.Errorf("creating %s: %w", name, err)
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return errs
}

// errResumeGaveUp: the run kept changing under the resume.
var errResumeGaveUp = errors.New("the run kept changing (5 tries)")

// resume resumes a run as `stepflow resume` does: read the run, apply
// engine.Resume to its status, write the status with the run's
// resourceVersion, and on a conflict start over. It returns when the write
// returned.
func resume(ctx context.Context, c client.Client, key types.NamespacedName) (time.Time, error) {
	for try := 0; try < 5; try++ {
		var run v1alpha1.WorkflowRun
		if err := c.Get(ctx, key, &run); err != nil {
			return time.Time{}, err
		}
		if err := engine.Resume(&run.Status, ""); err != nil {
			return time.Time{}, err
		}
		err := c.Status().Update(ctx, &run)
		if apierrors.IsConflict(err) {
			continue
		}
		if err != nil {
			return time.Time{}, err
		}
		return time.Now(), nil
	}
	return time.Time{}, errResumeGaveUp
}
