package helm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	nethttp "net/http"
	"net/url"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
	"golang.org/x/sync/singleflight"
	"sigs.k8s.io/yaml"

	"github.com/stepflow-dev/stepflow/pkg/netfence"
	"github.com/stepflow-dev/stepflow/pkg/op"
)

// source is where a chart comes from, told by the chart parameter.
type source int

const (
	fromRepo source = iota // a chart name in a repository
	fromOCI                // oci://host/repository[:tag]
	fromURL                // http(s)://.../chart.tgz
)

func kindOf(chart string) source {
	switch {
	case strings.HasPrefix(chart, "oci://"):
		return fromOCI
	case strings.HasPrefix(chart, "http://"), strings.HasPrefix(chart, "https://"):
		return fromURL
	}
	return fromRepo
}

// fetched is a chart archive and the version it was chosen as ("" when
// the source does not say: a .tgz URL).
type fetched struct {
	archive []byte
	version string
}

// fetcher downloads charts through one fenced client and keeps what it
// downloaded in a bounded cache.
type fetcher struct {
	client *nethttp.Client
	fence  *netfence.Policy
	opts   Options
	cache  *lru
	flight singleflight.Group
}

func newFetcher(client *nethttp.Client, fence *netfence.Policy, opts Options) *fetcher {
	return &fetcher{client: client, fence: fence, opts: opts, cache: newLRU(opts.CacheBytes)}
}

// chart returns the archive p names, from the cache when it holds it.
func (f *fetcher) chart(ctx context.Context, p *Params) (fetched, error) {
	ctx, cancel := context.WithTimeout(ctx, f.opts.Timeout)
	defer cancel()
	switch kindOf(p.Chart) {
	case fromURL:
		b, err := f.cached("url "+p.Chart, 0, func() (any, int64, error) {
			b, err := f.get(ctx, p.Chart, f.opts.MaxChartBytes, "chart archive", nil)
			return b, int64(len(b)), err
		})
		if err != nil {
			return fetched{}, fmt.Errorf("chart %s: %w", p.Chart, err)
		}
		return fetched{archive: b.([]byte), version: p.Version}, nil
	case fromOCI:
		return f.oci(ctx, p)
	}
	return f.fromRepo(ctx, p)
}

// fromRepo finds the chart in its repository's index, then downloads it.
func (f *fetcher) fromRepo(ctx context.Context, p *Params) (fetched, error) {
	idx, err := f.index(ctx, p.Repo)
	if err != nil {
		return fetched{}, fmt.Errorf("chart %s: %w", p.Chart, err)
	}
	cv, err := idx.get(p.Chart, p.Version, p.Repo)
	if err != nil {
		return fetched{}, err
	}
	if len(cv.URLs) == 0 {
		return fetched{}, op.Permanentf("chart %q version %s in repository %s has no download URL in its index", p.Chart, cv.Version, p.Repo)
	}
	u, err := resolveURL(p.Repo, cv.URLs[0])
	if err != nil {
		return fetched{}, op.Permanentf("chart %q version %s in repository %s: download URL %q: %v", p.Chart, cv.Version, p.Repo, cv.URLs[0], err)
	}
	b, err := f.cached("repo "+u+"@"+cv.Digest, 0, func() (any, int64, error) {
		b, err := f.get(ctx, u, f.opts.MaxChartBytes, "chart archive", nil)
		if err != nil {
			return nil, 0, err
		}
		if cv.Digest != "" {
			sum := sha256.Sum256(b)
			if got := hex.EncodeToString(sum[:]); got != strings.TrimPrefix(cv.Digest, "sha256:") {
				// A repository caught between two uploads; a retry may see both agree.
				return nil, 0, fmt.Errorf("%s has digest sha256:%s, the index of %s says %s", u, got, p.Repo, cv.Digest)
			}
		}
		return b, int64(len(b)), nil
	})
	if err != nil {
		return fetched{}, fmt.Errorf("chart %q version %s: %w", p.Chart, cv.Version, err)
	}
	return fetched{archive: b.([]byte), version: cv.Version}, nil
}

// repoIndex is what this package reads of a repository's index.yaml.
// (Helm's pkg/repo has the full type, but it brings Helm's registry
// client, plugins and Kubernetes client along.)
type repoIndex struct {
	APIVersion string                      `json:"apiVersion"`
	Entries    map[string][]repoIndexEntry `json:"entries"`
}

type repoIndexEntry struct {
	Version string   `json:"version"`
	URLs    []string `json:"urls"`
	Digest  string   `json:"digest"`
}

// get picks the version of chart: the one named exactly, else the newest
// that satisfies version as a semver constraint ("" is any stable one).
func (i *repoIndex) get(chart, version, repoURL string) (repoIndexEntry, error) {
	vs, ok := i.Entries[chart]
	if !ok {
		return repoIndexEntry{}, op.Permanentf("chart %q not found in repository %s", chart, repoURL)
	}
	if version != "" {
		for _, v := range vs {
			if v.Version == version {
				return v, nil
			}
		}
	}
	want := version
	if want == "" {
		want = "*"
	}
	c, err := semver.NewConstraint(want)
	if err != nil {
		return repoIndexEntry{}, op.Permanentf("chart %q: version %q is neither a version of it in repository %s nor a semver range: %v", chart, version, repoURL, err)
	}
	var (
		best  repoIndexEntry
		bestV *semver.Version
		have  []string
	)
	for _, v := range vs {
		have = append(have, v.Version)
		sv, err := semver.NewVersion(v.Version)
		if err != nil || !c.Check(sv) {
			continue
		}
		if bestV == nil || sv.GreaterThan(bestV) {
			best, bestV = v, sv
		}
	}
	if bestV == nil {
		if version == "" {
			version = "newest stable"
		}
		return repoIndexEntry{}, op.Permanentf("chart %q version %q not found in repository %s (it has %s)", chart, version, repoURL, strings.Join(have, ", "))
	}
	return best, nil
}

