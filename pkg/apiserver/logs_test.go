package apiserver

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/journal"
	"github.com/stepflow-dev/stepflow/pkg/journal/kubestore"
	"github.com/stepflow-dev/stepflow/pkg/op"
)

// These tests drive the run's status and journal directly, as the
// controller writes them (no controller runs): #Log lines through the
// journal on kubestore, then the run's status.contextBackend once the
// journal ConfigMap exists, and step phases with setSteps.

// appendLogs appends #Log lines of a step to run's journal, as a step's
// evaluation does, and records the journal on the run's status as the
// controller does after its first write.
func appendLogs(t *testing.T, run *v1alpha1.WorkflowRun, stepName string, lines ...string) {
	t.Helper()
	ctx := context.Background()
	var live v1alpha1.WorkflowRun
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(run), &live); err != nil {
		t.Fatal(err)
	}
	store := kubestore.New(env.Client, &live, nil)
	j, err := journal.Open(ctx, store, journal.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range lines {
		j.StepLog(op.Step{RunName: live.Name, Namespace: live.Namespace, StepName: stepName}, 0, l)
	}
	if err := j.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if live.Status.ContextBackend == nil {
		live.Status.ContextBackend = store.Reference()
		if err := env.Client.Status().Update(ctx, &live); err != nil {
			t.Fatal(err)
		}
	}
}

// finishStep marks step i (1-based) of run's status with phase.
func finishStep(t *testing.T, run *v1alpha1.WorkflowRun, name string, phase v1alpha1.WorkflowStepPhase) {
	t.Helper()
	ctx := context.Background()
	var live v1alpha1.WorkflowRun
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(run), &live); err != nil {
		t.Fatal(err)
	}
	for i := range live.Status.Steps {
		if live.Status.Steps[i].Name == name {
			live.Status.Steps[i].Phase = phase
		}
	}
	if err := env.Client.Status().Update(ctx, &live); err != nil {
		t.Fatal(err)
	}
}

// logRun launches the gray release and starts its first step; it returns
// the server, the instance, the run and its first step's name.
func logRun(t *testing.T, o func(*Options)) (tenant, *httptest.Server, Instance, *v1alpha1.WorkflowRun, string) {
	t.Helper()
	ten := newTenant(t)
	srv := serve(t, ten.ns)
	if o != nil {
		opts := Options{
			Client: conn.GetClient(), Live: conn.GetAPIReader(),
			Auth:      NewKubernetes(conn.GetClient(), 5*time.Second, time.Now),
			Namespace: ten.ns, SystemNamespace: systemNS, Watch: watcher,
		}
		o(&opts)
		srv = httptest.NewServer(New(opts))
		t.Cleanup(srv.Close)
	}
	in, run := launchGray(t, srv.URL, ten)
	first := run.Spec.WorkflowSpec.Steps[0].Name
	setSteps(t, run, step(first, "apply-components", v1alpha1.WorkflowStepPhaseRunning, "", 1700000001, 1700000002))
	return ten, srv, in, run, first
}

