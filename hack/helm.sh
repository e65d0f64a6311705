#!/usr/bin/env bash
# Ensures a Helm 3 binary at ./bin/helm, which the chart tests run, and
# prints its path. Running it again does nothing:
#   - a helm v3 already on PATH is linked as bin/helm;
#   - otherwise helm $HELM_VERSION is built from the Go module proxy into
#     bin/ the first time (a cold build, module downloads included, takes
#     about two minutes), and rebuilt only when HELM_VERSION changes.
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

if [ -x "$helm" ] && [ ! -L "$helm" ] && [ "$(version "$helm")" = "$HELM_VERSION" ]; then
  echo "$helm"
  exit 0
fi

echo "helm: building helm $HELM_VERSION into $bin (once; about two minutes cold)" >&2
rm -f "$helm"
GOBIN="$bin" go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
echo "$helm"
