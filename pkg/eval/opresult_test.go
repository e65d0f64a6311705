package eval_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stepflow-dev/stepflow/pkg/eval"
	"github.com/stepflow-dev/stepflow/pkg/op"
)

// Templates in the style of community definitions (a Job applied, then a
// wait on its status) in both dialects. The op results below lack the
// fields the conditions read until the Job has run.
const (
	jobFlat = `
import "vela/op"

job: op.#Apply & {
	value: {apiVersion: "batch/v1", kind: "Job", metadata: {name: "j", namespace: "default"}}
}
fail: op.#Steps & {
	if job.value.status.failed != _|_ {
		if job.value.status.failed > 2 {
			stop: op.#Fail & {message: "the job failed"}
		}
	}
}
wait: op.#ConditionalWait & {
	continue: job.value.status.succeeded != _|_ && job.value.status.succeeded > 0
}
done: job.value.status.succeeded
`
	jobKube = `
import (
	"vela/kube"
	"vela/builtin"
)

job: kube.#Apply & {
	$params: value: {apiVersion: "batch/v1", kind: "Job", metadata: {name: "j", namespace: "default"}}
}
fail: {
	if job.$returns.value.status.failed != _|_ {
		if job.$returns.value.status.failed > 2 {
			stop: builtin.#Fail & {$params: message: "the job failed"}
		}
	}
}
wait: builtin.#ConditionalWait & {
	$params: continue: job.$returns.value.status.succeeded != _|_ && job.$returns.value.status.succeeded > 0
}
done: job.$returns.value.status.succeeded
`
	// A read compared against the generation the server set, as
	// KubeVela's apply-app does with metadata.generation.
	generationFlat = `
import "vela/op"

app: op.#Read & {
	value: {apiVersion: "example.dev/v1", kind: "App", metadata: {name: "a", namespace: "default"}}
}
wait: op.#ConditionalWait & {
	continue: app.value.status.observedGeneration == app.value.metadata.generation
}
done: app.value.status.observedGeneration
`
	// A bare "!= _|_" test decides to false: the wait itself runs.
	bareFlat = `
import "vela/op"

job: op.#Read & {
	value: {apiVersion: "batch/v1", kind: "Job", metadata: {name: "j", namespace: "default"}}
}
wait: op.#ConditionalWait & {
	continue: job.value.status.completionTime != _|_
	message:  "waiting for the job"
}
`
)

func TestFieldAbsentFromOpResultWaits(t *testing.T) {
	job := func(status string) string {
		obj := `{"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j", "namespace": "default", "uid": "u-1", "generation": 1}, "spec": {"backoffLimit": 3}`
		if status != "" {
			obj += `, "status": ` + status
		}
		return `{"value": ` + obj + `}}`
	}
	app := func(status string) string {
		return `{"value": {"apiVersion": "example.dev/v1", "kind": "App", "metadata": {"name": "a", "namespace": "default", "generation": 2}, "status": ` + status + `}}`
	}
	cases := []struct {
		name, template, path, returns string
		want                          eval.Phase
		wantMessage                   string
		wantDone                      any
	}{
		{name: "flat, no status yet", template: jobFlat, path: "job", returns: job(""), want: eval.Waiting,
			wantMessage: "the condition is not decided yet: wait.continue: undefined field: status (job.cue:15:"},
		{name: "flat, empty status", template: jobFlat, path: "job", returns: job(`{}`), want: eval.Waiting,
			wantMessage: "the condition is not decided yet: wait.continue: undefined field: succeeded (job.cue:15:"},
		{name: "flat, status without succeeded", template: jobFlat, path: "job", returns: job(`{"active": 1}`), want: eval.Waiting},
		{name: "flat, succeeded", template: jobFlat, path: "job", returns: job(`{"succeeded": 1}`), want: eval.Succeeded, wantDone: 1},
		{name: "flat, failed", template: jobFlat, path: "job", returns: job(`{"failed": 3}`), want: eval.Failed, wantMessage: "the job failed"},
		{name: "kube, no status yet", template: jobKube, path: "job", returns: job(""), want: eval.Waiting},
		{name: "kube, empty status", template: jobKube, path: "job", returns: job(`{}`), want: eval.Waiting,
			wantMessage: "the condition is not decided yet: wait.$params.continue: undefined field: succeeded (job.cue:18:"},
		{name: "kube, succeeded", template: jobKube, path: "job", returns: job(`{"succeeded": 1}`), want: eval.Succeeded, wantDone: 1},
		{name: "kube, failed", template: jobKube, path: "job", returns: job(`{"failed": 3}`), want: eval.Failed, wantMessage: "the job failed"},
		{name: "flat read, generation not observed", template: generationFlat, path: "app", returns: app(`{}`), want: eval.Waiting,
			wantMessage: "undefined field: observedGeneration (job.cue:8:"},
		{name: "flat read, old generation observed", template: generationFlat, path: "app", returns: app(`{"observedGeneration": 1}`), want: eval.Waiting},
		{name: "flat read, generation observed", template: generationFlat, path: "app", returns: app(`{"observedGeneration": 2}`), want: eval.Succeeded, wantDone: 2},
		{name: "flat, bare test, absent", template: bareFlat, path: "job", returns: job(`{}`), want: eval.Waiting, wantMessage: "waiting for the job"},
		{name: "flat, bare test, present", template: bareFlat, path: "job", returns: job(`{"completionTime": "2026-01-01T00:00:00Z"}`), want: eval.Succeeded},
	}
	ev := newEvaluator(t, 0)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var stubs map[string]stub
			mustJSON(t, []byte(`{"`+c.path+`": {"returns": `+c.returns+`}}`), &stubs)
			out := ev.Evaluate(context.Background(), eval.Request{
				Definition: eval.Definition{Name: "job", Template: c.template},
				Step:       op.Step{RunName: "run", Namespace: "default", StepName: "step1", StepID: "step1-abc"},
				Runner:     &stubRunner{stubs: stubs},
			})
			if out.Phase != c.want {
				t.Fatalf("outcome = %s (%s: %s), want %s", out.Phase, out.Reason, out.Message, c.want)
			}
			if !strings.Contains(out.Message, c.wantMessage) {
				t.Errorf("message = %q, want it to contain %q", out.Message, c.wantMessage)
			}
			if c.wantDone != nil {
				got, err := out.Value.Eval("done")
				if err != nil {
					t.Fatalf("done: %v", err)
				}
				if normalize(got) != normalize(c.wantDone) {
					t.Errorf("done = %v, want %v", got, c.wantDone)
				}
			}
		})
	}
}