func TestTaskLogs(t *testing.T) {
	ten, srv, in, run, first := logRun(t, nil)
	appendLogs(t, run, first, "applying clustermanage-test", "applied 1 object")
	base := srv.URL + "/workflow/" + fmt.Sprint(in.ID) + "/tasks/"

	get := func(task string) TaskLogs {
		t.Helper()
		r := send(t, http.MethodGet, base+task+"/logs", ten.readerTok, "")
		r.want(t, http.StatusOK, http.StatusOK)
		var l TaskLogs
		if err := json.Unmarshal(r.Data, &l); err != nil {
			t.Fatal(err)
		}
		return l
	}
	for _, task := range []string{"1", url.PathEscape(first)} {
		got := get(task)
		if fmt.Sprint(got.Lines) != "[applying clustermanage-test applied 1 object]" || got.TaskID != 1 || got.Name != first ||
			got.TaskStatus != "RUNNING" || got.WorkflowInstanceID != in.ID {
			t.Errorf("logs of task %s: %+v", task, got)
		}
	}
	// A step that logged nothing has no lines (not null).
	r := send(t, http.MethodGet, base+"2/logs", ten.readerTok, "")
	r.want(t, http.StatusOK, http.StatusOK)
	if !strings.Contains(string(r.Data), `"lines":[]`) {
		t.Errorf("logs of a step that logged nothing: %s", r.Data)
	}

	send(t, http.MethodGet, base+"6/logs", ten.readerTok, "").want(t, http.StatusNotFound, http.StatusNotFound)
	send(t, http.MethodGet, base+"1/logs?follow=perhaps", ten.readerTok, "").want(t, http.StatusBadRequest, CodeBadInput)
	send(t, http.MethodGet, base+"1/logs", "", "").want(t, http.StatusUnauthorized, http.StatusUnauthorized)
	other := newTenant(t)
	send(t, http.MethodGet, base+"1/logs", other.readerTok, "").want(t, http.StatusForbidden, http.StatusForbidden)
	send(t, http.MethodGet, base+"1/logs?follow=true", other.readerTok, "").want(t, http.StatusForbidden, http.StatusForbidden)
}

// sseEvent is a Server-Sent Event as a client parses it.
type sseEvent struct{ id, event, data string }

// readSSE parses the events of body onto a channel, closed at the end of
// the stream.
func readSSE(body io.Reader) <-chan sseEvent {
	out := make(chan sseEvent)
	go func() {
		defer close(out)
		sc := bufio.NewScanner(body)
		var ev sseEvent
		var data []string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if data != nil || ev.event != "" {
					ev.data = strings.Join(data, "\n")
					out <- ev
				}
				ev, data = sseEvent{}, nil
			case strings.HasPrefix(line, ":"):
			default:
				k, v, _ := strings.Cut(line, ":")
				v = strings.TrimPrefix(v, " ")
				switch k {
				case "id":
					ev.id = v
				case "event":
					ev.event = v
				case "data":
					data = append(data, v)
				}
			}
		}
	}()
	return out
}

// follow opens an SSE stream of a task's logs.
func followSSE(t *testing.T, u, tok, lastEventID string) <-chan sseEvent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %d %s: %s", u, resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	return readSSE(resp.Body)
}

// next is the next event of the stream; it fails the test after a while
// without one (a guard against a hung stream, not a speed assertion).
func next(t *testing.T, events <-chan sseEvent) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-events:
		if !ok {
			t.Fatal("the stream ended")
		}
		return ev
	case <-time.After(20 * time.Second):
		t.Fatal("no event for 20s")
	}
	return sseEvent{}
}

