package http

import (
	"context"
	"errors"
	"io"
	nethttp "net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stepflow-dev/stepflow/pkg/op"
)

func TestDo(t *testing.T) {
	// echo answers with the status in the X-Status request header (200 when
	// unset), the request body, and a header and a trailer of its own.
	echo := func(w nethttp.ResponseWriter, r *nethttp.Request) {
		w.Header().Set("X-Reply", "yes")
		w.Header().Set("Trailer", "X-Checksum")
		status := nethttp.StatusOK
		if s := r.Header.Get("X-Status"); s != "" {
			status = map[string]int{"404": 404, "503": 503}[s]
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, "got:"+r.Method)
		w.Header().Set("X-Checksum", "c0ffee")
	}

	tests := []struct {
		name    string
		params  Params
		class   op.Class
		want    Returns
		wantSaw seen // Header and Trailer: only the keys listed are compared
		// noHeader lists request headers the server must not have seen.
		noHeader []string
	}{{
		name:     "GET",
		params:   Params{Method: "GET"},
		class:    op.Idempotent,
		want:     Returns{StatusCode: 200, Body: "got:GET"},
		wantSaw:  seen{Method: "GET"},
		noHeader: []string{IdempotencyHeader},
	}, {
		name:     "empty method is GET",
		params:   Params{},
		class:    op.Idempotent,
		want:     Returns{StatusCode: 200, Body: "got:GET"},
		wantSaw:  seen{Method: "GET"},
		noHeader: []string{IdempotencyHeader},
	}, {
		name:     "HEAD",
		params:   Params{Method: "HEAD"},
		class:    op.Idempotent,
		want:     Returns{StatusCode: 200},
		wantSaw:  seen{Method: "HEAD"},
		noHeader: []string{IdempotencyHeader},
	}, {
		name: "POST with body and header",
		params: Params{Method: "POST", Request: Request{
			Body:   `{"text":"hi"}`,
			Header: map[string]string{"Content-Type": "application/json", "X-Token": "t1"},
		}},
		class: op.Effect,
		want:  Returns{StatusCode: 200, Body: "got:POST"},
		wantSaw: seen{Method: "POST", Body: `{"text":"hi"}`, Header: nethttp.Header{
			"Content-Type":    {"application/json"},
			"X-Token":         {"t1"},
			IdempotencyHeader: {IdempotencyKey(testStep, "notify.do")},
		}},
	}, {
		name:    "PUT",
		params:  Params{Method: "PUT", Request: Request{Body: "v"}},
		class:   op.Effect,
		want:    Returns{StatusCode: 200, Body: "got:PUT"},
		wantSaw: seen{Method: "PUT", Body: "v", Header: nethttp.Header{IdempotencyHeader: {IdempotencyKey(testStep, "notify.do")}}},
	}, {
		name:    "PATCH",
		params:  Params{Method: "PATCH", Request: Request{Body: "v"}},
		class:   op.Effect,
		want:    Returns{StatusCode: 200, Body: "got:PATCH"},
		wantSaw: seen{Method: "PATCH", Body: "v"},
	}, {
		name:    "DELETE",
		params:  Params{Method: "DELETE"},
		class:   op.Effect,
		want:    Returns{StatusCode: 200, Body: "got:DELETE"},
		wantSaw: seen{Method: "DELETE", Header: nethttp.Header{IdempotencyHeader: {IdempotencyKey(testStep, "notify.do")}}},
	}, {
		name:    "the template's own idempotency key wins",
		params:  Params{Method: "POST", Request: Request{Header: map[string]string{"idempotency-key": "mine"}}},
		class:   op.Effect,
		want:    Returns{StatusCode: 200, Body: "got:POST"},
		wantSaw: seen{Method: "POST", Header: nethttp.Header{IdempotencyHeader: {"mine"}}},
	}, {
		name: "request trailer",
		params: Params{Method: "POST", Request: Request{
			Body:    "payload",
			Trailer: map[string]string{"X-Sum": "abc"},
		}},
		class:   op.Effect,
		want:    Returns{StatusCode: 200, Body: "got:POST"},
		wantSaw: seen{Method: "POST", Body: "payload", Trailer: nethttp.Header{"X-Sum": {"abc"}}},
	}, {
		name:    "request trailer without a body",
		params:  Params{Method: "POST", Request: Request{Trailer: map[string]string{"X-Sum": "0"}}},
		class:   op.Effect,
		want:    Returns{StatusCode: 200, Body: "got:POST"},
		wantSaw: seen{Method: "POST", Trailer: nethttp.Header{"X-Sum": {"0"}}},
	}, {
		name:    "non-2xx is a result, not an error",
		params:  Params{Method: "GET", Request: Request{Header: map[string]string{"X-Status": "503"}}},
		class:   op.Idempotent,
		want:    Returns{StatusCode: 503, Body: "got:GET"},
		wantSaw: seen{Method: "GET"},
	}, {
		name:    "404 is a result too",
		params:  Params{Method: "DELETE", Request: Request{Header: map[string]string{"X-Status": "404"}}},
		class:   op.Effect,
		want:    Returns{StatusCode: 404, Body: "got:DELETE"},
		wantSaw: seen{Method: "DELETE"},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := serve(t, echo)
			f := New(Options{})
			p := tc.params
			p.URL = srv.URL + "/hook"
			if got := f.Ops()["do"].Class(&p); got != tc.class {
				t.Errorf("Class = %v, want %v", got, tc.class)
			}

			got, err := run(t, f, &p)
			if err != nil {
				t.Fatalf("call failed: %v", err)
			}
			if got.Header["X-Reply"] == nil {
				t.Errorf("response header X-Reply missing from %v", got.Header)
			}
			if p.method() != nethttp.MethodHead && !cmp.Equal(got.Trailer, map[string][]string{"X-Checksum": {"c0ffee"}}) {
				t.Errorf("response trailer = %v, want X-Checksum: c0ffee", got.Trailer)
			}
			got.Header, got.Trailer = nil, nil
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("returns (-want +got):\n%s", diff)
			}

			hits, saw := srv.saw()
			if hits != 1 {
				t.Errorf("server hits = %d, want 1", hits)
			}
			if diff := cmp.Diff(tc.wantSaw, seen{
				Method:  saw.Method,
				Body:    saw.Body,
				Header:  pick(saw.Header, tc.wantSaw.Header),
				Trailer: pick(saw.Trailer, tc.wantSaw.Trailer),
			}); diff != "" {
				t.Errorf("server saw (-want +got):\n%s", diff)
			}
			for _, h := range tc.noHeader {
				if v := saw.Header.Values(h); v != nil {
					t.Errorf("server saw header %s: %q, want none", h, v)
				}
			}
		})
	}
}

