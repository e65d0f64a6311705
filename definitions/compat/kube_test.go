package compat_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/internal/kubelet"
	"github.com/stepflow-dev/stepflow/pkg/engine"
)

// The Kubernetes step library: apply-deployment, apply-job, clean-jobs,
// build-push-image, step-group, generate-jdbc-connection, apply-object and
// read-object, each in a run modelled on kubevela/workflow's
// examples/workflow-run/test-*.yaml (and examples/job-orchestration.md),
// with the chart's default runner rights only.

// A step's final phase, or the test fails naming the run's status.
func wantStep(t *testing.T, run *v1alpha1.WorkflowRun, step string, phase v1alpha1.WorkflowStepPhase) v1alpha1.StepStatus {
	t.Helper()
	s := stepOf(t, run, step)
	if s.Phase != phase {
		t.Errorf("step %s: %s (%s: %s), want %s", step, s.Phase, s.Reason, s.Message, phase)
	}
	return s
}

// test-apply-deployment.yaml: Deployments named after their steps, one
// with a command, a timed suspend, a step whose if reads an earlier step's
// phase. A step waits until its Deployment has rolled out: nothing reports
// one before the stand-in kubelet starts.
func TestApplyDeployment(t *testing.T) {
	ns := newNamespace(t, "compat-apply-deployment")
	name := runYAML(t, ns, `
metadata: {name: test-apply-deployment}
spec:
  workflowSpec:
    steps:
    - name: deploy-nginx
      type: apply-deployment
      properties: {image: "nginx:1.21"}
    - name: deploy-busybox
      type: apply-deployment
      properties:
        image: busybox:latest
        replicas: 2
        cmd: [sh, -c, "echo 'Hello from busybox' && sleep 3600"]
    - name: suspend-for-check
      type: suspend
      properties: {duration: 1s}
    - name: deploy-redis
      type: apply-deployment
      if: status["deploy-nginx"].phase == "succeeded"
      properties: {image: "redis:alpine", cmd: [redis-server, --appendonly, "yes"]}
`)
	held := waitRun(t, ns, name, time.Minute, func(r *v1alpha1.WorkflowRun) bool {
		return len(r.Status.Steps) > 0 && strings.Contains(r.Status.Steps[0].Message, "has not observed")
	})
	if s := stepOf(t, held, "deploy-nginx"); s.Phase != v1alpha1.WorkflowStepPhaseRunning {
		t.Fatalf("before any rollout: deploy-nginx %s, want running", s.Phase)
	}
	stop := kubelet.Start(env.Client, ns, 100*time.Millisecond)
	defer stop()

	run := waitFinished(t, ns, name)
	if run.Status.Phase != v1alpha1.WorkflowRunSucceeded {
		t.Fatalf("run %s: %s", run.Status.Phase, run.Status.Message)
	}
	for _, s := range []string{"deploy-nginx", "deploy-busybox", "suspend-for-check", "deploy-redis"} {
		wantStep(t, run, s, v1alpha1.WorkflowStepPhaseSucceeded)
	}
	var deps appsv1.DeploymentList
	if err := env.Client.List(context.Background(), &deps, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	got := map[string]appsv1.Deployment{}
	for _, d := range deps.Items {
		got[d.Name] = d
	}
	if len(got) != 3 {
		t.Fatalf("%d Deployments, want 3: %v", len(got), got)
	}
	busybox := got["deploy-busybox"]
	c := busybox.Spec.Template.Spec.Containers[0]
	if *busybox.Spec.Replicas != 2 || c.Name != "deploy-busybox" || c.Image != "busybox:latest" || strings.Join(c.Command, " ") != "sh -c echo 'Hello from busybox' && sleep 3600" {
		t.Errorf("deploy-busybox: replicas %d, container %s %s %q", *busybox.Spec.Replicas, c.Name, c.Image, c.Command)
	}
	if sel := busybox.Spec.Selector.MatchLabels["workflow.oam.dev/step-name"]; sel != "test-apply-deployment-deploy-busybox" {
		t.Errorf("deploy-busybox selector %v", busybox.Spec.Selector.MatchLabels)
	}
	if cmd := got["deploy-nginx"].Spec.Template.Spec.Containers[0].Command; cmd != nil {
		t.Errorf("deploy-nginx has a command %q, none given", cmd)
	}
}

// jobController stands in for the Job controller and kubelets that envtest
// lacks: every Job of namespace that has no verdict yet gets the one
// outcome gives it (true: succeeded, false: failed), with the conditions
// and times the Job controller writes. It counts the Jobs it has judged.
type jobController struct {
	mu     sync.Mutex
	judged map[string]bool
}

func startJobController(t *testing.T, ns string, outcome func(*batchv1.Job) bool) *jobController {
	t.Helper()
	jc := &jobController{judged: map[string]bool{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			var jobs batchv1.JobList
			if err := env.Client.List(ctx, &jobs, client.InNamespace(ns)); err == nil {
				for i := range jobs.Items {
					jc.judge(ctx, t, &jobs.Items[i], outcome)
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return jc
}

func (jc *jobController) judge(ctx context.Context, t *testing.T, job *batchv1.Job, outcome func(*batchv1.Job) bool) {
	if len(job.Status.Conditions) > 0 {
		return
	}
	now := metav1.Now()
	completions := int32(1)
	if job.Spec.Completions != nil {
		completions = *job.Spec.Completions
	}
	ok := outcome(job)
	job.Status.StartTime = &now
	if ok {
		job.Status.Succeeded = completions
		job.Status.CompletionTime = &now
		job.Status.Conditions = []batchv1.JobCondition{
			{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, LastTransitionTime: now, Reason: "CompletionsReached"},
			{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, LastTransitionTime: now, Reason: "CompletionsReached"},
		}
	} else {
		job.Status.Failed = 1
		job.Status.Conditions = []batchv1.JobCondition{
			{Type: batchv1.JobFailureTarget, Status: corev1.ConditionTrue, LastTransitionTime: now, Reason: "BackoffLimitExceeded", Message: "Job has reached the specified backoff limit"},
			{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, LastTransitionTime: now, Reason: "BackoffLimitExceeded", Message: "Job has reached the specified backoff limit"},
		}
	}
	if err := env.Client.Status().Update(ctx, job); err != nil {
		if ctx.Err() == nil && !strings.Contains(err.Error(), "the object has been modified") {
			t.Logf("job controller: %s: %v", job.Name, err)
		}
		return
	}
	jc.mu.Lock()
	jc.judged[job.Name] = ok
	jc.mu.Unlock()
}

func (jc *jobController) verdicts() map[string]bool {
	jc.mu.Lock()
	defer jc.mu.Unlock()
	out := map[string]bool{}
	for k, v := range jc.judged {
		out[k] = v
	}
	return out
}

// The Job of job-orchestration.md's first step, named name.
func jobYAML(name string, completions int) string {
	return `
            value:
              metadata: {name: ` + name + `}
              spec:
                completions: ` + string(rune('0'+completions)) + `
                parallelism: 1
                template:
                  spec:
                    restartPolicy: Never
                    containers:
                    - {name: mytask, image: bash, command: [echo, hello world]}`
}

// job-orchestration.md: two Jobs in a step group, in parallel, then a
// third; each apply-job step waits until its Job succeeds. A Job that
// fails fails its step and the run, and the step after it does not run.
func TestApplyJob(t *testing.T) {
	ns := newNamespace(t, "compat-apply-job")
	name := runYAML(t, ns, `
metadata: {name: batch-jobs}
spec:
  mode: {steps: StepByStep, subSteps: DAG}
  workflowSpec:
    steps:
    - name: group
      type: step-group
      subSteps:
      - name: job1
        type: apply-job
        properties:`+jobYAML("job1", 2)+`
      - name: job2
        type: apply-job
        properties:`+jobYAML("job2", 1)+`
    - name: job3
      type: apply-job
      properties:`+jobYAML("job3", 1)+`
`)
	// Until a Job controller judges them, both Jobs of the group are
	// applied and their steps wait.
	held := waitRun(t, ns, name, time.Minute, func(r *v1alpha1.WorkflowRun) bool {
		waiting := 0
		for _, s := range r.Status.Steps {
			for _, sub := range s.SubStepsStatus {
				if strings.HasPrefix(sub.Message, "waiting for Job "+sub.Name+": 0 of") {
					waiting++
				}
			}
		}
		return waiting == 2
	})
	wantStep(t, held, "group", v1alpha1.WorkflowStepPhaseRunning)
	if got := countJobs(t, ns); strings.Join(got, ",") != "job1,job2" {
		t.Fatalf("while the group waits: Jobs %v, want job1 and job2", got)
	}
	jc := startJobController(t, ns, func(j *batchv1.Job) bool { return !strings.HasPrefix(j.Name, "broken") })

	run := waitFinished(t, ns, name)
	if run.Status.Phase != v1alpha1.WorkflowRunSucceeded {
		t.Fatalf("run %s: %s", run.Status.Phase, run.Status.Message)
	}
	for _, s := range []string{"group", "job1", "job2", "job3"} {
		wantStep(t, run, s, v1alpha1.WorkflowStepPhaseSucceeded)
	}
	if v := jc.verdicts(); len(v) != 3 || !v["job1"] || !v["job2"] || !v["job3"] {
		t.Errorf("Jobs completed: %v, want job1, job2, job3", v)
	}

	name = runYAML(t, ns, `
metadata: {name: broken-jobs}
spec:
  workflowSpec:
    steps:
    - name: broken
      type: apply-job
      properties:`+jobYAML("broken", 1)+`
    - name: after
      type: apply-job
      properties:`+jobYAML("after", 1)+`
`)
	run = waitFinished(t, ns, name)
	if run.Status.Phase != v1alpha1.WorkflowRunFailed {
		t.Fatalf("run %s, want failed", run.Status.Phase)
	}
	s := wantStep(t, run, "broken", v1alpha1.WorkflowStepPhaseFailed)
	if want := "Job broken failed (1 failed pods): BackoffLimitExceeded: Job has reached the specified backoff limit"; s.Message != want {
		t.Errorf("broken: message %q, want %q", s.Message, want)
	}
	if s := stepOf(t, run, "after"); s.Phase == v1alpha1.WorkflowStepPhaseSucceeded {
		t.Errorf("the step after a failed Job ran: %s", s.Phase)
	}
	var after batchv1.Job
	if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "after"}, &after); err == nil {
		t.Errorf("the Job after a failed one was created")
	}
}

func countJobs(t *testing.T, ns string) (names []string) {
	t.Helper()
	var jobs batchv1.JobList
	if err := env.Client.List(context.Background(), &jobs, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, j := range jobs.Items {
		names = append(names, j.Name)
	}
	return names
}

// A Job (and a Pod) labelled labels, created by the test.
func createLabelled(t *testing.T, ns, name string, labels map[string]string) {
	t.Helper()
	ctx := context.Background()
	spec := corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "busybox", Image: "busybox:latest"}}}
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: spec}}}
	if err := env.Client.Create(ctx, job); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-pod", Labels: labels}, Spec: spec}
	if err := env.Client.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
}

