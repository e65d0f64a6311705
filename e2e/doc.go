// Package e2e holds Stepflow's end-to-end suite: the real stepflow binary,
// built from this repository, against a local etcd and kube-apiserver, with
// the controller as a separate process. Each spec drives runs the way a
// user does, through the CLI, in a namespace of its own, and checks what
// happened through the API server and the HTTP endpoints the steps call.
//
// `go test ./e2e/...` runs it (so does `make test` and `make e2e`). The
// control-plane binaries come from $KUBEBUILDER_ASSETS, else from
// hack/control-plane.sh. Set STEPFLOW_E2E_KEEP=1 to keep the suite's
// directory (binary, kubeconfig, controller log, manifests); it is kept
// anyway when a spec fails.
package e2e
