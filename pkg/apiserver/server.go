package apiserver

import (
	"context"
	"io/fs"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Options are what the server acts with.
type Options struct {
	// Client reads runs (through a cache made by NewCluster, whose app id
	// index GET /workflow?appId= lists by) and creates them, and sends
	// the Authenticator's reviews when it is Kubernetes.
	Client client.Client
	// Live reads runs from the API server itself, for operations, which
	// act on the run as it is now (pkg/runop); nil: Client.
	Live client.Reader
	// Auth authenticates and authorizes every call but the health checks.
	Auth Authenticator
	// Namespace is where a launch or list without a namespace query
	// parameter acts.
	Namespace string
	// SystemNamespace holds the step definitions shared by every
	// namespace, which a launch's step types are checked against, and the
	// counter numeric instance ids are allocated from (pkg/app).
	SystemNamespace string
	// Events records who did each write, as an Event on the run; nil:
	// none (the creator annotation still says who launched).
	Events record.EventRecorder
	// RateLimit is each user's requests per second, Burst how many at
	// once; RateLimit 0 means no limit.
	RateLimit float64
	Burst     int
	// Ready reports whether the server can answer (its cache synced);
	// nil: always.
	Ready func(context.Context) error
	// Now is the clock; nil: time.Now.
	Now func() time.Time
	// Watch watches a run and its journal ConfigMap while a task's logs
	// are followed (follow=true, the WebSocket); nil: following is a 501.
	Watch client.WithWatch
	// MaxFollow bounds how long one log stream lasts; 0:
	// DefaultMaxFollow. MaxStreams bounds how many a user has open at
	// once; 0: DefaultMaxStreams.
	MaxFollow  time.Duration
	MaxStreams int
	// Runs is the cache's informer of WorkflowRuns that the UI's event
	// stream (GET /ui/api/events) follows; nil: the stream is a 501.
	// UIPing is how often an idle stream gets a comment (0:
	// DefaultUIPing), UIEventBuffer how many events a stream's client may
	// fall behind before it is dropped (0: DefaultUIEventBuffer).
	Runs          RunInformer
	UIPing        time.Duration
	UIEventBuffer int
	// UI is the single-page app served at / and every path not the API's
	// (web.Dist() in the binary); nil: none, those paths are 404s.
	UI fs.FS
}

// server is the API's state, shared by its handlers.
type server struct {
	o      Options
	out    responder
	limits *userLimits
	// doc is the OpenAPI document, built once (openapi.go).
	doc apiDoc
	// streams counts each user's open log streams.
	streams streamCounts
	// ids makes this server's launches take turns at the instance id
	// counter (app.Request.IDLock).
	ids sync.Mutex
}

// New returns the API's handler.
func New(o Options) http.Handler {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Live == nil {
		o.Live = o.Client
	}
	s := &server{o: o, out: responder{now: o.Now}, doc: newAPIDoc()}
	if o.RateLimit > 0 {
		burst := o.Burst
		if burst < 1 {
			burst = 1
		}
		s.limits = newUserLimits(o.RateLimit, burst, o.Now)
	}

	r := chi.NewRouter()
	r.Use(withRequestID)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		if s.spa(w, r) {
			return
		}
		s.out.fail(w, r, errorf(http.StatusNotFound, "no endpoint %s %s", r.Method, r.URL.Path))
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		s.out.fail(w, r, errorf(http.StatusMethodNotAllowed, "%s is not allowed on %s", r.Method, r.URL.Path))
	})
	r.Get("/healthz", func(w http.ResponseWriter, r *http.Request) { s.out.ok(w, r, "ok") })
	r.Get("/readyz", s.readyz)
	r.Get("/openapi.json", s.openapi)
	r.Route("/workflow", func(wf chi.Router) {
		wf.Post("/launch", s.handle(s.launch))
		wf.Get("/", s.handle(s.list))
		wf.Get("/{instanceId}", s.handle(s.get))
		s.routeOperations(wf)
		s.routeTasks(wf)
		s.routeLogs(r, wf)
	})
	r.Route("/ui/api", s.routeUI)
	return r
}

func (s *server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.o.Ready != nil {
		if err := s.o.Ready(r.Context()); err != nil {
			s.out.fail(w, r, errorf(http.StatusServiceUnavailable, "not ready: %v", err))
			return
		}
	}
	s.out.ok(w, r, "ok")
}

// call is a handler with the caller; what it returns is the envelope's
// data, or the error it fails with.
type call func(r *http.Request, u User) (any, error)

// handle authenticates the caller (401 without one), takes a token from
// their rate limit (429 when none is left), then calls f and writes its
// answer in the envelope. Failed authentications take a token from the
// client address's bucket, and once it is empty that address gets 429
// before its token is reviewed: made-up tokens cannot flood the API
// server with reviews.
func (s *server) handle(f call) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, ok := s.authenticate(w, r)
		if !ok {
			return
		}
		data, err := f(r, u)
		if err != nil {
			s.out.fail(w, r, err)
			return
		}
		s.out.ok(w, r, data)
	}
}

// authenticate is handle's authentication and rate limit, for handlers
// that write their own answer (log streams): false once it has answered
// the failure.
func (s *server) authenticate(w http.ResponseWriter, r *http.Request) (User, bool) {
	return s.authenticateTo(w, r, s.out.fail)
}

// authenticateTo is authenticate answering failures with fail.
func (s *server) authenticateTo(w http.ResponseWriter, r *http.Request, fail func(http.ResponseWriter, *http.Request, error)) (User, bool) {
	anon := "\x00" + clientHost(r) // no user name starts with NUL
	if s.limits != nil && s.limits.empty(anon) {
		w.Header().Set("Retry-After", "1")
		fail(w, r, errorf(http.StatusTooManyRequests, "too many requests that failed authentication from %s: slow down", clientHost(r)))
		return User{}, false
	}
	u, err := s.o.Auth.Authenticate(r)
	if err != nil {
		if s.limits != nil {
			s.limits.allow(anon)
		}
		fail(w, r, err)
		return User{}, false
	}
	if s.limits != nil && !s.limits.allow(u.Name) {
		w.Header().Set("Retry-After", "1")
		fail(w, r, errorf(http.StatusTooManyRequests, "%s sent more than %g requests a second (burst %d): slow down", u.Name, s.o.RateLimit, s.limits.burst))
		return User{}, false
	}
	return u, true
}

// clientHost is the address the request came from, without its port.
func clientHost(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