// pick returns the entries of h whose keys are in want, nil if want is nil.
func pick(h, want nethttp.Header) nethttp.Header {
	if want == nil {
		return nil
	}
	out := nethttp.Header{}
	for k := range want {
		if v, ok := h[k]; ok {
			out[k] = v
		}
	}
	return out
}

func TestIdempotencyKeyIsStablePerCall(t *testing.T) {
	srv := serve(t, nil)
	f := New(Options{})
	p := &Params{Method: "POST", URL: srv.URL}

	keyOf := func(call *op.Call) string {
		t.Helper()
		if _, err := runCall(t, context.Background(), call); err != nil {
			t.Fatalf("call failed: %v", err)
		}
		_, saw := srv.saw()
		return saw.Header.Get(IdempotencyHeader)
	}
	first := keyOf(newCall(f, p))
	second := keyOf(newCall(f, p))
	if first == "" || first != second {
		t.Fatalf("the same call sent keys %q and %q, want one non-empty key", first, second)
	}

	// Another family, same call identity: same key.
	if k := keyOf(newCall(New(Options{}), p)); k != first {
		t.Errorf("another family sent %q, want %q", k, first)
	}
	// Any other identity: another key.
	other := newCall(f, p)
	other.Path = "other.do"
	retry := newCall(f, p)
	retry.Step.StepID = "notify-2"
	run2 := newCall(f, p)
	run2.Step.RunUID = "uid-2"
	for name, call := range map[string]*op.Call{"path": other, "step attempt": retry, "run": run2} {
		if k := keyOf(call); k == first || k == "" {
			t.Errorf("another %s sent key %q, want a new one", name, k)
		}
	}
	// A call whose class the template made idempotent sends none.
	idem := newCall(f, p)
	idem.Class = op.Idempotent
	if k := keyOf(idem); k != "" {
		t.Errorf("idempotent POST sent key %q, want none", k)
	}
}