// applyFromParameter is KubeVela's apply-app: the object comes from the
// properties into a call inside op.#Steps, and the wait reads fields the
// properties lack (status, metadata.generation). CUE closes the data
// inside the definitions, so before the result is in, those references
// are "undefined field" errors rather than incomplete values.
const applyFromParameter = `
import "vela/op"

app: op.#Steps & {
	if parameter.data != _|_ {
		apply: op.#Apply & {value: parameter.data}
	}
}
wait: op.#ConditionalWait & {
	continue: app.apply.value.status.status == "running" && app.apply.value.status.observedGeneration == app.apply.value.metadata.generation
}
parameter: close({data?: {...}}) | close({ref?: {name: string}})
`

// applyThroughLet reads the call's value through a let, as templates
// that name a long path once do.
const applyThroughLet = `
import "vela/op"

app: op.#Steps & {
	apply: op.#Apply & {value: parameter.data}
}
let A = app.apply.value
wait: op.#ConditionalWait & {
	continue: A.status.status == "running" && A.status.observedGeneration == A.metadata.generation
}
parameter: data: {...}
`

// typoNotThroughCall misspells a field of a struct that is no op call:
// still a template error, at once.
const typoNotThroughCall = `
import "vela/op"

#Target: {name: string, port: int}
target: #Target & {name: "web", port: 80}
apply: op.#Apply & {value: {apiVersion: "v1", kind: "ConfigMap", metadata: name: target.nmae}}
`

func TestDataPassedIntoACallWaitsForItsResult(t *testing.T) {
	props := map[string]any{"data": map[string]any{
		"apiVersion": "core.oam.dev/v1beta1", "kind": "Application", "metadata": map[string]any{"name": "first"}}}
	result := func(status string) string {
		s := `{"value": {"apiVersion": "core.oam.dev/v1beta1", "kind": "Application", "metadata": {"name": "first", "generation": 2}`
		if status != "" {
			s += `, "status": ` + status
		}
		return s + `}}`
	}
	cases := []struct {
		name, template, returns string
		want                    eval.Phase
		wantMessage             string
	}{
		{"no status yet", applyFromParameter, result(""), eval.Waiting, "undefined field: status"},
		{"not observed yet", applyFromParameter, result(`{"status": "running", "observedGeneration": 1}`), eval.Waiting, ""},
		{"running, observed", applyFromParameter, result(`{"status": "running", "observedGeneration": 2}`), eval.Succeeded, ""},
		{"through a let, no status yet", applyThroughLet, result(""), eval.Waiting, "undefined field: status"},
		{"through a let, observed", applyThroughLet, result(`{"status": "running", "observedGeneration": 2}`), eval.Succeeded, ""},
		{"a typo elsewhere still fails", typoNotThroughCall, result(""), eval.Failed, "undefined field: nmae"},
	}
	ev := newEvaluator(t, 0)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var stubs map[string]stub
			mustJSON(t, []byte(`{"app.apply": {"returns": `+c.returns+`}, "apply": {"returns": `+c.returns+`}}`), &stubs)
			runner := &stubRunner{stubs: stubs}
			out := ev.Evaluate(context.Background(), eval.Request{
				Definition: eval.Definition{Name: "apply-app", Template: c.template},
				Parameters: props,
				Step:       op.Step{RunName: "run", Namespace: "default", StepName: "step1", StepID: "step1-abc"},
				Runner:     runner,
			})
			if out.Phase != c.want {
				t.Fatalf("outcome = %s (%s: %s), want %s", out.Phase, out.Reason, out.Message, c.want)
			}
			if !strings.Contains(out.Message, c.wantMessage) {
				t.Errorf("message = %q, want it to contain %q", out.Message, c.wantMessage)
			}
		})
	}
}
