package clusters_test

import (
	"context"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/stepflow-dev/stepflow/pkg/clusters"
	"github.com/stepflow-dev/stepflow/pkg/op"
	"github.com/stepflow-dev/stepflow/pkg/ratelimit"
)

// edgeProxy is a TLS proxy in front of edge that records when each
// request reached it: what edge's API server sees of a cluster's limit.
type edgeProxy struct {
	url string
	ca  []byte
	mu  sync.Mutex
	at  []time.Time
}

func newEdgeProxy(t *testing.T) *edgeProxy {
	t.Helper()
	target, err := url.Parse(edge.Config.Host)
	must(t, err)
	tr, err := rest.TransportFor(&rest.Config{Host: edge.Config.Host, TLSClientConfig: rest.TLSClientConfig{CAData: edge.Config.CAData}})
	must(t, err)
	p := &edgeProxy{}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = tr
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.at = append(p.at, time.Now())
		p.mu.Unlock()
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.url = srv.URL
	p.ca = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	return p
}

func (p *edgeProxy) hits() []time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := append([]time.Time(nil), p.at...)
	sort.Slice(out, func(i, j int) bool { return out[i].Before(out[j]) })
	return out
}

// limitedEdge joins edge as cluster "edge" through a recording proxy, to a
// single-tenant registry limiting it to l.
func limitedEdge(t *testing.T, l ratelimit.Limit) (*fixture, *edgeProxy) {
	t.Helper()
	f := newFixture(t, true)
	_, token := edgeTokenKubeconfig(t, true)
	p := newEdgeProxy(t)
	s, err := clusters.Secret(f.systemNS, "edge", clusters.Credentials{
		Type: clusters.ServiceAccountToken, Endpoint: p.url, CA: p.ca, Token: token,
	})
	must(t, err)
	must(t, hub.Client.Create(context.Background(), s))
	f.registry, err = f.newRegistryWith(func(o *clusters.Options) {
		o.Limits = map[string]ratelimit.Limit{"edge": l}
	})
	must(t, err)
	return f, p
}

// Applies to a cluster limited to 5 requests per second, eight at once:
// the requests reach its API server no faster than that.
func TestClusterRateLimit(t *testing.T) {
	const qps, burst = 5.0, 1
	f, p := limitedEdge(t, ratelimit.Limit{QPS: qps, Burst: burst})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs <- f.apply(t, "runner", "edge", fmt.Sprintf("cm-%d", i))
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err)
	}
	hits := p.hits()
	n := len(hits)
	if n < 8 {
		t.Fatalf("edge got %d requests for 8 applies", n)
	}
	span := hits[n-1].Sub(hits[0])
	t.Logf("%d requests to edge over %v (%.2f per second after the first; limit %v, burst %d)",
		n, span.Round(time.Millisecond), float64(n-1)/span.Seconds(), qps, burst)
	for i := range hits {
		in := 0
		for _, h := range hits[i:] {
			if h.Sub(hits[i]) < time.Second {
				in++
			}
		}
		if max := int(qps) + burst; in > max {
			t.Errorf("%d requests within a second from %v, want at most %d", in, hits[i].Sub(hits[0]), max)
		}
	}
	if min := time.Duration(float64(n-burst)/qps*float64(time.Second)) - time.Second/(2*qps); span < min {
		t.Errorf("%d requests over %v, want at least %v", n, span, min)
	}
}

// A turn further away than MaxWait is not waited for: the op fails at once,
// retryable, naming the cluster and its limit, and nothing reaches it.
func TestClusterRateLimitTooFarIsRetryable(t *testing.T) {
	f, p := limitedEdge(t, ratelimit.Limit{QPS: 0.01, Burst: 1})
	start := time.Now()
	err := f.apply(t, "runner", "edge", "cm")
	if err == nil || op.IsPermanent(err) {
		t.Fatalf("apply with its turn 100s away: %v, want a retryable error", err)
	}
	if want := `cluster "edge" is rate-limited to 0.01 per second, burst 1`; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
	if d := time.Since(start); d > clusters.DefaultMaxWait {
		t.Errorf("the op waited %v", d)
	}
	if n := len(p.hits()); n != 0 {
		t.Errorf("edge got %d requests", n)
	}
}

func TestLocalClusterCannotBeLimited(t *testing.T) {
	f := newFixture(t, true)
	for _, name := range []string{"", "local"} {
		_, err := f.newRegistryWith(func(o *clusters.Options) {
			o.Limits = map[string]ratelimit.Limit{name: {QPS: 1, Burst: 1}}
		})
		if err == nil || !strings.Contains(err.Error(), "the local cluster cannot be limited") {
			t.Errorf("limit of cluster %q: %v", name, err)
		}
	}
}
