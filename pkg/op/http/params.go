package http

import (
	nethttp "net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/stepflow-dev/stepflow/pkg/op"
)

// Params are the parameters of http.do. The json tags name the CUE fields of
// both #HTTPDo schemas: $params in stdlib/vela/http and the flat op struct in
// stdlib/vela/op (whose other fields, such as response, are ignored).
type Params struct {
	// Method is one of GET, POST, PUT, PATCH, DELETE and HEAD; empty means GET.
	Method    string     `json:"method"`
	URL       string     `json:"url"`
	Request   Request    `json:"request"`
	TLSConfig *TLSConfig `json:"tls_config,omitempty"`
}

// Request is the optional part of a request.
type Request struct {
	// Timeout is a Go duration ("10s"); empty means the Family's default.
	Timeout           string            `json:"timeout,omitempty"`
	Body              string            `json:"body,omitempty"`
	Header            map[string]string `json:"header,omitempty"`
	Trailer           map[string]string `json:"trailer,omitempty"`
	RateLimiter       *RateLimiter      `json:"ratelimiter,omitempty"`
	HeadersFromSecret []SecretHeader    `json:"headersFromSecret,omitempty"`
}

// RateLimiter allows at most Limit requests per Period for one method and
// URL within a Family.
type RateLimiter struct {
	Limit int `json:"limit"`
	// Period is a Go duration ("1m").
	Period string `json:"period"`
}

// SecretHeader sets header Name to the value of Key in Secret, read from the
// step's namespace.
type SecretHeader struct {
	Name   string `json:"name"`
	Secret string `json:"secret"`
	Key    string `json:"key"`
}

// TLSConfig names a Secret with the keys ca.crt (root CAs to trust instead
// of the system's), tls.crt and tls.key (a client certificate).
type TLSConfig struct {
	Secret string `json:"secret"`
	// Namespace of the Secret; empty means the step's namespace.
	Namespace string `json:"namespace,omitempty"`
}

// Returns is what http.do fills into $returns.
type Returns struct {
	StatusCode int                 `json:"statusCode"`
	Body       string              `json:"body"`
	Header     map[string][]string `json:"header,omitempty"`
	Trailer    map[string][]string `json:"trailer,omitempty"`
}

// methodClass reports the class of an accepted method, and whether the
// method is accepted at all.
func methodClass(method string) (op.Class, bool) {
	switch method {
	case nethttp.MethodGet, nethttp.MethodHead:
		return op.Idempotent, true
	case nethttp.MethodPost, nethttp.MethodPut, nethttp.MethodPatch, nethttp.MethodDelete:
		return op.Effect, true
	}
	return op.Effect, false
}

// method returns p's method in upper case, GET when unset.
func (p *Params) method() string {
	if p.Method == "" {
		return nethttp.MethodGet
	}
	return strings.ToUpper(p.Method)
}

// class is the class of a call with p. A method this op does not accept
// counts as an Effect: the call fails anyway, and failing once is enough.
func (p *Params) class() op.Class {
	c, _ := methodClass(p.method())
	return c
}

// plan is a request whose parameters have been checked. It holds no secret
// values yet.
type plan struct {
	method string
	url    string
	target *url.URL
	// redacted is url without a password, for messages.
	redacted string
	timeout  time.Duration
	body     string
	header   nethttp.Header
	trailer  nethttp.Header
	// limit is zero when the call has no rate limiter.
	limit  int
	period time.Duration
}

// check validates p and turns it into a plan. Every error is permanent: the
// same parameters fail the same way on every retry.
func (p *Params) check(defaultTimeout time.Duration) (*plan, error) {
	pl := &plan{method: p.method(), url: p.URL, timeout: defaultTimeout, body: p.Request.Body}
	if _, ok := methodClass(pl.method); !ok {
		return nil, op.Permanentf("method %q is not one of GET, HEAD, POST, PUT, PATCH, DELETE", p.Method)
	}
	u, err := checkURL(p.URL)
	if err != nil {
		return nil, err
	}
	pl.target, pl.redacted = u, u.Redacted()
	r := p.Request
	if r.Timeout != "" {
		d, err := time.ParseDuration(r.Timeout)
		if err != nil {
			return nil, op.Permanentf("request.timeout: %v", err)
		}
		if d <= 0 {
			return nil, op.Permanentf("request.timeout must be positive, got %q", r.Timeout)
		}
		pl.timeout = d
	}
	if rl := r.RateLimiter; rl != nil {
		if rl.Limit < 1 {
			return nil, op.Permanentf("request.ratelimiter.limit must be at least 1, got %d", rl.Limit)
		}
		d, err := time.ParseDuration(rl.Period)
		if err != nil {
			return nil, op.Permanentf("request.ratelimiter.period: %v", err)
		}
		if d <= 0 {
			return nil, op.Permanentf("request.ratelimiter.period must be positive, got %q", rl.Period)
		}
		pl.limit, pl.period = rl.Limit, d
	}
	if pl.header, err = headerOf("request.header", r.Header); err != nil {
		return nil, err
	}
	if pl.header == nil {
		pl.header = nethttp.Header{}
	}
	if pl.trailer, err = headerOf("request.trailer", r.Trailer); err != nil {
		return nil, err
	}
	for i, h := range r.HeadersFromSecret {
		if !httpguts.ValidHeaderFieldName(h.Name) {
			return nil, op.Permanentf("request.headersFromSecret[%d].name: %q is not a valid header name", i, h.Name)
		}
		if h.Secret == "" || h.Key == "" {
			return nil, op.Permanentf("request.headersFromSecret[%d] (%s) needs both secret and key", i, h.Name)
		}
	}
	if p.TLSConfig != nil && p.TLSConfig.Secret == "" {
		return nil, op.Permanentf("tls_config.secret must name a Secret")
	}
	return pl, nil
}

// checkURL parses an absolute http or https URL.
func checkURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, op.Permanentf("url: %v", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, op.Permanentf("url %q: scheme must be http or https", u.Redacted())
	}
	if u.Host == "" {
		return nil, op.Permanentf("url %q has no host", u.Redacted())
	}
	return u, nil
}

// headerOf checks the names and values of a header map from the template.
// It returns nil for an empty map.
func headerOf(field string, m map[string]string) (nethttp.Header, error) {
	if len(m) == 0 {
		return nil, nil
	}
	h := make(nethttp.Header, len(m))
	for k, v := range m {
		if !httpguts.ValidHeaderFieldName(k) {
			return nil, op.Permanentf("%s: %q is not a valid header name", field, k)
		}
		if !httpguts.ValidHeaderFieldValue(v) {
			return nil, op.Permanentf("%s: the value of %q is not a valid header value", field, k)
		}
		h.Set(k, v)
	}
	return h, nil
}
