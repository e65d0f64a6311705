package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
)

// TestStartLocalAPI starts the REST API the way `stepflow local` (make
// run) does, against the test control plane: on the default address, or
// any free loopback port while that one is taken; ready, and answering
// GET /workflow with the envelope, when it returns.
func TestStartLocalAPI(t *testing.T) {
	kc, err := env.Kubeconfig(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// Whoever holds the default port (this test, or something else on
	// the machine), the local API must come up elsewhere.
	if hold, err := net.Listen("tcp", defaultLocalAPIListen); err == nil {
		defer hold.Close()
	}
	base, stop, err := startLocalAPI(ctx, defaultLocalAPIListen, kc)
	if err != nil {
		t.Fatalf("default address taken: %v", err)
	}
	defer stop()
	if base == "http://"+defaultLocalAPIListen || !strings.HasPrefix(base, "http://127.0.0.1:") {
		t.Errorf("served on %s; want another port of 127.0.0.1 while %s is taken", base, defaultLocalAPIListen)
	}
	resp, err := http.Get(base + "/workflow?appId=" + grayReleaseAppID)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var envelope struct {
		Code    int             `json:"code"`
		Success bool            `json:"success"`
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&envelope); err != nil {
		t.Fatalf("GET /workflow: %s, not the envelope: %v", resp.Status, err)
	}
	if resp.StatusCode != http.StatusOK || envelope.Code != 200 || !envelope.Success || envelope.Message != "SUCCESS" || !strings.Contains(string(envelope.Data), `"items"`) {
		t.Errorf("GET /workflow: %s %+v, want a page in a SUCCESS envelope", resp.Status, envelope)
	}
}

func TestStartLocalAPIRefuses(t *testing.T) {
	kc, err := env.Kubeconfig(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	for _, tc := range []struct{ listen, want string }{
		// --auth none only on loopback.
		{listen: "0.0.0.0:0", want: "loopback"},
		{listen: ":8080", want: "loopback"},
		// An address asked for is not silently replaced.
		{listen: taken.Addr().String(), want: "listening on " + taken.Addr().String()},
	} {
		_, stop, err := startLocalAPI(context.Background(), tc.listen, kc)
		if err == nil {
			stop()
			t.Errorf("--api-listen %s: served, want an error saying %q", tc.listen, tc.want)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("--api-listen %s: %v, want it to say %q", tc.listen, err, tc.want)
		}
	}
}
