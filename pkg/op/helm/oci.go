package helm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	nethttp "net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/Masterminds/semver/v3"

	"github.com/stepflow-dev/stepflow/pkg/op"
)

// The media types of a Helm chart in an OCI registry (Helm's
// pkg/registry constants, which this package does not import: its client
// takes no context and bounds no download).
const (
	ociManifestType        = "application/vnd.oci.image.manifest.v1+json"
	chartLayerMediaType    = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
	legacyChartLayerMedium = "application/tar+gzip"
)

// ociRef is oci://host/repository[:tag][@digest].
type ociRef struct {
	host, repository, tag, digest string
}

func parseOCI(chart string) (ociRef, error) {
	s := strings.TrimPrefix(chart, "oci://")
	var r ociRef
	if i := strings.Index(s, "@"); i >= 0 {
		s, r.digest = s[:i], s[i+1:]
	}
	slash := strings.Index(s, "/")
	if slash <= 0 || slash == len(s)-1 {
		return r, fmt.Errorf("%q is not an OCI reference oci://HOST/REPOSITORY[:TAG]", chart)
	}
	r.host, r.repository = s[:slash], s[slash+1:]
	if i := strings.LastIndex(r.repository, ":"); i >= 0 {
		r.repository, r.tag = r.repository[:i], r.repository[i+1:]
	}
	return r, nil
}

// base is the registry API URL of the repository: plain HTTP for a
// loopback registry (as Docker allows), HTTPS otherwise.
func (r ociRef) base() string {
	scheme := "https"
	host := r.host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
		scheme = "http"
	}
	return scheme + "://" + r.host + "/v2/" + r.repository
}

