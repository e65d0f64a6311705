// Package transform is the local part of the "util" op family: conversions
// that read nothing and change nothing outside the process.
//
//	util.#ConvertString   "string"            bytes → string
//	util.#PatchK8sObject  "patch-k8s-object"  object + patch → patched object
//
// Both ops are pure functions of their params, so both are Idempotent: the
// executor runs them again on every evaluation instead of journalling them.
// (util.#Log shares the provider name but is a builtin op, not one of these.)
//
// The package also holds the patch semantics the kube family reuses when it
// merges a patch into an object before applying it: MergePatch (RFC 7386)
// and PatchObject (strategic merge for built-in kinds, JSON merge otherwise).
package transform

import (
	"context"

	"github.com/stepflow-dev/stepflow/pkg/op"
)

// Family is the util ops that run in-process.
type Family struct{}

// New returns the family.
func New() *Family { return &Family{} }

// Provider is the #provider of the ops' CUE schemas.
func (*Family) Provider() string { return "util" }

// Ops maps each #do to its op.
func (*Family) Ops() map[string]op.Op {
	return map[string]op.Op{
		"string":           convertString{},
		"patch-k8s-object": patchK8sObject{},
	}
}

var _ op.Family = (*Family)(nil)

var _ = []op.Pure{convertString{}, patchK8sObject{}}

// stringParams is util.#ConvertString's $params (and op.#ConvertString).
type stringParams struct {
	Bt []byte `json:"bt"`
}

type convertString struct{}

func (convertString) NewParams() any     { return &stringParams{} }
func (convertString) Class(any) op.Class { return op.Idempotent }
func (convertString) Pure()              {}
func (convertString) Run(ctx context.Context, call *op.Call) (op.Result, error) {
	if err := ctx.Err(); err != nil {
		return op.Result{}, err
	}
	p, ok := call.Params.(*stringParams)
	if !ok {
		return op.Result{}, op.Permanentf("params are %T, want *stringParams", call.Params)
	}
	return op.Result{Returns: map[string]any{"str": string(p.Bt)}}, nil
}

// patchParams is util.#PatchK8sObject's $params (and op.#PatchK8sObject,
// whose result field the decoder ignores).
type patchParams struct {
	Value map[string]any `json:"value"`
	Patch map[string]any `json:"patch"`
}

type patchK8sObject struct{}

func (patchK8sObject) NewParams() any     { return &patchParams{} }
func (patchK8sObject) Class(any) op.Class { return op.Idempotent }
func (patchK8sObject) Pure()              {}
func (patchK8sObject) Run(ctx context.Context, call *op.Call) (op.Result, error) {
	if err := ctx.Err(); err != nil {
		return op.Result{}, err
	}
	p, ok := call.Params.(*patchParams)
	if !ok {
		return op.Result{}, op.Permanentf("params are %T, want *patchParams", call.Params)
	}
	if p.Value == nil {
		return op.Result{}, op.Permanentf("value is required")
	}
	out, err := PatchObject(p.Value, p.Patch)
	if err != nil {
		// The inputs are all there is: the same call fails the same way.
		return op.Result{}, op.Permanent(err)
	}
	return op.Result{Returns: map[string]any{"result": out}}, nil
}