func wantEnd(t *testing.T, events <-chan sseEvent, status, reason string) {
	t.Helper()
	ev := next(t, events)
	var end followEnd
	if ev.event != "end" || json.Unmarshal([]byte(ev.data), &end) != nil || end.TaskStatus != status || !strings.Contains(end.Reason, reason) {
		t.Fatalf("got %+v, want an end event with taskStatus %s and a reason with %q", ev, status, reason)
	}
	select {
	case ev, ok := <-events:
		if ok {
			t.Fatalf("an event after the end: %+v", ev)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the stream did not end after its end event")
	}
}

func TestTaskLogsFollowSSE(t *testing.T) {
	ten, srv, in, run, first := logRun(t, nil)
	appendLogs(t, run, first, "before the stream")
	u := srv.URL + "/workflow/" + fmt.Sprint(in.ID) + "/tasks/1/logs?follow=true"
	events := followSSE(t, u, ten.readerTok, "")

	want := func(id, data string) {
		t.Helper()
		if ev := next(t, events); ev != (sseEvent{id: id, data: data}) {
			t.Fatalf("got event %+v, want line %s %q", ev, id, data)
		}
	}
	want("1", "before the stream")
	// Lines appended while streaming arrive, each once.
	saved := time.Now()
	appendLogs(t, run, first, "while streaming")
	want("2", "while streaming")
	t.Logf("a line arrived %v after its journal write began", time.Since(saved))
	appendLogs(t, run, first, "two\nlines", "and one more")
	want("3", "two\nlines")
	want("4", "and one more")
	// Another step's lines are not this task's.
	appendLogs(t, run, "some-other-step", "not mine")
	appendLogs(t, run, first, "last")
	want("5", "last")
	// The step finishes (its journal written first, as the controller
	// does): the stream ends.
	finishStep(t, run, first, v1alpha1.WorkflowStepPhaseSucceeded)
	wantEnd(t, events, "SUCCESS", "")

	// Following a finished task sends what is left after Last-Event-ID,
	// then ends.
	events = followSSE(t, u, ten.readerTok, "3")
	want("4", "and one more")
	want("5", "last")
	wantEnd(t, events, "SUCCESS", "")

	// A task that never started ends when its run is finished.
	var live v1alpha1.WorkflowRun
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(run), &live); err != nil {
		t.Fatal(err)
	}
	events = followSSE(t, srv.URL+"/workflow/"+fmt.Sprint(in.ID)+"/tasks/3/logs?follow=true", ten.readerTok, "")
	live.Status.Phase = v1alpha1.WorkflowRunTerminated
	if err := env.Client.Status().Update(context.Background(), &live); err != nil {
		t.Fatal(err)
	}
	wantEnd(t, events, "PENDING", "the instance is TERMINATED")
}

func TestTaskLogsFollowEndsAtItsLimit(t *testing.T) {
	ten, srv, in, run, first := logRun(t, func(o *Options) { o.MaxFollow = 2 * time.Second })
	appendLogs(t, run, first, "one")
	events := followSSE(t, srv.URL+"/workflow/"+fmt.Sprint(in.ID)+"/tasks/1/logs?follow=true", ten.readerTok, "")
	if ev := next(t, events); ev.data != "one" {
		t.Fatalf("first event %+v", ev)
	}
	wantEnd(t, events, "RUNNING", "limit")
}

