package framework

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
)

// Endpoint is an HTTP server for the steps of a run to call. It answers
// each path with what Respond last set (200 and {} by default) and keeps
// every request it got, so a spec can count the effects a step had.
type Endpoint struct {
	// URL is the server's base URL, http://127.0.0.1:port.
	URL string

	srv      *httptest.Server
	mu       sync.Mutex
	requests map[string][]Request
	replies  map[string]reply
}

// Request is one request an Endpoint got.
type Request struct {
	Method string
	Body   string
	// IdempotencyKey is the Idempotency-Key header Stepflow sends with
	// each effect.
	IdempotencyKey string
}

type reply struct {
	status int
	body   string
}

// NewEndpoint starts an Endpoint; Close stops it.
func NewEndpoint() *Endpoint {
	e := &Endpoint{requests: map[string][]Request{}, replies: map[string]reply{}}
	e.srv = httptest.NewServer(http.HandlerFunc(e.serve))
	e.URL = e.srv.URL
	return e
}

func (e *Endpoint) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	e.mu.Lock()
	e.requests[r.URL.Path] = append(e.requests[r.URL.Path],
		Request{Method: r.Method, Body: string(body), IdempotencyKey: r.Header.Get("Idempotency-Key")})
	rep, ok := e.replies[r.URL.Path]
	e.mu.Unlock()
	if !ok {
		rep = reply{status: http.StatusOK, body: "{}"}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(rep.status)
	_, _ = io.WriteString(w, rep.body)
}

// Respond makes the Endpoint answer requests to path with status and body.
func (e *Endpoint) Respond(path string, status int, body string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.replies[path] = reply{status: status, body: body}
}

// Hits counts the requests to path.
func (e *Endpoint) Hits(path string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.requests[path])
}

// Requests returns the requests to path, oldest first.
func (e *Endpoint) Requests(path string) []Request {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.requests[path])
}

// Close stops the server.
func (e *Endpoint) Close() { e.srv.Close() }
