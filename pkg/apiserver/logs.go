package apiserver

import "github.com/go-chi/chi/v5"

// routeLogs registers the log endpoints: GET
// /workflow/{instanceId}/tasks/{taskId}/logs on wf (the /workflow router)
// and the WebSocket endpoint on root.
func (s *server) routeLogs(root, wf chi.Router) {}
