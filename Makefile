# Stepflow. `make test` runs every test; `make help` lists the targets.
GO ?= go
export GOFLAGS ?= -buildvcs=false

.PHONY: help test unit control-plane helm chromium generate build bench vet run fuzz ui ui-test

# The packages whose tests also run with the race detector in make test:
# the engine and the evaluator run steps concurrently, the journal is
# written from them.
RACE_PKGS := ./pkg/engine/... ./pkg/eval/... ./pkg/journal/...

help:
	@echo "make test           unit + envtest integration tests (builds the control plane first)"
	@echo "make run            local control plane + controller + REST API + definitions + an example run (Ctrl-C stops)"
	@echo "                    EXAMPLE=gray-release: a partition canary promoted, then one rolled back"
	@echo "                    API_LISTEN=127.0.0.1:PORT: where the REST API listens (default 127.0.0.1:8080, else a free port)"
	@echo "                    AUTO_APPROVE=1: approve the demo's approval step for you (it waits for the printed resume command)"
	@echo "make build          build bin/stepflow"
	@echo "make ui             build the web UI into web/dist (npm ci first when needed); make build then embeds it"
	@echo "make chromium       install Debian's chromium for the browser tests (e2e/browser) when missing"
	@echo "make ui-test        the web UI's Vitest tests, and its size budget checked on a build outside web/dist (part of make test)"
	@echo "make image          the container image, no Docker needed: bin/stepflow-image.tar (OCI layout + docker archive)"
	@echo "                    REGISTRY=host/repo: push it there too; GOARCH=arm64: another architecture; prints the image name"
	@echo "make bench          evaluator and engine benchmarks"
	@echo "make fuzz           run each fuzz target for FUZZTIME (default 60s); crashers land in testdata/fuzz"
	@echo "make e2e            the Ginkgo end-to-end suite alone, verbose"
	@echo "make load           load test: 1000 five-step runs against a local control plane"
	@echo "make generate       regenerate deepcopy, CRDs (controller-gen) and the chart's step definitions"
	@echo "make docs           regenerate docs/ops.md and docs/definitions.md (make test fails when they are stale)"
	@echo "make control-plane  build/cache kube-apiserver, etcd, kubectl under ~/.cache/stepflow"
	@echo "make helm           build/cache bin/helm (the chart tests run it)"

# Builds (once; cached under $HOME/.cache/stepflow) the kube-apiserver, etcd
# and kubectl that envtest runs.
control-plane:
	@hack/control-plane.sh >/dev/null

# Installs Debian's chromium package (apt-get, as root or with sudo) for
# the browser tests when /usr/bin/chromium is missing; hack/chromium.sh
# prints the browser's path.
chromium:
	@hack/chromium.sh >/dev/null

# Links a helm v3 from PATH, or builds one (once) into bin/helm.
helm:
	@hack/helm.sh >/dev/null

# The browser tests (e2e/browser) drive the UI the binary embeds in
# Chromium: make ui builds it first (the tree stays clean), and
# hack/chromium.sh installs Debian's chromium when it is missing.
test: control-plane helm chromium ui
	$(GO) vet ./...
	KUBEBUILDER_ASSETS="$$(hack/control-plane.sh)" $(GO) test -count=1 $$($(GO) list ./... | grep -v -e /pkg/engine -e /pkg/eval -e /pkg/journal)
	KUBEBUILDER_ASSETS="$$(hack/control-plane.sh)" $(GO) test -count=1 -race $(RACE_PKGS)
	$(GO) -C hack/image vet ./... && $(GO) -C hack/image test -count=1 ./...
	$(MAKE) ui-test

unit: helm
	$(GO) test -count=1 $$($(GO) list ./... | grep -v -e /e2e)

vet:
	$(GO) vet ./...

# The web UI (web/, docs/ui.md). npm ci runs again only when the lockfile
# changed; `go build` never needs Node (a binary built before make ui
# serves a placeholder page). web/dist is ignored but for its .keep.
web/node_modules/.package-lock.json: web/package-lock.json web/package.json
	cd web && npm ci --no-audit --no-fund
	@touch $@

ui: web/node_modules/.package-lock.json
	cd web && npm run build
	touch web/dist/.keep
	cd web && node scripts/size.mjs dist

