#!/usr/bin/env bash
# Regenerates what is derived from the API types in api/:
#   - api/*/zz_generated.deepcopy.go (controller-gen object)
#   - charts/stepflow/crds/<group>_<plural>.yaml, one file per CRD (controller-gen crd)
# controller-gen is installed into ./bin at a pinned version the first time.
# Running it twice leaves the tree unchanged.
set -euo pipefail

CONTROLLER_GEN_VERSION="${CONTROLLER_GEN_VERSION:-v0.17.3}" # the release line for k8s 1.32

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

bin="$root/bin"
controller_gen="$bin/controller-gen"
if [ ! -x "$controller_gen" ] || [ "$("$controller_gen" --version 2>/dev/null)" != "Version: $CONTROLLER_GEN_VERSION" ]; then
  echo "generate: installing controller-gen $CONTROLLER_GEN_VERSION into $bin" >&2
  GOBIN="$bin" go install "sigs.k8s.io/controller-tools/cmd/controller-gen@$CONTROLLER_GEN_VERSION"
fi

"$controller_gen" object paths=./api/...

# Generate into a scratch directory, then replace the chart's CRDs, so a CRD
# whose type was removed does not linger.
crds="$root/charts/stepflow/crds"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$controller_gen" crd paths=./api/... output:crd:artifacts:config="$tmp"
mkdir -p "$crds"
rm -f "$crds"/core.oam.dev_*.yaml
cp "$tmp"/*.yaml "$crds"/
