package apiserver

import (
	"net/http"
	"strconv"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
)

// Task is a step of a run as SREWorks' workflow task, with its field names
// and JSON types. Its id is the step's position in the run (1-based, in the
// order of the run's steps, a group's sub-steps after the group); the step's
// name is accepted wherever a task id is. Times are Unix milliseconds;
// gmtStart and gmtEnd are null until the step starts and ends.
type Task struct {
	ID                   int64  `json:"id"`
	GmtCreate            int64  `json:"gmtCreate"`
	GmtModified          int64  `json:"gmtModified"`
	BatchID              int64  `json:"batchId"`
	WorkflowInstanceID   int64  `json:"workflowInstanceId"`
	AppID                string `json:"appId"`
	GmtStart             *int64 `json:"gmtStart"`
	GmtEnd               *int64 `json:"gmtEnd"`
	TaskType             string `json:"taskType"`
	TaskStage            string `json:"taskStage"`
	TaskStatus           string `json:"taskStatus"`
	ClientHostname       string `json:"clientHostname"`
	DeployAppID          *int64 `json:"deployAppId"`
	DeployAppUnitID      string `json:"deployAppUnitId"`
	DeployAppNamespaceID string `json:"deployAppNamespaceId"`
	DeployAppStageID     string `json:"deployAppStageId"`
	LockVersion          int64  `json:"lockVersion"`
	// TaskProperties (the step's properties, {} when it has none) is left
	// out of lists.
	TaskProperties   map[string]any `json:"taskProperties,omitzero"`
	TaskErrorMessage string         `json:"taskErrorMessage"`
	// Name is the step's name, Parent its group's name for a sub-step,
	// ExtMessage what the last task operation said (Stepflow extensions).
	Name       string `json:"name"`
	Parent     string `json:"parent,omitempty"`
	ExtMessage string `json:"extMessage,omitempty"`
}

// Command is what an instance operation (resume, terminate, retry,
// retryFromTask) answers, as SREWorks does.
type Command struct {
	// Command is RESUME, TERMINATE, RETRY or RETRY_FROM_TASK.
	Command            string `json:"command"`
	WorkflowInstanceID int64  `json:"workflowInstanceId"`
	// ClientHost is the address the request came from.
	ClientHost string `json:"clientHost"`
	Success    bool   `json:"success"`
	Message    string `json:"message"`
}

// taskRef is a step of a run as a task: its id (position) and names.
type taskRef struct {
	ID   int64
	Name string
	// Parent is the step group of a sub-step.
	Parent string
	Type   string
	Step   v1alpha1.WorkflowStepBase
}

// taskRefs numbers a run's steps as tasks: 1, 2, ... in the order of its
// steps, each group's sub-steps right after the group.
func taskRefs(steps []v1alpha1.WorkflowStep) []taskRef {
	var out []taskRef
	for _, s := range steps {
		out = append(out, taskRef{ID: int64(len(out) + 1), Name: s.Name, Type: s.Type, Step: s.WorkflowStepBase})
		for _, sub := range s.SubSteps {
			out = append(out, taskRef{ID: int64(len(out) + 1), Name: sub.Name, Parent: s.Name, Type: sub.Type, Step: sub})
		}
	}
	return out
}

// findTask is the task param names among refs: its id or its step's
// name; a 404 naming the instance when it has none such.
func findTask(refs []taskRef, instance, param string) (taskRef, error) {
	if id, err := strconv.ParseInt(param, 10, 64); err == nil {
		if id >= 1 && id <= int64(len(refs)) {
			return refs[id-1], nil
		}
		return taskRef{}, errorf(http.StatusNotFound, "instance %s has no task %d (it has %d)", instance, id, len(refs))
	}
	for _, t := range refs {
		if t.Name == param {
			return t, nil
		}
	}
	return taskRef{}, errorf(http.StatusNotFound, "instance %s has no task %q", instance, param)
}
