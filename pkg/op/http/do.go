package http

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	nethttp "net/http"
	"strings"

	"github.com/go-resty/resty/v2"
	"golang.org/x/net/http/httpguts"

	"github.com/stepflow-dev/stepflow/pkg/netfence"
	"github.com/stepflow-dev/stepflow/pkg/op"
)

// IdempotencyHeader is the header an Effect call carries its
// IdempotencyKey in.
const IdempotencyHeader = "Idempotency-Key"

// IdempotencyKey is the key an Effect call sends: the first 32 hex digits of
// the SHA-256 of the run UID, the step attempt id and the op path. The same
// call of the same step attempt always gets the same key.
func IdempotencyKey(step op.Step, path string) string {
	sum := sha256.Sum256([]byte(step.RunUID + "\x00" + step.StepID + "\x00" + path))
	return hex.EncodeToString(sum[:16])
}

// doOp is http.do.
type doOp struct{ f *Family }

var _ op.Op = (*doOp)(nil)

// NewParams implements op.Op.
func (*doOp) NewParams() any { return &Params{} }

// Class implements op.Op: GET and HEAD are idempotent, the rest are effects.
func (*doOp) Class(params any) op.Class {
	p, ok := params.(*Params)
	if !ok {
		return op.Effect
	}
	return p.class()
}

var _ op.Describer = (*doOp)(nil)

// Describe implements op.Describer: the method, since a POST and a DELETE
// at the same path are different effects.
func (*doOp) Describe(params any) string {
	if p, ok := params.(*Params); ok {
		return p.method()
	}
	return ""
}

// Run implements op.Op.
func (d *doOp) Run(ctx context.Context, call *op.Call) (op.Result, error) {
	if err := ctx.Err(); err != nil {
		return op.Result{}, err
	}
	p, ok := call.Params.(*Params)
	if !ok {
		return op.Result{}, op.Permanentf("params are %T, want *http.Params", call.Params)
	}
	pl, err := p.check(d.f.timeout)
	if err != nil {
		return op.Result{}, err
	}
	if err := d.f.fence.CheckURL(pl.target); err != nil {
		return op.Result{}, op.Permanent(fmt.Errorf("%s %s: %w", pl.method, pl.redacted, err))
	}
	if err := d.f.secretHeaders(ctx, call.Step, p.Request.HeadersFromSecret, pl.header); err != nil {
		return op.Result{}, err
	}
	if call.Class == op.Effect && pl.header.Get(IdempotencyHeader) == "" {
		pl.header.Set(IdempotencyHeader, IdempotencyKey(call.Step, call.Path))
	}
	client, err := d.f.clientFor(ctx, call.Step, p.TLSConfig)
	if err != nil {
		return op.Result{}, err
	}
	if pl.limit > 0 && !d.f.limits.allow(pl.method+" "+pl.url, pl.limit, pl.period) {
		return op.Result{}, fmt.Errorf("%s %s was not sent: %w (at most %d per %s)",
			pl.method, pl.redacted, ErrRateLimited, pl.limit, pl.period)
	}
	return d.f.send(ctx, client, pl)
}

// send sends the planned request and turns the response into a Result.
func (f *Family) send(ctx context.Context, client *resty.Client, pl *plan) (op.Result, error) {
	rctx, cancel := context.WithTimeout(ctx, pl.timeout)
	defer cancel()
	if len(pl.trailer) > 0 {
		rctx = context.WithValue(rctx, trailerKey{}, pl.trailer)
	}
	req := client.R().SetContext(rctx)
	req.Header = pl.header
	if pl.body != "" {
		req.SetBody(pl.body)
	}
	resp, err := req.Execute(pl.method, pl.url)
	if err != nil {
		return op.Result{}, f.failure(ctx, pl, err)
	}
	raw := resp.RawResponse
	return op.Result{Returns: Returns{
		StatusCode: resp.StatusCode(),
		Body:       string(resp.Body()),
		Header:     headerMap(raw.Header),
		Trailer:    headerMap(raw.Trailer),
	}}, nil
}

// failure says what went wrong with a request that got no usable response.
// A destination the fence denied, at dial time or on a redirect, is
// permanent. So is a body over the bound: the same URL would send it
// again, so a retry would only fetch it again. The rest is retryable; a
// cancelled ctx shows through errors.Is.
func (f *Family) failure(ctx context.Context, pl *plan, err error) error {
	var (
		denied *netfence.DeniedError
		redir  *redirectError
	)
	switch {
	case errors.As(err, &denied):
		// Say which hop was denied, if it was a redirect.
		var cause error = denied
		if errors.As(err, &redir) {
			cause = redir
		}
		return op.Permanent(fmt.Errorf("%s %s: %w", pl.method, pl.redacted, cause))
	case ctx.Err() != nil:
		if !errors.Is(err, ctx.Err()) {
			return fmt.Errorf("%s %s: %w: %w", pl.method, pl.redacted, ctx.Err(), err)
		}
		return err
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("no response within request timeout %s: %w", pl.timeout, err)
	case errors.Is(err, resty.ErrResponseBodyTooLarge):
		return op.Permanent(fmt.Errorf("%s %s: response body is larger than %d bytes: %w", pl.method, pl.redacted, f.maxBody, err))
	}
	return err
}

