package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// sample is one line of the Prometheus text format.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// metrics is one scrape.
type metrics []sample

// parseMetrics reads the Prometheus text format: comments are skipped,
// timestamps ignored.
func parseMetrics(r io.Reader) (metrics, error) {
	var out metrics
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		s, err := parseSample(line)
		if err != nil {
			return nil, fmt.Errorf("metrics line %q: %w", line, err)
		}
		out = append(out, s)
	}
	return out, sc.Err()
}

func parseSample(line string) (sample, error) {
	s := sample{labels: map[string]string{}}
	i := strings.IndexAny(line, "{ ")
	if i < 0 {
		return s, fmt.Errorf("no value")
	}
	s.name, line = line[:i], line[i:]
	if line[0] == '{' {
		line = line[1:]
		for {
			line = strings.TrimLeft(line, " ,")
			if strings.HasPrefix(line, "}") {
				line = line[1:]
				break
			}
			eq := strings.Index(line, `="`)
			if eq < 0 {
				return s, fmt.Errorf("bad label")
			}
			key := line[:eq]
			line = line[eq+2:]
			var v strings.Builder
			j := 0
			for ; j < len(line) && line[j] != '"'; j++ {
				if line[j] == '\\' && j+1 < len(line) {
					j++
					if line[j] == 'n' {
						v.WriteByte('\n')
						continue
					}
				}
				v.WriteByte(line[j])
			}
			if j == len(line) {
				return s, fmt.Errorf("unterminated label value")
			}
			s.labels[key] = v.String()
			line = line[j+1:]
		}
	}
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return s, fmt.Errorf("no value")
	}
	v, err := strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return s, err
	}
	s.value = v
	return s, nil
}

// matches reports whether s has every label of match.
func (s sample) matches(match map[string]string) bool {
	for k, v := range match {
		if s.labels[k] != v {
			return false
		}
	}
	return true
}

// sum adds up the samples of name that carry the labels of match.
func (m metrics) sum(name string, match map[string]string) float64 {
	total := 0.0
	for _, s := range m {
		if s.name == name && s.matches(match) {
			total += s.value
		}
	}
	return total
}

// by adds up the samples of name that carry the labels of match, by the
// values of the labels keys (joined with a space).
func (m metrics) by(name string, match map[string]string, keys ...string) map[string]float64 {
	out := map[string]float64{}
	for _, s := range m {
		if s.name != name || !s.matches(match) {
			continue
		}
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = s.labels[k]
		}
		out[strings.Join(parts, " ")] += s.value
	}
	return out
}

// snapshot is everything measured at one moment: before the runs are
// created and after they finished.
type snapshot struct {
	at       time.Time
	metrics  metrics
	usage    procUsage
	usageErr error
	// plane holds the CPU time of kube-apiserver and etcd.
	plane        map[string]procUsage
	auditOffset  int64
	httpRequests int64
}

func takeSnapshot(ctx context.Context, ctl controllerUnderTest, cl *cluster, answer *answerServer) (snapshot, error) {
	s := snapshot{at: time.Now(), httpRequests: answer.requests.Load(), plane: map[string]procUsage{}}
	s.usage, s.usageErr = ctl.usage()
	for name, pid := range childrenNamed("kube-apiserver", "etcd") {
		if u, err := readProc(pid); err == nil {
			s.plane[name] = u
		}
	}
	var err error
	if s.metrics, err = scrape(ctx, ctl.metricsURL()); err != nil {
		return s, fmt.Errorf("scraping the controller's metrics: %w", err)
	}
	if cl.auditLog != "" {
		// The API server writes an event when the response is complete;
		// give the last ones a moment to reach the file.
		time.Sleep(500 * time.Millisecond)
		if fi, err := os.Stat(cl.auditLog); err == nil {
			s.auditOffset = fi.Size()
		}
	}
	return s, nil
}

// auditEvent is the part of an audit.k8s.io/v1 Event the harness reads.
type auditEvent struct {
	AuditID    string `json:"auditID"`
	Stage      string `json:"stage"`
	Verb       string `json:"verb"`
	RequestURI string `json:"requestURI"`
	User       struct {
		Username string `json:"username"`
	} `json:"user"`
	ObjectRef *struct {
		Resource    string `json:"resource"`
		Subresource string `json:"subresource"`
	} `json:"objectRef"`
	ResponseStatus *struct {
		Code int `json:"code"`
	} `json:"responseStatus"`
}

// auditCounts are requests by user, then by "verb resource[/subresource]"
// (the path for non-resource requests), with the status code appended
// when it is 400 or more.
type auditCounts map[string]map[string]int

// countAudit counts the requests the audit log recorded between two
// offsets. A request counts once: when its response completed, or, for a
// watch, when it started.
func countAudit(path string, from, to int64) (auditCounts, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if to > int64(len(raw)) {
		to = int64(len(raw))
	}
	// A line cut by an offset belongs to the window it ends in.
	if from > 0 && raw[from-1] != '\n' {
		if i := bytes.IndexByte(raw[from:], '\n'); i >= 0 {
			from += int64(i) + 1
		}
	}
	if i := bytes.IndexByte(raw[to:], '\n'); to > 0 && raw[to-1] != '\n' && i >= 0 {
		to += int64(i) + 1
	}
	out := auditCounts{}
	for _, line := range bytes.Split(raw[from:to], []byte{'\n'}) {
		if len(line) == 0 {
			continue
		}
		var ev auditEvent
		if err := json.Unmarshal(line, &ev); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if !(ev.Stage == "ResponseComplete" && ev.Verb != "watch") && !(ev.Stage == "ResponseStarted" && ev.Verb == "watch") {
			continue
		}
		what := ev.RequestURI
		if i := strings.IndexByte(what, '?'); i >= 0 {
			what = what[:i]
		}
		if ev.ObjectRef != nil && ev.ObjectRef.Resource != "" {
			what = ev.ObjectRef.Resource
			if ev.ObjectRef.Subresource != "" {
				what += "/" + ev.ObjectRef.Subresource
			}
		}
		key := ev.Verb + " " + what
		if ev.ResponseStatus != nil && ev.ResponseStatus.Code >= 400 {
			key += fmt.Sprintf(" (%d)", ev.ResponseStatus.Code)
		}
		byUser := out[ev.User.Username]
		if byUser == nil {
			byUser = map[string]int{}
			out[ev.User.Username] = byUser
		}
		byUser[key]++
	}
	return out, nil
}
