package http

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	nethttp "net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stepflow-dev/stepflow/pkg/op"
)

// testStep is the step attempt the tests' calls belong to.
var testStep = op.Step{RunUID: "uid-1", RunName: "run", Namespace: "team-a", StepName: "notify", StepID: "notify-1"}

// seen is what a test server saw of a request.
type seen struct {
	Method  string
	Header  nethttp.Header
	Body    string
	Trailer nethttp.Header
}

// server is an httptest server that counts its hits and keeps the last
// request it saw, body and trailer included.
type server struct {
	*httptest.Server

	mu   sync.Mutex
	hits int
	last seen
}

// serve starts a plain HTTP server that records each request, then lets
// reply answer it (an empty 200 when reply is nil).
func serve(t *testing.T, reply nethttp.HandlerFunc) *server {
	t.Helper()
	s := &server{}
	s.Server = httptest.NewServer(s.record(reply))
	t.Cleanup(s.Close)
	return s
}

// record wraps reply so that each request is counted and kept first.
func (s *server) record(reply nethttp.HandlerFunc) nethttp.Handler {
	return nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		// The trailer is there only once the body has been read.
		body, err := io.ReadAll(r.Body)
		if err != nil {
			nethttp.Error(w, err.Error(), nethttp.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.hits++
		s.last = seen{Method: r.Method, Header: r.Header.Clone(), Body: string(body), Trailer: r.Trailer.Clone()}
		s.mu.Unlock()
		if reply != nil {
			reply(w, r)
		}
	})
}

// saw returns the number of hits and the last request.
func (s *server) saw() (int, seen) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits, s.last
}

// newCall builds a call of f's do op with p, as the evaluator would.
func newCall(f *Family, p *Params) *op.Call {
	o := f.Ops()["do"]
	return &op.Call{Name: op.Name{Provider: "http", Do: "do"}, Path: "notify.do",
		Op: o, Params: p, Class: o.Class(p), Step: testStep}
}

// run runs one call through op.Direct, so errors come in the one shape.
func run(t *testing.T, f *Family, p *Params) (Returns, error) {
	t.Helper()
	return runCall(t, context.Background(), newCall(f, p))
}

func runCall(t *testing.T, ctx context.Context, call *op.Call) (Returns, error) {
	t.Helper()
	res, err := op.Direct.Run(ctx, call)
	if err != nil {
		return Returns{}, err
	}
	ret, ok := res.Returns.(Returns)
	if !ok {
		t.Fatalf("Returns is %T, want http.Returns", res.Returns)
	}
	return ret, nil
}

// opError asserts that err is an *op.Error and returns it.
func opError(t *testing.T, err error) *op.Error {
	t.Helper()
	var e *op.Error
	if !errors.As(err, &e) {
		t.Fatalf("error is not an *op.Error: %T %v", err, err)
	}
	return e
}

// secrets is a SecretReader over fixed data, keyed "namespace/name".
type secrets map[string]map[string][]byte

func (s secrets) GetSecret(_ context.Context, _ op.Step, namespace, name string) (map[string][]byte, error) {
	data, ok := s[namespace+"/"+name]
	if !ok {
		return nil, fmt.Errorf("secret %s/%s not found", namespace, name)
	}
	return data, nil
}

var _ SecretReader = secrets(nil)

// closedURL returns a URL on 127.0.0.1 whose port nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return "http://" + addr + "/"
}
