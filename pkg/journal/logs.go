package journal

import (
	"fmt"
	"strings"
	"time"

	"github.com/stepflow-dev/stepflow/pkg/op"
)

// StepLog keeps a #Log line of a step (op.LogSink), with the time the
// journal's clock (WithClock) gives; Flush saves it. #Log runs on every
// evaluation, so a line equal to the step's last one is not kept again.
// The lines are bounded in bytes (Limits), their times counted with them:
// a line over MaxLogLineBytes is cut and says so; past MaxStepLogBytes for
// the step, or MaxRunLogBytes for the run, the oldest lines go with their
// times (of the step with the most, for the run's bound), and the step's
// first kept line says how many went. Logs are kept apart from entries and
// variables, so no log line can keep an effect from being recorded.
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
	if j.d.LogTimes == nil {
		j.d.LogTimes = map[string][]int64{}
	}
	name := step.StepName
	lines := j.d.Logs[name]
	if n := len(lines); n > 0 && lines[n-1] == line {
		return
	}
	j.d.LogTimes[name] = append(alignTimes(j.d.LogTimes[name], len(lines)), j.now().UnixMilli())
	j.d.Logs[name] = append(lines, line)
	j.chg.logs[name] = true
	for j.stepLogBytes(name) > j.limits.MaxStepLogBytes && j.dropOldest(name) {
	}
	for j.runLogBytes() > j.limits.MaxRunLogBytes {
		if !j.dropOldest(j.largestLog()) {
			break
		}
	}
}

// alignTimes returns the times of a step's n lines: those of its last
// lines, after zeros for first lines that have none (written before
// times were kept).
func alignTimes(times []int64, n int) []int64 {
	if len(times) >= n {
		return times[len(times)-n:]
	}
	return append(make([]int64, n-len(times), n+1), times...)
}

// LogTime is when line i of step's Logs was written; false when the
// journal does not know (it was written before times were kept).
func (d Data) LogTime(step string, i int) (time.Time, bool) {
	times := alignTimes(d.LogTimes[step], len(d.Logs[step]))
	if i < 0 || i >= len(times) || times[i] == 0 {
		return time.Time{}, false
	}
	return time.UnixMilli(times[i]), true
}

// droppedPrefix starts the line that stands for a step's dropped lines.
const droppedPrefix = "… "

func droppedLine(n int) string {
	return fmt.Sprintf("%s%d earlier lines dropped (log bound)", droppedPrefix, n)
}

// dropOldest drops the oldest real line of a step and its time, keeping
// the marker line first, with the time of the newest line dropped. It
// reports false when the step has no line left to drop.
func (j *Journal) dropOldest(name string) bool {
	lines := j.d.Logs[name]
	times := alignTimes(j.d.LogTimes[name], len(lines))
	if j.d.LogsDropped[name] > 0 {
		lines, times = lines[1:], times[1:]
	}
	if len(lines) <= 1 {
		// The newest line stays: it is within MaxLogLineBytes.
		return false
	}
	j.d.LogsDropped[name]++
	j.d.Logs[name] = append([]string{droppedLine(j.d.LogsDropped[name])}, lines[1:]...)
	j.d.LogTimes[name] = append([]int64{times[0]}, times[1:]...)
	j.chg.logs[name] = true
	return true
}

func (j *Journal) largestLog() string {
	best, most := "", -1
	for name := range j.d.Logs {
		if n := j.stepLogBytes(name); n > most || (n == most && name < best) {
			best, most = name, n
		}
	}
	return best
}

func (j *Journal) runLogBytes() int {
	n := 0
	for name := range j.d.Logs {
		n += 2*len(name) + j.stepLogBytes(name)
	}
	return n
}

// timeBytes bounds a time's length in JSON: 13 digits of Unix
// milliseconds and a comma.
const timeBytes = 14

// stepLogBytes bounds the JSON size of a step's lines and their times.
func (j *Journal) stepLogBytes(name string) int {
	return logBytes(j.d.Logs[name]) + timeBytes*len(j.d.LogTimes[name])
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
