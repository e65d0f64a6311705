package http

import (
	"context"
	"crypto/sha256"
	"net"
	nethttp "net/http"
	"net/url"
	"time"

	"github.com/go-resty/resty/v2"
	"golang.org/x/net/http/httpproxy"

	"github.com/stepflow-dev/stepflow/pkg/netfence"
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
	// http.DefaultTransport. An *http.Transport is cloned, and the clone
	// dials through Fence and takes its proxy from ProxyFromEnvironment.
	// Any other RoundTripper is used as it is, and so is not fenced at
	// dial time: it is for tests. Calls with a tls_config need an
	// *http.Transport, which is cloned for each distinct TLS material.
	Transport nethttp.RoundTripper
	// Fence decides which destinations requests may reach, checked on
	// each URL and redirect and on every address dialled; nil means
	// netfence.Default(), which denies link-local addresses only.
	Fence *netfence.Policy
	// ProxyFromEnvironment sends requests through the proxies that
	// HTTP_PROXY, HTTPS_PROXY and NO_PROXY name, read when New is called.
	// Off, no proxy is used whatever the environment says. Through a
	// proxy, the fence checks the dial to the proxy, and each request's
	// URL and the addresses its host resolves to here
	// (netfence.Policy.CheckLookup); the proxy resolves the name again
	// itself, which the fence cannot see.
	ProxyFromEnvironment bool
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
	fence   *netfence.Policy
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
	f := &Family{secrets: opts.Secrets, fence: opts.Fence, timeout: opts.Timeout, maxBody: opts.MaxBodyBytes}
	if f.fence == nil {
		f.fence = netfence.Default()
	}
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
	base, ok := rt.(*nethttp.Transport)
	if ok {
		base = FencedTransport(base, f.fence, opts.ProxyFromEnvironment)
		rt = base
	}
	f.client = f.newClient(rt)
	f.tls = &tlsClients{base: base, build: f.newClient, clients: map[[sha256.Size]byte]*tlsClient{}}
	f.do = &doOp{f: f}
	return f
}

// Provider implements op.Family.
func (f *Family) Provider() string { return "http" }

// Ops implements op.Family.
func (f *Family) Ops() map[string]op.Op { return map[string]op.Op{"do": f.do} }

// defaultTransport is http.DefaultTransport, which New clones, so that no
// two Families share connections.
func defaultTransport() *nethttp.Transport {
	if t, ok := nethttp.DefaultTransport.(*nethttp.Transport); ok {
		return t
	}
	return &nethttp.Transport{}
}

// Dialer settings of http.DefaultTransport, which the fenced dialer keeps.
const (
	dialTimeout   = 30 * time.Second
	dialKeepAlive = 30 * time.Second
)

// FencedTransport returns a clone of t that dials through fence and uses
// the environment's proxies only when fromEnv is set; the host of a
// request a proxy carries is checked on what it resolves to here. Other
// families that reach the network (helm) build their transport with it.
func FencedTransport(t *nethttp.Transport, fence *netfence.Policy, fromEnv bool) *nethttp.Transport {
	t = t.Clone()
	t.DialContext = fence.DialContext(&net.Dialer{Timeout: dialTimeout, KeepAlive: dialKeepAlive})
	// A DialTLSContext of its own would dial past the fence.
	t.DialTLSContext, t.DialTLS, t.Dial = nil, nil, nil
	t.Proxy = nil
	if fromEnv {
		proxy := httpproxy.FromEnvironment().ProxyFunc()
		t.Proxy = func(r *nethttp.Request) (*url.URL, error) {
			via, err := proxy(r.URL)
			if err != nil || via == nil {
				return via, err
			}
			// The proxy resolves the host; the dial only sees the proxy.
			if err := fence.CheckLookup(r.Context(), r.URL); err != nil {
				return nil, err
			}
			return via, nil
		}
	}
	return t
}

// newClient wraps rt into a resty client: no retries (the executor retries),
// no cookie jar (calls share nothing), redirects checked by the fence, a
// bounded response body, a body on any method that can carry one, and
// request trailers.
func (f *Family) newClient(rt nethttp.RoundTripper) *resty.Client {
	return resty.NewWithClient(&nethttp.Client{Transport: rt, CheckRedirect: f.checkRedirect}).
		SetDisableWarn(true).
		SetAllowGetMethodPayload(true).
		SetResponseBodyLimit(f.maxBody).
		SetPreRequestHook(sendTrailer).
		SetHeader("User-Agent", "stepflow")
}
