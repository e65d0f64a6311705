package main

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"sigs.k8s.io/yaml"
)

const root = "../.."

// TestImage builds the static binary once (as make image does), then the
// image twice from it: pushed to a registry (a real one, in process) and
// under the chart's name into an archive. It opens the archive both as an
// OCI layout and as a docker archive, checks the config, the files and
// that the binary in the layer runs, and that the pushed image is the same
// image.
func TestImage(t *testing.T) {
	ctx := context.Background()
	tmp := t.TempDir()
	built := filepath.Join(tmp, "built")
	if err := BuildBinary(ctx, BuildOptions{Dir: root, Arch: runtime.GOARCH, Version: "0.0.0-test", Commit: "abc123", Go: "go"}, built); err != nil {
		t.Fatal(err)
	}
	const certs = "/etc/ssl/certs/ca-certificates.crt"
	hostCerts, err := os.ReadFile(certs)
	if err != nil {
		t.Skipf("no CA bundle on this machine to put in the image: %v", err)
	}

	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	pushTo := strings.TrimPrefix(srv.URL, "http://") + "/stepflow/controller"
	var stderr bytes.Buffer
	pushed, err := Run(ctx, Options{Dir: root, Registry: pushTo, Tag: "0.0.0-test", Arch: runtime.GOARCH, Binary: built, CACerts: certs}, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if want := pushTo + ":0.0.0-test"; pushed.Ref.String() != want || !pushed.Pushed {
		t.Errorf("pushed %v as %s, want %s", pushed.Pushed, pushed.Ref, want)
	}

	archive := filepath.Join(tmp, "bin", "stepflow-image.tar")
	r, err := Run(ctx, Options{Dir: root, Out: archive, Tag: "0.0.0-test", Arch: runtime.GOARCH, Binary: built, CACerts: certs}, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	repository, _, err := ChartImage(filepath.Join(root, "charts", "stepflow"))
	if err != nil {
		t.Fatal(err)
	}
	if want := repository + ":0.0.0-test"; r.Ref.String() != want || r.Pushed {
		t.Errorf("archive image %s (pushed %v), want the chart's repository %s", r.Ref, r.Pushed, want)
	}
	if r.Digest != pushed.Digest {
		t.Errorf("one binary gave two images: %s in the archive, %s pushed", r.Digest, pushed.Digest)
	}

	img := fromLayout(t, archive, r.Ref)
	if d := digest(t, img); d != r.Digest {
		t.Errorf("the archive's OCI layout holds %s, want %s", d, r.Digest)
	}
	dockerImg, err := tarball.ImageFromPath(archive, &r.Ref)
	if err != nil {
		t.Fatalf("the archive as a docker archive: %v", err)
	}
	checkSame(t, "the docker archive", dockerImg, img)
	remoteImg, err := remote.Image(pushed.Ref)
	if err != nil {
		t.Fatalf("pulling the pushed image: %v", err)
	}
	if d := digest(t, remoteImg); d != r.Digest {
		t.Errorf("the registry holds %s, want %s", d, r.Digest)
	}
	checkSame(t, "the pushed image", remoteImg, img)

	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture != runtime.GOARCH {
		t.Errorf("platform %s/%s, want linux/%s", cf.OS, cf.Architecture, runtime.GOARCH)
	}
	if diff := cmp.Diff([]string{"/usr/local/bin/stepflow"}, cf.Config.Entrypoint); diff != "" || cf.Config.Cmd != nil {
		t.Errorf("entrypoint (-want +got):\n%s cmd %q", diff, cf.Config.Cmd)
	}
	if cf.Config.User != "65532:65532" {
		t.Errorf("user %q, want 65532:65532", cf.Config.User)
	}
	for k, want := range map[string]string{
		"org.opencontainers.image.version": "0.0.0-test",
		"org.opencontainers.image.source":  "https://github.com/stepflow-dev/stepflow",
		"org.opencontainers.image.title":   "stepflow",
		"org.opencontainers.image.created": "1970-01-01T00:00:00Z",
	} {
		if got := cf.Config.Labels[k]; got != want {
			t.Errorf("label %s = %q, want %q", k, got, want)
		}
	}

	files := flatten(t, img)
	if got := files["etc/ssl/certs/ca-certificates.crt"]; !bytes.Equal(got.data, hostCerts) {
		t.Errorf("the image's CA bundle (%d bytes) is not this machine's (%d bytes)", len(got.data), len(hostCerts))
	}
	if !regexp.MustCompile(`(?m)^nonroot:x:65532:65532:`).Match(files["etc/passwd"].data) {
		t.Errorf("etc/passwd has no user 65532:\n%s", files["etc/passwd"].data)
	}
	if tmpDir := files["tmp"]; tmpDir.mode != 0o1777 {
		t.Errorf("tmp mode %o, want 1777", tmpDir.mode)
	}
	bin := files["usr/local/bin/stepflow"]
	if bin.mode != 0o755 {
		t.Errorf("the binary's mode %o, want 755", bin.mode)
	}
	extracted := filepath.Join(tmp, "stepflow")
	if err := os.WriteFile(extracted, bin.data, 0o755); err != nil {
		t.Fatal(err)
	}
	checkStatic(t, extracted)
	out, err := exec.Command(extracted, "version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "stepflow 0.0.0-test\ncommit: abc123\n") {
		t.Errorf("the image's binary, version: %v\n%s", err, out)
	}
}

// TestImageNameIsTheChartsDefault: the image make image names by default
// is the one helm template of the chart's defaults installs.
func TestImageNameIsTheChartsDefault(t *testing.T) {
	repository, tag, err := ChartImage(filepath.Join(root, "charts", "stepflow"))
	if err != nil {
		t.Fatal(err)
	}
	helm := os.Getenv("HELM")
	if helm == "" {
		helm = filepath.Join(root, "bin", "helm")
	}
	home := t.TempDir()
	cmd := exec.Command(helm, "template", "stepflow", filepath.Join(root, "charts", "stepflow"))
	cmd.Env = append(os.Environ(), "HELM_CONFIG_HOME="+home, "HELM_CACHE_HOME="+home, "HELM_DATA_HOME="+home)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm template (make helm builds bin/helm): %v", err)
	}
	images := map[string]bool{}
	for _, doc := range strings.Split(string(out), "\n---\n") {
		var obj struct {
			Kind string `json:"kind"`
			Spec struct {
				Template struct {
					Spec struct {
						Containers []struct {
							Image string `json:"image"`
						} `json:"containers"`
					} `json:"spec"`
				} `json:"template"`
			} `json:"spec"`
		}
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			t.Fatalf("helm template: %v\n%s", err, doc)
		}
		for _, c := range obj.Spec.Template.Spec.Containers {
			images[obj.Kind+" "+c.Image] = true
		}
	}
	want := map[string]bool{"Deployment " + repository + ":" + tag: true}
	if diff := cmp.Diff(want, images); diff != "" {
		t.Errorf("the chart's images (-make image +helm template):\n%s", diff)
	}
}

