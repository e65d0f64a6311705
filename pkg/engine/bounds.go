package engine

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
)

// Bounds on what a run keeps in its status. The status is written whole,
// with the spec, in one object: the API server refuses a request over
// 3 MiB and etcd a value over 1.5 MiB. A run that outgrew that would have
// every status write refused, so it would stop moving and show nothing.
// These bounds keep the status well under it, with room for the spec:
// output values and recorded inputs together at most MaxRunValueBytes,
// messages together about messageBudget, plus a few hundred bytes of
// names, ids and times per step.
const (
	// MaxOutputBytes bounds one output value (as JSON). A step whose
	// output is larger fails with reason OutputError.
	MaxOutputBytes = 128 << 10
	// MaxRunValueBytes bounds the output values and recorded input values
	// of all the steps of a run. A step whose outputs or inputs would go
	// over it fails with reason OutputError or InputError.
	MaxRunValueBytes = 512 << 10
	// MaxMessageBytes bounds one message (of a step or the run); a longer
	// one is truncated and marked. Runs with many steps get less each, so
	// that all the messages together stay near messageBudget.
	MaxMessageBytes = 4 << 10
	minMessageBytes = 256
	messageBudget   = 128 << 10
)

// messageLimit is the bound of one message of this run: MaxMessageBytes,
// or a share of messageBudget for runs with many steps.
func (t *tick) messageLimit() int {
	if t.msgLimit == 0 {
		n := 1
		if t.g != nil {
			n += len(t.g.All())
		}
		t.msgLimit = max(minMessageBytes, min(MaxMessageBytes, messageBudget/n))
	}
	return t.msgLimit
}

// truncate returns msg if it fits in limit bytes, else its start, cut at a
// character boundary, and a mark saying how long it was.
func truncate(msg string, limit int) string {
	if len(msg) <= limit {
		return msg
	}
	mark := fmt.Sprintf("… (truncated, %d bytes)", len(msg))
	cut := max(0, limit-len(mark))
	for cut > 0 && !utf8.RuneStart(msg[cut]) {
		cut--
	}
	return msg[:cut] + mark
}

// boundMessages truncates every step message (summarize bounds the run's).
func (t *tick) boundMessages() {
	limit := t.messageLimit()
	eachStep(t.st, func(ss *v1alpha1.StepStatus) {
		ss.Message = truncate(ss.Message, limit)
	})
}

// runValueBytes is the size of the output and recorded input values in the
// status, leaving out the step except.
func (t *tick) runValueBytes(except *v1alpha1.StepStatus) int {
	n := 0
	eachStep(t.st, func(ss *v1alpha1.StepStatus) {
		if ss != except {
			n += valueBytes(ss.Outputs) + valueBytes(ss.Inputs)
		}
	})
	return n
}

func valueBytes(vs []v1alpha1.StepOutputValue) int {
	n := 0
	for _, v := range vs {
		n += jsonBytes(v.Value)
	}
	return n
}

func jsonBytes(v *apiextensionsv1.JSON) int {
	if v == nil {
		return 0
	}
	return len(v.Raw)
}

// boundOutputs says why the outputs of step ss cannot be kept, if so: one
// is over MaxOutputBytes, or with them the run's values would go over
// MaxRunValueBytes.
func (t *tick) boundOutputs(ss *v1alpha1.StepStatus, outputs []v1alpha1.StepOutputValue) error {
	for _, o := range outputs {
		if n := jsonBytes(o.Value); n > MaxOutputBytes {
			return fmt.Errorf("output %q is %s, over the bound of %s for one output", o.Name, size(n), size(MaxOutputBytes))
		}
	}
	if n := valueBytes(outputs); n > 0 {
		if total := t.runValueBytes(ss) + valueBytes(ss.Inputs) + n; total > MaxRunValueBytes {
			return fmt.Errorf("outputs %s are %s; with them the run's outputs and inputs would come to %s, over its budget of %s",
				names(outputs), size(n), size(total), size(MaxRunValueBytes))
		}
	}
	return nil
}

// boundInputs says why the input values of step ss cannot be recorded, if
// so: with them the run's values would go over MaxRunValueBytes.
func (t *tick) boundInputs(ss *v1alpha1.StepStatus, inputs []v1alpha1.StepOutputValue) error {
	if n := valueBytes(inputs); n > 0 {
		if total := t.runValueBytes(ss) + valueBytes(ss.Outputs) + n; total > MaxRunValueBytes {
			return fmt.Errorf("inputs %s are %s; recorded, the run's outputs and inputs would come to %s, over its budget of %s",
				names(inputs), size(n), size(total), size(MaxRunValueBytes))
		}
	}
	return nil
}

func names(vs []v1alpha1.StepOutputValue) string {
	quoted := make([]string, len(vs))
	for i, v := range vs {
		quoted[i] = strconv.Quote(v.Name)
	}
	return strings.Join(quoted, ", ")
}

// size writes a byte count for people: "100 KiB (102400 bytes)".
func size(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB (%d bytes)", float64(n)/(1<<20), n)
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB (%d bytes)", float64(n)/(1<<10), n)
	}
	return fmt.Sprintf("%d bytes", n)
}
