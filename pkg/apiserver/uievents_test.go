package apiserver

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/web"
)

// uiEvent is an event of the UI's stream, or a comment (event "comment").
type uiEvent struct {
	event, id, data string
}

// openEvents opens GET /ui/api/events?query with the token as
// access_token, as EventSource sends it; its events, comments included,
// come on the channel until the stream ends; cancel closes it.
func openEvents(t *testing.T, srv, query, tok string) (<-chan uiEvent, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	u := srv + "/ui/api/events?" + query + "&access_token=" + url.QueryEscape(tok)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %d %s: %s", u, resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	out := make(chan uiEvent, 1024)
	go func() {
		defer close(out)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<22)
		var ev uiEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev != (uiEvent{}) {
					out <- ev
				}
				ev = uiEvent{}
			case strings.HasPrefix(line, ":"):
				out <- uiEvent{event: "comment", data: strings.TrimSpace(line[1:])}
			default:
				k, v, _ := strings.Cut(line, ":")
				v = strings.TrimPrefix(v, " ")
				switch k {
				case "event":
					ev.event = v
				case "id":
					ev.id = v
				case "data":
					ev.data += v
				}
			}
		}
	}()
	return out, cancel
}

// await is the first event of events that ok accepts (comments and others
// skipped); it fails the test after within.
func await(t *testing.T, events <-chan uiEvent, within time.Duration, what string, ok func(uiEvent) bool) uiEvent {
	t.Helper()
	timeout := time.After(within)
	for {
		select {
		case ev, open := <-events:
			if !open {
				t.Fatalf("the stream ended before %s", what)
			}
			if ok(ev) {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %s within %s", what, within)
		}
	}
}

// runEventOf reports whether ev is a run event of name, and the summary.
func runEventOf(ev uiEvent, name string) (RunSummary, bool) {
	if ev.event != "run" {
		return RunSummary{}, false
	}
	var s RunSummary
	if json.Unmarshal([]byte(ev.data), &s) != nil || s.Name != name {
		return RunSummary{}, false
	}
	return s, true
}

func TestUIEvents(t *testing.T) {
	ten, other := newTenant(t), newTenant(t)
	srv, runs := serveUI(t, ten.ns, func(o *Options) { o.UIPing = 100 * time.Millisecond })
	before := create(t, uiRunObj(ten.ns, "before", "shop", "DEPLOY", nil))
	inCache(t, before)

	events, closeStream := openEvents(t, srv.URL, "namespace="+ten.ns, ten.readerTok)
	// First the runs as they are now.
	first := await(t, events, 10*time.Second, "the run that was there", func(ev uiEvent) bool { return ev.event != "comment" })
	if s, ok := runEventOf(first, "before"); !ok || first.id != before.ResourceVersion || s.AppID != "shop" {
		t.Fatalf("first event %+v", first)
	}
	// Only this namespace's runs (another's run is not sent).
	create(t, uiRunObj(other.ns, "elsewhere", "", "", nil))

	created := time.Now()
	after := create(t, uiRunObj(ten.ns, "after", "", "", nil))
	ev := await(t, events, time.Second, "event for the run created after connecting", func(ev uiEvent) bool {
		if ev.event == "run" && strings.Contains(ev.data, `"elsewhere"`) {
			t.Errorf("a run of another namespace was sent: %s", ev.data)
		}
		_, ok := runEventOf(ev, "after")
		return ok
	})
	t.Logf("the new run arrived %s after its create returned", time.Since(created))
	if ev.id != after.ResourceVersion {
		t.Errorf("id %q, want the resourceVersion %s", ev.id, after.ResourceVersion)
	}

	setStatus(t, after, func(st *v1alpha1.WorkflowRunStatus) {
		st.Phase = v1alpha1.WorkflowRunSucceeded
		st.Finished = true
	})
	await(t, events, 10*time.Second, "the status change", func(ev uiEvent) bool {
		s, ok := runEventOf(ev, "after")
		return ok && s.Phase == "succeeded" && ev.id == after.ResourceVersion
	})

	if err := env.Client.Delete(context.Background(), after); err != nil {
		t.Fatal(err)
	}
	gone := await(t, events, 10*time.Second, "the deletion", func(ev uiEvent) bool { return ev.event == "deleted" })
	if gone.data != fmt.Sprintf(`{"name":"after","namespace":%q}`, ten.ns) {
		t.Errorf("deleted event %q", gone.data)
	}
	await(t, events, 10*time.Second, "a ping", func(ev uiEvent) bool { return ev.event == "comment" && ev.data == "ping" })

	// A stream of one run has only that run.
	one, _ := openEvents(t, srv.URL, "namespace="+ten.ns+"&run=before", ten.readerTok)
	if ev := await(t, one, 10*time.Second, "the run", func(ev uiEvent) bool { return ev.event != "comment" }); !strings.Contains(ev.data, `"before"`) {
		t.Errorf("run=before sent %+v", ev)
	}

	// A stream of every namespace has those the caller may list only.
	all, _ := openEvents(t, srv.URL, "", other.readerTok)
	create(t, uiRunObj(ten.ns, "hidden", "", "", nil))
	create(t, uiRunObj(other.ns, "visible", "", "", nil))
	seen := map[string]bool{}
	await(t, all, 10*time.Second, "the other tenant's new run", func(ev uiEvent) bool {
		var s RunSummary
		if ev.event == "run" && json.Unmarshal([]byte(ev.data), &s) == nil {
			seen[s.Namespace+"/"+s.Name] = true
		}
		return seen[other.ns+"/visible"]
	})
	if len(seen) != 2 || !seen[other.ns+"/elsewhere"] {
		t.Errorf("the other tenant's stream of every namespace sent %v", seen)
	}

	// A client that goes away takes its handler with it.
	if a, r := runs.added.Load(), runs.removed.Load(); a != 3 || r != 0 {
		t.Fatalf("%d handlers added, %d removed; want 3, 0", a, r)
	}
	closeStream()
	eventually(t, func() bool { return runs.removed.Load() == 1 })
}

// TestUIEventsDropsASlowClient: a client that stops reading fills its
// socket, then its queue, and is dropped (its handler removed), while
// another client gets every change.
func TestUIEventsDropsASlowClient(t *testing.T) {
	ten := newTenant(t)
	srv, runs := serveUI(t, ten.ns, func(o *Options) { o.UIEventBuffer = 8 })
	run := create(t, uiRunObj(ten.ns, "busy", "", "", nil))
	inCache(t, run)

	// The slow client: a socket with a small receive buffer, never read.
	c, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.(*net.TCPConn).SetReadBuffer(4096); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "GET /ui/api/events?namespace=%s&access_token=%s HTTP/1.1\r\nHost: stepflow\r\n\r\n", ten.ns, url.QueryEscape(ten.readerTok))
	eventually(t, func() bool { return runs.added.Load() == 1 })

	fast, _ := openEvents(t, srv.URL, "namespace="+ten.ns, ten.readerTok)
	await(t, fast, 10*time.Second, "the run", func(ev uiEvent) bool { _, ok := runEventOf(ev, "busy"); return ok })

	// 60 changes of 256 KiB each: more than the sockets hold.
	big := strings.Repeat("x", 256<<10)
	for i := range 60 {
		setStatus(t, run, func(st *v1alpha1.WorkflowRunStatus) { st.Message = fmt.Sprint(i, big) })
	}
	last := run.ResourceVersion
	await(t, fast, 20*time.Second, "the last change on the client that reads", func(ev uiEvent) bool {
		_, ok := runEventOf(ev, "busy")
		return ok && ev.id == last
	})
	eventually(t, func() bool { return runs.removed.Load() == 1 })
	if a := runs.added.Load(); a != 2 {
		t.Errorf("%d handlers added, want 2", a)
	}
}

