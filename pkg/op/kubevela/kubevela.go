// Package kubevela is the "kubevela" op family: the ops of KubeVela's
// vela/op that only KubeVela core's Application controller can run. Each
// fails the step for good (op.Permanent), naming the op and what it needs,
// so a community definition that calls one says why it cannot run on
// Stepflow instead of failing on an undefined field of vela/op.
//
// The KubeVela-only ops that fit Stepflow's application model are not
// here: vela/op maps them in CUE onto the app, component, kube and
// builtin ops (op.#Load and op.#LoadInOrder onto app.components,
// op.#ApplyComponent onto component.render, kube.apply-in-order and
// kube.health, op.#ApplyApplication, op.#ApplyApplicationInParallel and
// op.#ApplyRemaining onto those two).
package kubevela

import (
	"context"
	"fmt"
	"sort"

	"github.com/stepflow-dev/stepflow/pkg/op"
)

// Unsupported maps each op's #do (the name of its vela/op schema, without
// "#") to what it needs that Stepflow does not have.
var Unsupported = map[string]string{
	"ApplyEnvBindApp":                   "it applies an Application's env bindings, which KubeVela's Application controller resolves",
	"ApplyComponentRemaining":           "it splits a component's rendered outputs by trait, which only KubeVela's trait definitions give; use op.#ApplyComponent",
	"LoadPolicies":                      "it reads an Application's policies from KubeVela's Application controller; use op.#AppComponents with policies",
	"PatchApplication":                  "it patches a KubeVela Application in the controller's memory",
	"ExpandTopology":                    "it expands topology policies with KubeVela's cluster gateway",
	"OverrideConfiguration":             "it applies override policies inside KubeVela's Application controller; use op.#AppComponents with policies",
	"MakePlacementDecisions":            "it decides placements with KubeVela's cluster gateway",
	"GetPlacementsFromTopologyPolicies": "it reads an Application's topology policies from KubeVela's Application controller; use op.#AppComponents with policies",
	"Deploy":                            "it deploys an Application's components with KubeVela's Application controller; use the deploy step type (vela/deploy)",
}

// Family is the kubevela ops.
type Family struct{}

// New returns the family.
func New() *Family { return &Family{} }

// Provider is the #provider of the ops' CUE schemas.
func (*Family) Provider() string { return "kubevela" }

// Ops maps each #do to its op.
func (*Family) Ops() map[string]op.Op {
	out := make(map[string]op.Op, len(Unsupported))
	for do, why := range Unsupported {
		out[do] = &unsupported{name: "op.#" + do, why: why}
	}
	return out
}

// Names lists the ops' #do, sorted.
func Names() []string {
	out := make([]string, 0, len(Unsupported))
	for do := range Unsupported {
		out = append(out, do)
	}
	sort.Strings(out)
	return out
}

var _ op.Family = (*Family)(nil)

type unsupported struct{ name, why string }

func (*unsupported) NewParams() any     { return &map[string]any{} }
func (*unsupported) Class(any) op.Class { return op.Idempotent }

func (o *unsupported) Run(context.Context, *op.Call) (op.Result, error) {
	return op.Result{}, op.Permanent(fmt.Errorf("%s needs KubeVela's Application controller, which Stepflow does not have: %s", o.name, o.why))
}