// resolveURL resolves a chart URL of an index against its repository URL.
func resolveURL(repoURL, ref string) (string, error) {
	r, err := url.Parse(ref)
	if err != nil {
		return "", err
	}
	if r.IsAbs() {
		return ref, nil
	}
	base, err := url.Parse(repoURL)
	if err != nil {
		return "", err
	}
	base.Path = strings.TrimSuffix(base.Path, "/") + "/"
	base.RawPath = ""
	return base.ResolveReference(r).String(), nil
}

// index returns the parsed index.yaml of repository repoURL, kept for
// IndexTTL.
func (f *fetcher) index(ctx context.Context, repoURL string) (*repoIndex, error) {
	u, err := url.JoinPath(repoURL, "index.yaml")
	if err != nil {
		return nil, op.Permanentf("repository URL %q: %v", repoURL, err)
	}
	v, err := f.cached("index "+repoURL, f.opts.IndexTTL, func() (any, int64, error) {
		b, err := f.get(ctx, u, f.opts.MaxIndexBytes, "repository index", nil)
		if err != nil {
			return nil, 0, err
		}
		idx := &repoIndex{}
		if err := yaml.Unmarshal(b, idx); err != nil {
			return nil, 0, op.Permanentf("repository index %s: %v", u, err)
		}
		if idx.APIVersion == "" {
			return nil, 0, op.Permanentf("repository index %s: no apiVersion: not a chart repository index", u)
		}
		return idx, int64(len(b)), nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*repoIndex), nil
}

// cached returns what the cache holds under key, else what load returns
// (a value and its size in bytes), which it keeps for ttl (0: until it is
// the least recently used one over the bound). Concurrent calls for one
// key share one load, run with the first caller's context: a burst of
// evaluations downloads a chart once.
func (f *fetcher) cached(key string, ttl time.Duration, load func() (any, int64, error)) (any, error) {
	if v, ok := f.cache.get(key, f.opts.Now()); ok {
		return v, nil
	}
	v, err, _ := f.flight.Do(key, func() (any, error) {
		if v, ok := f.cache.get(key, f.opts.Now()); ok {
			return v, nil
		}
		v, size, err := load()
		if err != nil {
			return nil, err
		}
		f.cache.put(key, v, size, f.opts.Now(), ttl)
		return v, nil
	})
	return v, err
}

// get downloads rawURL, at most max bytes of what. A fenced destination, a
// 4xx answer (but 408 and 429) and a body over max are permanent; no
// answer and the other statuses may pass on a retry. Every error names
// the URL.
func (f *fetcher) get(ctx context.Context, rawURL string, max int64, what string, header nethttp.Header) ([]byte, error) {
	resp, err := f.do(ctx, rawURL, header)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if err := statusError(resp, what); err != nil {
		return nil, err
	}
	return readBounded(resp.Body, max, what, rawURL)
}

// do sends a GET of rawURL and returns any answer.
func (f *fetcher) do(ctx context.Context, rawURL string, header nethttp.Header) (*nethttp.Response, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, op.Permanentf("%q is not an http(s) URL", rawURL)
	}
	if err := f.fence.CheckURL(u); err != nil {
		return nil, op.Permanent(fmt.Errorf("fetching %s: %w", u.Redacted(), err))
	}
	req, err := nethttp.NewRequestWithContext(ctx, nethttp.MethodGet, u.String(), nil)
	if err != nil {
		return nil, op.Permanentf("fetching %s: %v", u.Redacted(), err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("User-Agent", "stepflow")
	resp, err := f.client.Do(req)
	if err != nil {
		var denied *netfence.DeniedError
		if errors.As(err, &denied) {
			return nil, op.Permanent(fmt.Errorf("fetching %s: %w", u.Redacted(), err))
		}
		return nil, fmt.Errorf("fetching %s: %w", u.Redacted(), err)
	}
	return resp, nil
}

// statusError says what a non-2xx answer means.
func statusError(resp *nethttp.Response, what string) error {
	if resp.StatusCode/100 == 2 {
		return nil
	}
	err := fmt.Errorf("fetching %s %s: %s", what, resp.Request.URL.Redacted(), resp.Status)
	if resp.StatusCode/100 == 4 && resp.StatusCode != nethttp.StatusRequestTimeout && resp.StatusCode != nethttp.StatusTooManyRequests {
		return op.Permanent(err)
	}
	return err
}

// readBounded reads r to its end, failing permanently past max bytes.
func readBounded(r io.Reader, max int64, what, rawURL string) ([]byte, error) {
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(r, max+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s %s: %w", what, rawURL, err)
	}
	if n > max {
		return nil, op.Permanentf("%s %s is larger than %d bytes", what, rawURL, max)
	}
	return buf.Bytes(), nil
}