func countPods(t *testing.T, ns string) (names []string) {
	t.Helper()
	var pods corev1.PodList
	if err := env.Client.List(context.Background(), &pods, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		names = append(names, p.Name)
	}
	return names
}

// test-clean-jobs.yaml: two Jobs applied with apply-object, then clean-jobs
// with labelselector app: test-app deletes them, with the Pods of those
// labels; Jobs and Pods without them stay. Without labelselector, the run's
// own (workflow.oam.dev/name: RUN) go.
func TestCleanJobs(t *testing.T) {
	ns := newNamespace(t, "compat-clean-jobs")
	createLabelled(t, ns, "other-app", map[string]string{"app": "other"})
	createLabelled(t, ns, "test-app-pods", map[string]string{"app": "test-app"})
	createLabelled(t, ns, "another-runs", map[string]string{"workflow.oam.dev/name": "another-run"})
	job := func(name string) string {
		return `
    - name: create-` + name + `
      type: apply-object
      properties:
        value:
          apiVersion: batch/v1
          kind: Job
          metadata:
            name: ` + name + `
            labels: {app: test-app, workflow.oam.dev/name: test-clean-jobs}
          spec:
            template:
              spec:
                restartPolicy: Never
                containers:
                - {name: busybox, image: "busybox:latest", command: [sh, -c, "echo 'Job running...'"]}`
	}
	name := runYAML(t, ns, `
metadata: {name: test-clean-jobs}
spec:
  workflowSpec:
    steps:`+job("test-job-1")+job("test-job-2")+`
    - name: count
      type: suspend
      properties: {message: "counting the Jobs"}
    - name: cleanup-jobs
      type: clean-jobs
      properties:
        namespace: `+ns+`
        labelselector: {app: test-app}
`)
	held := waitRun(t, ns, name, time.Minute, func(r *v1alpha1.WorkflowRun) bool { return r.Status.Suspend })
	if s := wantStep(t, held, "count", v1alpha1.WorkflowStepPhaseSuspending); s.Message != "counting the Jobs" {
		t.Errorf("the suspend step's message %q, want its message parameter", s.Message)
	}
	if got := countJobs(t, ns); len(got) != 5 {
		t.Fatalf("before clean-jobs: Jobs %v, want 5", got)
	}
	resume(t, ns, name, "count")
	run := waitFinished(t, ns, name)
	if run.Status.Phase != v1alpha1.WorkflowRunSucceeded {
		t.Fatalf("run %s: %s", run.Status.Phase, run.Status.Message)
	}
	wantStep(t, run, "cleanup-jobs", v1alpha1.WorkflowStepPhaseSucceeded)
	if got := countJobs(t, ns); strings.Join(got, ",") != "another-runs,other-app" {
		t.Errorf("after clean-jobs: Jobs %v, want another-runs and other-app (3 of 5 deleted)", got)
	}
	if got := countPods(t, ns); strings.Join(got, ",") != "another-runs-pod,other-app-pod" {
		t.Errorf("after clean-jobs: Pods %v, want another-runs-pod and other-app-pod", got)
	}

	// By default: the Jobs labelled with the run's name.
	name = runYAML(t, ns, `
metadata: {name: another-run}
spec:
  workflowSpec:
    steps:
    - {name: cleanup, type: clean-jobs}
`)
	run = waitFinished(t, ns, name)
	if run.Status.Phase != v1alpha1.WorkflowRunSucceeded {
		t.Fatalf("run %s: %s", run.Status.Phase, run.Status.Message)
	}
	if got := countJobs(t, ns); strings.Join(got, ",") != "other-app" {
		t.Errorf("after the default clean-jobs: Jobs %v, want other-app", got)
	}
	if got := countPods(t, ns); strings.Join(got, ",") != "other-app-pod" {
		t.Errorf("after the default clean-jobs: Pods %v, want other-app-pod", got)
	}
}

