package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	. "github.com/stepflow-dev/stepflow/e2e/framework"
	"github.com/stepflow-dev/stepflow/pkg/runop"
	"github.com/stepflow-dev/stepflow/pkg/tenancy"
)

// apiInstance is the part of an instance of the REST API the specs read.
type apiInstance struct {
	ID                   int64          `json:"id"`
	AppID                string         `json:"appId"`
	Category             string         `json:"category"`
	WorkflowStatus       string         `json:"workflowStatus"`
	WorkflowErrorMessage string         `json:"workflowErrorMessage"`
	WorkflowCreator      string         `json:"workflowCreator"`
	WorkflowContext      map[string]any `json:"workflowContext"`
	Namespace            string         `json:"namespace"`
	Name                 string         `json:"name"`
}

// apiTask is the part of a task of the REST API the specs read.
type apiTask struct {
	ID         int64  `json:"id"`
	Name       string `json:"name"`
	TaskType   string `json:"taskType"`
	TaskStatus string `json:"taskStatus"`
}

// apiPage is a list's data.
type apiPage[T any] struct {
	Total int `json:"total"`
	Items []T `json:"items"`
}

// apiCommand is what an instance operation answers.
type apiCommand struct {
	Command            string `json:"command"`
	WorkflowInstanceID int64  `json:"workflowInstanceId"`
	Success            bool   `json:"success"`
	Message            string `json:"message"`
}

