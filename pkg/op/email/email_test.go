package email_test

import (
	"context"
	"errors"
	"io"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"testing"

	"github.com/stepflow-dev/stepflow/pkg/journal"
	"github.com/stepflow-dev/stepflow/pkg/netfence"
	"github.com/stepflow-dev/stepflow/pkg/op"
	"github.com/stepflow-dev/stepflow/pkg/op/email"
	"github.com/stepflow-dev/stepflow/pkg/op/email/emailtest"
)

const password = "s3cret-Pa55"

var testStep = op.Step{RunUID: "uid-1", RunName: "run", Namespace: "team-a", StepName: "notify", StepID: "notify-1"}

func newCall(f *email.Family, p *email.Params, step op.Step) *op.Call {
	o := f.Ops()["send"]
	return &op.Call{Name: op.Name{Provider: "email", Do: "send"}, Path: "email0.email1",
		Op: o, Params: p, Class: o.Class(p), Step: step}
}

func params(srv *emailtest.Server) *email.Params {
	return &email.Params{
		From: email.From{Address: "bot@example.com", Alias: "Stepflow Bot", Password: password, Host: srv.Host, Port: srv.Port},
		To:   []string{"ops@example.com", "dev@example.com"},
		Content: email.Content{
			Subject: "Run finished — ✓",
			Body:    "<p>The run <b>deploy</b> succeeded.</p>",
		},
	}
}

// One call is one authenticated session that delivers one message to
// every recipient, with the headers a mail reader needs.
func TestSendDelivers(t *testing.T) {
	srv := emailtest.Start(t, "bot@example.com", password)
	f := email.New(email.Options{})
	res, err := op.Direct.Run(context.Background(), newCall(f, params(srv), testStep))
	if err != nil {
		t.Fatal(err)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("server got %d messages, want 1", len(msgs))
	}
	got := msgs[0]
	if got.User != "bot@example.com" || got.From != "bot@example.com" || strings.Join(got.To, ",") != "ops@example.com,dev@example.com" {
		t.Errorf("envelope: user %q from %q to %q", got.User, got.From, got.To)
	}
	m, err := mail.ReadMessage(strings.NewReader(got.Data))
	if err != nil {
		t.Fatalf("the message does not parse: %v\n%s", err, got.Data)
	}
	from, err := m.Header.AddressList("From")
	if err != nil || len(from) != 1 || from[0].Name != "Stepflow Bot" || from[0].Address != "bot@example.com" {
		t.Errorf("From %q: %v %v", m.Header.Get("From"), from, err)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	if err != nil || subject != "Run finished — ✓" {
		t.Errorf("Subject %q decodes to %q (%v)", m.Header.Get("Subject"), subject, err)
	}
	if ct := m.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("Content-Type %q, want text/html", ct)
	}
	body, err := io.ReadAll(quotedprintable.NewReader(m.Body))
	if err != nil || strings.TrimSuffix(string(body), "\r\n") != "<p>The run <b>deploy</b> succeeded.</p>" {
		t.Errorf("body %q (%v)", body, err)
	}
	ret, ok := res.Returns.(email.Returns)
	if !ok || ret.MessageID == "" || m.Header.Get("Message-ID") != ret.MessageID {
		t.Errorf("$returns %#v; the mail's Message-ID is %q", res.Returns, m.Header.Get("Message-ID"))
	}
	if strings.Contains(got.Data, password) {
		t.Errorf("the message contains the password")
	}
}

