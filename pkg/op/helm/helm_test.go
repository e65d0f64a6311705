package helm

import (
	"context"
	"errors"
	nethttp "net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stepflow-dev/stepflow/pkg/netfence"
	"github.com/stepflow-dev/stepflow/pkg/op"
)

func TestRender(t *testing.T) {
	repo := serveRepo(t, web("1.0.0"), web("1.1.0"), web("2.0.0-rc.1"))
	want := []string{
		"ServiceAccount/apps/shop",
		"ConfigMap/pinned/shop-config",
		"CustomResourceDefinition//widgets.example.com",
		"ClusterRole//shop-reader",
		"Service/apps/shop",
		"StatefulSet/apps/shop",
		"Gadget/apps/shop",
		"Widget//shop",
	}
	cases := []struct {
		name        string
		p           Params
		wantVersion string
		partition   int64
	}{
		{name: "repo, name and version", p: Params{Chart: "web", Repo: repo.URL, Version: "1.0.0"}, wantVersion: "1.0.0"},
		{name: "repo and name: newest stable", p: Params{Chart: "web", Repo: repo.URL}, wantVersion: "1.1.0"},
		{name: "repo and a range", p: Params{Chart: "web", Repo: repo.URL + "/", Version: "~1.0"}, wantVersion: "1.0.0"},
		{name: ".tgz URL", p: Params{Chart: repo.URL + "/charts/web-1.0.0.tgz"}, wantVersion: "1.0.0"},
		{name: "values reach the templates", p: Params{Chart: "web", Repo: repo.URL, Version: "1.1.0",
			Values: map[string]any{"abmRolloutPartition": int64(2), "image": "web:canary"}}, wantVersion: "1.1.0", partition: 2},
	}
	f := New(Options{})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.p.Release, c.p.Namespace = "shop", "apps"
			got, err := run(f, &c.p)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(want, summary(got.Objects)); d != "" {
				t.Errorf("objects (-want +got):\n%s", d)
			}
			cm := got.Objects[1]["data"].(map[string]any)
			if cm["chartVersion"] != c.wantVersion || cm["release"] != "apps/shop" {
				t.Errorf("ConfigMap data = %v, want chart version %s, release apps/shop", cm, c.wantVersion)
			}
			sts := got.Objects[5]["spec"].(map[string]any)
			part := sts["updateStrategy"].(map[string]any)["rollingUpdate"].(map[string]any)["partition"]
			if part != c.partition {
				t.Errorf("partition = %#v, want int64 %d", part, c.partition)
			}
			if sts["replicas"] != int64(3) {
				t.Errorf("replicas = %#v, want int64 3", sts["replicas"])
			}
			image := sts["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)["image"]
			if wantImage := "web:" + c.wantVersion; c.p.Values["image"] == nil && image != wantImage {
				t.Errorf("image = %v, want %s", image, wantImage)
			}
			if v := c.p.Values["image"]; v != nil && image != v {
				t.Errorf("image = %v, want %v", image, v)
			}
		})
	}
}

// A step evaluated again renders again without downloading: the archive is
// kept by (repository, chart, digest) and the index for IndexTTL.
func TestCache(t *testing.T) {
	repo := serveRepo(t, web("1.0.0"), web("1.1.0"))
	f := New(Options{})
	p := func(chart, version string) *Params {
		return &Params{Chart: chart, Repo: repo.URL, Version: version, Release: "shop", Namespace: "apps"}
	}
	for i := 0; i < 3; i++ {
		if _, err := run(f, p("web", "1.0.0")); err != nil {
			t.Fatal(err)
		}
		if _, err := run(f, p("web", "")); err != nil {
			t.Fatal(err)
		}
		if _, err := run(f, p(repo.URL+"/charts/web-1.1.0.tgz", "")); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]int{}
	for _, path := range []string{"/index.yaml", "/charts/web-1.0.0.tgz", "/charts/web-1.1.0.tgz"} {
		got[path] = repo.hitsOf(path)
	}
	// 1.1.0 twice: once through the index, once by its URL (two keys).
	want := map[string]int{"/index.yaml": 1, "/charts/web-1.0.0.tgz": 1, "/charts/web-1.1.0.tgz": 2}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("hits (-want +got):\n%s", d)
	}

	// Another Family shares nothing.
	if _, err := run(New(Options{}), p("web", "1.0.0")); err != nil {
		t.Fatal(err)
	}
	if n := repo.hitsOf("/charts/web-1.0.0.tgz"); n != 2 {
		t.Errorf("a second Family downloaded the archive %d times in all, want 2", n)
	}
}

