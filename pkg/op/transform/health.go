package transform

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"strings"

	"github.com/stepflow-dev/stepflow/pkg/op"
)

// KubeFamily is the pure part of the "kube" provider: kube.#Health, which
// judges objects a template already read (kube.#Read, the $returns of
// kube.#Apply) and reaches no cluster. The kube ops that do reach one are
// pkg/op/kube's; both register under provider "kube".
type KubeFamily struct{}

// NewKube returns the family.
func NewKube() *KubeFamily { return &KubeFamily{} }

// Provider is the #provider of the ops' CUE schemas.
func (*KubeFamily) Provider() string { return "kube" }

// Ops maps each #do to its op.
func (*KubeFamily) Ops() map[string]op.Op { return map[string]op.Op{"health": health{}} }

var _ op.Family = (*KubeFamily)(nil)

var _ op.Pure = health{}

// healthParams is kube.#Health's $params: objects as the API server
// returned them, status included.
type healthParams struct {
	Objects []map[string]any `json:"objects"`
}

// health is kube.#Health. An object is healthy when its workload has
// rolled out, as kubectl rollout status sees it:
//
//   - Deployment: the controller observed the latest generation, exactly
//     the desired replicas (spec.replicas, default 1) are updated and
//     available, and no old replica is left (status.replicas ==
//     updatedReplicas).
//   - StatefulSet: the controller observed the latest generation and every
//     replica is ready; with a RollingUpdate partition P (default 0), the
//     replicas at or above P are updated (updatedReplicas >= replicas - P),
//     and with P = 0 the current revision is the update revision when the
//     status names both. OnDelete: ready only.
//   - DaemonSet: the controller observed the latest generation, every
//     scheduled pod is available and, for RollingUpdate, updated.
//   - Any other kind is healthy once applied.
//
// The first object that is not healthy is named in the message, with why.
type health struct{}

func (health) NewParams() any     { return &healthParams{} }
func (health) Class(any) op.Class { return op.Idempotent }
func (health) Pure()              {}
func (health) Run(ctx context.Context, call *op.Call) (op.Result, error) {
	if err := ctx.Err(); err != nil {
		return op.Result{}, err
	}
	p, ok := call.Params.(*healthParams)
	if !ok {
		return op.Result{}, op.Permanentf("params are %T, want *healthParams", call.Params)
	}
	for i, obj := range p.Objects {
		why, err := unhealthy(obj)
		if err != nil {
			return op.Result{}, op.Permanentf("objects[%d] (%s): %v", i, describeObject(obj), err)
		}
		if why != "" {
			return op.Result{Returns: map[string]any{"healthy": false, "message": describeObject(obj) + ": " + why}}, nil
		}
	}
	return op.Result{Returns: map[string]any{"healthy": true, "message": ""}}, nil
}

// unhealthy says why obj has not rolled out, "" when it has.
func unhealthy(obj map[string]any) (string, error) {
	group, _, grouped := strings.Cut(str(obj, "apiVersion"), "/")
	if !grouped || (group != "apps" && group != "extensions") {
		return "", nil // a core kind, or a custom one that only shares a name
	}
	f := fields{obj: obj}
	kind := str(obj, "kind")
	switch kind {
	case "Deployment", "StatefulSet", "DaemonSet":
	default:
		return "", nil
	}
	gen := f.int(0, "metadata", "generation")
	observed := f.int(0, "status", "observedGeneration")
	if f.err != nil {
		return "", f.err
	}
	if observed < gen {
		return fmt.Sprintf("the %s controller has not observed generation %d yet (observed %d)", kind, gen, observed), nil
	}
	switch kind {
	case "Deployment":
		return deploymentUnhealthy(&f)
	case "StatefulSet":
		return statefulSetUnhealthy(&f)
	}
	return daemonSetUnhealthy(&f)
}

func deploymentUnhealthy(f *fields) (string, error) {
	want := f.int(1, "spec", "replicas")
	updated := f.int(0, "status", "updatedReplicas")
	replicas := f.int(0, "status", "replicas")
	available := f.int(0, "status", "availableReplicas")
	if f.err != nil {
		return "", f.err
	}
	switch {
	case updated < want:
		return fmt.Sprintf("%d of %d replicas updated", updated, want), nil
	case updated > want:
		return fmt.Sprintf("%d replicas updated, want %d (scaling down)", updated, want), nil
	case replicas > updated:
		return fmt.Sprintf("%d old replicas are pending termination", replicas-updated), nil
	case available < want:
		return fmt.Sprintf("%d of %d updated replicas available", available, want), nil
	case available > want:
		return fmt.Sprintf("%d replicas available, want %d (scaling down)", available, want), nil
	}
	return "", nil
}

