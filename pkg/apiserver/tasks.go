package apiserver

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/app"
	"github.com/stepflow-dev/stepflow/pkg/runop"
)

// routeTasks registers the task reads under /workflow:
// GET /{instanceId}/tasks and GET /{instanceId}/tasks/{taskId}. The task
// operations (PUT .../terminate|suspend|resume) are routeOperations'.
func (s *server) routeTasks(wf chi.Router) {
	wf.Get("/{instanceId}/tasks", s.handle(s.tasks))
	wf.Get("/{instanceId}/tasks/{taskId}", s.handle(s.task))
}

// taskStates are the task states a taskStatus filter may name.
var taskStates = []string{
	app.TaskPending, app.TaskRunning, app.TaskWaiting, app.TaskRunningSuspend, app.TaskWaitingSuspend,
	app.TaskSuccess, app.TaskFailure, app.TaskException, app.TaskTerminated,
}

// tasks is GET /workflow/{instanceId}/tasks: the run's steps as tasks in
// the order of their ids, paginated as GET /workflow, without their
// properties. The filters, each optional:
//
//   - taskId: a task id or step name (a task not in the instance selects
//     none, as any filter does);
//   - taskType: the step's type;
//   - taskStatus: one of the task states;
//   - appId: the instance's app (another app selects none);
//   - deployAppId, deployWorkflowInstanceId: in SREWorks the app-deploy
//     record or the instance a task started. A Stepflow step starts
//     neither (its deployAppId is null), so a value selects none.
func (s *server) tasks(r *http.Request, u User) (any, error) {
	q := r.URL.Query()
	page, err := positive(q, "page", 1)
	if err != nil {
		return nil, err
	}
	size, err := positive(q, "pageSize", defaultPageSize)
	if err != nil {
		return nil, err
	}
	if size > maxPageSize {
		return nil, badInput("pageSize %d: at most %d", size, maxPageSize)
	}
	status := q.Get("taskStatus")
	if status != "" && !slices.Contains(taskStates, status) {
		return nil, badInput("taskStatus %q: want one of %s", status, strings.Join(taskStates, ", "))
	}
	for _, name := range []string{"deployAppId", "deployWorkflowInstanceId"} {
		if v := q.Get(name); v != "" {
			if _, err := strconv.ParseInt(v, 10, 64); err != nil {
				return nil, badInput("%s %q: want a number", name, v)
			}
		}
	}
	run, refs, err := s.findTasks(r, u)
	if err != nil {
		return nil, err
	}
	in := summary(run)
	selectsNone := q.Get("deployAppId") != "" || q.Get("deployWorkflowInstanceId") != "" ||
		q.Get("appId") != "" && q.Get("appId") != in.AppID
	out := Page[Task]{Page: page, PageSize: size, Items: []Task{}}
	var items []Task
	if !selectsNone {
		id, typ := q.Get("taskId"), q.Get("taskType")
		for _, ref := range refs {
			if id != "" && id != strconv.FormatInt(ref.ID, 10) && id != ref.Name ||
				typ != "" && typ != ref.Type {
				continue
			}
			t := taskOf(run, in, ref)
			if status != "" && t.TaskStatus != status {
				continue
			}
			items = append(items, t)
		}
	}
	out.Total = len(items)
	if from := (page - 1) * size; from < len(items) {
		out.Items = append(out.Items, items[from:min(from+size, len(items))]...)
	}
	out.Empty = len(out.Items) == 0
	return out, nil
}

// task is GET /workflow/{instanceId}/tasks/{taskId}: one task, a task id
// or step name, with its properties; 404 when the instance has no such
// task.
func (s *server) task(r *http.Request, u User) (any, error) {
	run, refs, err := s.findTasks(r, u)
	if err != nil {
		return nil, err
	}
	ref, err := findTask(refs, chi.URLParam(r, "instanceId"), chi.URLParam(r, "taskId"))
	if err != nil {
		return nil, err
	}
	t := taskOf(run, summary(run), ref)
	t.TaskProperties = map[string]any{}
	if p := ref.Step.Properties; p != nil && len(p.Raw) > 0 {
		if err := json.Unmarshal(p.Raw, &t.TaskProperties); err != nil {
			return nil, fmt.Errorf("workflowrun %s/%s: step %q: properties: %w", run.Namespace, run.Name, ref.Name, err)
		}
	}
	return t, nil
}

// findTasks is the run the request's instanceId names, once u may get it,
// and its steps as tasks (a workflowRef run's from its Workflow).
func (s *server) findTasks(r *http.Request, u User) (*v1alpha1.WorkflowRun, []taskRef, error) {
	run, err := s.find(r, u, chi.URLParam(r, "instanceId"))
	if err != nil {
		return nil, nil, err
	}
	steps, _, err := runop.Steps(r.Context(), s.o.Client, run)
	if err != nil {
		return nil, nil, fmt.Errorf("workflowrun %s/%s: its steps: %w", run.Namespace, run.Name, err)
	}
	return run, taskRefs(steps), nil
}

// taskOf is step ref of run (in is run as an instance) as a task, without
// its properties. A step with no status yet is PENDING.
func taskOf(run *v1alpha1.WorkflowRun, in Instance, ref taskRef) Task {
	st, _ := stepStatus(run, ref)
	t := Task{
		ID:                 ref.ID,
		GmtCreate:          in.GmtCreate,
		GmtModified:        in.GmtCreate,
		WorkflowInstanceID: in.ID,
		AppID:              in.AppID,
		TaskType:           ref.Type,
		TaskStatus:         app.TaskState(st),
		LockVersion:        in.LockVersion,
		Name:               ref.Name,
		Parent:             ref.Parent,
		ExtMessage:         st.ExtMessage,
	}
	if t.TaskStatus != app.TaskPending {
		t.GmtStart = millis(st.FirstExecuteTime)
	}
	if finishedTask(t.TaskStatus) {
		t.GmtEnd = millis(st.LastExecuteTime)
	}
	for _, m := range []*int64{t.GmtStart, millis(st.LastExecuteTime)} {
		if m != nil && *m > t.GmtModified {
			t.GmtModified = *m
		}
	}
	switch t.TaskStatus {
	case app.TaskFailure, app.TaskException, app.TaskTerminated:
		t.TaskErrorMessage = st.Message
	}
	return t
}

// stepStatus is the status of step ref in run's status, and whether it has
// one.
func stepStatus(run *v1alpha1.WorkflowRun, ref taskRef) (v1alpha1.StepStatus, bool) {
	for _, s := range run.Status.Steps {
		if ref.Parent == "" {
			if s.Name == ref.Name {
				return s.StepStatus, true
			}
			continue
		}
		if s.Name != ref.Parent {
			continue
		}
		for _, sub := range s.SubStepsStatus {
			if sub.Name == ref.Name {
				return sub, true
			}
		}
	}
	return v1alpha1.StepStatus{}, false
}

// finishedTask reports whether a task in state status is done: it will
// not run again unless someone retries the instance.
func finishedTask(status string) bool {
	switch status {
	case app.TaskSuccess, app.TaskFailure, app.TaskException, app.TaskTerminated:
		return true
	}
	return false
}
