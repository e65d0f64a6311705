package apiserver

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