// resume resumes step of run ns/name, as `stepflow resume` does.
func resume(t *testing.T, ns, name, step string) {
	t.Helper()
	ctx := context.Background()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var run v1alpha1.WorkflowRun
		if err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &run); err != nil {
			return err
		}
		if err := engine.Resume(&run.Status, step); err != nil {
			return err
		}
		return env.Client.Status().Update(ctx, &run)
	})
	if err != nil {
		t.Fatalf("resuming %s of %s: %v", step, name, err)
	}
}

// build-push-image.yaml: the registry and git credentials in Secrets (the
// example makes them with export2secret), a git context and branch. The
// kaniko Job carries the args, the docker config mount and the git token;
// the step waits until the Job succeeds, and fails when it fails.
func TestBuildPushImage(t *testing.T) {
	ns := newNamespace(t, "compat-build-push-image")
	ctx := context.Background()
	for _, s := range []*corev1.Secret{
		{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "image-secret"}, Type: corev1.SecretTypeDockerConfigJson,
			Data: map[string][]byte{".dockerconfigjson": []byte(`{"auths":{"registry.local":{"auth":"dTpw"}}}`)}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "git-secret"}, Data: map[string][]byte{"token": []byte("t0ken")}},
	} {
		if err := env.Client.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	build := func(run, image string) string {
		return runYAML(t, ns, `
metadata: {name: `+run+`}
spec:
  workflowSpec:
    steps:
    - name: build-push
      type: build-push-image
      properties:
        context: {git: github.com/FogDong/simple-web-demo, branch: main}
        image: `+image+`
        credentials:
          image: {name: image-secret}
          git: {name: git-secret, key: token}
        buildArgs: [VERSION=1]
`)
	}
	name := build("build-push-image", "registry.local/simple-web-demo:v1")
	// No kubelet runs the build yet: the step waits on its Job.
	waitRun(t, ns, name, time.Minute, func(r *v1alpha1.WorkflowRun) bool {
		return len(r.Status.Steps) == 1 && strings.HasPrefix(r.Status.Steps[0].Message, "building registry.local/simple-web-demo:v1 in Job build-push-image-")
	})
	var mu sync.Mutex
	built := map[string]*batchv1.Job{}
	startJobController(t, ns, func(j *batchv1.Job) bool {
		mu.Lock()
		built[j.Labels["workflow.oam.dev/name"]] = j.DeepCopy()
		mu.Unlock()
		return !strings.Contains(strings.Join(j.Spec.Template.Spec.Containers[0].Args, " "), "--destination=registry.local/broken")
	})
	run := waitFinished(t, ns, name)
	if run.Status.Phase != v1alpha1.WorkflowRunSucceeded {
		t.Fatalf("run %s: %s", run.Status.Phase, run.Status.Message)
	}
	s := wantStep(t, run, "build-push", v1alpha1.WorkflowStepPhaseSucceeded)
	mu.Lock()
	job := built[name]
	mu.Unlock()
	if job == nil {
		t.Fatalf("no kaniko Job was judged: %v", built)
	}
	if want := name + "-" + s.ID + "-kaniko"; job.Name != want {
		t.Errorf("Job %s, want %s (<run>-<stepSessionID>-kaniko)", job.Name, want)
	}
	pod := job.Spec.Template.Spec
	c := pod.Containers[0]
	wantArgs := "--dockerfile=./Dockerfile --context=git://github.com/FogDong/simple-web-demo#refs/heads/main --destination=registry.local/simple-web-demo:v1 --verbosity=info --build-arg=VERSION=1"
	if got := strings.Join(c.Args, " "); got != wantArgs || c.Image != "gcr.io/kaniko-project/executor:v1.9.0" {
		t.Errorf("kaniko %s args %q, want %q", c.Image, got, wantArgs)
	}
	if len(c.VolumeMounts) != 1 || c.VolumeMounts[0].MountPath != "/kaniko/.docker/" || len(pod.Volumes) != 1 ||
		pod.Volumes[0].Secret == nil || pod.Volumes[0].Secret.SecretName != "image-secret" ||
		pod.Volumes[0].Secret.Items[0].Key != ".dockerconfigjson" || pod.Volumes[0].Secret.Items[0].Path != "config.json" {
		t.Errorf("registry credentials: mounts %+v, volumes %+v", c.VolumeMounts, pod.Volumes)
	}
	if len(c.Env) != 1 || c.Env[0].Name != "GIT_TOKEN" || c.Env[0].ValueFrom.SecretKeyRef.Name != "git-secret" || c.Env[0].ValueFrom.SecretKeyRef.Key != "token" {
		t.Errorf("git token env %+v", c.Env)
	}
	if pod.RestartPolicy != corev1.RestartPolicyNever || job.Spec.BackoffLimit == nil || *job.Spec.BackoffLimit != 0 {
		t.Errorf("restartPolicy %s, backoffLimit %v: a failed build must not be retried", pod.RestartPolicy, job.Spec.BackoffLimit)
	}

	name = build("broken-build", "registry.local/broken:v1")
	run = waitFinished(t, ns, name)
	if run.Status.Phase != v1alpha1.WorkflowRunFailed {
		t.Fatalf("run %s, want failed", run.Status.Phase)
	}
	s = wantStep(t, run, "build-push", v1alpha1.WorkflowStepPhaseFailed)
	if !strings.Contains(s.Message, "building registry.local/broken:v1 failed") || !strings.Contains(s.Message, "kubectl logs -n "+ns+" job/broken-build-") {
		t.Errorf("message %q", s.Message)
	}
}

