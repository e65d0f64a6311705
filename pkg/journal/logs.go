package journal

import (
	"fmt"
	"strings"

	"github.com/stepflow-dev/stepflow/pkg/op"
)

// StepLog keeps a #Log line of a step (op.LogSink); Flush saves it. #Log
// runs on every evaluation, so a line equal to the step's last one is not
// kept again. The lines are bounded in bytes (Limits): a line over
// MaxLogLineBytes is cut and says so; past MaxStepLogBytes for the step, or
// MaxRunLogBytes for the run, the oldest lines go (of the step with the
// most, for the run's bound), and the step's first kept line says how many
// went. Logs are kept apart from entries and variables, so no log line can
// keep an effect from being recorded.
func (j *Journal) StepLog(step op.Step, _ int, line string) {
	line = cutLine(line, j.limits.MaxLogLineBytes)
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.d.Logs == nil {
		j.d.Logs = map[string][]string{}
	}
	if j.d.LogsDropped == nil {
		j.d.LogsDropped = map[string]int{}
	}
	name := step.StepName
	lines := j.d.Logs[name]
	if n := len(lines); n > 0 && lines[n-1] == line {
		return
	}
	j.d.Logs[name] = append(lines, line)
	j.chg.logs[name] = true
	for logBytes(j.d.Logs[name]) > j.limits.MaxStepLogBytes && j.dropOldest(name) {
	}
	for j.runLogBytes() > j.limits.MaxRunLogBytes {
		if !j.dropOldest(j.largestLog()) {
			break
		}
	}
}

// droppedPrefix starts the line that stands for a step's dropped lines.
const droppedPrefix = "… "

func droppedLine(n int) string {
	return fmt.Sprintf("%s%d earlier lines dropped (log bound)", droppedPrefix, n)
}

// dropOldest drops the oldest real line of a step, keeping the marker
// line first. It reports false when the step has no line left to drop.
func (j *Journal) dropOldest(name string) bool {
	lines := j.d.Logs[name]
	if j.d.LogsDropped[name] > 0 {
		lines = lines[1:]
	}
	if len(lines) <= 1 {
		// The newest line stays: it is within MaxLogLineBytes.
		return false
	}
	j.d.LogsDropped[name]++
	j.d.Logs[name] = append([]string{droppedLine(j.d.LogsDropped[name])}, lines[1:]...)
	j.chg.logs[name] = true
	return true
}

func (j *Journal) largestLog() string {
	best, most := "", -1
	for name, lines := range j.d.Logs {
		if n := logBytes(lines); n > most || (n == most && name < best) {
			best, most = name, n
		}
	}
	return best
}

func (j *Journal) runLogBytes() int {
	n := 0
	for name, lines := range j.d.Logs {
		n += len(name) + logBytes(lines)
	}
	return n
}

// logBytes is a bound on the size of lines in JSON: each byte may take up
// to 6 (\u00XX) for control characters, which are rare; count them so.
func logBytes(lines []string) int {
	n := 0
	for _, l := range lines {
		n += jsonLen(l)
	}
	return n
}

func jsonLen(s string) int {
	n := 3 // quotes and comma
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c == '<' || c == '>' || c == '&':
			n += 6
		case c == '"' || c == '\\':
			n += 2
		default:
			n++
		}
	}
	return n
}

// cutLine cuts a line whose JSON encoding is over max bytes, marking the
// cut with the line's full length.
func cutLine(line string, max int) string {
	if jsonLen(line) <= max {
		return line
	}
	mark := fmt.Sprintf(" … (truncated, %d bytes)", len(line))
	budget := max - jsonLen(mark)
	var b strings.Builder
	used := 3
	for _, r := range line {
		w := jsonLen(string(r)) - 3
		if used+w > budget {
			break
		}
		b.WriteRune(r)
		used += w
	}
	return b.String() + mark
}

// Logs returns the kept #Log lines of a step.
func (j *Journal) Logs(step string) []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]string(nil), j.d.Logs[step]...)
}