// maxRedirects is how many redirects a request follows, as net/http's
// default.
const maxRedirects = 10

// checkRedirect is the clients' redirect policy: at most maxRedirects, and
// none to a destination the fence denies by its URL (the dial checks the
// address it resolves to).
func (f *Family) checkRedirect(req *nethttp.Request, via []*nethttp.Request) error {
	if len(via) >= maxRedirects {
		return &redirectError{to: req.URL.Redacted(), err: fmt.Errorf("stopped after %d redirects", maxRedirects)}
	}
	if err := f.fence.CheckURL(req.URL); err != nil {
		return &redirectError{to: req.URL.Redacted(), err: err}
	}
	return nil
}

// redirectError is a redirect the Family did not follow.
type redirectError struct {
	to  string
	err error
}

func (e *redirectError) Error() string { return "redirected to " + e.to + ": " + e.err.Error() }
func (e *redirectError) Unwrap() error { return e.err }

// headerMap returns the non-empty entries of h, or nil when there are none,
// so that $returns leaves out an empty header or trailer.
func headerMap(h nethttp.Header) map[string][]string {
	var m map[string][]string
	for k, v := range h {
		if len(v) == 0 {
			continue
		}
		if m == nil {
			m = map[string][]string{}
		}
		m[k] = append([]string(nil), v...)
	}
	return m
}

// secretHeaders sets each header of hs to its value from a Secret in the
// step's namespace, read as the step's identity. Values never appear in
// errors.
func (f *Family) secretHeaders(ctx context.Context, step op.Step, hs []SecretHeader, into nethttp.Header) error {
	namespace := step.Namespace
	read := map[string]map[string][]byte{}
	for _, h := range hs {
		data, ok := read[h.Secret]
		if !ok {
			var err error
			if data, err = f.secret(ctx, step, namespace, h.Secret); err != nil {
				return fmt.Errorf("request.headersFromSecret %s: %w", h.Name, err)
			}
			read[h.Secret] = data
		}
		v, ok := data[h.Key]
		if !ok {
			return op.Permanentf("request.headersFromSecret %s: secret %s/%s has no key %q", h.Name, namespace, h.Secret, h.Key)
		}
		if !httpguts.ValidHeaderFieldValue(string(v)) {
			return op.Permanentf("request.headersFromSecret %s: key %q of secret %s/%s is not a valid header value (a trailing newline?)",
				h.Name, h.Key, namespace, h.Secret)
		}
		into.Set(h.Name, string(v))
	}
	return nil
}

// clientFor returns the client for cfg: the Family's own when cfg is nil,
// else the one for the TLS material in cfg's Secret, read as the step's
// identity.
func (f *Family) clientFor(ctx context.Context, step op.Step, cfg *TLSConfig) (*resty.Client, error) {
	if cfg == nil {
		return f.client, nil
	}
	namespace := step.Namespace
	if cfg.Namespace != "" {
		namespace = cfg.Namespace
	}
	data, err := f.secret(ctx, step, namespace, cfg.Secret)
	if err != nil {
		return nil, fmt.Errorf("tls_config: %w", err)
	}
	return f.tls.get(namespace+"/"+cfg.Secret, data)
}

// secret reads a Secret through the Family's SecretReader, as step's
// identity.
func (f *Family) secret(ctx context.Context, step op.Step, namespace, name string) (map[string][]byte, error) {
	if f.secrets == nil {
		return nil, op.Permanentf("secret %s/%s is needed, but this op was given no secret reader", namespace, name)
	}
	data, err := f.secrets.GetSecret(ctx, step, namespace, name)
	if err != nil {
		return nil, fmt.Errorf("reading secret %s/%s: %w", namespace, name, err)
	}
	return data, nil
}

// trailerKey carries a request's trailer from send to sendTrailer, past
// resty, which has no request trailers of its own.
type trailerKey struct{}

// sendTrailer is the clients' pre-request hook. It declares the trailer
// of the request and makes its body's length unknown: the transport then
// sends the body chunked, with the trailer after it.
func sendTrailer(_ *resty.Client, r *nethttp.Request) error {
	t, ok := r.Context().Value(trailerKey{}).(nethttp.Header)
	if !ok {
		return nil
	}
	r.Trailer = t.Clone()
	if r.Body == nil || r.Body == nethttp.NoBody {
		empty := func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("")), nil }
		r.Body, _ = empty()
		r.GetBody = empty
	}
	r.ContentLength = -1
	return nil
}