// send is an effect: evaluating the step again replays the journal's
// record and sends nothing; a new attempt of the step sends again, with
// another Message-ID.
func TestSendOncePerAttempt(t *testing.T) {
	srv := emailtest.Start(t, "bot@example.com", password)
	f := email.New(email.Options{})
	j, err := journal.Open(context.Background(), journal.NewMemory(), journal.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	r := j.Runner(op.Direct)
	var ids []string
	for i := 0; i < 3; i++ {
		res, err := r.Run(context.Background(), newCall(f, params(srv), testStep))
		if err != nil {
			t.Fatalf("evaluation %d: %v", i+1, err)
		}
		ids = append(ids, messageID(t, res.Returns))
	}
	if n := srv.Count(); n != 1 {
		t.Fatalf("three evaluations of one attempt sent %d messages, want 1", n)
	}
	if srv.Sessions() != 1 {
		t.Errorf("three evaluations of one attempt opened %d SMTP sessions, want 1", srv.Sessions())
	}
	if ids[1] != ids[0] || ids[2] != ids[0] {
		t.Errorf("replayed Message-IDs %q differ from the first", ids)
	}
	retry := testStep
	retry.StepID = "notify-2"
	res, err := r.Run(context.Background(), newCall(f, params(srv), retry))
	if err != nil {
		t.Fatal(err)
	}
	if n := srv.Count(); n != 2 {
		t.Errorf("a new attempt: %d messages in all, want 2", n)
	}
	if id := messageID(t, res.Returns); id == ids[0] {
		t.Errorf("the new attempt's Message-ID %q is the first attempt's", id)
	}
}

// messageID reads the messageId of a result, live (email.Returns) or
// replayed from the journal (a map).
func messageID(t *testing.T, v any) string {
	t.Helper()
	switch r := v.(type) {
	case email.Returns:
		return r.MessageID
	case map[string]any:
		s, _ := r["messageId"].(string)
		return s
	}
	t.Fatalf("$returns is %T", v)
	return ""
}

// The password can come from a Secret of the step's namespace, read as
// the step's identity.
func TestPasswordFromSecret(t *testing.T) {
	srv := emailtest.Start(t, "bot@example.com", password)
	var asked []string
	secrets := secretsFunc(func(_ context.Context, step op.Step, ns, name string) (map[string][]byte, error) {
		asked = append(asked, step.StepName+" "+ns+"/"+name)
		if name != "smtp" {
			return nil, op.Permanentf("secret %s/%s not found", ns, name)
		}
		return map[string][]byte{"password": []byte(password + "\n")}, nil
	})
	f := email.New(email.Options{Secrets: secrets})
	p := params(srv)
	p.From.Password = ""
	p.From.PasswordFromSecret = &email.SecretKey{Name: "smtp", Key: "password"}
	if _, err := op.Direct.Run(context.Background(), newCall(f, p, testStep)); err != nil {
		t.Fatal(err)
	}
	if srv.Count() != 1 || srv.Messages()[0].User != "bot@example.com" {
		t.Fatalf("server got %d messages", srv.Count())
	}
	if strings.Join(asked, ";") != "notify team-a/smtp" {
		t.Errorf("secrets read: %q", asked)
	}

	p.From.PasswordFromSecret.Key = "nope"
	_, err := op.Direct.Run(context.Background(), newCall(f, p, testStep))
	if err == nil || !op.IsPermanent(err) || !strings.Contains(err.Error(), `team-a/smtp has no key "nope"`) {
		t.Errorf("a missing key: %v; want a permanent error naming the secret and key", err)
	}
}

type secretsFunc func(ctx context.Context, step op.Step, namespace, name string) (map[string][]byte, error)

func (f secretsFunc) GetSecret(ctx context.Context, step op.Step, namespace, name string) (map[string][]byte, error) {
	return f(ctx, step, namespace, name)
}

// Each failure says where it happened and whether a retry can help; none
// of them shows the password, and bad parameters or a fenced server open
// no session at all.
func TestSendFailures(t *testing.T) {
	denyLoopback, err := netfence.New(context.Background(), netfence.Config{DenyLoopback: true})
	if err != nil {
		t.Fatal(err)
	}
	closed := closedPort(t)
	for _, tc := range []struct {
		name      string
		fence     *netfence.Policy
		edit      func(p *email.Params, srv *emailtest.Server)
		reject    int
		permanent bool
		noSession bool
		contains  string
	}{
		{name: "wrong password", edit: func(p *email.Params, _ *emailtest.Server) { p.From.Password = "wrong-" + password },
			permanent: true, contains: "AUTH as bot@example.com"},
		{name: "mailbox refused (5xx)", reject: 550, permanent: true, contains: "MAIL FROM bot@example.com: 550"},
		{name: "try later (4xx)", reject: 451, permanent: false, contains: "451"},
		{name: "no recipient", edit: func(p *email.Params, _ *emailtest.Server) { p.To = nil },
			permanent: true, noSession: true, contains: "to names no recipient"},
		{name: "bad recipient", edit: func(p *email.Params, _ *emailtest.Server) { p.To = []string{"ops@example.com", "not an address"} },
			permanent: true, noSession: true, contains: `to[1] "not an address"`},
		{name: "header injection in alias", edit: func(p *email.Params, _ *emailtest.Server) { p.From.Alias = "x\r\nBcc: all@example.com" },
			permanent: true, noSession: true, contains: "from.alias"},
		{name: "bad port", edit: func(p *email.Params, _ *emailtest.Server) { p.From.Port = 0 },
			permanent: true, noSession: true, contains: "from.port 0"},
		{name: "fenced server", fence: denyLoopback,
			permanent: true, noSession: true, contains: "denied by rule"},
		{name: "nothing listening", edit: func(p *email.Params, _ *emailtest.Server) { p.From.Port = closed },
			permanent: false, noSession: true, contains: "connect"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := emailtest.Start(t, "bot@example.com", password)
			srv.RejectWith(tc.reject, "refused by the test")
			p := params(srv)
			if tc.edit != nil {
				tc.edit(p, srv)
			}
			f := email.New(email.Options{Fence: tc.fence})
			_, err := op.Direct.Run(context.Background(), newCall(f, p, testStep))
			if err == nil {
				t.Fatal("no error")
			}
			var oe *op.Error
			if !errors.As(err, &oe) || oe.Path != "email0.email1" {
				t.Errorf("error %v is not an *op.Error naming the call's path", err)
			}
			if op.IsPermanent(err) != tc.permanent {
				t.Errorf("permanent = %v, want %v: %v", op.IsPermanent(err), tc.permanent, err)
			}
			if !strings.Contains(err.Error(), tc.contains) {
				t.Errorf("error %q does not say %q", err, tc.contains)
			}
			if strings.Contains(err.Error(), password) {
				t.Errorf("error %q shows the password", err)
			}
			if srv.Count() != 0 {
				t.Errorf("server accepted %d messages", srv.Count())
			}
			if tc.noSession && srv.Sessions() != 0 {
				t.Errorf("%d SMTP sessions were opened", srv.Sessions())
			}
		})
	}
}

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	return port
}

// A server that offers STARTTLS gets the session over TLS, its
// certificate verified (here against the test's own root); a certificate
// that does not verify fails the call for good, before AUTH sends the
// password.
func TestStartTLS(t *testing.T) {
	srv, roots := emailtest.StartTLS(t, "bot@example.com", password)
	trusting := email.New(email.Options{RootCAs: roots})
	if _, err := op.Direct.Run(context.Background(), newCall(trusting, params(srv), testStep)); err != nil {
		t.Fatal(err)
	}
	if msgs := srv.Messages(); len(msgs) != 1 || !msgs[0].TLS || msgs[0].User != "bot@example.com" {
		t.Fatalf("messages %+v; want one, authenticated, over TLS", msgs)
	}

	_, err := op.Direct.Run(context.Background(), newCall(email.New(email.Options{}), params(srv), testStep))
	if err == nil || !op.IsPermanent(err) || !strings.Contains(err.Error(), "STARTTLS") {
		t.Errorf("an untrusted certificate: %v; want a permanent error at STARTTLS", err)
	}
	if n := srv.Count(); n != 1 {
		t.Errorf("after the untrusted session the server has %d messages, want 1", n)
	}
}