// fromLayout unpacks the archive and opens it as an OCI image layout; its
// one image must carry ref's names.
func fromLayout(t *testing.T, archive string, ref name.Tag) v1.Image {
	t.Helper()
	dir := t.TempDir()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.FromSlash(h.Name))
		if h.Typeflag == tar.TypeDir {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatalf("the archive as an OCI layout: %v", err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Manifests) != 1 {
		t.Fatalf("the layout's index has %d manifests, want 1", len(m.Manifests))
	}
	want := map[string]string{"org.opencontainers.image.ref.name": ref.TagStr(), "io.containerd.image.name": ref.String()}
	if diff := cmp.Diff(want, m.Manifests[0].Annotations); diff != "" {
		t.Errorf("the layout's annotations (-want +got):\n%s", diff)
	}
	img, err := idx.Image(m.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// checkSame: img has want's config and layers; a docker archive has no
// manifest of its own, so the manifest digests are compared elsewhere.
func checkSame(t *testing.T, what string, img, want v1.Image) {
	t.Helper()
	ids := func(img v1.Image) []string {
		cfg, err := img.ConfigName()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		layers, err := img.Layers()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		ids := []string{"config " + cfg.String()}
		for _, l := range layers {
			d, err := l.Digest()
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			ids = append(ids, "layer "+d.String())
		}
		return ids
	}
	if diff := cmp.Diff(ids(want), ids(img)); diff != "" {
		t.Errorf("%s is not the image built (-built +%s):\n%s", what, what, diff)
	}
}

func digest(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

type entry struct {
	mode int64
	data []byte
}

// flatten reads the image's file system, as a container sees it.
func flatten(t *testing.T, img v1.Image) map[string]entry {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	files := map[string]entry{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[strings.TrimSuffix(h.Name, "/")] = entry{mode: h.Mode, data: b}
	}
}

// checkStatic: the binary asks for no dynamic loader, so it runs on an
// empty base.
func checkStatic(t *testing.T, path string) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatalf("the image's binary: %v", err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("the image's binary is dynamically linked (it has an interpreter)")
		}
	}
}
