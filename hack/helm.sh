#!/usr/bin/env bash
# Ensures a Helm 3 binary at ./bin/helm, which the chart tests run, and
# prints its path. Running it again does nothing:
#   - a helm v3 already on PATH is linked as bin/helm;
#   - otherwise helm $HELM_VERSION is built from the Go module proxy into
#     $HOME/.cache/stepflow/helm-$HELM_VERSION/ the first time (a cold
#     build, module downloads included, takes about two and a half minutes
#     on two cores) and linked as bin/helm; a fresh clone reuses the cache.
# Helm builds in its own module, so its Kubernetes libraries need not match
# ours.
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v3.22.0}" # needs Go >= 1.26

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$root/bin"
helm="$bin/helm"
mkdir -p "$bin"

# version prints the version a helm binary reports, e.g. v3.22.0, or
# nothing when it does not run.
version() {
  "$1" version --template '{{.Version}}' 2>/dev/null || true
}

if on_path="$(command -v helm)" && [ "$on_path" != "$helm" ] && [[ "$(version "$on_path")" == v3.* ]]; then
  ln -sfn "$on_path" "$helm"
  echo "$helm"
  exit 0
fi

cache="${STEPFLOW_CACHE:-$HOME/.cache/stepflow}/helm-$HELM_VERSION"
if [ -x "$cache/helm" ] && [ "$(version "$cache/helm")" = "$HELM_VERSION" ]; then
  ln -sfn "$cache/helm" "$helm"
  echo "$helm"
  exit 0
fi

echo "helm: building helm $HELM_VERSION into $cache (once; two to three minutes cold)" >&2
# The linker flags of Helm's own release builds: its version, and the
# Kubernetes version of its client libraries, which `helm template` and
# `helm lint` assume of the cluster (v1.20 without them).
module="helm.sh/helm/v3"
go mod download "$module@$HELM_VERSION"
client_go="$(awk '$1 == "k8s.io/client-go" { print $2 }' "$(go env GOMODCACHE)/cache/download/$module/@v/$HELM_VERSION.mod")"
k8s_minor="$(echo "$client_go" | cut -d. -f2)" # client-go v0.N.x is Kubernetes 1.N
ldflags="-s -w -X $module/internal/version.version=$HELM_VERSION"
for pkg in pkg/chartutil pkg/lint/rules; do
  ldflags="$ldflags -X $module/$pkg.k8sVersionMajor=1 -X $module/$pkg.k8sVersionMinor=$k8s_minor"
done
mkdir -p "$cache"
GOBIN="$cache" go install -ldflags "$ldflags" "$module/cmd/helm@$HELM_VERSION"
ln -sfn "$cache/helm" "$helm"
echo "$helm"
