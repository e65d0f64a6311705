package callback

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/netfence"
)

// IdempotencyHeader carries the transition's key.
const IdempotencyHeader = "Idempotency-Key"

// Body is what a callback receives for one transition. name, phase,
// attributes, runError and rollbackError are the reference's callback
// body (SREWorks' workflow controller); the others are Stepflow's.
type Body struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	UID       string `json:"uid"`
	// Event is the transition.
	Event v1alpha1.CallbackEvent `json:"event"`
	// Phase is the run's phase after it, capitalised (Executing,
	// Succeeded, Failed, Terminated, RollingBack, …).
	Phase string `json:"phase"`
	// Step is the step of a step event.
	Step *v1alpha1.CallbackStep `json:"step,omitempty"`
	// Attributes are the run's labels ({} when it has none).
	Attributes map[string]string `json:"attributes"`
	// RunError is the run's message once it failed or was terminated.
	RunError string `json:"runError"`
	// RollbackError says why its rollback failed.
	RollbackError string `json:"rollbackError"`
	// Time is when the transition happened.
	Time time.Time `json:"time"`
}

// NewBody is the body of transition t of run.
func NewBody(run *v1alpha1.WorkflowRun, t v1alpha1.CallbackTransition) Body {
	attrs := run.Labels
	if attrs == nil {
		attrs = map[string]string{}
	}
	return Body{
		Name: run.Name, Namespace: run.Namespace, UID: string(run.UID),
		Event: t.Event, Phase: Phase(t.Phase), Step: t.Step, Attributes: attrs,
		RunError: t.RunError, RollbackError: t.RollbackError, Time: t.Time.UTC(),
	}
}

// Sender POSTs transitions through a fenced client.
type Sender struct {
	// Client sends the requests; its transport should dial through Fence
	// (pkg/op/http.FencedTransport). Its redirects are checked by Fence.
	Client *http.Client
	// Fence checks the URL, and each redirect's, by name before sending.
	Fence *netfence.Policy
	// Timeout bounds one POST (default 10s).
	Timeout time.Duration
}

// PermanentError is a delivery the receiver refused for good (a 4xx other
// than 408 and 429, or a URL the fence denies): sending it again would
// not help.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// IsPermanent reports whether err is a PermanentError.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}

// Send POSTs body to rawURL with header, Content-Type application/json and
// the Idempotency-Key key. Any 2xx is delivered.
func (s *Sender) Send(ctx context.Context, rawURL string, header http.Header, key string, body Body) error {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return &PermanentError{fmt.Errorf("callback URL %q: not an http(s) URL", rawURL)}
	}
	if s.Fence != nil {
		if err := s.Fence.CheckURL(u); err != nil {
			return &PermanentError{fmt.Errorf("POST %s: %w", u.Redacted(), err)}
		}
	}
	b, err := json.Marshal(body)
	if err != nil {
		return &PermanentError{fmt.Errorf("callback body: %w", err)}
	}
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(b))
	if err != nil {
		return &PermanentError{fmt.Errorf("POST %s: %w", u.Redacted(), err)}
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(IdempotencyHeader, key)
	req.Header.Set("User-Agent", "stepflow")
	resp, err := s.Client.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w", u.Redacted(), err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	err = fmt.Errorf("POST %s: %s", u.Redacted(), resp.Status)
	if resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests {
		return &PermanentError{err}
	}
	return err
}

// CheckRedirect is a redirect policy for the Sender's client: at most 5,
// none to a destination the fence denies by name.
func CheckRedirect(fence *netfence.Policy) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		if len(via) >= 5 {
			return fmt.Errorf("callback: stopped after %d redirects", len(via))
		}
		if fence != nil {
			return fence.CheckURL(req.URL)
		}
		return nil
	}
}
