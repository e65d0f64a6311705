package email

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"github.com/stepflow-dev/stepflow/pkg/netfence"
	"github.com/stepflow-dev/stepflow/pkg/op"
)

// DefaultTimeout bounds one SMTP session when Options.Timeout is zero.
const DefaultTimeout = 30 * time.Second

// SecretReader reads the data of a Kubernetes Secret as the identity of
// the step that needs it (op.Step.ServiceAccount); kube.Secrets and the
// HTTP family's reader are ones. An error marked op.Permanent stays
// permanent; any other is retried.
type SecretReader interface {
	GetSecret(ctx context.Context, step op.Step, namespace, name string) (map[string][]byte, error)
}

// Options are the dependencies of a Family.
type Options struct {
	// Secrets reads from.passwordFromSecret. When nil, a call that names a
	// Secret fails permanently.
	Secrets SecretReader
	// Fence decides which SMTP servers may be dialled, checked on the host
	// name and on every address it resolves to; nil means
	// netfence.Default(). Give it the HTTP family's Policy so that both
	// reach the same destinations.
	Fence *netfence.Policy
	// RootCAs verify the SMTP server's certificate (STARTTLS, port 465);
	// nil means the system's roots.
	RootCAs *x509.CertPool
	// Timeout bounds one SMTP session; zero means DefaultTimeout.
	Timeout time.Duration
	// Now is the clock of the Date header; nil means time.Now.
	Now func() time.Time
}

// Family is the "email" op family.
type Family struct {
	secrets SecretReader
	fence   *netfence.Policy
	roots   *x509.CertPool
	timeout time.Duration
	now     func() time.Time
}

var _ op.Family = (*Family)(nil)

// New returns a Family with the given dependencies.
func New(opts Options) *Family {
	f := &Family{secrets: opts.Secrets, fence: opts.Fence, roots: opts.RootCAs, timeout: opts.Timeout, now: opts.Now}
	if f.fence == nil {
		f.fence = netfence.Default()
	}
	if f.timeout <= 0 {
		f.timeout = DefaultTimeout
	}
	if f.now == nil {
		f.now = time.Now
	}
	return f
}

// Provider implements op.Family.
func (f *Family) Provider() string { return "email" }

// Ops implements op.Family.
func (f *Family) Ops() map[string]op.Op { return map[string]op.Op{"send": &sendOp{f: f}} }

// Params are the parameters of email.send: $params of #SendEmail in
// stdlib/vela/email and the flat #SendEmail of stdlib/vela/op (whose other
// fields, such as stepID, are ignored).
type Params struct {
	From    From     `json:"from"`
	To      []string `json:"to"`
	Content Content  `json:"content"`
}

// From is the sender and the SMTP server that sends for it.
type From struct {
	// Address is the sender's address; it is also the AUTH user.
	Address string `json:"address"`
	// Alias is the sender's display name.
	Alias string `json:"alias,omitempty"`
	// Password authenticates Address; PasswordFromSecret reads it from a
	// Secret in the step's namespace instead. Neither means no AUTH.
	Password           string     `json:"password,omitempty"`
	PasswordFromSecret *SecretKey `json:"passwordFromSecret,omitempty"`
	Host               string     `json:"host"`
	Port               int        `json:"port"`
}

// SecretKey names one key of a Secret in the step's namespace.
type SecretKey struct {
	Name string `json:"name"`
	Key  string `json:"key"`
}

// Content is the mail's subject and its body (HTML).
type Content struct {
	Subject string `json:"subject"`
	Body    string `json:"body"`
}

// Returns is what email.send fills into $returns.
type Returns struct {
	// MessageID is the Message-ID header of the mail sent.
	MessageID string `json:"messageId"`
}

// sendOp is email.send.
type sendOp struct{ f *Family }

var _ op.Op = (*sendOp)(nil)

// NewParams implements op.Op.
func (*sendOp) NewParams() any { return &Params{} }

// Class implements op.Op: a mail is an effect, sent once per step attempt.
func (*sendOp) Class(any) op.Class { return op.Effect }