func statefulSetUnhealthy(f *fields) (string, error) {
	want := f.int(1, "spec", "replicas")
	ready := f.int(0, "status", "readyReplicas")
	updated := f.int(0, "status", "updatedReplicas")
	partition := f.int(0, "spec", "updateStrategy", "rollingUpdate", "partition")
	strategy := f.str("spec", "updateStrategy", "type")
	if f.err != nil {
		return "", f.err
	}
	if strategy == "OnDelete" {
		if ready < want {
			return fmt.Sprintf("%d of %d replicas ready", ready, want), nil
		}
		return "", nil
	}
	if toUpdate := want - partition; updated < toUpdate {
		if partition > 0 {
			return fmt.Sprintf("%d of %d replicas at or above partition %d updated", updated, max(toUpdate, 0), partition), nil
		}
		return fmt.Sprintf("%d of %d replicas updated", updated, want), nil
	}
	if ready < want {
		return fmt.Sprintf("%d of %d replicas ready", ready, want), nil
	}
	if partition == 0 {
		cur, upd := f.str("status", "currentRevision"), f.str("status", "updateRevision")
		if cur != "" && upd != "" && cur != upd {
			return fmt.Sprintf("rolling update to revision %s not complete (current revision %s)", upd, cur), nil
		}
	}
	return "", nil
}

func daemonSetUnhealthy(f *fields) (string, error) {
	want := f.int(0, "status", "desiredNumberScheduled")
	updated := f.int(0, "status", "updatedNumberScheduled")
	available := f.int(0, "status", "numberAvailable")
	strategy := f.str("spec", "updateStrategy", "type")
	if f.err != nil {
		return "", f.err
	}
	if strategy != "OnDelete" && updated < want {
		return fmt.Sprintf("%d of %d scheduled pods updated", updated, want), nil
	}
	if available < want {
		return fmt.Sprintf("%d of %d scheduled pods available", available, want), nil
	}
	return "", nil
}

// fields reads nested fields of an object, keeping the first error.
type fields struct {
	obj map[string]any
	err error
}

// lookup finds the value at path; ok is false when a field on the way is
// missing or null.
func (f *fields) lookup(path []string) (any, bool) {
	var cur any = f.obj
	for i, k := range path {
		m, isMap := cur.(map[string]any)
		if !isMap {
			if cur != nil && f.err == nil {
				f.err = fmt.Errorf("%s is %T, not an object", strings.Join(path[:i], "."), cur)
			}
			return nil, false
		}
		if cur = m[k]; cur == nil {
			return nil, false
		}
	}
	return cur, true
}

// int reads a whole number at path, def when it is missing.
func (f *fields) int(def int64, path ...string) int64 {
	v, ok := f.lookup(path)
	if !ok {
		return def
	}
	n, ok := wholeNumber(v)
	if !ok && f.err == nil {
		f.err = fmt.Errorf("%s is %v (%T), not a whole number", strings.Join(path, "."), v, v)
	}
	return n
}

func (f *fields) str(path ...string) string {
	v, ok := f.lookup(path)
	if !ok {
		return ""
	}
	s, isStr := v.(string)
	if !isStr && f.err == nil {
		f.err = fmt.Errorf("%s is %v (%T), not a string", strings.Join(path, "."), v, v)
	}
	return s
}

// wholeNumber accepts the ways a decoder hands an integer over: CUE's
// decoding and CBOR give int64 (a *big.Int past it), encoding/json
// float64 or json.Number.
func wholeNumber(v any) (int64, bool) {
	switch n := v.(type) {
	case int:
		return int64(n), true
	case int32:
		return int64(n), true
	case int64:
		return n, true
	case uint64:
		if n <= math.MaxInt64 {
			return int64(n), true
		}
	case float64:
		if n == math.Trunc(n) && math.Abs(n) < 1<<53 {
			return int64(n), true
		}
	case json.Number:
		i, err := n.Int64()
		return i, err == nil
	case *big.Int:
		if n.IsInt64() {
			return n.Int64(), true
		}
	}
	return 0, false
}

func str(obj map[string]any, k string) string {
	s, _ := obj[k].(string)
	return s
}

// describeObject names an object as "Kind namespace/name".
func describeObject(obj map[string]any) string {
	kind := str(obj, "kind")
	if kind == "" {
		kind = "object"
	}
	meta, _ := obj["metadata"].(map[string]any)
	name, _ := meta["name"].(string)
	if ns, _ := meta["namespace"].(string); ns != "" {
		name = ns + "/" + name
	}
	return strings.TrimSpace(kind + " " + name)
}
