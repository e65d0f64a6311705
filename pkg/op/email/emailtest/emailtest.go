// Package emailtest is a local SMTP server for tests of the email op and
// of the definitions that send mail: it accepts messages on a loopback
// port, optionally after AUTH PLAIN with one user and password, and counts
// and keeps what it received. It is built on github.com/emersion/go-smtp.
package emailtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Message is one message the server accepted.
type Message struct {
	// User is the user that authenticated, "" without AUTH.
	User string
	From string
	To   []string
	// Data is the message as sent: headers, a blank line, the body.
	Data string
	// TLS says the session had switched to TLS (STARTTLS) when the
	// message was sent.
	TLS bool
}

// Server is a running SMTP server.
type Server struct {
	// Host and Port are where it listens (127.0.0.1 and a free port).
	Host string
	Port int

	user, password string

	mu       sync.Mutex
	messages []Message
	reject   *smtp.SMTPError
	sessions int
}

// Start starts a server on a free loopback port, stopped when the test
// ends. With a non-empty user, the server advertises AUTH PLAIN (allowed
// without TLS) and accepts a MAIL command only from a session that
// authenticated as user with password.
func Start(t testing.TB, user, password string) *Server {
	t.Helper()
	return start(t, user, password, nil)
}

// StartTLS is Start with STARTTLS offered, under a certificate for
// 127.0.0.1 that only the returned pool trusts.
func StartTLS(t testing.TB, user, password string) (*Server, *x509.CertPool) {
	t.Helper()
	cert, pool := selfSigned(t)
	return start(t, user, password, &tls.Config{Certificates: []tls.Certificate{cert}}), pool
}

func start(t testing.TB, user, password string, tlsConfig *tls.Config) *Server {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("emailtest: listen: %v", err)
	}
	addr := l.Addr().(*net.TCPAddr)
	s := &Server{Host: addr.IP.String(), Port: addr.Port, user: user, password: password}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		s.mu.Lock()
		s.sessions++
		s.mu.Unlock()
		return &session{s: s, conn: c}, nil
	}))
	srv.TLSConfig = tlsConfig
	srv.Domain = "emailtest.local"
	srv.AllowInsecureAuth = true
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return s
}

// Addr is host:port.
func (s *Server) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// Messages returns a copy of the messages accepted so far.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

// Count is how many messages the server accepted.
func (s *Server) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.messages)
}

// Sessions is how many SMTP sessions (connections) the server opened.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions
}

// RejectWith makes the server answer every later MAIL command with code
// and message (a 5xx for a permanent refusal, a 4xx for a temporary one);
// a code of 0 accepts again.
func (s *Server) RejectWith(code int, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if code == 0 {
		s.reject = nil
		return
	}
	s.reject = &smtp.SMTPError{Code: code, Message: message}
}

type session struct {
	s    *Server
	conn *smtp.Conn
	user string
	msg  Message
}

var _ smtp.AuthSession = (*session)(nil)

func (x *session) AuthMechanisms() []string {
	if x.s.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (x *session) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(_, user, password string) error {
		if user != x.s.user || password != x.s.password {
			// 535, as a real server refuses bad credentials (go-smtp
			// answers a plain error with a temporary 454).
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "invalid user or password"}
		}
		x.user = user
		return nil
	}), nil
}

func (x *session) Mail(from string, _ *smtp.MailOptions) error {
	x.s.mu.Lock()
	reject := x.s.reject
	x.s.mu.Unlock()
	if reject != nil {
		return reject
	}
	if x.s.user != "" && x.user == "" {
		return smtp.ErrAuthRequired
	}
	x.msg = Message{User: x.user, From: from}
	return nil
}

func (x *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	x.msg.To = append(x.msg.To, to)
	return nil
}

func (x *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	x.msg.Data = string(b)
	_, x.msg.TLS = x.conn.TLSConnectionState()
	x.s.mu.Lock()
	x.s.messages = append(x.s.messages, x.msg)
	x.s.mu.Unlock()
	x.msg = Message{User: x.user}
	return nil
}

func (x *session) Reset()        { x.msg = Message{User: x.user} }
func (x *session) Logout() error { return nil }

// selfSigned makes a certificate for 127.0.0.1 and the pool that trusts it.
func selfSigned(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("emailtest: key: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "emailtest"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("emailtest: certificate: %v", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("emailtest: certificate: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}