// A user may hold MaxStreams streams at once; one that closes is given
// back.
func TestTaskLogsStreamsPerUser(t *testing.T) {
	ten, srv, in, run, first := logRun(t, func(o *Options) { o.MaxStreams = 1 })
	appendLogs(t, run, first, "one")
	u := srv.URL + "/workflow/" + fmt.Sprint(in.ID) + "/tasks/1/logs?follow=true"
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+ten.readerTok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if ev := next(t, readSSE(resp.Body)); ev.data != "one" {
		t.Fatalf("first stream: %+v", ev)
	}
	send(t, http.MethodGet, u, ten.readerTok, "").want(t, http.StatusTooManyRequests, http.StatusTooManyRequests)
	wsURL := "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws/workflow/" + fmt.Sprint(in.ID) + "/tasks/1/ws-logs?access_token=" + ten.readerTok
	if _, r, err := websocket.Dial(context.Background(), wsURL, nil); err == nil || r == nil || r.StatusCode != http.StatusTooManyRequests {
		t.Errorf("a WebSocket over the bound: %v, %v", err, r)
	}
	// Another user is not bound by this one's streams.
	events := followSSE(t, u, ten.launchTok, "")
	if ev := next(t, events); ev.data != "one" {
		t.Fatalf("the launcher's stream: %+v", ev)
	}
	cancel()
	resp.Body.Close()
	// The server sees the client go and gives its stream back.
	eventually(t, func() bool {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+ten.readerTok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

func TestTaskLogsFollowNeedsWatch(t *testing.T) {
	ten, srv, in, _, _ := logRun(t, func(o *Options) { o.Watch = nil })
	send(t, http.MethodGet, srv.URL+"/workflow/"+fmt.Sprint(in.ID)+"/tasks/1/logs?follow=true", ten.readerTok, "").
		want(t, http.StatusNotImplemented, http.StatusNotImplemented)
}

func TestTaskLogsWebSocket(t *testing.T) {
	ten, srv, in, run, first := logRun(t, nil)
	appendLogs(t, run, first, "before the stream")
	wsURL := "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws/workflow/" + fmt.Sprint(in.ID) + "/tasks/1/ws-logs"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// Without a token, or another tenant's: refused before the upgrade.
	other := newTenant(t)
	for tok, status := range map[string]int{"": http.StatusUnauthorized, other.readerTok: http.StatusForbidden} {
		_, resp, err := websocket.Dial(ctx, wsURL+"?access_token="+url.QueryEscape(tok), nil)
		if err == nil || resp == nil || resp.StatusCode != status {
			t.Errorf("dial with token %.8q: %v, response %v; want %d", tok, err, resp, status)
		}
	}

	// The token as a query parameter (browsers), then in the header.
	c, _, err := websocket.Dial(ctx, wsURL+"?access_token="+url.QueryEscape(ten.readerTok), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	read := func(want string) {
		t.Helper()
		rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		typ, b, err := c.Read(rctx)
		if err != nil || typ != websocket.MessageText || string(b) != want {
			t.Fatalf("read %v %q, %v; want %q", typ, b, err, want)
		}
	}
	read("before the stream")
	appendLogs(t, run, first, "while streaming")
	read("while streaming")
	appendLogs(t, run, first, "last")
	read("last")
	finishStep(t, run, first, v1alpha1.WorkflowStepPhaseFailed)
	_, _, err = c.Read(ctx)
	var ce websocket.CloseError
	var end followEnd
	if !errors.As(err, &ce) || ce.Code != websocket.StatusNormalClosure || json.Unmarshal([]byte(ce.Reason), &end) != nil || end.TaskStatus != "FAILURE" {
		t.Fatalf("after the last line: %v, want a normal close saying FAILURE", err)
	}

	h := http.Header{"Authorization": {"Bearer " + ten.readerTok}}
	c2, _, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.CloseNow()
	var lines []string
	for {
		_, b, err := c2.Read(ctx)
		if err != nil {
			if websocket.CloseStatus(err) != websocket.StatusNormalClosure {
				t.Fatalf("second stream: %v", err)
			}
			break
		}
		lines = append(lines, string(b))
	}
	if fmt.Sprint(lines) != "[before the stream while streaming last]" {
		t.Errorf("a finished task's stream: %q", lines)
	}
}

func TestUnsent(t *testing.T) {
	marker := "… 3 earlier lines dropped (log bound)"
	for _, tc := range []struct {
		name          string
		kept          []string
		dropped, sent int
		want          []numbered
	}{
		{"nothing logged", nil, 0, 0, nil},
		{"all new", []string{"a", "b"}, 0, 0, []numbered{{1, "a"}, {2, "b"}}},
		{"some sent", []string{"a", "b", "c"}, 0, 2, []numbered{{3, "c"}}},
		{"all sent", []string{"a", "b"}, 0, 2, nil},
		{"dropped, all sent before", []string{marker, "d", "e"}, 3, 4, []numbered{{5, "e"}}},
		{"dropped before the stream", []string{marker, "d", "e"}, 3, 0,
			[]numbered{{3, "… 3 lines dropped before they were sent (log bound)"}, {4, "d"}, {5, "e"}}},
		{"dropped while streaming", []string{marker, "d", "e"}, 3, 1,
			[]numbered{{3, "… 2 lines dropped before they were sent (log bound)"}, {4, "d"}, {5, "e"}}},
		{"resumed past the end: started over", []string{"a"}, 0, 7, []numbered{{1, "a"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, unsent(tc.kept, tc.dropped, tc.sent), cmp.AllowUnexported(numbered{})); diff != "" {
				t.Errorf("unsent (-want +got):\n%s", diff)
			}
		})
	}
}
