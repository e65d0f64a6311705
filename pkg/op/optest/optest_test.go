package optest_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stepflow-dev/stepflow/pkg/op"
	"github.com/stepflow-dev/stepflow/pkg/op/optest"
)

// getParams are the params of the test family's one op.
type getParams struct {
	URL string `json:"url"`
}

// getOp GETs a URL; how it treats its context and its errors is the flaw
// under test.
type getOp struct{ flaw string }

func (getOp) NewParams() any     { return &getParams{} }
func (getOp) Class(any) op.Class { return op.Idempotent }
func (g getOp) Run(ctx context.Context, call *op.Call) (op.Result, error) {
	p := call.Params.(*getParams)
	if p.URL == "" {
		return op.Result{}, op.Permanentf("url is required")
	}
	if g.flaw == "ignores-context" {
		ctx = context.Background()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL, nil)
	if err != nil {
		return op.Result{}, op.Permanent(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		switch g.flaw {
		case "loses-the-cause":
			return op.Result{}, fmt.Errorf("GET %s: %v", p.URL, err)
		case "cancellation-is-permanent":
			return op.Result{}, op.Permanent(err)
		case "another-calls-error":
			return op.Result{}, &op.Error{Op: op.Name{Provider: "other", Do: "thing"}, Path: "elsewhere", Err: err}
		}
		return op.Result{}, fmt.Errorf("GET %s: %w", p.URL, err)
	}
	resp.Body.Close()
	return op.Result{Returns: map[string]any{"status": resp.StatusCode}}, nil
}

type family struct{ flaw string }

func (f family) Provider() string      { return "test" }
func (f family) Ops() map[string]op.Op { return map[string]op.Op{"get": &getOp{flaw: f.flaw}} }

// TestFamily runs the suite over the test family with the flaw named by
// $OPTEST_FLAW; TestSuiteFailsFlawedOps runs it in a child process and
// reads the verdict.
func TestFamily(t *testing.T) {
	flaw, ok := os.LookupEnv("OPTEST_FLAW")
	if !ok {
		t.Skip("run by TestSuiteFailsFlawedOps")
	}
	url, inFlight := optest.BlockingServer(t)
	optest.Run(t, optest.Suite{
		New:      func() op.Family { return family{flaw: flaw} },
		Patience: 2 * time.Second,
		Cases: []optest.Case{
			{Name: "no url", Do: "get", Invalid: true, Params: func() any { return &getParams{} }},
		},
		Blocking: []optest.Blocking{{Name: "slow GET", Do: "get", InFlight: inFlight,
			Params: func() any { return &getParams{URL: url} }}},
	})
}

// The suite passes a sound op and fails each flawed one, on the check
// that flaw breaks.
func TestSuiteFailsFlawedOps(t *testing.T) {
	for _, c := range []struct {
		flaw string
		want string // in the child's output; "" means the suite passes
	}{
		{"", ""},
		{"ignores-context", "does not honour cancellation"},
		{"loses-the-cause", "must wrap context.Canceled"},
		{"cancellation-is-permanent", "must not be a permanent error"},
		{"another-calls-error", "returned the error of another call"},
	} {
		t.Run("flaw="+c.flaw, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestFamily$", "-test.v")
			cmd.Env = append(os.Environ(), "OPTEST_FLAW="+c.flaw)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if err != nil && !errors.As(err, &exit) {
				t.Fatal(err)
			}
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("the suite failed a sound op:\n%s", out)
			case c.want != "" && err == nil:
				t.Fatalf("the suite passed an op that %s:\n%s", c.flaw, out)
			case c.want != "" && !strings.Contains(string(out), c.want):
				t.Fatalf("the suite failed, but not with %q:\n%s", c.want, out)
			}
		})
	}
}
