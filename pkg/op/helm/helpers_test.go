package helm

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	nethttp "net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/stepflow-dev/stepflow/pkg/op"
)

// testChart is a chart the tests package: Chart.yaml from name and
// version, and files by their path in the chart.
type testChart struct {
	name, version string
	files         map[string]string
}

// tgz packs c as `helm package` does: every file under a directory named
// after the chart.
func (c testChart) tgz(t testing.TB) []byte {
	t.Helper()
	files := map[string]string{"Chart.yaml": fmt.Sprintf("apiVersion: v2\nname: %s\nversion: %s\n", c.name, c.version)}
	for k, v := range c.files {
		files[k] = v
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, n := range names {
		body := []byte(files[n])
		if err := tw.WriteHeader(&tar.Header{Name: c.name + "/" + n, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// chartRepo is an httptest chart repository: index.yaml and the archives
// under charts/, with a count of the requests for each path.
type chartRepo struct {
	*httptest.Server

	mu     sync.Mutex
	hits   map[string]int
	files  map[string][]byte
	status map[string]int // a path that answers with this status
}

func serveRepo(t testing.TB, charts ...testChart) *chartRepo {
	t.Helper()
	r := &chartRepo{hits: map[string]int{}, files: map[string][]byte{}, status: map[string]int{}}
	var index strings.Builder
	index.WriteString("apiVersion: v1\nentries:\n")
	byName := map[string][]testChart{}
	for _, c := range charts {
		byName[c.name] = append(byName[c.name], c)
	}
	for name, cs := range byName {
		fmt.Fprintf(&index, "  %s:\n", name)
		for _, c := range cs {
			b := c.tgz(t)
			file := fmt.Sprintf("charts/%s-%s.tgz", c.name, c.version)
			r.files["/"+file] = b
			sum := sha256.Sum256(b)
			fmt.Fprintf(&index, "  - apiVersion: v2\n    name: %s\n    version: %s\n    digest: %s\n    urls: [%s]\n", c.name, c.version, hex.EncodeToString(sum[:]), file)
		}
	}
	r.files["/index.yaml"] = []byte(index.String())
	r.Server = httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, req *nethttp.Request) {
		r.mu.Lock()
		r.hits[req.URL.Path]++
		b, ok := r.files[req.URL.Path]
		code := r.status[req.URL.Path]
		r.mu.Unlock()
		switch {
		case code != 0:
			w.WriteHeader(code)
		case !ok:
			nethttp.NotFound(w, req)
		default:
			_, _ = w.Write(b)
		}
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *chartRepo) hitsOf(path string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.hits[path]
}

func (r *chartRepo) total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, h := range r.hits {
		n += h
	}
	return n
}

// run calls helm.render of f with p.
func run(f *Family, p *Params) (Returns, error) {
	call := &op.Call{Name: op.Name{Provider: "helm", Do: "render"}, Path: "render", Op: f.Ops()["render"], Params: p}
	res, err := op.Direct.Run(context.Background(), call)
	if err != nil {
		return Returns{}, err
	}
	return res.Returns.(Returns), nil
}

// summary is kind/namespace/name of each object, in order.
func summary(objs []map[string]any) []string {
	var out []string
	for _, o := range objs {
		md, _ := o["metadata"].(map[string]any)
		ns, _ := md["namespace"].(string)
		out = append(out, fmt.Sprintf("%s/%s/%s", o["kind"], ns, md["name"]))
	}
	return out
}

// web is the chart most tests render: a StatefulSet whose partition is
// the value abmRolloutPartition, and what an install drops beside it.
func web(version string) testChart {
	return testChart{name: "web", version: version, files: map[string]string{
		"values.yaml": "image: web:" + version + "\nreplicas: 3\nabmRolloutPartition: 0\n",
		"templates/sts.yaml": `apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: {{ .Release.Name }}
spec:
  replicas: {{ .Values.replicas }}
  updateStrategy:
    type: RollingUpdate
    rollingUpdate:
      partition: {{ .Values.abmRolloutPartition }}
  template:
    spec:
      containers:
      - name: web
        image: {{ .Values.image }}
`,
		"templates/svc.yaml": `apiVersion: v1
kind: Service
metadata:
  name: {{ .Release.Name }}
spec:
  ports:
  - port: 80
---
# only a comment
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ .Release.Name }}
`,
		"templates/cm.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-config
  namespace: pinned
data:
  chartVersion: {{ .Chart.Version | quote }}
  release: {{ .Release.Namespace }}/{{ .Release.Name }}
`,
		"templates/role.yaml": `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: {{ .Release.Name }}-reader
rules: []
`,
		"templates/widget.yaml": `apiVersion: example.com/v1
kind: Widget
metadata:
  name: {{ .Release.Name }}
---
apiVersion: example.com/v1
kind: Gadget
metadata:
  name: {{ .Release.Name }}
`,
		"crds/widgets.yaml": `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Cluster
  names: {kind: Widget, plural: widgets}
`,
		"templates/tests/ping.yaml": `apiVersion: v1
kind: Pod
metadata:
  name: {{ .Release.Name }}-ping
  annotations:
    "helm.sh/hook": test
`,
		"templates/NOTES.txt":    "Thanks for installing {{ .Release.Name }}.\n",
		"templates/_helpers.tpl": `{{- define "web.name" -}}web{{- end -}}`,
	}}
}

func isPermanent(err error) bool { return op.IsPermanent(err) }

// httptestRedirect serves a redirect to to on every path.
func httptestRedirect(t testing.TB, to string) string {
	t.Helper()
	srv := httptest.NewServer(nethttp.RedirectHandler(to, nethttp.StatusFound))
	t.Cleanup(srv.Close)
	return srv.URL
}
