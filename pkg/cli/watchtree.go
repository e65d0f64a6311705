package cli

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	"k8s.io/apimachinery/pkg/types"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
)

// redrawEvery is how often watch redraws the tree on a terminal while
// nothing changes, so the durations of running steps grow.
const redrawEvery = time.Second

func newWatchCmd(deps Deps, g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "watch RUN",
		Short: "Follow a run live: a tree of its steps redrawn in place (one line per change when piped)",
		Long: `Watches the run until it finishes. On a terminal it draws the run (phase,
steps done, duration, message) and the tree of its steps and sub-steps, each
with its phase, duration (to now while it runs) and message, and redraws it in
place as the run changes. When standard output is not a terminal it prints one
line per step phase change, as run --watch does. It exits 0 when the run
succeeds, and non-zero with the run's message when it fails or is terminated.
Interrupting it (Ctrl-C) stops the watching only, not the run.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			key := types.NamespacedName{Namespace: g.ns(), Name: args[0]}
			if !deps.stdoutIsTerminal() {
				return follow(cmd.Context(), deps.Stdout, c, key, time.Now)
			}
			t := &tree{w: deps.Stdout, now: time.Now}
			if f, ok := deps.Stdout.(*os.File); ok {
				t.width, t.height, _ = term.GetSize(int(f.Fd()))
			}
			tick := time.NewTicker(redrawEvery)
			defer tick.Stop()
			return followRun(cmd.Context(), c, key, t, tick.C)
		},
	}
}

// stdoutIsTerminal is Deps.Terminal's answer, else whether Stdout is a
// file that is a terminal.
func (d Deps) stdoutIsTerminal() bool {
	if d.Terminal != nil {
		return d.Terminal()
	}
	f, ok := d.Stdout.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// ANSI control sequences of the redraw.
const (
	cursorUp   = "\x1b[%dA" // up n lines
	clearLine  = "\r\x1b[2K"
	clearBelow = "\x1b[J" // from the cursor to the end of the screen
)

// tree draws the run in place on a terminal (runView): each frame moves
// the cursor up over the last one and writes over its lines, clearing
// each first and whatever the last frame had below.
type tree struct {
	w   io.Writer
	now func() time.Time
	// width and height are the terminal's, when known (else 0): a frame's
	// lines are cut to fit, since a line that wraps, or a frame taller than
	// the screen, would leave the cursor short of the frame's top.
	width, height int
	// lines is the height of the last frame.
	lines int
}

func (t *tree) show(run *v1alpha1.WorkflowRun, steps []v1alpha1.WorkflowStep) bool {
	var frame bytes.Buffer
	drawRun(&frame, run, steps, t.now())
	var out strings.Builder
	if t.lines > 0 {
		fmt.Fprintf(&out, cursorUp, t.lines)
	}
	lines := fitScreen(strings.Split(strings.TrimSuffix(frame.String(), "\n"), "\n"), t.width, t.height)
	for _, l := range lines {
		out.WriteString(clearLine + l + "\n")
	}
	out.WriteString(clearBelow)
	t.lines = len(lines)
	_, _ = io.WriteString(t.w, out.String())
	return run.Status.Finished
}

// fitScreen cuts lines to width-1 runes and keeps the first height-1 of
// them, the last kept saying how many more there are; 0 leaves a bound
// out. (The frame's characters, box drawing included, are one column
// wide.)
func fitScreen(lines []string, width, height int) []string {
	if height > 1 && len(lines) > height-1 {
		more := len(lines) - (height - 2)
		lines = append(lines[:height-2:height-2], fmt.Sprintf("… %d more lines", more))
	}
	if width > 1 {
		for i, l := range lines {
			if r := []rune(l); len(r) > width-1 {
				lines[i] = string(r[:width-1])
			}
		}
	}
	return lines
}

// outcome: the last frame shows how the run ended.
func (t *tree) outcome(run *v1alpha1.WorkflowRun) error { return runOutcome(run) }

// drawRun writes a frame of watch: the run's phase, steps done, duration
// and message, then its steps as get draws them (sub-steps as branches
// of their group) with phase, duration and message. Messages are cut so a
// line does not wrap on most terminals, which would break the redraw.
func drawRun(w io.Writer, run *v1alpha1.WorkflowRun, steps []v1alpha1.WorkflowStep, now time.Time) {
	total := max(len(run.Status.Steps), len(steps))
	fmt.Fprintf(w, "workflowrun %s/%s  %s  %s steps", run.Namespace, run.Name, phaseOf(run), stepCount(run.Status, total))
	if d := runDuration(run.Status, now); d != "" {
		fmt.Fprintf(w, "  %s", d)
	}
	if run.Status.Message != "" {
		fmt.Fprintf(w, "  %s", truncate(run.Status.Message, 80))
	}
	fmt.Fprintln(w)
	tw := newTable(w, "STEP", "PHASE", "DURATION", "MESSAGE")
	rows := stepRows(steps, run.Status)
	for i, r := range rows {
		row(tw, treeName(rows, i), string(r.phase()), stepDuration(r.status, now), truncate(reasonMessage(r.status), 60))
	}
	tw.Flush()
}
