package helm

import (
	"context"
	"fmt"
	nethttp "net/http"
	"net/url"
	"strings"
	"time"

	httpop "github.com/stepflow-dev/stepflow/pkg/op/http"

	"github.com/stepflow-dev/stepflow/pkg/netfence"
	"github.com/stepflow-dev/stepflow/pkg/op"
)

// Defaults for the zero fields of Options.
const (
	DefaultMaxChartBytes = 16 << 20
	DefaultMaxIndexBytes = 32 << 20
	DefaultCacheBytes    = 128 << 20
	DefaultIndexTTL      = 5 * time.Minute
	DefaultTimeout       = 2 * time.Minute
)

// Options are the dependencies of a Family.
type Options struct {
	// Fence decides which destinations downloads may reach (each URL and
	// redirect, and every address dialled); nil means netfence.Default().
	Fence *netfence.Policy
	// Transport carries the downloads; nil means a clone of
	// http.DefaultTransport. An *http.Transport is cloned and the clone
	// dials through Fence (httpop.FencedTransport); any other
	// RoundTripper is used as it is, unfenced at dial time: for tests.
	Transport nethttp.RoundTripper
	// ProxyFromEnvironment sends downloads through the proxies of
	// HTTP_PROXY, HTTPS_PROXY and NO_PROXY, as the HTTP ops do.
	ProxyFromEnvironment bool
	// MaxChartBytes bounds a chart archive; MaxIndexBytes a repository's
	// index.yaml (and an OCI manifest or tag list).
	MaxChartBytes int64
	MaxIndexBytes int64
	// CacheBytes bounds the chart archives kept in memory.
	CacheBytes int64
	// IndexTTL is how long a repository's index.yaml is kept.
	IndexTTL time.Duration
	// Timeout bounds the downloads of one call.
	Timeout time.Duration
	// Now is the clock of the index cache; nil means time.Now.
	Now func() time.Time
}

// Family is the "helm" op family. Its caches belong to the instance.
type Family struct {
	fetch  *fetcher
	render *renderOp
}

var _ op.Family = (*Family)(nil)

// New returns a Family with the given dependencies.
func New(opts Options) *Family {
	if opts.Fence == nil {
		opts.Fence = netfence.Default()
	}
	if opts.MaxChartBytes <= 0 {
		opts.MaxChartBytes = DefaultMaxChartBytes
	}
	if opts.MaxIndexBytes <= 0 {
		opts.MaxIndexBytes = DefaultMaxIndexBytes
	}
	if opts.CacheBytes <= 0 {
		opts.CacheBytes = DefaultCacheBytes
	}
	if opts.IndexTTL <= 0 {
		opts.IndexTTL = DefaultIndexTTL
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	rt := opts.Transport
	if rt == nil {
		rt = nethttp.DefaultTransport
	}
	if t, ok := rt.(*nethttp.Transport); ok {
		rt = httpop.FencedTransport(t, opts.Fence, opts.ProxyFromEnvironment)
	}
	fence := opts.Fence
	client := &nethttp.Client{
		Transport: rt,
		CheckRedirect: func(req *nethttp.Request, via []*nethttp.Request) error {
			if len(via) >= 10 {
				return fmt.Errorf("redirected to %s: stopped after %d redirects", req.URL.Redacted(), len(via))
			}
			if err := fence.CheckURL(req.URL); err != nil {
				return fmt.Errorf("redirected to %s: %w", req.URL.Redacted(), err)
			}
			return nil
		},
	}
	f := &Family{fetch: newFetcher(client, fence, opts)}
	f.render = &renderOp{f: f}
	return f
}

// Provider implements op.Family.
func (f *Family) Provider() string { return "helm" }

// Ops implements op.Family.
func (f *Family) Ops() map[string]op.Op { return map[string]op.Op{"render": f.render} }

// Params are the parameters of helm.#Render.
type Params struct {
	// Chart is a chart name in Repo, an oci:// reference, or the http(s)
	// URL of a chart .tgz.
	Chart string `json:"chart"`
	// Repo is the chart repository URL (serving index.yaml), for a bare
	// chart name.
	Repo string `json:"repo,omitempty"`
	// Version is the chart version (or a semver range in a repository);
	// the newest stable one when unset.
	Version string `json:"version,omitempty"`
	// Release is .Release.Name.
	Release string `json:"release"`
	// Namespace is .Release.Namespace, and the namespace of rendered
	// namespaced objects that name none.
	Namespace string `json:"namespace"`
	// Values are the chart values, over the chart's values.yaml.
	Values map[string]any `json:"values,omitempty"`
}

// Returns are the results of helm.#Render.
type Returns struct {
	// Objects are the rendered objects in install order.
	Objects []map[string]any `json:"objects"`
}

type renderOp struct{ f *Family }

var _ op.Op = (*renderOp)(nil)

func (*renderOp) NewParams() any     { return &Params{} }
func (*renderOp) Class(any) op.Class { return op.Idempotent }

func (r *renderOp) Run(ctx context.Context, call *op.Call) (op.Result, error) {
	p, ok := call.Params.(*Params)
	if !ok {
		return op.Result{}, op.Permanentf("helm.render: params are %T, want *helm.Params", call.Params)
	}
	if err := p.validate(); err != nil {
		return op.Result{}, op.Permanent(err)
	}
	ch, err := r.f.fetch.chart(ctx, p)
	if err != nil {
		return op.Result{}, err
	}
	objs, err := render(ch.archive, p)
	if err != nil {
		return op.Result{}, op.Permanent(fmt.Errorf("chart %s version %s: %w", p.Chart, ch.version, err))
	}
	return op.Result{Returns: Returns{Objects: objs}}, nil
}

// validate checks what needs no download.
func (p *Params) validate() error {
	switch {
	case p.Chart == "":
		return fmt.Errorf("helm.render: chart is empty")
	case p.Release == "":
		return fmt.Errorf("helm.render: chart %s: release is empty", p.Chart)
	case p.Namespace == "":
		return fmt.Errorf("helm.render: chart %s: namespace is empty", p.Chart)
	}
	for _, s := range []string{p.Chart, p.Repo} {
		// They would show in the step's status, and in every error.
		if u, err := url.Parse(s); err == nil && u.User != nil {
			return fmt.Errorf("helm.render: chart %s: a URL with credentials is refused (%s): charts are downloaded anonymously", p.Chart, u.Redacted())
		}
	}
	if kindOf(p.Chart) == fromRepo && p.Repo == "" {
		return fmt.Errorf("helm.render: chart %q is a bare chart name, but repo is not set (or give an oci:// reference or a .tgz URL)", p.Chart)
	}
	if kindOf(p.Chart) == fromRepo && strings.Contains(p.Chart, "/") {
		return fmt.Errorf("helm.render: chart %q: a chart in a repository is named without a path (set repo to the repository URL)", p.Chart)
	}
	return nil
}
