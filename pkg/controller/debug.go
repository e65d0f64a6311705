package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/engine"
)

// DebugConfigMapName holds, one key per step, the evaluated values of the
// step attempts of a run annotated for debugging (engine.DebugAnnotation),
// and, for every run, the last evaluated value of a step attempt that
// failed (engine.Result.Failed).
func DebugConfigMapName(run string) string { return "workflow-" + run + "-debug" }

// Bounds of what the debug ConfigMap keeps. A value whose JSON is over
// MaxDebugValueBytes is kept cut (DebugRecord.ValueJSON); the ConfigMap is
// kept under MaxDebugBytes (well under the API server's 1 MiB) by dropping
// the values of the oldest records first, then the oldest records.
const (
	MaxDebugValueBytes   = 32 << 10
	MaxDebugBytes        = 256 << 10
	maxDebugMessageBytes = 4 << 10
)

// RedactedSecretData replaces each value of a Secret's data (or
// stringData) in a kept value, and of a password field.
const RedactedSecretData = "(redacted)"

// DebugRecord is what the debug ConfigMap holds under a step's name, as
// JSON.
type DebugRecord struct {
	// ID is the step attempt's id (context.stepSessionID).
	ID string `json:"id"`
	// At is when the record was kept (RFC 3339): the oldest go first.
	At string `json:"at,omitempty"`
	// Value is the evaluated template as plain data.
	Value any `json:"value,omitempty"`
	// ValueJSON is the start of the value's JSON when the whole was over
	// MaxDebugValueBytes; Cut is how many bytes of it were cut.
	ValueJSON string `json:"valueJSON,omitempty"`
	Cut       int    `json:"cut,omitempty"`
	// Dropped says why the value is no longer kept (the ConfigMap's bound).
	Dropped string `json:"dropped,omitempty"`
	// Error says why the value could not be kept at all.
	Error string `json:"error,omitempty"`
	// Failure is set when the attempt failed at this evaluation.
	Failure *DebugFailure `json:"failure,omitempty"`
}

// DebugFailure is how a step attempt failed.
type DebugFailure struct {
	Definition string `json:"definition,omitempty"`
	Reason     string `json:"reason,omitempty"`
	// Message is the step's message, with the CUE positions of a template
	// error; longer than the status keeps it, up to 4 KiB.
	Message string `json:"message,omitempty"`
	// Retry says another attempt of the step followed.
	Retry bool `json:"retry,omitempty"`
}

// debugValues collects the evaluated values of one tick of an annotated
// run (engine.Debug); save writes them, with the tick's failed attempts, in
// one patch after the tick.
type debugValues map[string]*DebugRecord

func (d debugValues) StepValue(step, stepID string, value any) {
	d[step] = &DebugRecord{ID: stepID, Value: value}
}

// save writes the tick's values and failed attempts into the run's debug
// ConfigMap: nothing when there are none, else one merge patch (a create
// the first time), and a second one only when the ConfigMap went over
// MaxDebugBytes.
func (d debugValues) save(ctx context.Context, c client.Client, run *v1alpha1.WorkflowRun, failed []engine.FailedAttempt, now time.Time) error {
	if len(d) == 0 && len(failed) == 0 {
		return nil
	}
	at := now.UTC().Format(time.RFC3339)
	recs := make(map[string]*DebugRecord, len(d)+len(failed))
	for step, r := range d {
		recs[step] = r
	}
	for _, f := range failed {
		r := recs[f.Step]
		if r == nil || r.ID != f.StepID {
			r = &DebugRecord{ID: f.StepID, Value: f.Value}
			recs[f.Step] = r
		}
		r.Failure = &DebugFailure{Definition: f.Definition, Reason: f.Reason,
			Message: cutString(f.Message, maxDebugMessageBytes), Retry: f.Retry}
	}
	data := make(map[string]string, len(recs))
	for step, r := range recs {
		r.At = at
		data[step] = encodeRecord(r)
	}
	boundTick(data, recs)

	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
		Name: DebugConfigMapName(run.Name), Namespace: run.Namespace,
		OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(run, v1alpha1.GroupVersion.WithKind("WorkflowRun"))},
	}, Data: data}
	patch, err := json.Marshal(map[string]any{"data": data})
	if err != nil {
		return err
	}
	err = c.Patch(ctx, cm, client.RawPatch(types.MergePatchType, patch))
	if apierrors.IsNotFound(err) {
		cm.Data = data
		return c.Create(ctx, cm)
	}
	if err != nil {
		return fmt.Errorf("configmap %s/%s: %w", cm.Namespace, cm.Name, err)
	}
	trim := trimDebug(cm.Data, data, at)
	if len(trim) == 0 {
		return nil
	}
	if patch, err = json.Marshal(map[string]any{"data": trim}); err != nil {
		return err
	}
	if err := c.Patch(ctx, cm, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return fmt.Errorf("configmap %s/%s: dropping old values over %d bytes: %w", cm.Namespace, cm.Name, MaxDebugBytes, err)
	}
	return nil
}