func TestErrors(t *testing.T) {
	broken := testChart{name: "broken", version: "0.1.0", files: map[string]string{
		"templates/cm.yaml": "{{ fail \"the sky is falling\" }}\n",
	}}
	strict := testChart{name: "strict", version: "0.2.0", files: map[string]string{
		"values.schema.json": `{"type": "object", "properties": {"replicas": {"type": "integer"}}}`,
		"templates/cm.yaml":  "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
	}}
	nokind := testChart{name: "nokind", version: "0.3.0", files: map[string]string{
		"templates/cm.yaml": "metadata: {name: x}\n",
	}}
	repo := serveRepo(t, web("1.0.0"), broken, strict, nokind)
	repo.status["/charts/flaky.tgz"] = 503
	gone := serveRepo(t)
	gone.Close()

	cases := []struct {
		name      string
		p         Params
		permanent bool
		says      []string
	}{
		{name: "chart not found", p: Params{Chart: "nope", Repo: repo.URL}, permanent: true,
			says: []string{`chart "nope" not found in repository ` + repo.URL}},
		{name: "version not found", p: Params{Chart: "web", Repo: repo.URL, Version: "9.9.9"}, permanent: true,
			says: []string{`chart "web" version "9.9.9" not found`, "it has 1.0.0"}},
		{name: "template error", p: Params{Chart: "broken", Repo: repo.URL}, permanent: true,
			says: []string{"chart broken version 0.1.0", "the sky is falling"}},
		{name: "values schema", p: Params{Chart: "strict", Repo: repo.URL, Values: map[string]any{"replicas": "three"}}, permanent: true,
			says: []string{"chart strict version 0.2.0", "replicas", "schema"}},
		{name: "manifest without kind", p: Params{Chart: "nokind", Repo: repo.URL}, permanent: true,
			says: []string{"chart nokind version 0.3.0", "templates/cm.yaml", "no kind"}},
		{name: "archive 404", p: Params{Chart: repo.URL + "/charts/missing.tgz"}, permanent: true,
			says: []string{repo.URL + "/charts/missing.tgz", "404"}},
		{name: "archive 503", p: Params{Chart: repo.URL + "/charts/flaky.tgz"},
			says: []string{repo.URL + "/charts/flaky.tgz", "503"}},
		{name: "repository unreachable", p: Params{Chart: "web", Repo: gone.URL},
			says: []string{gone.URL + "/index.yaml"}},
		{name: "bare name without repo", p: Params{Chart: "web"}, permanent: true, says: []string{"repo is not set"}},
		{name: "no release", p: Params{Chart: "web", Repo: repo.URL, Release: "-"}, permanent: true, says: []string{"release is empty"}},
		{name: "credentials in a URL", p: Params{Chart: "web", Repo: "https://user:s3cret@charts.example"}, permanent: true,
			says: []string{"credentials", "https://user:xxxxx@charts.example"}},
		{name: "bad OCI reference", p: Params{Chart: "oci://registry"}, permanent: true, says: []string{"not an OCI reference"}},
	}
	f := New(Options{})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := c.p
			p.Release, p.Namespace = "shop", "apps"
			if c.p.Release == "-" {
				p.Release = ""
			}
			_, err := run(f, &p)
			if err == nil {
				t.Fatal("render succeeded")
			}
			if got := op.IsPermanent(err); got != c.permanent {
				t.Errorf("permanent = %v, want %v: %v", got, c.permanent, err)
			}
			var oe *op.Error
			if !errors.As(err, &oe) {
				t.Errorf("error %T is not an *op.Error", err)
			}
			for _, s := range c.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error %q shows a password", err)
			}
		})
	}
}

