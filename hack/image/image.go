package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"sigs.k8s.io/yaml"
)

// Where things are in the image. The chart runs the container with
// runAsUser/runAsGroup 65532 and a read-only root file system.
const (
	binaryPath = "/usr/local/bin/stepflow"
	certsPath  = "/etc/ssl/certs/ca-certificates.crt"
	uid        = 65532
	homeDir    = "/home/nonroot"
	// versionPkg holds the variables `stepflow version` prints.
	versionPkg = "github.com/stepflow-dev/stepflow/pkg/cli"
)

// Meta is what the image says about itself: its name, the platform and the
// labels.
type Meta struct {
	// Ref is the image's name, repository:tag; only its tag is in the
	// image (org.opencontainers.image.version), so that the image pushed
	// to another registry is the same image.
	Ref name.Tag
	// Arch is the GOARCH of the binary and the image's architecture.
	Arch string
	// Revision is the source commit, empty when unknown.
	Revision string
	// Created is the creation time written into the config and every file
	// of the layers (SOURCE_DATE_EPOCH; the Unix epoch by default), so
	// that one binary always gives one digest.
	Created time.Time
}

// ChartImage reads the image the chart at dir installs by default:
// values.yaml's image.repository and image.tag, else the chart's
// appVersion.
func ChartImage(dir string) (repository, tag string, err error) {
	var values struct {
		Image struct {
			Repository string `json:"repository"`
			Tag        string `json:"tag"`
		} `json:"image"`
	}
	var chart struct {
		AppVersion string `json:"appVersion"`
	}
	for file, into := range map[string]any{"values.yaml": &values, "Chart.yaml": &chart} {
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			return "", "", fmt.Errorf("the chart's image: %w", err)
		}
		if err := yaml.Unmarshal(b, into); err != nil {
			return "", "", fmt.Errorf("the chart's image: %s: %w", filepath.Join(dir, file), err)
		}
	}
	tag = values.Image.Tag
	if tag == "" {
		tag = chart.AppVersion
	}
	if values.Image.Repository == "" || tag == "" {
		return "", "", fmt.Errorf("the chart's image: %s names no image.repository, or neither image.tag nor appVersion", dir)
	}
	return values.Image.Repository, tag, nil
}

// BuildOptions say how the binary is built.
type BuildOptions struct {
	// Dir is the module's root; the binary is built from ./cmd/stepflow.
	Dir string
	// Arch is the GOARCH; GOOS is linux.
	Arch string
	// Version and Commit are what `stepflow version` prints.
	Version, Commit string
	// Go is the go command.
	Go string
}

// BuildBinary builds a static stepflow binary for linux/Arch at out: no cgo,
// no paths of this machine, no symbol table.
func BuildBinary(ctx context.Context, o BuildOptions, out string) error {
	ldflags := "-s -w -X " + versionPkg + ".buildVersion=" + o.Version
	if o.Commit != "" {
		ldflags += " -X " + versionPkg + ".buildCommit=" + o.Commit
	}
	cmd := exec.CommandContext(ctx, o.Go, "build", "-trimpath", "-ldflags", ldflags, "-o", out, "./cmd/stepflow")
	cmd.Dir = o.Dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+o.Arch)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("building the stepflow binary for linux/%s: %w", o.Arch, err)
	}
	return nil
}

