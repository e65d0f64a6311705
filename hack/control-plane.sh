#!/usr/bin/env bash
# Builds kube-apiserver, kubectl and etcd from the Go module proxy and caches
# them under $HOME/.cache/stepflow/control-plane/<versions>/. Prints the
# directory (suitable for KUBEBUILDER_ASSETS) on stdout; progress goes to stderr.
#
# envtest normally downloads these binaries; this machine has no internet, so
# we build them in a throwaway module that requires k8s.io/kubernetes and
# replaces each staging module (the list k8s.io/kubernetes' own go.mod
# replaces) with its published version. `go mod tidy` is never run there: it
# would chase test-only modules.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-1.32.13}"   # matches client-go v0.32 / controller-runtime v0.20
ETCD_VERSION="${ETCD_VERSION:-3.5.16}"  # the etcd that k8s 1.32 pairs with
STAGING_VERSION="0.${K8S_VERSION#1.}"
CACHE_ROOT="${STEPFLOW_CACHE:-$HOME/.cache/stepflow}"
DEST="$CACHE_ROOT/control-plane/k8s-${K8S_VERSION}-etcd-${ETCD_VERSION}"

have_all() {
  [ -x "$DEST/kube-apiserver" ] && [ -x "$DEST/etcd" ] && [ -x "$DEST/kubectl" ]
}

if have_all; then
  echo "$DEST"
  exit 0
fi

echo "control-plane: building kube-apiserver, kubectl (k8s v$K8S_VERSION) and etcd v$ETCD_VERSION into $DEST (cold: ~5-6 min)" >&2
mkdir -p "$DEST"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

staging=(
  api apiextensions-apiserver apimachinery apiserver cli-runtime client-go
  cloud-provider cluster-bootstrap code-generator component-base
  component-helpers controller-manager cri-api cri-client csi-translation-lib
  dynamic-resource-allocation endpointslice externaljwt kms kube-aggregator
  kube-controller-manager kube-proxy kube-scheduler kubectl kubelet metrics
  mount-utils pod-security-admission sample-apiserver sample-cli-plugin
  sample-controller
)

{
  echo "module stepflow.local/control-plane-build"
  echo
  echo "go 1.23"
  echo
  echo "require ("
  echo "	k8s.io/kubernetes v$K8S_VERSION"
  echo "	go.etcd.io/etcd/server/v3 v$ETCD_VERSION"
  echo ")"
  echo
  echo "replace ("
  for m in "${staging[@]}"; do
    echo "	k8s.io/$m => k8s.io/$m v$STAGING_VERSION"
  done
  echo ")"
} >"$work/go.mod"

cd "$work"
export GOFLAGS="-mod=mod -buildvcs=false"
export CGO_ENABLED=0
build() { # out pkg
  echo "control-plane: go build $2" >&2
  go build -trimpath -ldflags "-s -w" -o "$DEST/$1.tmp" "$2"
  mv "$DEST/$1.tmp" "$DEST/$1"
}
[ -x "$DEST/etcd" ] || build etcd go.etcd.io/etcd/server/v3
[ -x "$DEST/kube-apiserver" ] || build kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver
[ -x "$DEST/kubectl" ] || build kubectl k8s.io/kubernetes/cmd/kubectl

have_all
echo "$DEST"
