package main

import (
	"fmt"
	"io"
	"math"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
)

// Targets the report checks.
const (
	targetRunsPerMin = 1000
	targetAPIPerRun  = 6
	targetStepP99    = time.Second
	targetPeakRSSMiB = 512
)

// The controller's metrics the report reads besides its own.
const (
	// clientRequestsMetric counts the requests of every client in the
	// process, by code, host and method.
	clientRequestsMetric = "rest_client_requests_total"
	// workflowRunCtrl is the controller label of the run reconciler.
	workflowRunCtrl = "workflowrun"
)

// durations are latencies; quantiles are by nearest rank.
type durations []time.Duration

func (d durations) quantile(q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append(durations(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(math.Ceil(q*float64(len(s)))) - 1
	if i < 0 {
		i = 0
	}
	return s[i]
}

func (d durations) max() time.Duration { return d.quantile(1) }

// summary is "p50 … p99 … max … (n)".
func (d durations) summary(unit time.Duration) string {
	if len(d) == 0 {
		return "none"
	}
	return fmt.Sprintf("p50 %s  p99 %s  max %s  (n=%d)",
		d.quantile(0.5).Round(unit), d.quantile(0.99).Round(unit), d.max().Round(unit), len(d))
}

// report is the outcome of a load test.
type report struct {
	o options
	w workload
	// cpus are shared by the control plane, the controller and the harness.
	cpus       int
	n          int
	createErrs createErrors
	// separate: the controller has a process of its own, so its client
	// metrics and /proc figures are its alone.
	separate bool
	results  []runResult

	phases     map[v1alpha1.WorkflowRunPhase]int
	notSeen    int
	unfinished []runResult
	failed     []runResult

	window     time.Duration // first create → last finish
	finished   int
	e2e        durations
	firstStep  durations // create → first step seen done
	statusStep durations // lastExecuteTime differences, whole seconds
	watchStep  durations // seen done differences, steps after the first
	perStep    map[string]durations
	resumeNext durations
	resumeErrs int
	// resumeLost counts runs suspended again after their resume was
	// written and seen; resumeStuck those of them that never finished.
	resumeLost, resumeStuck int
	firstErr                error
	updates                 int

	// requestedTwice counts runs whose request step reached the HTTP
	// server more than once; maxRequests is the most any run sent.
	requestedTwice, maxRequests int

	before, after snapshot
	audit         auditCounts
	auditErr      error
}

func buildReport(o options, w workload, results []runResult, createErrs createErrors, before, after snapshot, cl *cluster, separate bool) *report {
	r := &report{o: o, w: w, cpus: runtime.NumCPU(), n: len(results), results: results, createErrs: createErrs, before: before, after: after, separate: separate,
		phases: map[v1alpha1.WorkflowRunPhase]int{}, perStep: map[string]durations{}}
	steps := w.steps()
	var first, last time.Time
	for _, res := range results {
		if !res.created.IsZero() && (first.IsZero() || res.created.Before(first)) {
			first = res.created
		}
		r.updates += res.updates
		if res.resumeErr != nil {
			r.resumeErrs++
			if r.firstErr == nil {
				r.firstErr = fmt.Errorf("resuming %s: %w", res.name, res.resumeErr)
			}
		}
		if !res.seen {
			r.notSeen++
		}
		if res.resumeLost {
			r.resumeLost++
			if res.finished.IsZero() {
				r.resumeStuck++
			}
		}
		if res.finished.IsZero() {
			r.unfinished = append(r.unfinished, res)
			continue
		}
		r.finished++
		r.phases[res.phase]++
		if res.phase != v1alpha1.WorkflowRunSucceeded {
			r.failed = append(r.failed, res)
		}
		if res.finished.After(last) {
			last = res.finished
		}
		r.e2e = append(r.e2e, res.finished.Sub(res.created))
		if d, ok := res.doneSeen[steps[0]]; ok {
			r.firstStep = append(r.firstStep, d.Sub(res.created))
		}
		r.addStatusSteps(res.status)
		r.addWatchSteps(res, steps)
	}
	if r.finished > 0 {
		r.window = last.Sub(first)
	}
	if cl.auditLog != "" {
		r.audit, r.auditErr = countAudit(cl.auditLog, before.auditOffset, after.auditOffset)
	}
	return r
}

// addStatusSteps adds step latencies from the status: each succeeded
// step's lastExecuteTime minus the previous step's (the run's startTime
// for the first). The suspend step is left out: its time is the
// harness's.
func (r *report) addStatusSteps(st v1alpha1.WorkflowRunStatus) {
	prev := st.StartTime.Time
	for _, s := range st.Steps {
		if s.Phase == v1alpha1.WorkflowStepPhaseSucceeded && s.Name != suspendStep && !prev.IsZero() {
			r.statusStep = append(r.statusStep, s.LastExecuteTime.Sub(prev))
		}
		prev = s.LastExecuteTime.Time
	}
}

// addWatchSteps adds step latencies from the watch: each step after the
// first is ready when the step before it was seen done. The step after the
// suspend step is ready when the resume write returned; it goes to
// resumeNext alone, as its wait is the resume's.
func (r *report) addWatchSteps(res runResult, steps []string) {
	for i := 1; i < len(steps); i++ {
		if steps[i] == suspendStep {
			continue
		}
		done, ok := res.doneSeen[steps[i]]
		if !ok {
			continue
		}
		if steps[i-1] == suspendStep {
			if !res.resumed.IsZero() {
				// Clamped: the resume's response may arrive after the
				// step it caused was seen done.
				r.resumeNext = append(r.resumeNext, max(done.Sub(res.resumed), 0))
			}
			continue
		}
		ready, ok := res.doneSeen[steps[i-1]]
		if !ok {
			continue
		}
		d := done.Sub(ready)
		r.watchStep = append(r.watchStep, d)
		r.perStep[steps[i]] = append(r.perStep[steps[i]], d)
	}
}

// countRequests notes the runs whose HTTP step was sent more than once:
// a GET runs again on each evaluation, so more than one means the step
// was evaluated again after it succeeded.
func (r *report) countRequests(byRun map[string]int) {
	for _, res := range r.results {
		n := byRun[res.name]
		if n > 1 {
			r.requestedTwice++
		}
		if n > r.maxRequests {
			r.maxRequests = n
		}
	}
}

// ok is false when a run failed, was not created or did not finish.
func (r *report) ok() bool {
	return len(r.failed) == 0 && len(r.unfinished) == 0 && r.createErrs.n == 0 && r.resumeErrs == 0
}

func (r *report) runsPerMin() float64 {
	if r.window <= 0 {
		return 0
	}
	return float64(r.finished) / r.window.Minutes()
}

// delta is a metric's change over the load.
func (r *report) delta(name string, match map[string]string) float64 {
	return r.after.metrics.sum(name, match) - r.before.metrics.sum(name, match)
}

func (r *report) deltaBy(name string, match map[string]string, keys ...string) map[string]float64 {
	out := r.after.metrics.by(name, match, keys...)
	for k, v := range r.before.metrics.by(name, match, keys...) {
		out[k] -= v
	}
	for k, v := range out {
		if v == 0 {
			delete(out, k)
		}
	}
	return out
}

// apiPerRun is the controller's API requests per run: its client metric
// when the controller has a process of its own, else the audit log's
// count for its user.
func (r *report) apiPerRun() (float64, string) {
	if r.separate {
		return r.delta(clientRequestsMetric, nil) / float64(r.n), clientRequestsMetric
	}
	if r.audit != nil {
		total := 0
		for _, c := range r.audit[controllerUser] {
			total += c
		}
		return float64(total) / float64(r.n), "audit log, user " + controllerUser
	}
	return r.delta(clientRequestsMetric, nil) / float64(r.n), clientRequestsMetric + " (includes the harness)"
}

func (r *report) print(out io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }
	mode := "separate process"
	if r.o.inProcess {
		mode = "in process"
	}
	p("")
	wait := "load-wait on read's output"
	if r.w.waitReads {
		wait = "load-wait-read"
	}
	p("stepflow load: %d runs × %d steps (%s; wait: %s), StepByStep, %d creators, rate %s, %d CPUs",
		r.n, len(r.w.steps()), strings.Join(r.w.steps(), " → "), wait, r.o.parallel, rateString(r.o.rate), r.cpus)
	p("controller:    %s, --max-concurrent-reconciles %d --kube-api-qps %g --kube-api-burst %d",
		mode, r.o.concurrency, r.o.qps, r.o.burst)
	p("")
	p("runs           %s", r.phaseLine())
	p("throughput     %.0f runs/min  (%d finished, first create → last finish %s)", r.runsPerMin(), r.finished, r.window.Round(time.Millisecond))
	p("end to end     create → finished seen:        %s", r.e2e.summary(time.Millisecond))
	p("first step     create → step %-8s seen done: %s  (includes the queue)", r.w.steps()[0], r.firstStep.summary(time.Millisecond))
	p("step latency   status times (1s resolution):   %s", r.statusStep.summary(time.Second))
	p("               watch times (ms), later steps:  %s", r.watchStep.summary(time.Millisecond))
	for _, s := range r.w.steps()[1:] {
		if d, ok := r.perStep[s]; ok {
			p("                 %-12s %s", s, d.summary(time.Millisecond))
		}
	}
	if r.w.suspend {
		p("resume → next  resume write → %s seen done:  %s  (%d resumes failed)",
			r.stepAfterSuspend(), r.resumeNext.summary(time.Millisecond), r.resumeErrs)
		p("resume undone  %d runs seen suspended again after their resume; %d of them never finished", r.resumeLost, r.resumeStuck)
	}
	p("status writes  %.2f watch updates per run", float64(r.updates)/float64(r.n))
	r.printController(p)
	r.printAPI(p)
	r.printTargets(p)
	r.printProblems(p)
}

func rateString(rate float64) string {
	if rate <= 0 {
		return "unpaced"
	}
	return fmt.Sprintf("%g/s", rate)
}

func (r *report) stepAfterSuspend() string {
	steps := r.w.steps()
	for i, s := range steps {
		if s == suspendStep && i+1 < len(steps) {
			return steps[i+1]
		}
	}
	return ""
}

func (r *report) phaseLine() string {
	var parts []string
	for _, ph := range sortedKeys(r.phases) {
		parts = append(parts, fmt.Sprintf("%d %s", r.phases[ph], ph))
	}
	if len(r.unfinished) > 0 {
		parts = append(parts, fmt.Sprintf("%d unfinished", len(r.unfinished)))
	}
	if r.createErrs.n > 0 {
		parts = append(parts, fmt.Sprintf("%d not created", r.createErrs.n))
	}
	return strings.Join(parts, ", ")
}

func (r *report) printController(p func(string, ...any)) {
	who := "controller"
	if r.before.usageErr != nil || r.after.usageErr != nil {
		p("%-14s usage unavailable: %v %v", who, r.before.usageErr, r.after.usageErr)
		return
	}
	if !r.separate {
		who = "harness+ctrl"
	}
	cpu := r.after.usage.cpu - r.before.usage.cpu
	p("%-14s CPU %.1fs during the load (%.1f ms/run, %.0f%% of one CPU), %.1fs in all; peak RSS %.0f MiB (VmHWM), RSS %.0f MiB at the end",
		who, cpu.Seconds(), float64(cpu.Milliseconds())/float64(r.n), 100*cpu.Seconds()/r.window.Seconds(),
		r.after.usage.cpu.Seconds(), mib(r.after.usage.peakRSS), mib(r.after.usage.rss))
	if a, b := r.after.usage, r.before.usage; a.workers > 0 {
		// Workers that exited during the load count through the
		// controller's reaped-children time.
		wcpu := a.workerCPU - b.workerCPU + a.reapedCPU - b.reapedCPU
		all := cpu + wcpu
		p("%-14s CPU %.1fs during the load (%.1f ms/run), %d processes at the end; peak RSS %.0f MiB (sum of VmHWM), RSS %.0f MiB at the end",
			"eval workers", wcpu.Seconds(), float64(wcpu.Milliseconds())/float64(r.n), a.workers, mib(a.workerPeakRSS), mib(a.workerRSS))
		pss := "not sampled"
		if a.peakPSS > 0 {
			pss = fmt.Sprintf("%.0f MiB (sum of PSS: their shared code pages once)", mib(a.peakPSS))
		}
		p("%-14s CPU %.1f ms/run (%.0f%% of one CPU); peak RSS %.0f MiB (sum of VmHWM); peak memory %s",
			"ctrl+workers", float64(all.Milliseconds())/float64(r.n), 100*all.Seconds()/r.window.Seconds(), mib(a.peakRSS+a.workerPeakRSS), pss)
	} else if a.peakPSS > 0 {
		p("%-14s peak memory %.0f MiB (PSS, comparable with ctrl+workers' when it evaluates in worker processes)", "", mib(a.peakPSS))
	}
	var plane []string
	for _, name := range []string{"kube-apiserver", "etcd"} {
		a, okA := r.after.plane[name]
		b, okB := r.before.plane[name]
		if okA && okB {
			plane = append(plane, fmt.Sprintf("%s %.1fs", name, (a.cpu-b.cpu).Seconds()))
		}
	}
	if len(plane) > 0 {
		p("control plane  CPU during the load: %s", strings.Join(plane, ", "))
	}
	match := map[string]string{"controller": workflowRunCtrl}
	reconciles := r.delta("controller_runtime_reconcile_total", match)
	count := r.delta("controller_runtime_reconcile_time_seconds_count", match)
	mean := time.Duration(0)
	if count > 0 {
		mean = time.Duration(r.delta("controller_runtime_reconcile_time_seconds_sum", match) / count * float64(time.Second))
	}
	p("reconciles     %.2f per run (%s), mean %s; workqueue adds %.2f per run; runs finished (metric) %s",
		reconciles/float64(r.n), joinCounts(r.deltaBy("controller_runtime_reconcile_total", match, "result"), 0),
		mean.Round(100*time.Microsecond), r.delta("workqueue_adds_total", map[string]string{"name": workflowRunCtrl})/float64(r.n),
		joinCounts(r.deltaBy("stepflow_runs_finished_total", nil, "phase"), 0))
	finishes := r.delta("stepflow_runs_finished_total", nil)
	p("HTTP step      %.2f requests served per run; %d runs sent it more than once (at most %d)",
		float64(r.after.httpRequests-r.before.httpRequests)/float64(r.n), r.requestedTwice, r.maxRequests)
	p("re-execution   %.0f run finishes counted by the controller for %d runs finished", finishes, r.finished)
}

func (r *report) printAPI(p func(string, ...any)) {
	perRun, source := r.apiPerRun()
	p("API requests   %.2f per run (%s)", perRun, source)
	byMethod := r.deltaBy(clientRequestsMetric, nil, "method")
	byCode := r.deltaBy(clientRequestsMetric, nil, "code")
	whose := clientRequestsMetric
	if !r.separate {
		whose += ", harness included"
	}
	p("  by method    %s  |  by code %s   (%s, per run)", joinCounts(byMethod, r.n), joinCounts(byCode, r.n), whose)
	if r.auditErr != nil {
		p("  audit log    unreadable: %v", r.auditErr)
		return
	}
	for _, user := range []string{controllerUser, harnessUser} {
		counts := r.audit[user]
		if counts == nil {
			continue
		}
		total := 0
		m := map[string]float64{}
		for k, v := range counts {
			total += v
			m[k] = float64(v)
		}
		p("  %-12s %.2f per run (audit log): %s", user, float64(total)/float64(r.n), joinCounts(m, r.n))
	}
}

func (r *report) printTargets(p func(string, ...any)) {
	check := func(ok bool) string {
		if ok {
			return "met"
		}
		return "MISSED"
	}
	perRun, _ := r.apiPerRun()
	p99 := r.statusStep.quantile(0.99)
	rss := mib(r.after.usage.peakRSS + r.after.usage.workerPeakRSS)
	throughput := check(r.runsPerMin() >= targetRunsPerMin)
	if r.o.rate > 0 && r.o.rate*60 < targetRunsPerMin {
		throughput = fmt.Sprintf("not measured, paced at %g/min", r.o.rate*60)
	}
	p("targets        runs/min ≥ %d: %s (%.0f) | API requests/run ≤ %d: %s (%.2f) | p99 step latency < %s: %s (status %s, watch %s) | peak RSS < %d MiB: %s (%.0f)",
		targetRunsPerMin, throughput, r.runsPerMin(),
		targetAPIPerRun, check(perRun <= targetAPIPerRun), perRun,
		targetStepP99, check(p99 < targetStepP99 && r.watchStep.quantile(0.99) < targetStepP99), p99, r.watchStep.quantile(0.99).Round(time.Millisecond),
		targetPeakRSSMiB, check(rss < targetPeakRSSMiB), rss)
}

// printProblems lists up to five failed and five unfinished runs.
func (r *report) printProblems(p func(string, ...any)) {
	if r.createErrs.first != nil {
		p("not created    %d: %v", r.createErrs.n, r.createErrs.first)
	}
	if r.notSeen > 0 {
		p("not seen       %d runs never appeared in the watch", r.notSeen)
	}
	if r.firstErr != nil {
		p("resume failed  %d: %v", r.resumeErrs, r.firstErr)
	}
	causes := map[string]float64{}
	first := map[string]string{}
	for _, res := range r.failed {
		cause, msg := failureOf(&res.status)
		causes[cause]++
		if _, ok := first[cause]; !ok {
			first[cause] = res.name + ": " + msg
		}
	}
	if len(causes) > 0 {
		p("failed by      %s", joinCounts(causes, 0))
		for _, cause := range sortedKeys(first) {
			p("  e.g.         %s", first[cause])
		}
	}
	for i, res := range r.unfinished {
		if i == 5 {
			p("               … %d more unfinished", len(r.unfinished)-5)
			break
		}
		p("unfinished     %s: %s", res.name, describeStatus(&res.status))
	}
}

// failureOf names the first failed step of a run, "step Reason", and its
// message.
func failureOf(st *v1alpha1.WorkflowRunStatus) (string, string) {
	for _, s := range st.Steps {
		if s.Phase == v1alpha1.WorkflowStepPhaseFailed {
			return s.Name + " " + s.Reason, s.Message
		}
	}
	return "run " + string(st.Phase), st.Message
}

// joinCounts is "k v, k v" sorted by count, each divided by per when
// per > 0; keys under 0.005 per are summed up at the end.
func joinCounts(m map[string]float64, per int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	var parts []string
	rare := 0.0
	for _, k := range keys {
		switch {
		case per <= 0:
			parts = append(parts, fmt.Sprintf("%s %.0f", k, m[k]))
		case m[k]/float64(per) < 0.005:
			rare += m[k]
		default:
			parts = append(parts, fmt.Sprintf("%s %.2f", k, m[k]/float64(per)))
		}
	}
	if rare > 0 {
		parts = append(parts, fmt.Sprintf("others %.0f in all", rare))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func sortedKeys[K ~string, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	return keys
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
