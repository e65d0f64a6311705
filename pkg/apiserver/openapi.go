package apiserver

import "net/http"

// openapi is GET /openapi.json: the OpenAPI 3 document of the API.
func (s *server) openapi(w http.ResponseWriter, r *http.Request) {
	s.out.fail(w, r, errorf(http.StatusNotImplemented, "not yet"))
}
