package cli

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// A frame fits the terminal: lines cut short of its width, and no more
// lines than its height less one, so the cursor can move up over it.
func TestFitScreen(t *testing.T) {
	frame := []string{"workflowrun ns/r  executing", "STEP  PHASE", "a     running", "├─ b  succeeded", "└─ c  pending"}
	for _, tc := range []struct {
		name          string
		width, height int
		want          []string
	}{
		{name: "size unknown", want: frame},
		{name: "fits", width: 80, height: 24, want: frame},
		{name: "narrow", width: 12, height: 24,
			want: []string{"workflowrun", "STEP  PHASE", "a     runni", "├─ b  succe", "└─ c  pendi"}},
		{name: "short", width: 80, height: 5,
			want: []string{"workflowrun ns/r  executing", "STEP  PHASE", "a     running", "… 2 more lines"}},
		{name: "both", width: 8, height: 4, want: []string{"workflo", "STEP  P", "… 3 mor"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := fitScreen(append([]string(nil), frame...), tc.width, tc.height)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