// oci pulls the chart layer of an OCI reference.
func (f *fetcher) oci(ctx context.Context, p *Params) (fetched, error) {
	ref, err := parseOCI(p.Chart)
	if err != nil {
		return fetched{}, op.Permanent(err)
	}
	s := &ociSession{f: f}
	tag := ref.tag
	switch {
	case tag != "" && p.Version != "" && strings.ReplaceAll(tag, "_", "+") != p.Version:
		return fetched{}, op.Permanentf("chart %s: version %q differs from the reference's tag %q", p.Chart, p.Version, tag)
	case tag == "":
		tag = strings.ReplaceAll(p.Version, "+", "_")
	}
	if tag == "" && ref.digest == "" {
		if tag, err = s.newestTag(ctx, ref); err != nil {
			return fetched{}, fmt.Errorf("chart %s: %w", p.Chart, err)
		}
	}
	version := strings.ReplaceAll(tag, "_", "+")
	manifestRef := tag
	if ref.digest != "" {
		manifestRef = ref.digest
	}
	var m struct {
		Layers []struct {
			MediaType string `json:"mediaType"`
			Digest    string `json:"digest"`
			Size      int64  `json:"size"`
		} `json:"layers"`
	}
	murl := ref.base() + "/manifests/" + manifestRef
	b, err := s.get(ctx, murl, ociManifestType, f.opts.MaxIndexBytes, "OCI manifest")
	if err != nil {
		return fetched{}, fmt.Errorf("chart %s version %s: %w", p.Chart, version, err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return fetched{}, op.Permanentf("chart %s version %s: OCI manifest %s: %v", p.Chart, version, murl, err)
	}
	var digest string
	for _, l := range m.Layers {
		if l.MediaType == chartLayerMediaType || l.MediaType == legacyChartLayerMedium {
			if l.Size > f.opts.MaxChartBytes {
				return fetched{}, op.Permanentf("chart %s version %s: the chart layer has %d bytes, more than %d", p.Chart, version, l.Size, f.opts.MaxChartBytes)
			}
			digest = l.Digest
		}
	}
	if !strings.HasPrefix(digest, "sha256:") {
		return fetched{}, op.Permanentf("chart %s version %s: OCI manifest %s has no chart layer (%s) with a sha256 digest", p.Chart, version, murl, chartLayerMediaType)
	}
	blob, err := f.cached("oci "+ref.host+"/"+ref.repository+"@"+digest, 0, func() (any, int64, error) {
		blob, err := s.get(ctx, ref.base()+"/blobs/"+digest, "", f.opts.MaxChartBytes, "chart layer")
		if err != nil {
			return nil, 0, err
		}
		sum := sha256.Sum256(blob)
		if got := "sha256:" + hex.EncodeToString(sum[:]); got != digest {
			return nil, 0, fmt.Errorf("the chart layer has digest %s, its manifest says %s", got, digest)
		}
		return blob, int64(len(blob)), nil
	})
	if err != nil {
		return fetched{}, fmt.Errorf("chart %s version %s: %w", p.Chart, version, err)
	}
	return fetched{archive: blob.([]byte), version: version}, nil
}

// ociSession is the requests of one call to one registry: it asks for an
// anonymous bearer token when the registry wants one, and keeps it.
type ociSession struct {
	f     *fetcher
	token string
}

// newestTag is the newest stable semver tag of the repository.
func (s *ociSession) newestTag(ctx context.Context, ref ociRef) (string, error) {
	u := ref.base() + "/tags/list"
	b, err := s.get(ctx, u, "", s.f.opts.MaxIndexBytes, "OCI tag list")
	if err != nil {
		return "", err
	}
	var list struct {
		Tags []string `json:"tags"`
	}
	if err := json.Unmarshal(b, &list); err != nil {
		return "", op.Permanentf("OCI tag list %s: %v", u, err)
	}
	type tv struct {
		tag string
		v   *semver.Version
	}
	var vs []tv
	for _, t := range list.Tags {
		v, err := semver.StrictNewVersion(strings.ReplaceAll(t, "_", "+"))
		if err == nil && v.Prerelease() == "" {
			vs = append(vs, tv{t, v})
		}
	}
	if len(vs) == 0 {
		return "", op.Permanentf("no version found: OCI repository %s has no stable semver tag", u)
	}
	sort.Slice(vs, func(i, j int) bool { return vs[i].v.GreaterThan(vs[j].v) })
	return vs[0].tag, nil
}

// get is fetcher.get with the registry's anonymous token handshake.
func (s *ociSession) get(ctx context.Context, rawURL, accept string, max int64, what string) ([]byte, error) {
	for try := 0; ; try++ {
		h := nethttp.Header{}
		if accept != "" {
			h.Set("Accept", accept)
		}
		if s.token != "" {
			h.Set("Authorization", "Bearer "+s.token)
		}
		resp, err := s.f.do(ctx, rawURL, h)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode == nethttp.StatusUnauthorized && try == 0 {
			challenge := resp.Header.Get("WWW-Authenticate")
			resp.Body.Close()
			if err := s.authenticate(ctx, challenge, rawURL); err != nil {
				return nil, err
			}
			continue
		}
		defer resp.Body.Close()
		if err := statusError(resp, what); err != nil {
			return nil, err
		}
		return readBounded(resp.Body, max, what, rawURL)
	}
}

// authenticate fetches an anonymous token for a Bearer challenge.
func (s *ociSession) authenticate(ctx context.Context, challenge, rawURL string) error {
	scheme, params, _ := strings.Cut(challenge, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return op.Permanentf("fetching %s: the registry asks for %q authentication, and only anonymous bearer tokens are supported", rawURL, scheme)
	}
	kv := map[string]string{}
	for _, part := range splitChallenge(params) {
		k, v, ok := strings.Cut(part, "=")
		if ok {
			kv[strings.ToLower(strings.TrimSpace(k))] = strings.Trim(strings.TrimSpace(v), `"`)
		}
	}
	realm, err := url.Parse(kv["realm"])
	if err != nil || kv["realm"] == "" {
		return op.Permanentf("fetching %s: the registry's challenge %q names no usable realm", rawURL, challenge)
	}
	q := realm.Query()
	for _, k := range []string{"service", "scope"} {
		if kv[k] != "" {
			q.Set(k, kv[k])
		}
	}
	realm.RawQuery = q.Encode()
	b, err := s.f.get(ctx, realm.String(), 1<<20, "registry token", nil)
	if err != nil {
		return err
	}
	var tok struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(b, &tok); err != nil {
		return op.Permanentf("registry token from %s: %v", realm.Redacted(), err)
	}
	if s.token = tok.Token; s.token == "" {
		s.token = tok.AccessToken
	}
	if s.token == "" {
		return op.Permanentf("registry token from %s: the answer holds no token", realm.Redacted())
	}
	return nil
}

// splitChallenge splits the parameters of a challenge at the commas
// outside quotes.
func splitChallenge(s string) []string {
	var parts []string
	var cur strings.Builder
	quoted := false
	for _, r := range s {
		switch {
		case r == '"':
			quoted = !quoted
			cur.WriteRune(r)
		case r == ',' && !quoted:
			parts = append(parts, cur.String())
			cur.Reset()
		default:
			cur.WriteRune(r)
		}
	}
	return append(parts, cur.String())
}
