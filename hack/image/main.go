// Command image builds Stepflow's container image without a Docker daemon
// (`make image`): a static linux binary of ./cmd/stepflow on an empty base
// with the build machine's CA certificates and a non-root user (65532),
// written as an OCI layout tar that is also a `docker save` archive
// (bin/stepflow-image.tar), and pushed to a registry when --registry names
// one. The image's name defaults to the one the chart installs
// (charts/stepflow: image.repository, and image.tag or appVersion), so the
// chart and the image cannot disagree; it prints that name on stdout.
//
// The Dockerfile at the root builds the same image with Docker. This is a
// module of its own: go-containerregistry needs newer OpenTelemetry and
// docker/cli modules than the controller links, and the controller's
// build should not move for a build tool. Run it from the repository's
// root with `make image`, or `go -C hack/image run . --dir $PWD`.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Options are the command's flags.
type Options struct {
	// Dir is the module's root (the chart is read from Dir/charts/stepflow).
	Dir string
	// Out is the archive written ("" writes none).
	Out string
	// Registry, host[:port]/repository, is where the image is pushed
	// instead of the chart's repository ("" pushes nowhere).
	Registry string
	// Tag overrides the chart's tag.
	Tag string
	// Arch is the GOARCH of the binary and the image.
	Arch string
	// Binary is a linux binary to use instead of building one.
	Binary string
	// CACerts is the PEM bundle put at /etc/ssl/certs/ca-certificates.crt.
	CACerts string
	Go      string
	// Insecure pushes over plain HTTP.
	Insecure bool
}

// Result is what Run made.
type Result struct {
	Ref    name.Tag
	Digest v1.Hash
	Pushed bool
}

func main() {
	o := Options{Dir: ".", Go: "go"}
	flag.StringVar(&o.Dir, "dir", o.Dir, "the module's root")
	flag.StringVar(&o.Out, "o", "bin/stepflow-image.tar", "the OCI layout / docker archive to write (\"\": none)")
	flag.StringVar(&o.Registry, "registry", os.Getenv("REGISTRY"), "push to this host[:port]/repository (default $REGISTRY; empty: no push)")
	flag.StringVar(&o.Tag, "tag", "", "the image tag (default: the chart's image.tag, else its appVersion)")
	flag.StringVar(&o.Arch, "arch", runtime.GOARCH, "GOARCH of the binary and the image")
	flag.StringVar(&o.Binary, "binary", "", "a linux binary to put in the image instead of building ./cmd/stepflow")
	flag.StringVar(&o.CACerts, "ca-certs", "/etc/ssl/certs/ca-certificates.crt", "the CA bundle to put in the image")
	flag.BoolVar(&o.Insecure, "insecure", false, "push over plain HTTP")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	r, err := Run(ctx, o, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
	fmt.Println(r.Ref.String())
}

// Run builds the image, writes the archive and pushes it as o says; it
// reports what it did on log.
func Run(ctx context.Context, o Options, log io.Writer) (*Result, error) {
	repository, tag, err := ChartImage(filepath.Join(o.Dir, "charts", "stepflow"))
	if err != nil {
		return nil, err
	}
	if o.Tag != "" {
		tag = o.Tag
	}
	if o.Registry != "" {
		repository = o.Registry
	}
	var nameOpts []name.Option
	if o.Insecure {
		nameOpts = append(nameOpts, name.Insecure)
	}
	ref, err := name.NewTag(repository+":"+tag, nameOpts...)
	if err != nil {
		return nil, fmt.Errorf("image name %s:%s: %w", repository, tag, err)
	}
	created, err := sourceDate()
	if err != nil {
		return nil, err
	}

	rev := revision(ctx, o.Dir)
	binary := o.Binary
	if binary == "" {
		tmp, err := os.MkdirTemp("", "stepflow-binary-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		binary = filepath.Join(tmp, "stepflow")
		start := time.Now()
		if err := BuildBinary(ctx, BuildOptions{Dir: o.Dir, Arch: o.Arch, Version: tag, Commit: rev, Go: o.Go}, binary); err != nil {
			return nil, err
		}
		fmt.Fprintf(log, "built the linux/%s binary in %s\n", o.Arch, time.Since(start).Round(time.Second))
	}
	bin, err := os.ReadFile(binary)
	if err != nil {
		return nil, fmt.Errorf("the binary: %w", err)
	}
	certs, err := os.ReadFile(o.CACerts)
	if err != nil {
		return nil, fmt.Errorf("the CA certificates: %w", err)
	}

	img, err := Assemble(bin, certs, Meta{Ref: ref, Arch: o.Arch, Revision: rev, Created: created})
	if err != nil {
		return nil, err
	}
	digest, err := img.Digest()
	if err != nil {
		return nil, err
	}
	r := &Result{Ref: ref, Digest: digest}
	if o.Out != "" {
		if err := WriteArchive(img, ref, o.Out); err != nil {
			return nil, err
		}
		fmt.Fprintf(log, "wrote %s (linux/%s, %s) to %s\n  docker load -i %[4]s   or   kind load image-archive %[4]s\n", ref, o.Arch, digest, o.Out)
	}
	if o.Registry != "" {
		if err := remote.Write(ref, img, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
			return nil, fmt.Errorf("pushing %s: %w", ref, err)
		}
		r.Pushed = true
		fmt.Fprintf(log, "pushed %s@%s\n  helm install stepflow charts/stepflow --set image.repository=%s --set image.tag=%s\n",
			ref, digest, ref.Context().Name(), tag)
	} else {
		fmt.Fprintf(log, "the chart's default image (charts/stepflow/values.yaml image.repository, Chart.yaml appVersion)\n")
	}
	return r, nil
}

// sourceDate is SOURCE_DATE_EPOCH, or the Unix epoch.
func sourceDate() (time.Time, error) {
	s := os.Getenv("SOURCE_DATE_EPOCH")
	if s == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	sec, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q: not seconds since the epoch", s)
	}
	return time.Unix(sec, 0).UTC(), nil
}

// revision is the commit checked out in dir, empty if git cannot say.
func revision(ctx context.Context, dir string) string {
	cmd := exec.CommandContext(ctx, "git", "rev-parse", "HEAD")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}
