package metrics

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	nethttp "net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/stepflow-dev/stepflow/pkg/netfence"
	"github.com/stepflow-dev/stepflow/pkg/op"
	httpop "github.com/stepflow-dev/stepflow/pkg/op/http"
)

// DefaultTimeout bounds one query when Options.Timeout is zero.
const DefaultTimeout = 30 * time.Second

// Options are the dependencies of a Family.
type Options struct {
	// Fence decides which endpoints may be queried; nil means
	// netfence.Default(). Give it the HTTP family's Policy.
	Fence *netfence.Policy
	// ProxyFromEnvironment, as for the HTTP family.
	ProxyFromEnvironment bool
	// Transport is cloned and fenced; nil means http.DefaultTransport.
	Transport *nethttp.Transport
	// Timeout bounds one query; zero means DefaultTimeout.
	Timeout time.Duration
	// Now is the clock the durations are measured with; nil means time.Now.
	Now func() time.Time
}

// Family is the "metrics" op family.
type Family struct {
	fence   *netfence.Policy
	client  *nethttp.Client
	timeout time.Duration
	now     func() time.Time
}

var _ op.Family = (*Family)(nil)

// New returns a Family with the given dependencies.
func New(opts Options) *Family {
	f := &Family{fence: opts.Fence, timeout: opts.Timeout, now: opts.Now}
	if f.fence == nil {
		f.fence = netfence.Default()
	}
	if f.timeout <= 0 {
		f.timeout = DefaultTimeout
	}
	if f.now == nil {
		f.now = time.Now
	}
	t := opts.Transport
	if t == nil {
		t, _ = nethttp.DefaultTransport.(*nethttp.Transport)
		if t == nil {
			t = &nethttp.Transport{}
		}
	}
	f.client = &nethttp.Client{
		Transport: httpop.FencedTransport(t, f.fence, opts.ProxyFromEnvironment),
		CheckRedirect: func(req *nethttp.Request, via []*nethttp.Request) error {
			if len(via) >= 10 {
				return fmt.Errorf("stopped after %d redirects", len(via))
			}
			return f.fence.CheckURL(req.URL)
		},
	}
	return f
}

// Provider implements op.Family.
func (f *Family) Provider() string { return "metrics" }

// Ops implements op.Family.
func (f *Family) Ops() map[string]op.Op { return map[string]op.Op{"promCheck": &checkOp{f: f}} }

// Params are the parameters of metrics.promCheck.
type Params struct {
	// Query is a PromQL instant query that yields one value.
	Query string `json:"query"`
	// MetricEndpoint is the base URL of the Prometheus HTTP API.
	MetricEndpoint string `json:"metricEndpoint"`
	// Condition compares the value with a number: ">=0.95".
	Condition string `json:"condition"`
	// Duration is how long the condition must hold (a Go duration).
	Duration string `json:"duration"`
	// FailDuration is how long it may fail before the check fails.
	FailDuration string `json:"failDuration"`
}

// Returns is what metrics.promCheck fills into $returns.
type Returns struct {
	// Result: the condition has held for Duration.
	Result bool `json:"result"`
	// Failed: the condition has failed for FailDuration.
	Failed  bool   `json:"failed"`
	Message string `json:"message,omitempty"`
	// Value is the query's value, as Prometheus wrote it.
	Value string `json:"value"`
}

// checkOp is metrics.promCheck.
type checkOp struct{ f *Family }

var _ op.Op = (*checkOp)(nil)

// NewParams implements op.Op.
func (*checkOp) NewParams() any { return &Params{} }

// Class implements op.Op: a query, run again on every evaluation.
func (*checkOp) Class(any) op.Class { return op.Idempotent }

// plan is a check whose parameters have been checked.
type plan struct {
	endpoint        *url.URL
	cond            condition
	hold, failAfter time.Duration
}

func (p *Params) check() (*plan, error) {
	if strings.TrimSpace(p.Query) == "" {
		return nil, op.Permanentf("query is empty")
	}
	u, err := url.Parse(p.MetricEndpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, op.Permanentf("metricEndpoint %q is not an http or https URL", p.MetricEndpoint)
	}
	pl := &plan{endpoint: u}
	if pl.cond, err = parseCondition(p.Condition); err != nil {
		return nil, err
	}
	if pl.hold, err = parseDuration("duration", p.Duration); err != nil {
		return nil, err
	}
	if pl.failAfter, err = parseDuration("failDuration", p.FailDuration); err != nil {
		return nil, err
	}
	return pl, nil
}

func parseDuration(field, s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, op.Permanentf("%s: %v", field, err)
	}
	if d < 0 {
		return 0, op.Permanentf("%s %q is negative", field, s)
	}
	return d, nil
}

// Run implements op.Op.
func (c *checkOp) Run(ctx context.Context, call *op.Call) (op.Result, error) {
	if err := ctx.Err(); err != nil {
		return op.Result{}, err
	}
	p, err := op.ParamsOf[Params](call)
	if err != nil {
		return op.Result{}, err
	}
	pl, err := p.check()
	if err != nil {
		return op.Result{}, err
	}
	if err := c.f.fence.CheckURL(pl.endpoint); err != nil {
		return op.Result{}, op.Permanent(fmt.Errorf("metricEndpoint %s: %w", pl.endpoint.Redacted(), err))
	}
	value, err := c.f.query(ctx, pl.endpoint, p.Query)
	if err != nil {
		return op.Result{}, err
	}
	holds := pl.cond.holds(float64(value))
	if call.Env.Vars == nil {
		return op.Result{}, op.Permanentf("promCheck remembers since when its condition holds in the run's variables, and this call has none")
	}
	now := c.f.now()
	key := stateKey(call.Step, call.Path)
	st, seen := readState(call.Env.Vars, key)
	if !seen || st.Holds != holds {
		st = state{Holds: holds, Since: now.UTC().Format(time.RFC3339Nano)}
		if err := call.Env.Vars.PutVar(key, st); err != nil {
			return op.Result{}, fmt.Errorf("recording since when the condition holds: %w", err)
		}
	}
	since, err := time.Parse(time.RFC3339Nano, st.Since)
	if err != nil {
		since = now
	}
	return op.Result{Returns: judge(p, pl, value.String(), holds, now.Sub(since))}, nil
}

