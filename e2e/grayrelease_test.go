package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	. "github.com/stepflow-dev/stepflow/e2e/framework"
	"github.com/stepflow-dev/stepflow/pkg/tenancy"
)

// grayRelease is the README's gray release, examples/gray-release.yaml:
// SREWorks' gray-release body, adapted only where it names SREWorks'
// packages (the K8S_MICROSERVICE components take Stepflow's properties
// kind, image and replicas). Each launch sets the global parameters image
// and deployNamespace through --run-context.
const grayRelease = "examples/gray-release.yaml"

// remoteWorkflow deploys the whole application into the cluster "second".
const remoteWorkflow = `  workflow:
    steps:
      - type: remote-deploy
        properties:
          cluster: second
`

// The steps of grayRelease, as stepflow launch names them.
const (
	stepSuspend = "suspend-3"
	stepRest    = "apply-components-5"
)

// deploymentRules let a namespace's runs deploy applications there: the
// workloads of the shipped component types, and the runs and stored
// configurations a rollback reads and launches.
var deploymentRules = []rbacv1.PolicyRule{
	{APIGroups: []string{"apps"}, Resources: []string{"statefulsets", "deployments"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch"}},
	{APIGroups: []string{""}, Resources: []string{"services", "configmaps"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch"}},
	{APIGroups: []string{"core.oam.dev"}, Resources: []string{"workflowruns"}, Verbs: []string{"get", "list", "watch", "create"}},
}

var _ = Describe("the gray release (partition canary) of an application", Ordered, func() {
	var (
		ns       string
		second   *Cluster
		stopKube []func()
		kubelet  sync.Once
	)
	// startKubelet reports the spec namespace's workloads ready from now on.
	startKubelet := func() {
		kubelet.Do(func() { stopKube = append(stopKube, Kubelet(fw.Client, ns, 200*time.Millisecond)) })
	}

	launch := func(version, name string) {
		GinkgoHelper()
		Expect(fw.Stepflow("-n", ns, "launch", "-f", filepath.Join(fw.Root, grayRelease), "--category", "DEPLOY", "--name", name,
			"--run-context", "deployNamespace="+ns, "--run-context", "image=nginx:"+version).Err()).To(Succeed())
	}
	statefulSet := func(c client.Client, namespace, name string) func() (*appsv1.StatefulSet, error) {
		return func() (*appsv1.StatefulSet, error) {
			var s appsv1.StatefulSet
			err := c.Get(context.Background(), types.NamespacedName{Namespace: namespace, Name: name}, &s)
			return &s, err
		}
	}
	imageOf := func(s *appsv1.StatefulSet) string { return s.Spec.Template.Spec.Containers[0].Image }
	partitionOf := func(s *appsv1.StatefulSet) int32 {
		if ru := s.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.Partition != nil {
			return *ru.Partition
		}
		return 0
	}
	promote := func(name string, continueRollout, rollback bool) {
		GinkgoHelper()
		Eventually(fw.Run(ns, name)).Should(HavePhase(v1alpha1.WorkflowRunSuspending))
		Expect(fw.Stepflow("-n", ns, "context", "set", name,
			fmt.Sprintf("continueRollout=%t", continueRollout), fmt.Sprintf("rollback=%t", rollback)).Err()).To(Succeed())
		Expect(fw.Stepflow("-n", ns, "resume", name).Err()).To(Succeed())
	}
	rollbackRuns := func() ([]v1alpha1.WorkflowRun, error) {
		var runs v1alpha1.WorkflowRunList
		err := fw.Client.List(context.Background(), &runs, client.InNamespace(ns), client.MatchingLabels{"stepflow.dev/category": "ROLLBACK"})
		return runs.Items, err
	}

	BeforeAll(func(ctx SpecContext) {
		ns = namespace(ctx, "e2e-gray")
		Expect(tenancy.SetUpRunner(ctx, fw.Client, ns, tenancy.DefaultServiceAccount, append(RunnerRules, deploymentRules...))).To(Succeed())
	})
	AfterAll(func() {
		for _, stop := range stopKube {
			stop()
		}
		Expect(second.Stop()).To(Succeed())
	})

	It("1. deploys v1, waiting for the workloads to become healthy", func(ctx SpecContext) {
		launch("v1", "gray-v1")
		By("waiting on the first component's workload, which nothing makes ready yet")
		Eventually(fw.Run(ns, "gray-v1")).Should(HaveStepReason("apply-components-1", "Wait"))
		Consistently(fw.Run(ns, "gray-v1")).Should(HaveStepPhase("apply-components-1", v1alpha1.WorkflowStepPhaseRunning))
		v1, err := fw.Run(ns, "gray-v1")()
		Expect(err).NotTo(HaveOccurred())
		waiting, _ := Step(v1, "apply-components-1")
		Expect(waiting.Message).To(ContainSubstring("Deployment"), "the wait names the object it waits for")
		Expect(waiting.Message).To(ContainSubstring("clustermanage-test"))

		By("reporting workloads ready, as kubelets would")
		startKubelet()
		promote("gray-v1", true, false)
		Eventually(fw.Run(ns, "gray-v1")).Should(HavePhase(v1alpha1.WorkflowRunSucceeded))
		s, err := statefulSet(fw.Client, ns, "clustermanage")()
		Expect(err).NotTo(HaveOccurred())
		Expect(imageOf(s)).To(Equal("nginx:v1"))
		Expect(s.Spec.Replicas).To(HaveValue(BeEquivalentTo(3)))
		Expect(partitionOf(s)).To(BeZero())
	})

	It("2. deploys v2 as a partition canary, suspends, and promotes it on continueRollout", func(ctx SpecContext) {
		launch("v2", "gray-v2")
		Eventually(fw.Run(ns, "gray-v2")).Should(And(HavePhase(v1alpha1.WorkflowRunSuspending), HaveStepPhase(stepSuspend, v1alpha1.WorkflowStepPhaseSuspending)))
		s, err := statefulSet(fw.Client, ns, "clustermanage")()
		Expect(err).NotTo(HaveOccurred())
		Expect(imageOf(s)).To(Equal("nginx:v2"))
		Expect(partitionOf(s)).To(BeEquivalentTo(1))

		promote("gray-v2", true, false)
		Eventually(fw.Run(ns, "gray-v2")).Should(HavePhase(v1alpha1.WorkflowRunSucceeded))
		Expect(statefulSet(fw.Client, ns, "clustermanage")()).To(WithTransform(partitionOf, BeZero()))
	})

	It("3. rolls v3 back to v2 with exactly one ROLLBACK run, and v3 ends terminated naming it", func(ctx SpecContext) {
		launch("v3", "gray-v3")
		Eventually(fw.Run(ns, "gray-v3")).Should(HavePhase(v1alpha1.WorkflowRunSuspending))
		Expect(statefulSet(fw.Client, ns, "clustermanage")()).To(WithTransform(imageOf, Equal("nginx:v3")))

		promote("gray-v3", false, true)
		Eventually(rollbackRuns).Should(HaveLen(1))
		launched, err := rollbackRuns()
		Expect(err).NotTo(HaveOccurred())
		Expect(launched[0].Spec.Context).NotTo(BeNil())
		Expect(string(launched[0].Spec.Context.Raw)).To(ContainSubstring(`"quiet":true`), "a rollback run is quiet: its gates pass")
		Eventually(fw.Run(ns, "gray-v3")).WithTimeout(time.Minute).Should(HavePhase(v1alpha1.WorkflowRunTerminated))
		runs, err := rollbackRuns()
		Expect(err).NotTo(HaveOccurred())
		Expect(runs).To(HaveLen(1))
		rb := runs[0]
		Expect(rb.Status.Phase).To(Equal(v1alpha1.WorkflowRunSucceeded))
		v3, err := fw.Run(ns, "gray-v3")()
		Expect(err).NotTo(HaveOccurred())
		Expect(v3.Status.Message).To(ContainSubstring(rb.Name))
		Expect(v3.Status.Message).To(ContainSubstring("gray-v2"))
		if rest, ok := Step(v3, stepRest); ok {
			Expect(rest.FirstExecuteTime.IsZero()).To(BeTrue(), "the step after the rollback never ran")
		}

		s, err := statefulSet(fw.Client, ns, "clustermanage")()
		Expect(err).NotTo(HaveOccurred())
		Expect(imageOf(s)).To(Equal("nginx:v2"))
		Expect(partitionOf(s)).To(BeZero())
	})

	It("4. stops v4 on both false: terminated, and the partition stays 1", func(ctx SpecContext) {
		launch("v4", "gray-v4")
		promote("gray-v4", false, false)
		Eventually(fw.Run(ns, "gray-v4")).Should(HavePhase(v1alpha1.WorkflowRunTerminated))
		v4, err := fw.Run(ns, "gray-v4")()
		Expect(err).NotTo(HaveOccurred())
		Expect(v4.Status.Message).To(ContainSubstring("rollout stopped"))
		Consistently(statefulSet(fw.Client, ns, "clustermanage")).Should(And(
			WithTransform(partitionOf, BeEquivalentTo(1)), WithTransform(imageOf, Equal("nginx:v4"))))
	})

	It("5. keeps exactly one rollback run when the controller is SIGKILLed right after creating it", func(ctx SpecContext) {
		before, err := rollbackRuns()
		Expect(err).NotTo(HaveOccurred())
		launch("v5", "gray-v5")
		Eventually(fw.Run(ns, "gray-v5")).Should(HavePhase(v1alpha1.WorkflowRunSuspending))
		Expect(fw.Stepflow("-n", ns, "context", "set", "gray-v5", "continueRollout=false", "rollback=true").Err()).To(Succeed())

		By("killing the controller as soon as the rollback run exists")
		var killed sync.Once
		watchDone := make(chan struct{})
		go func() {
			defer GinkgoRecover()
			defer close(watchDone)
			deadline := time.Now().Add(time.Minute)
			for time.Now().Before(deadline) {
				runs, err := rollbackRuns()
				if err == nil && len(runs) > len(before) {
					killed.Do(func() { Expect(fw.KillController()).To(Succeed()) })
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
		Expect(fw.Stepflow("-n", ns, "resume", "gray-v5").Err()).To(Succeed())
		<-watchDone
		Expect(fw.ControllerRunning()).To(BeFalse())

		By("starting it again")
		Expect(fw.StartController()).To(Succeed())
		Eventually(fw.ControllerReady).Should(Succeed())
		Eventually(fw.Run(ns, "gray-v5")).WithTimeout(time.Minute).Should(HavePhase(v1alpha1.WorkflowRunTerminated))
		after, err := rollbackRuns()
		Expect(err).NotTo(HaveOccurred())
		Expect(after).To(HaveLen(len(before)+1), "one rollback run for gray-v5, however often its step was evaluated")
	})

	It("6. deploys the application into a second cluster joined with stepflow cluster join", func(ctx SpecContext) {
		var err error
		second, err = fw.StartCluster("second")
		Expect(err).NotTo(HaveOccurred())
		Expect(fw.Stepflow("cluster", "join", "second", "--kubeconfig", second.Kubeconfig, "--hub-kubeconfig", fw.Kubeconfig).Err()).To(Succeed())
		Expect(fw.Stepflow("cluster", "list").Stdout).To(ContainSubstring("second"))

		By("letting the runner use the cluster: its Secret at home, the namespace's workloads there")
		runner := "system:serviceaccount:" + ns + ":" + tenancy.DefaultServiceAccount
		Expect(fw.Client.Create(ctx, &rbacv1.Role{
			ObjectMeta: metav1.ObjectMeta{Namespace: systemNamespace, Name: ns + "-cluster-second"},
			Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{"second"}, Verbs: []string{"get"}}},
		})).To(Succeed())
		Expect(fw.Client.Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: systemNamespace, Name: ns + "-cluster-second"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: ns + "-cluster-second"},
			Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: ns, Name: tenancy.DefaultServiceAccount}},
		})).To(Succeed())
		Expect(second.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
		Expect(second.Client.Create(ctx, &rbacv1.ClusterRole{
			ObjectMeta: metav1.ObjectMeta{Name: "stepflow-runner"}, Rules: deploymentRules,
		})).To(Succeed())
		Expect(second.Client.Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "stepflow-runner"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "stepflow-runner"},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: runner}},
		})).To(Succeed())
		stopKube = append(stopKube, Kubelet(second.Client, ns, 200*time.Millisecond))

		body, err := os.ReadFile(filepath.Join(fw.Root, grayRelease))
		Expect(err).NotTo(HaveOccurred())
		app, _, found := strings.Cut(string(body), "  workflow:\n")
		Expect(found).To(BeTrue())
		path, err := fw.WriteFile(ns+"/remote.yaml", app+remoteWorkflow)
		Expect(err).NotTo(HaveOccurred())
		Expect(fw.Stepflow("-n", ns, "launch", "-f", path, "--category", "DEPLOY", "--name", "gray-remote",
			"--run-context", "deployNamespace="+ns, "--run-context", "image=nginx:remote").Err()).To(Succeed())
		Eventually(fw.Run(ns, "gray-remote")).Should(HavePhase(v1alpha1.WorkflowRunSucceeded))
		s, err := statefulSet(second.Client, ns, "clustermanage")()
		Expect(err).NotTo(HaveOccurred())
		Expect(imageOf(s)).To(Equal("nginx:remote"))
		if hub, err := statefulSet(fw.Client, ns, "clustermanage")(); !apierrors.IsNotFound(err) {
			Expect(err).NotTo(HaveOccurred())
			Expect(imageOf(hub)).NotTo(Equal("nginx:remote"), "the hub's own copy is untouched")
		}
	})

	It("7. deploys a HELM component from a chart repository, the partition reaching the chart value", func(ctx SpecContext) {
		startKubelet()
		repo := chartRepository()
		defer repo.Close()
		doc := fmt.Sprintf(helmApp, repo.URL)
		path, err := fw.WriteFile(ns+"/helm.yaml", doc)
		Expect(err).NotTo(HaveOccurred())
		Expect(fw.Stepflow("-n", ns, "launch", "-f", path, "--category", "DEPLOY", "--name", "helm-v1").Err()).To(Succeed())
		Eventually(fw.Run(ns, "helm-v1")).Should(HavePhase(v1alpha1.WorkflowRunSucceeded))
		s, err := statefulSet(fw.Client, ns, "web")()
		Expect(err).NotTo(HaveOccurred())
		Expect(partitionOf(s)).To(BeEquivalentTo(2))
		Expect(imageOf(s)).To(Equal("nginx:chart"))
	})
})

