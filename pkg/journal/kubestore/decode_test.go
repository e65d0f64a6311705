package kubestore_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/stepflow-dev/stepflow/pkg/journal/kubestore"
)

// TestDecodeLogTimes: a ConfigMap's logs key reads with the times of its
// lines, and one written before times were kept reads without them.
func TestDecodeLogTimes(t *testing.T) {
	for _, tc := range []struct {
		name, logs string
		wantLines  []string
		wantTimes  []string
	}{{
		name:      "with times",
		logs:      `{"lines":{"s":["a","b"]},"times":{"s":[1800000000000,1800000001000]}}`,
		wantLines: []string{"a", "b"},
		wantTimes: []string{"2027-01-15T08:00:00Z", "2027-01-15T08:00:01Z"},
	}, {
		name:      "before times were kept",
		logs:      `{"lines":{"s":["a","b"]},"dropped":{"s":0}}`,
		wantLines: []string{"a", "b"},
		wantTimes: []string{"-", "-"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := kubestore.Decode(&corev1.ConfigMap{Data: map[string]string{"logs": tc.logs}})
			if err != nil {
				t.Fatal(err)
			}
			var times []string
			for i := range d.Logs["s"] {
				at, ok := d.LogTime("s", i)
				if !ok {
					times = append(times, "-")
					continue
				}
				times = append(times, at.UTC().Format(time.RFC3339))
			}
			if diff := cmp.Diff(tc.wantLines, d.Logs["s"]); diff != "" {
				t.Errorf("lines (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantTimes, times); diff != "" {
				t.Errorf("times (-want +got):\n%s", diff)
			}
		})
	}
}