// Run implements op.Op.
func (s *sendOp) Run(ctx context.Context, call *op.Call) (op.Result, error) {
	if err := ctx.Err(); err != nil {
		return op.Result{}, err
	}
	p, err := op.ParamsOf[Params](call)
	if err != nil {
		return op.Result{}, err
	}
	m, err := p.check()
	if err != nil {
		return op.Result{}, err
	}
	password := p.From.Password
	if ref := p.From.PasswordFromSecret; ref != nil {
		if password, err = s.f.password(ctx, call.Step, ref); err != nil {
			return op.Result{}, err
		}
	}
	m.id = messageID(call.Step, call.Path)
	m.date = s.f.now()
	if err := s.f.send(ctx, m, password); err != nil {
		return op.Result{}, err
	}
	return op.Result{Returns: Returns{MessageID: m.id}}, nil
}

// messageID is the Message-ID of the mail sent by the call at path of
// step's attempt: the same for every send of that call, so a repeat after
// a crash can be recognised.
func messageID(step op.Step, path string) string {
	sum := sha256.Sum256([]byte(step.RunUID + "\x00" + step.StepID + "\x00" + path))
	return "<" + hex.EncodeToString(sum[:16]) + "@stepflow>"
}

// password reads the password from the Secret ref names, in the step's
// namespace, as the step's identity.
func (f *Family) password(ctx context.Context, step op.Step, ref *SecretKey) (string, error) {
	if ref.Name == "" || ref.Key == "" {
		return "", op.Permanentf("from.passwordFromSecret needs both name and key")
	}
	if f.secrets == nil {
		return "", op.Permanentf("from.passwordFromSecret: secret %s/%s is needed, but this op was given no secret reader", step.Namespace, ref.Name)
	}
	data, err := f.secrets.GetSecret(ctx, step, step.Namespace, ref.Name)
	if err != nil {
		return "", fmt.Errorf("from.passwordFromSecret: reading secret %s/%s: %w", step.Namespace, ref.Name, err)
	}
	v, ok := data[ref.Key]
	if !ok {
		return "", op.Permanentf("from.passwordFromSecret: secret %s/%s has no key %q", step.Namespace, ref.Name, ref.Key)
	}
	return strings.TrimRight(string(v), "\r\n"), nil
}

// message is a mail whose parameters have been checked. It holds no
// password.
type message struct {
	from    *mail.Address
	to      []*mail.Address
	host    string
	port    int
	subject string
	body    string
	id      string
	date    time.Time
}

// check validates p. Every error is permanent: the same parameters fail
// the same way on every retry.
func (p *Params) check() (*message, error) {
	from, err := bareAddress("from.address", p.From.Address)
	if err != nil {
		return nil, err
	}
	from.Name = p.From.Alias
	if strings.ContainsAny(p.From.Alias, "\r\n") {
		return nil, op.Permanentf("from.alias must be one line")
	}
	if len(p.To) == 0 {
		return nil, op.Permanentf("to names no recipient")
	}
	m := &message{from: from, host: p.From.Host, port: p.From.Port, subject: p.Content.Subject, body: p.Content.Body}
	for i, t := range p.To {
		a, err := bareAddress(fmt.Sprintf("to[%d]", i), t)
		if err != nil {
			return nil, err
		}
		m.to = append(m.to, a)
	}
	if m.host == "" || strings.ContainsAny(m.host, " \t\r\n/:") {
		return nil, op.Permanentf("from.host %q is not a host name or address", m.host)
	}
	if m.port < 1 || m.port > 65535 {
		return nil, op.Permanentf("from.port %d is not a TCP port", m.port)
	}
	if p.From.Password != "" && p.From.PasswordFromSecret != nil {
		return nil, op.Permanentf("from: give password or passwordFromSecret, not both")
	}
	return m, nil
}

// bareAddress parses an address written without a display name
// ("ops@example.com").
func bareAddress(field, s string) (*mail.Address, error) {
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != strings.TrimSpace(s) {
		return nil, op.Permanentf("%s %q is not a mail address (want name@domain)", field, s)
	}
	return a, nil
}