// test-step-group.yaml: Deployments and a ConfigMap applied by the
// sub-steps of one group, then a group of two requests (to a local
// server here). The group's sub-steps run side by side (DAG): one waiting
// on a rollout that does not come does not hold the others back. A group
// without sub-steps succeeds, as in KubeVela.
func TestStepGroup(t *testing.T) {
	ns := newNamespace(t, "compat-step-group")
	var hits sync.Map
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := hits.LoadOrStore(r.URL.Path, new(atomic.Int32))
		n.(*atomic.Int32).Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok": true}`))
	}))
	defer srv.Close()
	deployment := func(name, app, image string) string {
		return `
      - name: deploy-` + app + `
        type: ` + name + `
        properties:
          value:
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: ` + app + `-deployment}
            spec:
              replicas: 1
              selector: {matchLabels: {app: ` + app + `}}
              template:
                metadata: {labels: {app: ` + app + `}}
                spec: {containers: [{name: c, image: "` + image + `"}]}`
	}
	name := runYAML(t, ns, `
metadata: {name: test-step-group}
spec:
  workflowSpec:
    steps:
    - name: parallel-deployments
      type: step-group
      subSteps:`+deployment("apply-and-wait", "app1", "nginx:latest")+deployment("apply-object", "app2", "redis:alpine")+`
      - name: create-config
        type: export2config
        properties:
          configName: parallel-config
          data: {deployed: "true"}
    - name: parallel-requests
      type: step-group
      subSteps:
      - {name: request1, type: request, properties: {url: "`+srv.URL+`/get", method: GET}}
      - {name: request2, type: request, properties: {url: "`+srv.URL+`/delay/2", method: GET}}
    - {name: empty-group, type: step-group}
`)
	// app1 waits for a rollout; app2 and the ConfigMap do not wait for it.
	held := waitRun(t, ns, name, time.Minute, func(r *v1alpha1.WorkflowRun) bool {
		for _, s := range r.Status.Steps {
			for _, sub := range s.SubStepsStatus {
				if sub.Name == "create-config" && sub.Phase == v1alpha1.WorkflowStepPhaseSucceeded {
					return true
				}
			}
		}
		return false
	})
	wantStep(t, held, "deploy-app2", v1alpha1.WorkflowStepPhaseSucceeded)
	wantStep(t, held, "deploy-app1", v1alpha1.WorkflowStepPhaseRunning)
	wantStep(t, held, "parallel-deployments", v1alpha1.WorkflowStepPhaseRunning)
	for _, s := range held.Status.Steps {
		if s.Name == "parallel-requests" && s.Phase != v1alpha1.WorkflowStepPhasePending {
			t.Errorf("the second group started before the first finished: %s", s.Phase)
		}
	}

	stop := kubelet.Start(env.Client, ns, 100*time.Millisecond)
	defer stop()
	run := waitFinished(t, ns, name)
	if run.Status.Phase != v1alpha1.WorkflowRunSucceeded {
		t.Fatalf("run %s: %s", run.Status.Phase, run.Status.Message)
	}
	for _, s := range []string{"parallel-deployments", "deploy-app1", "deploy-app2", "create-config", "parallel-requests", "request1", "request2", "empty-group"} {
		wantStep(t, run, s, v1alpha1.WorkflowStepPhaseSucceeded)
	}
	for _, p := range []string{"/get", "/delay/2"} {
		n, ok := hits.Load(p)
		if !ok || n.(*atomic.Int32).Load() != 1 {
			t.Errorf("%s: not requested once", p)
		}
	}
	var cm corev1.ConfigMap
	if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "parallel-config"}, &cm); err != nil || cm.Data["deployed"] != "true" {
		t.Errorf("parallel-config: %v %v", cm.Data, err)
	}
}