// judge turns how long the condition has held (or failed) into $returns.
func judge(p *Params, pl *plan, value string, holds bool, lasted time.Duration) Returns {
	r := Returns{Value: value}
	lasted = lasted.Round(time.Second)
	switch {
	case holds && lasted >= pl.hold:
		r.Result = true
		r.Message = fmt.Sprintf("The metric check has passed: %s is %s, which meets %q, and has for %s (duration %s).",
			p.Query, value, p.Condition, lasted, p.Duration)
	case holds:
		r.Message = fmt.Sprintf("%s is %s, which meets %q; it has for %s of the %s it must.",
			p.Query, value, p.Condition, lasted, p.Duration)
	case lasted >= pl.failAfter:
		r.Failed = true
		r.Message = fmt.Sprintf("The metric check has failed: %s is %s, which does not meet %q, and has not for %s (failDuration %s).",
			p.Query, value, p.Condition, lasted, p.FailDuration)
	default:
		r.Message = fmt.Sprintf("%s is %s, which does not meet %q; it has not for %s, and fails after %s.",
			p.Query, value, p.Condition, lasted, p.FailDuration)
	}
	return r
}

// state is what the op keeps in the run's variables between evaluations.
type state struct {
	Holds bool   `json:"holds"`
	Since string `json:"since"`
}

// stateKey is the variable a call keeps its state in: one per step
// attempt and op path.
func stateKey(step op.Step, path string) string {
	sum := sha256.Sum256([]byte(step.StepID + "\x00" + path))
	return "promCheck-" + hex.EncodeToString(sum[:8])
}

// readState reads a state back; after a journal round trip it is a map.
func readState(vars op.Vars, key string) (state, bool) {
	v, ok := vars.GetVar(key)
	if !ok {
		return state{}, false
	}
	switch s := v.(type) {
	case state:
		return s, true
	case map[string]any:
		holds, ok1 := s["holds"].(bool)
		since, ok2 := s["since"].(string)
		return state{Holds: holds, Since: since}, ok1 && ok2
	}
	return state{}, false
}

// query runs an instant query and returns its one value.
func (f *Family) query(ctx context.Context, endpoint *url.URL, query string) (model.SampleValue, error) {
	where := endpoint.Redacted()
	client, err := promapi.NewClient(promapi.Config{Address: endpoint.String(), Client: f.client})
	if err != nil {
		return 0, op.Permanentf("metricEndpoint %s: %v", where, err)
	}
	qctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	// The zero time: Prometheus evaluates at its own now.
	res, _, err := promv1.NewAPI(client).Query(qctx, query, time.Time{})
	if err != nil {
		return 0, f.failure(ctx, where, query, err)
	}
	switch v := res.(type) {
	case *model.Scalar:
		return v.Value, nil
	case model.Vector:
		switch len(v) {
		case 1:
			return v[0].Value, nil
		case 0:
			return 0, fmt.Errorf("query %q at %s returned no sample yet", query, where)
		}
		return 0, op.Permanentf("query %q at %s returned %d samples; it must return one (aggregate it, or select one series)", query, where, len(v))
	}
	return 0, op.Permanentf("query %q at %s returned a %s; want a scalar or a vector of one sample", query, where, res.Type())
}

// failure says how a failed query is handled.
func (f *Family) failure(ctx context.Context, where, query string, err error) error {
	err = fmt.Errorf("query %q at %s: %w", query, where, err)
	var (
		denied *netfence.DeniedError
		perr   *promv1.Error
	)
	switch {
	case errors.As(err, &denied):
		return op.Permanent(err)
	case errors.As(err, &perr) && perr.Type == promv1.ErrBadData:
		return op.Permanent(err)
	case ctx.Err() != nil && !errors.Is(err, ctx.Err()):
		return fmt.Errorf("%w (%w)", err, ctx.Err())
	}
	return err
}

// condition is a comparison of the value with a number.
type condition struct {
	op    string
	bound float64
}

// comparisons are the operators a condition may start with, longest first.
var comparisons = []string{">=", "<=", "==", "!=", ">", "<"}

// parseCondition parses ">=0.95" and the like.
func parseCondition(s string) (condition, error) {
	t := strings.TrimSpace(s)
	for _, o := range comparisons {
		if rest, ok := strings.CutPrefix(t, o); ok {
			n, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil || math.IsNaN(n) {
				break
			}
			return condition{op: o, bound: n}, nil
		}
	}
	return condition{}, op.Permanentf("condition %q is not a comparison with a number, such as \">=0.95\" (operators: >=, <=, ==, !=, >, <)", s)
}

func (c condition) holds(v float64) bool {
	if math.IsNaN(v) {
		return false
	}
	switch c.op {
	case ">=":
		return v >= c.bound
	case "<=":
		return v <= c.bound
	case "==":
		return v == c.bound
	case "!=":
		return v != c.bound
	case ">":
		return v > c.bound
	case "<":
		return v < c.bound
	}
	return false
}