ui-test: web/node_modules/.package-lock.json
	cd web && npx tsc --noEmit && npx vitest run
	d="$$(mktemp -d)" && trap 'rm -rf "$$d"' EXIT && cd web && npx vite build --logLevel warn --outDir "$$d" --emptyOutDir && node scripts/size.mjs "$$d"

# `stepflow version` prints these; set VERSION to name a release.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X github.com/stepflow-dev/stepflow/pkg/cli.buildVersion=$(VERSION) -X github.com/stepflow-dev/stepflow/pkg/cli.buildCommit=$(COMMIT)

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/stepflow ./cmd/stepflow

# The controller's image (hack/image; the Dockerfile builds the same with
# Docker): a static binary on an empty base with CA certificates, as user
# 65532, named as the chart installs it (values.yaml image.repository,
# Chart.yaml appVersion). It prints that name; REGISTRY=host/repo pushes
# it there under the same tag. GOARCH= keeps the tool itself for this host;
# hack/image is a module of its own (go-containerregistry's requirements
# stay out of the controller's), so make test runs its test by name.
.PHONY: image
IMAGE_ARCH ?= $(or $(GOARCH),$(shell GOARCH= $(GO) env GOARCH))
REGISTRY ?=
image:
	GOARCH= $(GO) -C hack/image run . --dir $(CURDIR) -o $(CURDIR)/bin/stepflow-image.tar --arch $(IMAGE_ARCH) --registry "$(REGISTRY)"

generate:
	hack/generate.sh
	$(GO) run ./hack/gendefs

# The generated reference: docs/ops.md (every stdlib op, its parameters,
# returns and class) and docs/definitions.md (every shipped definition's
# parameters). hack/gendocs' test fails when they are stale.
.PHONY: docs
docs:
	$(GO) run ./hack/gendocs

# Fuzzing: go test runs every target over its seeds (make test does); this
# runs each one for FUZZTIME. Keep every crasher it writes under the
# package's testdata/fuzz/<Target>/ as a seed, and fix the cause.
FUZZTIME ?= 60s
FUZZ_TARGETS := ./pkg/eval/:FuzzCondition ./pkg/eval/:FuzzValueFrom ./pkg/eval/:FuzzTemplate ./pkg/engine/:FuzzTick

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "== $${t#*:} ($(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$${t#*:}\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 5s $${t%%:*}; \
	done

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./pkg/eval/ ./pkg/engine/ ./pkg/op/component/ ./pkg/op/helm/

# One command, no cluster: a local etcd and kube-apiserver, the CRDs, the
# shipped definitions, the controller, the REST API (stepflow server,
# --auth none on loopback; it prints a curl once ready) and an example run
# with live progress. EXAMPLE=gray-release runs the README's gray release
# instead; API_LISTEN moves the REST API. The demo waits for you to
# approve (it prints the command); AUTO_APPROVE=1 approves it for you.
# The binary embeds the web UI, built first, at the REST API's address.
EXAMPLE ?=
API_LISTEN ?=
AUTO_APPROVE ?=
run: control-plane ui build
	KUBEBUILDER_ASSETS="$$(hack/control-plane.sh)" bin/stepflow local $(if $(EXAMPLE),--example $(EXAMPLE)) $(if $(API_LISTEN),--api-listen $(API_LISTEN)) $(if $(AUTO_APPROVE),--auto-approve)

# The end-to-end suites alone (make test runs them too): the real binary, a
# local control plane, the controller as its own process; verbose Ginkgo.
# e2e/browser drives the built UI in Chromium.
.PHONY: e2e
e2e: control-plane chromium ui
	KUBEBUILDER_ASSETS="$$(hack/control-plane.sh)" $(GO) test -count=1 -v ./e2e/... -args -ginkgo.v

# Load test: a local control plane, the controller as its own process and
# 1000 five-step runs; prints throughput, latencies, the controller's CPU,
# peak RSS and API requests per run. hack/load/main.go lists its flags.
.PHONY: load
load: control-plane
	KUBEBUILDER_ASSETS="$$(hack/control-plane.sh)" $(GO) run ./hack/load -n 1000
