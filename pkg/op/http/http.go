package http

import (
	"context"
	"crypto/sha256"
	nethttp "net/http"
	"time"

	"github.com/go-resty/resty/v2"

	"github.com/stepflow-dev/stepflow/pkg/op"
)

// Defaults for the zero fields of Options.
const (
	DefaultTimeout      = 30 * time.Second
	DefaultMaxBodyBytes = 16 << 20
)

// SecretReader reads the data of a Kubernetes Secret as the identity of
// the step that needs it (op.Step.ServiceAccount). An error it marks
// op.Permanent (a Secret that does not exist, or that the identity may not
// read) stays permanent; any other error is retried.
type SecretReader interface {
	GetSecret(ctx context.Context, step op.Step, namespace, name string) (map[string][]byte, error)
}

// SecretReaderFunc adapts a function to SecretReader.
type SecretReaderFunc func(ctx context.Context, step op.Step, namespace, name string) (map[string][]byte, error)

// GetSecret implements SecretReader.
func (f SecretReaderFunc) GetSecret(ctx context.Context, step op.Step, namespace, name string) (map[string][]byte, error) {
	return f(ctx, step, namespace, name)
}

var _ SecretReader = SecretReaderFunc(nil)

// Options are the dependencies of a Family.
type Options struct {
	// Secrets reads the Secrets of headersFromSecret and tls_config. When nil,
	// a call that names a Secret fails permanently.
	Secrets SecretReader
	// Transport sends the requests; nil means a clone of
	// http.DefaultTransport. Calls with a tls_config need an
	// *http.Transport, which is cloned for each distinct TLS material.
	Transport nethttp.RoundTripper
	// Timeout bounds a request that sets no request.timeout; zero means
	// DefaultTimeout.
	Timeout time.Duration
	// MaxBodyBytes bounds the response body; zero means DefaultMaxBodyBytes.
	MaxBodyBytes int
	// Now is the clock of the rate limiters; nil means time.Now.
	Now func() time.Time
}

// Family is the "http" op family. All its state (the HTTP clients, the rate
// limiter counts) belongs to the instance.
type Family struct {
	secrets SecretReader
	timeout time.Duration
	maxBody int
	client  *resty.Client
	tls     *tlsClients
	limits  *limiter
	do      *doOp
}

var _ op.Family = (*Family)(nil)

// New returns a Family with the given dependencies.
func New(opts Options) *Family {
	f := &Family{secrets: opts.Secrets, timeout: opts.Timeout, maxBody: opts.MaxBodyBytes}
	if f.timeout <= 0 {
		f.timeout = DefaultTimeout
	}
	if f.maxBody <= 0 {
		f.maxBody = DefaultMaxBodyBytes
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	f.limits = newLimiter(now)

	rt := opts.Transport
	if rt == nil {
		rt = defaultTransport()
	}
	base, _ := rt.(*nethttp.Transport)
	f.client = f.newClient(rt)
	f.tls = &tlsClients{base: base, build: f.newClient, clients: map[[sha256.Size]byte]*tlsClient{}}
	f.do = &doOp{f: f}
	return f
}

// Provider implements op.Family.
func (f *Family) Provider() string { return "http" }

// Ops implements op.Family.
func (f *Family) Ops() map[string]op.Op { return map[string]op.Op{"do": f.do} }

// defaultTransport is a clone of http.DefaultTransport, so that no two
// Families share connections.
func defaultTransport() *nethttp.Transport {
	if t, ok := nethttp.DefaultTransport.(*nethttp.Transport); ok {
		return t.Clone()
	}
	return &nethttp.Transport{Proxy: nethttp.ProxyFromEnvironment}
}

// newClient wraps rt into a resty client: no retries (the executor retries),
// no cookie jar (calls share nothing), a bounded response body, a body on any
// method that can carry one, and request trailers.
func (f *Family) newClient(rt nethttp.RoundTripper) *resty.Client {
	return resty.NewWithClient(&nethttp.Client{Transport: rt}).
		SetDisableWarn(true).
		SetAllowGetMethodPayload(true).
		SetResponseBodyLimit(f.maxBody).
		SetPreRequestHook(sendTrailer).
		SetHeader("User-Agent", "stepflow")
}
