package callback

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/netfence"
	httpop "github.com/stepflow-dev/stepflow/pkg/op/http"
)

func fenced(t *testing.T, cfg netfence.Config) *Sender {
	t.Helper()
	fence, err := netfence.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	base := http.DefaultTransport.(*http.Transport)
	return &Sender{Fence: fence, Timeout: 5 * time.Second, Client: &http.Client{
		Transport: httpop.FencedTransport(base, fence, false), CheckRedirect: CheckRedirect(fence)}}
}

func TestSend(t *testing.T) {
	var status atomic.Int32
	status.Store(http.StatusOK)
	var got struct {
		header http.Header
		body   map[string]any
		method string
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got.header, got.method = r.Header.Clone(), r.Method
		got.body = nil
		_ = json.Unmarshal(b, &got.body)
		w.WriteHeader(int(status.Load()))
	}))
	defer srv.Close()
	s := fenced(t, netfence.Config{})
	run := &v1alpha1.WorkflowRun{ObjectMeta: metav1.ObjectMeta{Name: "deploy", Namespace: "ns", UID: "u1"}}
	tr := v1alpha1.CallbackTransition{Key: "u1/runFailed/r0", Event: v1alpha1.CallbackRunFailed, Phase: v1alpha1.WorkflowRunFailed,
		RunError: "step a failed", Time: metav1.NewTime(time.Unix(10, 0))}
	h := http.Header{"Authorization": {"Bearer t"}}

	if err := s.Send(context.Background(), srv.URL+"/hook", h, tr.Key, NewBody(run, tr)); err != nil {
		t.Fatal(err)
	}
	if got.method != http.MethodPost || got.header.Get("Content-Type") != "application/json" ||
		got.header.Get(IdempotencyHeader) != tr.Key || got.header.Get("Authorization") != "Bearer t" {
		t.Errorf("request: %s %v", got.method, got.header)
	}
	for k, want := range map[string]any{"name": "deploy", "namespace": "ns", "uid": "u1", "phase": "Failed",
		"runError": "step a failed", "rollbackError": "", "event": "runFailed", "time": "1970-01-01T00:00:10Z"} {
		if got.body[k] != want {
			t.Errorf("body[%s] = %#v, want %#v", k, got.body[k], want)
		}
	}
	if a, ok := got.body["attributes"].(map[string]any); !ok || len(a) != 0 {
		t.Errorf("attributes = %#v, want {}", got.body["attributes"])
	}
	if _, ok := got.body["step"]; ok {
		t.Errorf("a run event has a step: %v", got.body["step"])
	}

	for code, permanent := range map[int]bool{503: false, 500: false, 429: false, 408: false, 400: true, 404: true} {
		status.Store(int32(code))
		err := s.Send(context.Background(), srv.URL, nil, tr.Key, NewBody(run, tr))
		if err == nil || IsPermanent(err) != permanent || !strings.Contains(err.Error(), srv.URL) {
			t.Errorf("status %d: error %v, permanent %v, want permanent %v", code, err, IsPermanent(err), permanent)
		}
	}

	denied := fenced(t, netfence.Config{DenyLoopback: true})
	if err := denied.Send(context.Background(), srv.URL, nil, tr.Key, NewBody(run, tr)); !IsPermanent(err) {
		t.Errorf("a URL the fence denies: %v, want a permanent error", err)
	}
	if err := s.Send(context.Background(), "ftp://x/y", nil, tr.Key, NewBody(run, tr)); !IsPermanent(err) {
		t.Errorf("a non-http URL: %v, want a permanent error", err)
	}
}