// A destination the fence denies is never reached: by its address in the
// URL, or by what a name resolves to, at dial time.
func TestFence(t *testing.T) {
	repo := serveRepo(t, web("1.0.0"))
	fence, err := netfence.New(context.Background(), netfence.Config{DenyLoopback: true})
	if err != nil {
		t.Fatal(err)
	}
	port := repo.URL[strings.LastIndex(repo.URL, ":"):]
	f := New(Options{Fence: fence})
	for _, chartURL := range []string{
		repo.URL + "/charts/web-1.0.0.tgz",                  // 127.0.0.1: the URL shows it
		"http://localhost" + port + "/charts/web-1.0.0.tgz", // a name: refused when dialled
	} {
		_, err := run(f, &Params{Chart: chartURL, Release: "shop", Namespace: "apps"})
		var denied *netfence.DeniedError
		if !errors.As(err, &denied) || !op.IsPermanent(err) {
			t.Errorf("%s: error %v, want a permanent *netfence.DeniedError", chartURL, err)
		}
		if err != nil && !strings.Contains(err.Error(), "loopback") {
			t.Errorf("%s: error %q does not name the rule", chartURL, err)
		}
	}
	_, err = run(f, &Params{Chart: "web", Repo: repo.URL, Release: "shop", Namespace: "apps"})
	if !op.IsPermanent(err) {
		t.Errorf("repository behind the fence: error %v, want permanent", err)
	}
	if n := repo.total(); n != 0 {
		t.Errorf("the fenced server got %d requests", n)
	}
}

// Downloads are bounded: an archive or an index over the bound fails for
// good, naming the URL and the bound, and is not kept.
func TestDownloadBound(t *testing.T) {
	repo := serveRepo(t, web("1.0.0"))
	archive := int64(len(repo.files["/charts/web-1.0.0.tgz"]))
	index := int64(len(repo.files["/index.yaml"]))
	for _, tc := range []struct {
		name string
		opts Options
		p    Params
		says string
	}{
		{"archive", Options{MaxChartBytes: archive - 1}, Params{Chart: repo.URL + "/charts/web-1.0.0.tgz"},
			"chart archive " + repo.URL + "/charts/web-1.0.0.tgz is larger than"},
		{"index", Options{MaxIndexBytes: index - 1}, Params{Chart: "web", Repo: repo.URL},
			"repository index " + repo.URL + "/index.yaml is larger than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.p.Release, tc.p.Namespace = "shop", "apps"
			_, err := run(New(tc.opts), &tc.p)
			if err == nil || !op.IsPermanent(err) || !strings.Contains(err.Error(), tc.says) {
				t.Errorf("error %v, want a permanent one saying %q", err, tc.says)
			}
		})
	}
	// At the bound exactly, it renders.
	if _, err := run(New(Options{MaxChartBytes: archive}), &Params{Chart: repo.URL + "/charts/web-1.0.0.tgz", Release: "shop", Namespace: "apps"}); err != nil {
		t.Errorf("an archive of exactly MaxChartBytes: %v", err)
	}
}

// A redirect to a destination the fence denies is not followed, and the
// error names where it led.
func TestFenceRedirect(t *testing.T) {
	redirect := httptestRedirect(t, "http://169.254.169.254/latest/meta-data/chart.tgz")
	_, err := run(New(Options{}), &Params{Chart: redirect + "/charts/web-1.0.0.tgz", Release: "shop", Namespace: "apps"})
	var denied *netfence.DeniedError
	if !errors.As(err, &denied) || !op.IsPermanent(err) {
		t.Fatalf("error %v, want a permanent *netfence.DeniedError", err)
	}
	for _, s := range []string{"redirected to http://169.254.169.254/latest/meta-data/chart.tgz", "link-local"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not say %q", err, s)
		}
	}
}

// Renders of one chart at once download it once: they share the download,
// and whoever comes after it finds the cache.
func TestConcurrentRendersDownloadOnce(t *testing.T) {
	tgz := web("1.0.0").tgz(t)
	var (
		mu      sync.Mutex
		hits    int
		arrived = make(chan struct{}, 1)
		release = make(chan struct{})
	)
	srv := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		mu.Lock()
		hits++
		mu.Unlock()
		select {
		case arrived <- struct{}{}:
		default:
		}
		<-release
		_, _ = w.Write(tgz)
	}))
	t.Cleanup(srv.Close)
	f := New(Options{})
	const n = 8
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			_, err := run(f, &Params{Chart: srv.URL + "/web-1.0.0.tgz", Release: "shop", Namespace: "apps"})
			errs <- err
		}()
	}
	<-arrived
	// Let the others reach the download too (those that come later find
	// the cache: either way there is one request).
	time.Sleep(50 * time.Millisecond)
	close(release)
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if hits != 1 {
		t.Errorf("%d downloads, want 1", hits)
	}
}