// helmApp deploys one HELM component from the chart repository at %s, as
// a partition canary with partition 2.
const helmApp = `apiVersion: core.oam.dev/v1alpha2
kind: ApplicationConfiguration
metadata:
  annotations:
    appId: helmapp
spec:
  components:
    - revisionName: "HELM|web|_"
      parameterValues:
        - name: repo
          value: %s
          toFieldPaths: [spec.repo]
        - name: chart
          value: web
          toFieldPaths: [spec.chart]
        - name: values
          value:
            image: nginx:chart
          toFieldPaths: [spec.values]
  workflow:
    steps:
      - type: apply-components
        properties:
          components:
            - type: HELM
              name: web
          rollout:
            type: partition
            properties:
              partition: 2
`

// chartRepository serves a chart repository with one chart, web 0.1.0: a
// StatefulSet whose partition is the value abmRolloutPartition.
func chartRepository() *httptest.Server {
	files := map[string]string{
		"web/Chart.yaml":  "apiVersion: v2\nname: web\nversion: 0.1.0\n",
		"web/values.yaml": "image: nginx:default\nabmRolloutPartition: 0\nreplicas: 3\n",
		"web/templates/statefulset.yaml": `apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: {{ .Release.Name }}
spec:
  replicas: {{ .Values.replicas }}
  serviceName: {{ .Release.Name }}
  selector:
    matchLabels: {app: {{ .Release.Name }}}
  updateStrategy:
    type: RollingUpdate
    rollingUpdate:
      partition: {{ .Values.abmRolloutPartition }}
  template:
    metadata:
      labels: {app: {{ .Release.Name }}}
    spec:
      containers:
        - name: web
          image: {{ .Values.image }}
`,
	}
	var tgz bytes.Buffer
	gz := gzip.NewWriter(&tgz)
	tw := tar.NewWriter(gz)
	for _, name := range []string{"web/Chart.yaml", "web/values.yaml", "web/templates/statefulset.yaml"} {
		body := files[name]
		Expect(tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), ModTime: time.Unix(0, 0)})).To(Succeed())
		_, err := tw.Write([]byte(body))
		Expect(err).NotTo(HaveOccurred())
	}
	Expect(tw.Close()).To(Succeed())
	Expect(gz.Close()).To(Succeed())
	archive := tgz.Bytes()
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/index.yaml":
			fmt.Fprintf(w, "apiVersion: v1\nentries:\n  web:\n    - apiVersion: v2\n      name: web\n      version: 0.1.0\n      urls: [%s/web-0.1.0.tgz]\n", srv.URL)
		case "/web-0.1.0.tgz":
			_, _ = w.Write(archive)
		default:
			http.NotFound(w, r)
		}
	}))
	return srv
}
