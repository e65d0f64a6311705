package engine_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/tools/txtar"
)

// readmeDefinition is the CUE block under the README's "## A step
// definition" heading: the example a newcomer copies first.
func readmeDefinition(t *testing.T) []byte {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## A step definition\n")
	if !ok {
		t.Fatal(`README.md: no "## A step definition" section`)
	}
	_, block, ok := strings.Cut(section, "```cue\n")
	if !ok {
		t.Fatal(`README.md: "## A step definition" has no cue block`)
	}
	block, _, ok = strings.Cut(block, "```")
	if !ok {
		t.Fatal(`README.md: the cue block under "## A step definition" is not closed`)
	}
	return []byte(block)
}

// The README's example step says "continue, roll back or stop as the run
// context says": each decision, set while the step is suspended, must do
// what it says, and the POST before the suspend is sent once whatever the
// decision. The definition is read from README.md, so the two cannot drift.
func TestReadmeExampleDecisions(t *testing.T) {
	def := readmeDefinition(t)
	const run = `metadata:
  name: readme
spec:
  workflowSpec:
    steps:
    - name: approve
      type: notify-and-approve
      properties:
        url: http://approvals.example/ask
    - name: after
      type: suspend
      properties:
        duration: 1s
`
	for _, tc := range []struct {
		decision string
		want     string
	}{
		{"continue", `run suspending suspend(Steps)
  approve succeeded
  after suspending (Suspend) resume@+1s
`},
		{"rollback", `run failed finished "step \"approve\" failed: rolled back"
  approve failed (Fail) "rolled back"
  after skipped (UpstreamNotSucceeded) "step \"approve\" did not succeed"
`},
		{"stop", `run terminated finished "stopped: not continuing"
  approve failed (Terminate) "stopped: not continuing"
`},
	} {
		t.Run(tc.decision, func(t *testing.T) {
			ar := &txtar.Archive{Files: []txtar.File{
				{Name: "definitions/notify-and-approve.cue", Data: def},
				{Name: "run.yaml", Data: []byte(run)},
			}}
			sc := newScenario(t, ar)
			first := sc.runScript(t, "tick\n")
			if !strings.Contains(first, `approve suspending (Suspend) "waiting for approval"`) {
				t.Fatalf("first tick: the step should suspend for approval:\n%s", first)
			}
			got := sc.runScript(t, fmt.Sprintf("context decision %q\nresume\ntick\nhits\n", tc.decision))
			_, after, _ := strings.Cut(got, "> tick\n")
			status, hits, _ := strings.Cut(after, "> hits\n")
			if status, _, _ = strings.Cut(status, "wake "); status != tc.want {
				t.Errorf("after decision=%s and resume:\n--- got\n%s--- want\n%s", tc.decision, status, tc.want)
			}
			if !strings.HasPrefix(hits, "hits /ask=1 keys=1") {
				t.Errorf("the POST should be sent once with one Idempotency-Key, got %q", hits)
			}
		})
	}
}