func TestClass(t *testing.T) {
	o := New(Options{}).Ops()["do"]
	tests := []struct {
		params any
		want   op.Class
	}{
		{&Params{}, op.Idempotent},
		{&Params{Method: "GET"}, op.Idempotent},
		{&Params{Method: "HEAD"}, op.Idempotent},
		{&Params{Method: "get"}, op.Idempotent},
		{&Params{Method: "POST"}, op.Effect},
		{&Params{Method: "PUT"}, op.Effect},
		{&Params{Method: "PATCH"}, op.Effect},
		{&Params{Method: "DELETE"}, op.Effect},
		{&Params{Method: "TRACE"}, op.Effect},
		{"not params", op.Effect},
	}
	for _, tc := range tests {
		if got := o.Class(tc.params); got != tc.want {
			t.Errorf("Class(%+v) = %v, want %v", tc.params, got, tc.want)
		}
	}
}

func TestInvalidParamsArePermanent(t *testing.T) {
	srv := serve(t, nil)
	tests := []struct {
		name   string
		params Params
	}{
		{"unparsable URL", Params{URL: "http://a b.example/%zz"}},
		{"relative URL", Params{URL: "/hook"}},
		{"URL without host", Params{URL: "http:///hook"}},
		{"scheme other than http", Params{URL: "ftp://127.0.0.1/x"}},
		{"method", Params{Method: "TRACE", URL: srv.URL}},
		{"timeout", Params{URL: srv.URL, Request: Request{Timeout: "soon"}}},
		{"negative timeout", Params{URL: srv.URL, Request: Request{Timeout: "-1s"}}},
		{"rate limit", Params{URL: srv.URL, Request: Request{RateLimiter: &RateLimiter{Limit: 0, Period: "1m"}}}},
		{"rate period", Params{URL: srv.URL, Request: Request{RateLimiter: &RateLimiter{Limit: 1, Period: "often"}}}},
		{"header name", Params{URL: srv.URL, Request: Request{Header: map[string]string{"Bad Name": "v"}}}},
		{"header value", Params{URL: srv.URL, Request: Request{Header: map[string]string{"X-A": "line\nbreak"}}}},
		{"trailer name", Params{URL: srv.URL, Request: Request{Trailer: map[string]string{"a:b": "v"}}}},
		{"secret header name", Params{URL: srv.URL, Request: Request{HeadersFromSecret: []SecretHeader{{Name: "", Secret: "s", Key: "k"}}}}},
		{"secret header without key", Params{URL: srv.URL, Request: Request{HeadersFromSecret: []SecretHeader{{Name: "X-A", Secret: "s"}}}}},
		{"tls_config without secret", Params{URL: srv.URL, TLSConfig: &TLSConfig{}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.params
			_, err := run(t, New(Options{}), &p)
			if err == nil {
				t.Fatal("call succeeded, want a permanent error")
			}
			if e := opError(t, err); !e.Permanent {
				t.Errorf("error is retryable, want permanent: %v", err)
			}
		})
	}
	if hits, _ := srv.saw(); hits != 0 {
		t.Errorf("server hits = %d, want 0: nothing invalid may be sent", hits)
	}

	t.Run("params of another type", func(t *testing.T) {
		f := New(Options{})
		call := newCall(f, &Params{})
		call.Params = map[string]any{"url": srv.URL}
		_, err := runCall(t, context.Background(), call)
		if !op.IsPermanent(err) {
			t.Errorf("err = %v, want permanent", err)
		}
	})
}

