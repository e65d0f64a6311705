package helm

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	nethttp "net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// registry is an httptest OCI registry holding Helm charts as `helm push`
// stores them, that hands an anonymous bearer token to whoever asks and
// counts the requests by kind.
type registry struct {
	*httptest.Server

	mu        sync.Mutex
	hits      map[string]int // "manifest", "blob", "tags", "token", "unauthorized"
	manifests map[string][]byte
	blobs     map[string][]byte
	tags      map[string][]string
}

const registryToken = "anonymous-token"

func serveRegistry(t testing.TB, repository string, charts ...testChart) *registry {
	t.Helper()
	r := &registry{hits: map[string]int{}, manifests: map[string][]byte{}, blobs: map[string][]byte{}, tags: map[string][]string{}}
	for _, c := range charts {
		layer := c.tgz(t)
		config := []byte(fmt.Sprintf(`{"name":%q,"version":%q}`, c.name, c.version))
		ld, cd := digestOf(layer), digestOf(config)
		r.blobs[ld], r.blobs[cd] = layer, config
		m, _ := json.Marshal(map[string]any{
			"schemaVersion": 2,
			"mediaType":     ociManifestType,
			"config":        map[string]any{"mediaType": "application/vnd.cncf.helm.config.v1+json", "digest": cd, "size": len(config)},
			"layers":        []any{map[string]any{"mediaType": chartLayerMediaType, "digest": ld, "size": len(layer)}},
		})
		tag := strings.ReplaceAll(c.version, "+", "_")
		r.manifests[repository+":"+tag] = m
		r.tags[repository] = append(r.tags[repository], tag)
	}
	r.tags[repository] = append(r.tags[repository], "latest", "3.0.0-beta.1")
	r.Server = httptest.NewServer(nethttp.HandlerFunc(r.serve))
	t.Cleanup(r.Close)
	return r
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func (r *registry) count(kind string) {
	r.mu.Lock()
	r.hits[kind]++
	r.mu.Unlock()
}

func (r *registry) serve(w nethttp.ResponseWriter, req *nethttp.Request) {
	if req.URL.Path == "/token" {
		r.count("token")
		_ = json.NewEncoder(w).Encode(map[string]string{"token": registryToken})
		return
	}
	if req.Header.Get("Authorization") != "Bearer "+registryToken {
		r.count("unauthorized")
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="%s/token",service="test-registry",scope="repository:charts/web:pull"`, r.URL))
		w.WriteHeader(nethttp.StatusUnauthorized)
		return
	}
	path := strings.TrimPrefix(req.URL.Path, "/v2/")
	switch {
	case strings.HasSuffix(path, "/tags/list"):
		r.count("tags")
		repo := strings.TrimSuffix(path, "/tags/list")
		_ = json.NewEncoder(w).Encode(map[string]any{"name": repo, "tags": r.tags[repo]})
	case strings.Contains(path, "/manifests/"):
		r.count("manifest")
		i := strings.Index(path, "/manifests/")
		m, ok := r.manifests[path[:i]+":"+path[i+len("/manifests/"):]]
		if !ok {
			nethttp.Error(w, `{"errors":[{"code":"MANIFEST_UNKNOWN"}]}`, nethttp.StatusNotFound)
			return
		}
		if !strings.Contains(req.Header.Get("Accept"), ociManifestType) {
			nethttp.Error(w, "no acceptable manifest type", nethttp.StatusNotAcceptable)
			return
		}
		w.Header().Set("Content-Type", ociManifestType)
		_, _ = w.Write(m)
	case strings.Contains(path, "/blobs/"):
		r.count("blob")
		b, ok := r.blobs[path[strings.Index(path, "/blobs/")+len("/blobs/"):]]
		if !ok {
			nethttp.NotFound(w, req)
			return
		}
		_, _ = w.Write(b)
	default:
		nethttp.NotFound(w, req)
	}
}

func (r *registry) counts() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for k, v := range r.hits {
		out[k] = v
	}
	return out
}

func TestRenderOCI(t *testing.T) {
	reg := serveRegistry(t, "charts/web", web("1.0.0"), web("1.2.0"), web("1.10.0"))
	host := strings.TrimPrefix(reg.URL, "http://")
	f := New(Options{})
	version := func(r Returns) string {
		return r.Objects[1]["data"].(map[string]any)["chartVersion"].(string)
	}
	for _, tc := range []struct {
		name, chart, version, want string
	}{
		{"tag in the reference", "oci://" + host + "/charts/web:1.2.0", "", "1.2.0"},
		{"version as the tag", "oci://" + host + "/charts/web", "1.0.0", "1.0.0"},
		{"newest stable semver tag", "oci://" + host + "/charts/web", "", "1.10.0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := run(f, &Params{Chart: tc.chart, Version: tc.version, Release: "shop", Namespace: "apps"})
			if err != nil {
				t.Fatal(err)
			}
			if v := version(got); v != tc.want {
				t.Errorf("rendered version %s, want %s", v, tc.want)
			}
			if n := len(got.Objects); n != 8 {
				t.Errorf("%d objects, want 8", n)
			}
		})
	}
	// Each chart layer was pulled once; rendering them all again pulls no
	// blob (the manifests are asked again: a tag may move).
	before := reg.counts()
	for _, chart := range []string{"oci://" + host + "/charts/web:1.2.0", "oci://" + host + "/charts/web:1.0.0"} {
		if _, err := run(f, &Params{Chart: chart, Release: "shop", Namespace: "apps"}); err != nil {
			t.Fatal(err)
		}
	}
	after := reg.counts()
	if d := cmp.Diff(map[string]int{"blob": 3, "tags": 1}, map[string]int{"blob": after["blob"], "tags": after["tags"]}); d != "" {
		t.Errorf("blob and tag list pulls (-want +got):\n%s", d)
	}
	if after["manifest"] != before["manifest"]+2 {
		t.Errorf("manifests asked %d times more, want 2", after["manifest"]-before["manifest"])
	}
	if after["token"] == 0 {
		t.Error("no token was asked for: the registry's challenge was not answered")
	}

	for _, tc := range []struct {
		name, chart, version string
		says                 []string
	}{
		{"unknown tag", "oci://" + host + "/charts/web:9.9.9", "", []string{"chart oci://" + host + "/charts/web:9.9.9 version 9.9.9", "404"}},
		{"unknown repository", "oci://" + host + "/charts/nope", "", []string{"no stable semver tag"}},
		{"version and tag differ", "oci://" + host + "/charts/web:1.0.0", "1.2.0", []string{`version "1.2.0" differs from the reference's tag "1.0.0"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := run(f, &Params{Chart: tc.chart, Version: tc.version, Release: "shop", Namespace: "apps"})
			if err == nil || !isPermanent(err) {
				t.Fatalf("error %v, want a permanent one", err)
			}
			for _, s := range tc.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
		})
	}
}