// generate-jdbc-connection (KubeVela core's, used after an alibaba-rds
// component): the connection Secret becomes env, whose url an output
// passes on to a later step, here into a ConfigMap.
func TestGenerateJDBCConnection(t *testing.T) {
	ns := newNamespace(t, "compat-jdbc")
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db-conn"}, Data: map[string][]byte{
		"DB_HOST": []byte("rds.internal"), "DB_PORT": []byte("3306"), "DB_NAME": []byte("orders"),
		"DB_USER": []byte("app"), "DB_PASSWORD": []byte("s3cr3t"),
	}}
	if err := env.Client.Create(context.Background(), secret); err != nil {
		t.Fatal(err)
	}
	name := runYAML(t, ns, `
metadata: {name: jdbc}
spec:
  workflowSpec:
    steps:
    - name: jdbc
      type: generate-jdbc-connection
      properties: {name: db-conn}
      outputs:
      - {name: url, valueFrom: "env[0].value"}
      - {name: user, valueFrom: "env[1].value"}
    - name: record
      type: apply-object
      inputs:
      - {from: url, parameterKey: value.data.url}
      - {from: user, parameterKey: value.data.user}
      properties:
        value: {apiVersion: v1, kind: ConfigMap, metadata: {name: connection}}
    - name: missing
      type: generate-jdbc-connection
      properties: {name: no-such-secret}
`)
	run := waitFinished(t, ns, name)
	wantStep(t, run, "jdbc", v1alpha1.WorkflowStepPhaseSucceeded)
	wantStep(t, run, "record", v1alpha1.WorkflowStepPhaseSucceeded)
	var cm corev1.ConfigMap
	if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "connection"}, &cm); err != nil {
		t.Fatal(err)
	}
	if want := "jdbc://rds.internal:3306/orders?characterEncoding=utf8&useSSL=false"; cm.Data["url"] != want || cm.Data["user"] != "app" {
		t.Errorf("connection: %v, want url %s and user app", cm.Data, want)
	}
	s := wantStep(t, run, "missing", v1alpha1.WorkflowStepPhaseFailed)
	if !strings.Contains(s.Message, "reading Secret "+ns+"/no-such-secret") {
		t.Errorf("missing: message %q", s.Message)
	}
}