func TestUnreachableIsRetryable(t *testing.T) {
	_, err := run(t, New(Options{}), &Params{Method: "POST", URL: closedURL(t)})
	if err == nil {
		t.Fatal("call to a closed port succeeded")
	}
	e := opError(t, err)
	if e.Permanent {
		t.Errorf("error is permanent, want retryable: %v", err)
	}
	if e.Op != (op.Name{Provider: "http", Do: "do"}) || e.Path != "notify.do" {
		t.Errorf("error names %v at %q, want http.do at notify.do", e.Op, e.Path)
	}
}

func TestTimeout(t *testing.T) {
	srv := serve(t, func(w nethttp.ResponseWriter, r *nethttp.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	f := New(Options{})

	start := time.Now()
	_, err := run(t, f, &Params{URL: srv.URL, Request: Request{Timeout: "100ms"}})
	if err == nil {
		t.Fatal("call succeeded, want a timeout")
	}
	if elapsed := time.Since(start); elapsed > 3*time.Second {
		t.Errorf("call took %s, want about 100ms", elapsed)
	}
	if opError(t, err).Permanent {
		t.Errorf("timeout is permanent, want retryable: %v", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "100ms") {
		t.Errorf("err = %v, want a deadline naming the 100ms timeout", err)
	}
	if hits, _ := srv.saw(); hits != 1 {
		t.Errorf("server hits = %d, want 1", hits)
	}

	t.Run("family default", func(t *testing.T) {
		f := New(Options{Timeout: 100 * time.Millisecond})
		if _, err := run(t, f, &Params{URL: srv.URL}); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want the default timeout to apply", err)
		}
	})
}

func TestCancelInFlight(t *testing.T) {
	arrived := make(chan struct{}, 1)
	srv := serve(t, func(w nethttp.ResponseWriter, r *nethttp.Request) {
		arrived <- struct{}{}
		<-r.Context().Done()
	})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-arrived
		cancel()
	}()
	_, err := runCall(t, ctx, newCall(New(Options{}), &Params{Method: "POST", URL: srv.URL}))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want one wrapping context.Canceled", err)
	}
	opError(t, err)
}

func TestRateLimit(t *testing.T) {
	srv := serve(t, nil)
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	f := New(Options{Now: func() time.Time { return now }})
	limited := &Params{URL: srv.URL + "/limited", Request: Request{RateLimiter: &RateLimiter{Limit: 2, Period: "1m"}}}

	for i := range 2 {
		if _, err := run(t, f, limited); err != nil {
			t.Fatalf("call %d failed: %v", i+1, err)
		}
	}
	_, err := run(t, f, limited)
	if !errors.Is(err, ErrRateLimited) {
		t.Fatalf("third call: err = %v, want ErrRateLimited", err)
	}
	if opError(t, err).Permanent {
		t.Errorf("rate limited error is permanent, want retryable")
	}
	if hits, _ := srv.saw(); hits != 2 {
		t.Errorf("server hits = %d, want 2", hits)
	}

	// Other methods and URLs, and other families, count on their own.
	for name, c := range map[string]struct {
		f *Family
		p *Params
	}{
		"other method": {f, &Params{Method: "POST", URL: limited.URL, Request: limited.Request}},
		"other URL":    {f, &Params{URL: srv.URL + "/other", Request: limited.Request}},
		"other family": {New(Options{}), limited},
	} {
		if _, err := run(t, c.f, c.p); err != nil {
			t.Errorf("%s: call failed: %v", name, err)
		}
	}

	// A period later the window has room again.
	now = now.Add(time.Minute)
	if _, err := run(t, f, limited); err != nil {
		t.Errorf("after a period: call failed: %v", err)
	}
}