// The gray release of grayrelease_test.go told through the REST API
// alone: `stepflow server --auth kubernetes` as a process of its own, a
// portal's ServiceAccount token allowed get/list/create/update on
// workflowruns in the spec's namespace, and nothing but HTTP calls to
// launch, watch, set the context and resume. The cluster is read directly
// only to check what the deployment did (the StatefulSet).
var _ = Describe("the gray release through the REST API alone", Ordered, func() {
	const portal = "portal"
	var (
		ns       string
		tok      string
		srv      *APIServer
		stopKube func()
	)

	call := func(method, path, body string, data any) {
		GinkgoHelper()
		r, err := srv.Do(method, path, tok, body)
		Expect(err).NotTo(HaveOccurred())
		Expect(r.OK()).To(Succeed(), "the server's log:\n%s", srv.LogTail(20))
		if data != nil {
			Expect(r.Decode(data)).To(Succeed())
		}
	}
	// launch POSTs the gray release with the global parameters image
	// (nginx:version) and deployNamespace set in the document itself: the
	// API takes the ApplicationConfiguration and nothing else.
	launch := func(version string) apiInstance {
		GinkgoHelper()
		b, err := os.ReadFile(filepath.Join(fw.Root, grayRelease))
		Expect(err).NotTo(HaveOccurred())
		doc := string(b)
		for from, to := range map[string]string{
			"    - name: deployNamespace\n      value: default\n": "    - name: deployNamespace\n      value: " + ns + "\n",
			"    - name: image\n      value: nginx:1.26\n":        "    - name: image\n      value: nginx:" + version + "\n",
		} {
			Expect(strings.Count(doc, from)).To(Equal(1), "the gray release sets %q once", from)
			doc = strings.Replace(doc, from, to, 1)
		}
		var in apiInstance
		call("POST", "/workflow/launch?appId=testapp&category=DEPLOY", doc, &in)
		Expect(in.ID).To(BeNumerically(">", 0))
		Expect(in.AppID).To(Equal("testapp"))
		Expect(in.Category).To(Equal("DEPLOY"))
		Expect(in.WorkflowCreator).To(Equal("system:serviceaccount:" + ns + ":" + portal))
		return in
	}
	instance := func(id int64) func() (apiInstance, error) {
		return func() (apiInstance, error) {
			var in apiInstance
			r, err := srv.Do("GET", fmt.Sprintf("/workflow/%d", id), tok, "")
			if err == nil {
				err = r.OK()
			}
			if err == nil {
				err = r.Decode(&in)
			}
			return in, err
		}
	}
	tasks := func(id int64) func() ([]apiTask, error) {
		return func() ([]apiTask, error) {
			var page apiPage[apiTask]
			r, err := srv.Do("GET", fmt.Sprintf("/workflow/%d/tasks?pageSize=100", id), tok, "")
			if err == nil {
				err = r.OK()
			}
			if err == nil {
				err = r.Decode(&page)
			}
			return page.Items, err
		}
	}
	status := func(in apiInstance) string { return in.WorkflowStatus }
	taskStates := func(ts []apiTask) []string {
		var out []string
		for _, t := range ts {
			out = append(out, t.TaskType+"="+t.TaskStatus)
		}
		return out
	}
	// suspended polls the instance and its tasks until the instance is
	// SUSPEND at the suspend task, both deployments before it done and
	// nothing after it started.
	suspended := func(id int64) {
		GinkgoHelper()
		Eventually(instance(id)).Should(WithTransform(status, Equal("SUSPEND")))
		Eventually(tasks(id)).Should(WithTransform(taskStates, Equal([]string{
			"apply-components=SUCCESS", "apply-components=SUCCESS", "suspend=RUNNING_SUSPEND",
			"rollout-promotion=PENDING", "apply-components=PENDING"})))
	}
	// promote sets the context the rollout-promotion step reads, as the
	// reference's bodies do, and resumes.
	promote := func(id int64, continueRollout, rollback bool) {
		GinkgoHelper()
		call("PUT", fmt.Sprintf("/workflow/%d/context", id),
			fmt.Sprintf(`{"context": {"continueRollout": %t, "rollback": %t}}`, continueRollout, rollback), nil)
		in, err := instance(id)()
		Expect(err).NotTo(HaveOccurred())
		Expect(in.WorkflowContext).To(HaveKeyWithValue("continueRollout", continueRollout))
		Expect(in.WorkflowContext).To(HaveKeyWithValue("rollback", rollback))
		var cmd apiCommand
		call("PUT", fmt.Sprintf("/workflow/%d/resume", id), "", &cmd)
		Expect(cmd).To(And(
			HaveField("Command", "RESUME"), HaveField("WorkflowInstanceID", id), HaveField("Success", true)))
	}
	clustermanage := func() (*appsv1.StatefulSet, error) {
		var s appsv1.StatefulSet
		err := fw.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "clustermanage"}, &s)
		return &s, err
	}
	imageOf := func(s *appsv1.StatefulSet) string { return s.Spec.Template.Spec.Containers[0].Image }
	partitionOf := func(s *appsv1.StatefulSet) int32 {
		if ru := s.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.Partition != nil {
			return *ru.Partition
		}
		return 0
	}
	list := func(query string) func() ([]apiInstance, error) {
		return func() ([]apiInstance, error) {
			var page apiPage[apiInstance]
			r, err := srv.Do("GET", "/workflow?"+query, tok, "")
			if err == nil {
				err = r.OK()
			}
			if err == nil {
				err = r.Decode(&page)
			}
			return page.Items, err
		}
	}

	BeforeAll(func(ctx SpecContext) {
		ns = namespace(ctx, "e2e-api-gray")
		Expect(tenancy.SetUpRunner(ctx, fw.Client, ns, tenancy.DefaultServiceAccount, append(RunnerRules, deploymentRules...))).To(Succeed())
		var err error
		tok, err = fw.APIUser(ctx, ns, portal, "get", "list", "create", "update")
		Expect(err).NotTo(HaveOccurred())
		By("starting stepflow server --auth kubernetes as a process of its own")
		srv, err = fw.StartAPIServer(ns, "--system-namespace", systemNamespace)
		Expect(err).NotTo(HaveOccurred())
		stopKube = Kubelet(fw.Client, ns, 200*time.Millisecond)
	})
	AfterAll(func() {
		if stopKube != nil {
			stopKube()
		}
		Expect(srv.Stop(10 * time.Second)).To(Succeed())
	})

	It("refuses a call without a token, in the envelope", func() {
		r, err := srv.Do("GET", "/workflow?appId=testapp", "", "")
		Expect(err).NotTo(HaveOccurred())
		Expect(r.Status).To(Equal(401))
		Expect(r.Code).To(Equal(401))
		Expect(r.Success).To(BeFalse())
	})

	It("1. deploys v1: launch, poll until SUSPEND, continueRollout, resume, SUCCESS", func() {
		v1 := launch("v1")
		suspended(v1.ID)
		Expect(clustermanage()).To(WithTransform(imageOf, Equal("nginx:v1")))
		promote(v1.ID, true, false)
		Eventually(instance(v1.ID)).Should(WithTransform(status, Equal("SUCCESS")))

		By("finding who launched and resumed it on the run and in its Events")
		user := "system:serviceaccount:" + ns + ":" + portal
		run, err := fw.Run(ns, v1.Name)()
		Expect(err).NotTo(HaveOccurred())
		Expect(run.Annotations).To(HaveKeyWithValue(runop.AnnotationOperatedBy, user))
		Eventually(func() ([]string, error) {
			var events corev1.EventList
			err := fw.Client.List(context.Background(), &events, client.InNamespace(ns), client.MatchingFields{"involvedObject.name": v1.Name})
			var said []string
			for _, e := range events.Items {
				if strings.Contains(e.Message, user) {
					said = append(said, e.Reason)
				}
			}
			return said, err
		}).Should(ContainElements("Launched", "Operated"))
		Expect(tasks(v1.ID)()).To(HaveEach(HaveField("TaskStatus", "SUCCESS")))
		s, err := clustermanage()
		Expect(err).NotTo(HaveOccurred())
		Expect(imageOf(s)).To(Equal("nginx:v1"))
		Expect(s.Spec.Replicas).To(HaveValue(BeEquivalentTo(3)))
		Expect(partitionOf(s)).To(BeZero())
	})

	It("2. deploys v2 as a partition canary (partition 1 while SUSPEND) and promotes it (partition 0)", func() {
		v2 := launch("v2")
		suspended(v2.ID)
		s, err := clustermanage()
		Expect(err).NotTo(HaveOccurred())
		Expect(imageOf(s)).To(Equal("nginx:v2"))
		Expect(partitionOf(s)).To(BeEquivalentTo(1))
		promote(v2.ID, true, false)
		Eventually(instance(v2.ID)).Should(WithTransform(status, Equal("SUCCESS")))
		Expect(clustermanage()).To(WithTransform(partitionOf, BeZero()))
	})

	It("3. rolls v3 back: one ROLLBACK instance in GET /workflow succeeds, v3 ends TERMINATED, v2 is back", func() {
		v3 := launch("v3")
		suspended(v3.ID)
		Expect(clustermanage()).To(WithTransform(imageOf, Equal("nginx:v3")))
		rollbacks := list("appId=testapp&category=ROLLBACK")
		Expect(rollbacks()).To(BeEmpty())

		promote(v3.ID, false, true)
		Eventually(rollbacks).Should(HaveLen(1))
		found, err := rollbacks()
		Expect(err).NotTo(HaveOccurred())
		rb := found[0]
		Expect(rb.AppID).To(Equal("testapp"))
		Expect(rb.Category).To(Equal("ROLLBACK"))
		Expect(rb.ID).To(BeNumerically(">", v3.ID), "the rollback run gets the next instance id, as the run it replays has one")
		rbInstance := instance(rb.ID)
		Eventually(rbInstance).WithTimeout(time.Minute).Should(WithTransform(status, Equal("SUCCESS")))
		Eventually(instance(v3.ID)).WithTimeout(time.Minute).Should(WithTransform(status, Equal("TERMINATED")))
		ended, err := instance(v3.ID)()
		Expect(err).NotTo(HaveOccurred())
		Expect(ended.WorkflowErrorMessage).To(ContainSubstring(rb.Name), "v3's message names the rollback run")
		Expect(rollbacks()).To(HaveLen(1), "exactly one rollback")

		s, err := clustermanage()
		Expect(err).NotTo(HaveOccurred())
		Expect(imageOf(s)).To(Equal("nginx:v2"))
		Expect(partitionOf(s)).To(BeZero())
	})

	It("lists the three DEPLOY instances newest first", func() {
		deploys, err := list("appId=testapp&category=DEPLOY")()
		Expect(err).NotTo(HaveOccurred())
		Expect(deploys).To(HaveLen(3))
		var statuses []string
		for _, d := range deploys {
			statuses = append(statuses, d.WorkflowStatus)
		}
		Expect(statuses).To(Equal([]string{"TERMINATED", "SUCCESS", "SUCCESS"}))
		Expect(deploys[0].ID).To(BeNumerically(">", deploys[1].ID))
	})
})