func TestUISinglePageApp(t *testing.T) {
	app := fstest.MapFS{
		"index.html":        {Data: []byte("<!doctype html><title>app</title>")},
		"assets/app-1a.js":  {Data: []byte("console.log(1)")},
		"favicon.svg":       {Data: []byte("<svg/>")},
		"assets/nested/x.c": {Data: []byte("c")},
	}
	srv := httptest.NewServer(New(Options{Auth: refuseAll{}, Namespace: "default", UI: app}))
	defer srv.Close()
	for _, tc := range []struct {
		path         string
		status       int
		body, cache  string
		contentStart string
	}{
		{"/", 200, "<!doctype html><title>app</title>", "no-cache", "text/html"},
		{"/runs/ns1/run1", 200, "<!doctype html><title>app</title>", "no-cache", "text/html"},
		{"/runs/ns1/run1/steps/deploy", 200, "<!doctype html><title>app</title>", "no-cache", "text/html"},
		{"/assets/app-1a.js", 200, "console.log(1)", "public, max-age=31536000, immutable", "text/javascript"},
		{"/favicon.svg", 200, "<svg/>", "no-cache", "image/svg+xml"},
		{"/assets/app-old.js", 404, "", "", "application/json"},
		{"/assets/nested", 404, "", "", "application/json"},
		{"/workflow/nope/x", 404, "", "", "application/json"},
		{"/ui/api/nope", 404, "", "", "application/json"},
		{"/openapi.yaml", 404, "", "", "application/json"},
		{"/metrics", 404, "", "", "application/json"},
		{"/workflows-page", 200, "<!doctype html><title>app</title>", "no-cache", "text/html"},
		{"/healthz", 200, "", "", "application/json"},
	} {
		resp, err := http.Get(srv.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || tc.body != "" && string(b) != tc.body ||
			resp.Header.Get("Cache-Control") != tc.cache && tc.cache != "" ||
			!strings.HasPrefix(resp.Header.Get("Content-Type"), tc.contentStart) {
			t.Errorf("GET %s: %d, Cache-Control %q, Content-Type %q: %.80s", tc.path, resp.StatusCode,
				resp.Header.Get("Cache-Control"), resp.Header.Get("Content-Type"), b)
		}
	}
	// Without a UI, / is the API's 404.
	srv2 := httptest.NewServer(New(Options{Auth: refuseAll{}, Namespace: "default"}))
	defer srv2.Close()
	resp, err := http.Get(srv2.URL + "/runs/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("no UI: GET /runs/x: %d", resp.StatusCode)
	}
}

// TestUIEmbedded: the binary's app has an index.html, whether the
// committed placeholder or make ui's build.
func TestUIEmbedded(t *testing.T) {
	srv := httptest.NewServer(New(Options{Auth: refuseAll{}, Namespace: "default", UI: web.Dist()}))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/runs/ns/name")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "<title>Stepflow</title>") {
		t.Errorf("GET /runs/ns/name: %d: %.200s", resp.StatusCode, b)
	}
}

// TestUIEventsBounded: a user has at most MaxStreams event streams open,
// and each ends after MaxFollow.
func TestUIEventsBounded(t *testing.T) {
	ten := newTenant(t)
	srv, runs := serveUI(t, ten.ns, func(o *Options) { o.MaxStreams = 1; o.MaxFollow = 300 * time.Millisecond })
	first, _ := openEvents(t, srv.URL, "namespace="+ten.ns, ten.readerTok)
	if code := uiGet(t, srv.URL+"/ui/api/events?namespace="+ten.ns+"&access_token="+url.QueryEscape(ten.readerTok), "", nil); code != http.StatusTooManyRequests {
		t.Errorf("a second stream: %d, want 429", code)
	}
	ev := await(t, first, 10*time.Second, "the end", func(ev uiEvent) bool { return ev.event == "end" })
	if !strings.Contains(ev.data, "300ms") {
		t.Errorf("end event %q", ev.data)
	}
	for range first { // the stream closes
	}
	eventually(t, func() bool { return runs.removed.Load() == 1 })
	// Its place is free again.
	openEvents(t, srv.URL, "namespace="+ten.ns, ten.readerTok)
}