// test-read-object.yaml and test-apply-object.yaml: a ConfigMap and a
// Deployment applied with apply-object and read back with read-object;
// what was read feeds a later step. An object that is not there is
// reported in output.$returns.err and the step succeeds, as in KubeVela.
func TestApplyAndReadObject(t *testing.T) {
	ns := newNamespace(t, "compat-read-object")
	name := runYAML(t, ns, `
metadata: {name: test-read-object}
spec:
  workflowSpec:
    steps:
    - name: create-configmap
      type: apply-object
      properties:
        value:
          apiVersion: v1
          kind: ConfigMap
          metadata: {name: test-config}
          data: {app-name: my-app, version: v1.0}
    - name: read-configmap
      type: read-object
      properties: {apiVersion: v1, kind: ConfigMap, name: test-config, namespace: `+ns+`}
      outputs:
      - {name: version, valueFrom: 'output.$returns.value.data["version"]'}
    - name: create-deployment
      type: apply-object
      properties:
        value:
          apiVersion: apps/v1
          kind: Deployment
          metadata: {name: nginx-app}
          spec:
            replicas: 1
            selector: {matchLabels: {app: nginx}}
            template:
              metadata: {labels: {app: nginx}}
              spec: {containers: [{name: nginx, image: "nginx:latest"}]}
    - name: read-deployment
      type: read-object
      properties: {apiVersion: apps/v1, kind: Deployment, name: nginx-app}
      outputs:
      - {name: uid, valueFrom: output.$returns.value.metadata.uid}
    - name: read-missing
      type: read-object
      properties: {apiVersion: v1, kind: ConfigMap, name: not-there}
      outputs:
      - {name: err, valueFrom: output.$returns.err}
    - name: record
      type: apply-object
      inputs:
      - {from: version, parameterKey: value.data.version}
      - {from: uid, parameterKey: value.data.uid}
      - {from: err, parameterKey: value.data.err}
      properties:
        value: {apiVersion: v1, kind: ConfigMap, metadata: {name: record}}
`)
	run := waitFinished(t, ns, name)
	if run.Status.Phase != v1alpha1.WorkflowRunSucceeded {
		t.Fatalf("run %s: %s", run.Status.Phase, run.Status.Message)
	}
	ctx := context.Background()
	var dep appsv1.Deployment
	if err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "nginx-app"}, &dep); err != nil {
		t.Fatal(err)
	}
	var cm corev1.ConfigMap
	if err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "record"}, &cm); err != nil {
		t.Fatal(err)
	}
	if cm.Data["version"] != "v1.0" || cm.Data["uid"] != string(dep.UID) || !strings.Contains(cm.Data["err"], `"not-there" not found`) {
		t.Errorf("what was read: %v; want version v1.0, uid %s and a not-found err", cm.Data, dep.UID)
	}
}