// Assemble builds the image: an empty base, a layer with the CA
// certificates and the non-root user, a layer with the binary as the
// entrypoint.
func Assemble(binary, caCerts []byte, m Meta) (v1.Image, error) {
	at := m.Created.UTC()
	base, err := layer([]file{
		{name: "etc/", mode: 0o755},
		{name: "etc/group", mode: 0o644, data: []byte(fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", uid))},
		{name: "etc/passwd", mode: 0o644, data: []byte(fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:%s:/sbin/nologin\n", uid, uid, homeDir))},
		{name: "etc/ssl/", mode: 0o755},
		{name: "etc/ssl/certs/", mode: 0o755},
		{name: strings.TrimPrefix(certsPath, "/"), mode: 0o644, data: caCerts},
		{name: "home/", mode: 0o755},
		{name: strings.TrimPrefix(homeDir, "/") + "/", mode: 0o700, owner: uid},
		{name: "tmp/", mode: 0o1777},
	}, at)
	if err != nil {
		return nil, fmt.Errorf("the base layer: %w", err)
	}
	app, err := layer([]file{
		{name: "usr/", mode: 0o755},
		{name: "usr/local/", mode: 0o755},
		{name: "usr/local/bin/", mode: 0o755},
		{name: strings.TrimPrefix(binaryPath, "/"), mode: 0o755, data: binary},
	}, at)
	if err != nil {
		return nil, fmt.Errorf("the binary's layer: %w", err)
	}

	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.AppendLayers(img, base, app)
	if err != nil {
		return nil, fmt.Errorf("adding the layers: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Architecture = m.Arch
	cf.OS = "linux"
	cf.Created = v1.Time{Time: at}
	cf.Config = v1.Config{
		Entrypoint: []string{binaryPath},
		User:       fmt.Sprintf("%d:%d", uid, uid),
		WorkingDir: homeDir,
		Env: []string{
			"PATH=/usr/local/bin:/usr/bin:/bin",
			"HOME=" + homeDir,
			"SSL_CERT_FILE=" + certsPath,
		},
		Labels: labels(m),
	}
	cf.History = nil
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("the image config: %w", err)
	}
	return img, nil
}

func labels(m Meta) map[string]string {
	l := map[string]string{
		"org.opencontainers.image.title":       "stepflow",
		"org.opencontainers.image.description": "Stepflow, a CUE-programmable workflow step engine for Kubernetes",
		"org.opencontainers.image.source":      "https://github.com/stepflow-dev/stepflow",
		"org.opencontainers.image.url":         "https://github.com/stepflow-dev/stepflow",
		"org.opencontainers.image.version":     m.Ref.TagStr(),
		"org.opencontainers.image.created":     m.Created.UTC().Format(time.RFC3339),
	}
	if m.Revision != "" {
		l["org.opencontainers.image.revision"] = m.Revision
	}
	return l
}

// file is one entry of a layer; a name ending in / is a directory.
type file struct {
	name  string
	mode  int64
	owner int
	data  []byte
}

// layer returns a gzip-compressed OCI layer of files, compressed once here
// (go-containerregistry would compress again for the digest, the layout and
// each push).
func layer(files []file, at time.Time) (v1.Layer, error) {
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	for _, f := range files {
		h := &tar.Header{
			Name: f.name, Mode: f.mode, Uid: f.owner, Gid: f.owner,
			ModTime: at, Format: tar.FormatPAX,
		}
		if strings.HasSuffix(f.name, "/") {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(f.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("%s: %w", f.name, err)
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, fmt.Errorf("%s: %w", f.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.DefaultCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(raw.Bytes()); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	b := gz.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	}, tarball.WithMediaType(types.OCILayer))
}

// WriteArchive writes img as one tar file at out that is both an OCI image
// layout (oci-layout, index.json, blobs/) and a `docker save` archive
// (manifest.json naming the same blobs), as `docker save` itself writes
// since Docker 25: `docker load`, `podman load`, `kind load
// image-archive`, `ctr images import` and skopeo's oci-archive: read it.
func WriteArchive(img v1.Image, ref name.Tag, out string) error {
	dir, err := os.MkdirTemp("", "stepflow-image-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("the OCI layout: %w", err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": ref.TagStr(),
		"io.containerd.image.name":          ref.String(),
	})); err != nil {
		return fmt.Errorf("the OCI layout: %w", err)
	}

	m, err := img.Manifest()
	if err != nil {
		return err
	}
	blob := func(h v1.Hash) string { return path.Join("blobs", h.Algorithm, h.Hex) }
	docker := []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}{{Config: blob(m.Config.Digest), RepoTags: []string{ref.String()}}}
	for _, l := range m.Layers {
		docker[0].Layers = append(docker[0].Layers, blob(l.Digest))
	}
	dm, err := json.Marshal(docker)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), dm, 0o644); err != nil {
		return err
	}
	return tarDir(dir, out)
}

// tarDir writes the regular files and directories under dir, sorted, to a
// tar file at out, through a temporary file renamed at the end.
func tarDir(dir, out string) error {
	var names []string
	if err := filepath.WalkDir(dir, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			names = append(names, p)
		}
		return nil
	}); err != nil {
		return err
	}
	sort.Strings(names)
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), ".stepflow-image-*.tar")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	tw := tar.NewWriter(tmp)
	for _, p := range names {
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		h := &tar.Header{Name: filepath.ToSlash(rel), Mode: 0o644, Typeflag: tar.TypeReg, Size: fi.Size(), ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
		if fi.IsDir() {
			h.Name += "/"
			h.Mode, h.Typeflag, h.Size = 0o755, tar.TypeDir, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if !fi.IsDir() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, f)
			f.Close()
			if err != nil {
				return fmt.Errorf("%s: %w", rel, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return fmt.Errorf("writing %s: %w", out, err)
	}
	return nil
}