func TestHeadersFromSecret(t *testing.T) {
	store := secrets{
		"team-a/api":   {"token": []byte("Bearer s3cret"), "user": []byte("bot"), "bad": []byte("s3cret\n")},
		"other-ns/api": {"token": []byte("wrong namespace")},
	}
	header := func(name, secret, key string) Params {
		return Params{Request: Request{
			Header:            map[string]string{"Authorization": "from template", "X-Plain": "p"},
			HeadersFromSecret: []SecretHeader{{Name: name, Secret: secret, Key: key}},
		}}
	}

	t.Run("sets the headers", func(t *testing.T) {
		srv := serve(t, nil)
		p := Params{URL: srv.URL, Request: Request{
			Header: map[string]string{"Authorization": "from template", "X-Plain": "p"},
			HeadersFromSecret: []SecretHeader{
				{Name: "Authorization", Secret: "api", Key: "token"},
				{Name: "X-User", Secret: "api", Key: "user"},
			},
		}}
		if _, err := run(t, New(Options{Secrets: store}), &p); err != nil {
			t.Fatalf("call failed: %v", err)
		}
		_, saw := srv.saw()
		want := nethttp.Header{"Authorization": {"Bearer s3cret"}, "X-User": {"bot"}, "X-Plain": {"p"}}
		if diff := cmp.Diff(want, pick(saw.Header, want)); diff != "" {
			t.Errorf("server saw headers (-want +got):\n%s", diff)
		}
	})

	tests := []struct {
		name      string
		secrets   SecretReader
		params    Params
		permanent bool
		mention   string
	}{
		{"no secret reader", nil, header("Authorization", "api", "token"), true, "team-a/api"},
		{"missing secret", store, header("Authorization", "nope", "token"), false, "team-a/nope"},
		{"missing key", store, header("Authorization", "api", "nokey"), true, "nokey"},
		{"value not fit for a header", store, header("Authorization", "api", "bad"), true, "team-a/api"},
		{"reader says permanent", SecretReaderFunc(func(context.Context, op.Step, string, string) (map[string][]byte, error) {
			return nil, op.Permanentf("forbidden")
		}), header("Authorization", "api", "token"), true, "forbidden"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := serve(t, nil)
			p := tc.params
			p.URL = srv.URL
			_, err := run(t, New(Options{Secrets: tc.secrets}), &p)
			if err == nil {
				t.Fatal("call succeeded, want an error")
			}
			if got := opError(t, err).Permanent; got != tc.permanent {
				t.Errorf("permanent = %v, want %v: %v", got, tc.permanent, err)
			}
			if !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("error %q does not mention %q", err, tc.mention)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error %q shows a secret value", err)
			}
			if hits, _ := srv.saw(); hits != 0 {
				t.Errorf("server hits = %d, want 0", hits)
			}
		})
	}
}

func TestResponseBodyLimit(t *testing.T) {
	srv := serve(t, func(w nethttp.ResponseWriter, r *nethttp.Request) {
		_, _ = io.WriteString(w, strings.Repeat("x", 100))
	})
	_, err := run(t, New(Options{MaxBodyBytes: 10}), &Params{URL: srv.URL})
	if err == nil || !strings.Contains(err.Error(), "larger than 10 bytes") {
		t.Fatalf("err = %v, want the body limit", err)
	}
	// The same URL would answer the same: a retry cannot help.
	if !op.IsPermanent(err) {
		t.Errorf("err = %v is retryable, want op.Permanent", err)
	}
	if hits, _ := srv.saw(); hits != 1 {
		t.Errorf("server hits = %d, want 1", hits)
	}
}