// encodeRecord writes r as JSON with Secrets' data redacted and the value
// cut at MaxDebugValueBytes.
func encodeRecord(r *DebugRecord) string {
	if r.Value != nil {
		r.Value = redact(r.Value)
		v, err := json.Marshal(r.Value)
		switch {
		case err != nil:
			r.Value, r.Error = nil, err.Error()
		case len(v) > MaxDebugValueBytes:
			cut := cutString(string(v), MaxDebugValueBytes)
			r.Value, r.ValueJSON, r.Cut = nil, cut, len(v)-len(cut)
		}
	}
	b, err := json.Marshal(r)
	if err != nil {
		b, _ = json.Marshal(&DebugRecord{ID: r.ID, At: r.At, Error: err.Error(), Failure: r.Failure})
	}
	return string(b)
}

// cutString returns the start of s, at most n bytes, cut at a rune.
func cutString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// boundTick keeps one tick's records under MaxDebugBytes: the largest lose
// their values first.
func boundTick(data map[string]string, recs map[string]*DebugRecord) {
	total := dataSize(data)
	if total <= MaxDebugBytes {
		return
	}
	steps := make([]string, 0, len(data))
	for s := range data {
		steps = append(steps, s)
	}
	sort.Slice(steps, func(i, j int) bool {
		if len(data[steps[i]]) != len(data[steps[j]]) {
			return len(data[steps[i]]) > len(data[steps[j]])
		}
		return steps[i] < steps[j]
	})
	for _, s := range steps {
		if total <= MaxDebugBytes {
			return
		}
		r := recs[s]
		old := data[s]
		r.Dropped = fmt.Sprintf("its value (%d bytes) did not fit, with the others kept in the same tick, in the %d bytes the debug ConfigMap keeps", len(old), MaxDebugBytes)
		r.Value, r.ValueJSON, r.Cut = nil, "", 0
		data[s] = encodeRecord(r)
		total += len(data[s]) - len(old)
	}
}

// trimDebug returns the merge patch of data that brings the ConfigMap
// (all, after writing mine) back under MaxDebugBytes: the oldest records
// other than mine lose their values first, then whole records go (null),
// oldest first. nil when it is under.
func trimDebug(all, mine map[string]string, at string) map[string]*string {
	total := dataSize(all)
	if total <= MaxDebugBytes {
		return nil
	}
	type old struct {
		step string
		rec  DebugRecord
	}
	var olds []old
	for s, v := range all {
		if _, ok := mine[s]; ok {
			continue
		}
		var r DebugRecord
		if json.Unmarshal([]byte(v), &r) != nil {
			r = DebugRecord{}
		}
		olds = append(olds, old{s, r})
	}
	sort.Slice(olds, func(i, j int) bool {
		if olds[i].rec.At != olds[j].rec.At {
			return olds[i].rec.At < olds[j].rec.At
		}
		return olds[i].step < olds[j].step
	})
	patch := map[string]*string{}
	for _, o := range olds {
		if total <= MaxDebugBytes {
			return patch
		}
		r := o.rec
		if r.Value == nil && r.ValueJSON == "" {
			continue
		}
		r.Value, r.ValueJSON, r.Cut = nil, "", 0
		r.Dropped = fmt.Sprintf("its value was dropped at %s for newer ones: the debug ConfigMap keeps %d bytes", at, MaxDebugBytes)
		b, err := json.Marshal(&r)
		if err != nil {
			continue
		}
		v := string(b)
		total += len(v) - len(all[o.step])
		patch[o.step] = &v
	}
	for _, o := range olds {
		if total <= MaxDebugBytes {
			break
		}
		size := len(all[o.step])
		if v := patch[o.step]; v != nil {
			size = len(*v)
		}
		total -= size + len(o.step)
		patch[o.step] = nil
	}
	return patch
}

func dataSize(data map[string]string) int {
	n := 0
	for k, v := range data {
		n += len(k) + len(v)
	}
	return n
}

// redact replaces, in a value about to be kept, what the run's readers
// must not see: the data and stringData of every Secret in it (a kube read
// or list of Secrets, kept whole in the template's value) and password
// fields (email's from.password). It changes v in place and returns it.
func redact(v any) any {
	switch x := v.(type) {
	case map[string]any:
		secret := x["kind"] == "Secret" && (x["apiVersion"] == nil || x["apiVersion"] == "v1")
		for k, e := range x {
			switch {
			case secret && (k == "data" || k == "stringData"):
				x[k] = redactAll(e)
			case k == "password":
				if _, ok := e.(string); ok {
					x[k] = RedactedSecretData
				}
			default:
				x[k] = redact(e)
			}
		}
	case []any:
		for i, e := range x {
			x[i] = redact(e)
		}
	}
	return v
}

// redactAll keeps the keys of a Secret's data and hides every value.
func redactAll(v any) any {
	m, ok := v.(map[string]any)
	if !ok {
		return RedactedSecretData
	}
	out := make(map[string]any, len(m))
	for k := range m {
		out[k] = RedactedSecretData
	}
	return out
}
