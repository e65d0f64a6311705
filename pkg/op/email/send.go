package email

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/smtp"
	"net/textproto"
	"strconv"
	"strings"

	"github.com/stepflow-dev/stepflow/pkg/netfence"
	"github.com/stepflow-dev/stepflow/pkg/op"
)

// implicitTLSPort is the SMTP submission port that speaks TLS from the
// first byte (RFC 8314); other ports upgrade with STARTTLS when offered.
const implicitTLSPort = 465

// send delivers m in one SMTP session through the fence, authenticating
// with password when it is not empty and the server offers AUTH.
func (f *Family) send(ctx context.Context, m *message, password string) error {
	server := net.JoinHostPort(m.host, strconv.Itoa(m.port))
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	conn, err := f.fence.DialContext(&net.Dialer{})(ctx, "tcp", server)
	if err != nil {
		return f.failure(ctx, server, "connect", err)
	}
	defer conn.Close()
	// A cancelled or expired ctx ends the session wherever it is.
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	if d, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(d)
	}
	tlsConfig := &tls.Config{ServerName: m.host, MinVersion: tls.VersionTLS12, RootCAs: f.roots}
	if m.port == implicitTLSPort {
		tc := tls.Client(conn, tlsConfig)
		if err := tc.HandshakeContext(ctx); err != nil {
			return f.failure(ctx, server, "TLS handshake", err)
		}
		conn = tc
	}
	c, err := smtp.NewClient(conn, m.host)
	if err != nil {
		return f.failure(ctx, server, "greeting", err)
	}
	defer c.Close()
	if ok, _ := c.Extension("STARTTLS"); ok && m.port != implicitTLSPort {
		if err := c.StartTLS(tlsConfig); err != nil {
			return f.failure(ctx, server, "STARTTLS", err)
		}
	}
	if ok, _ := c.Extension("AUTH"); ok && password != "" {
		// PlainAuth sends nothing over a connection that is neither TLS
		// nor to localhost.
		if err := c.Auth(smtp.PlainAuth("", m.from.Address, password, m.host)); err != nil {
			return f.failure(ctx, server, "AUTH as "+m.from.Address, err)
		}
	}
	if err := c.Mail(m.from.Address); err != nil {
		return f.failure(ctx, server, "MAIL FROM "+m.from.Address, err)
	}
	for _, to := range m.to {
		if err := c.Rcpt(to.Address); err != nil {
			return f.failure(ctx, server, "RCPT TO "+to.Address, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return f.failure(ctx, server, "DATA", err)
	}
	if _, err := w.Write(m.bytes()); err != nil {
		return f.failure(ctx, server, "DATA", err)
	}
	if err := w.Close(); err != nil {
		return f.failure(ctx, server, "end of DATA", err)
	}
	// The message is accepted; a failed QUIT changes nothing.
	_ = c.Quit()
	return nil
}

// failure says which stage of the session to server failed, and how the
// error is handled: a fenced destination, a 5xx reply, a certificate that
// does not verify and a refusal to authenticate in the clear are
// permanent, the rest may pass on a retry.
// The password is never part of err: net/smtp does not echo it.
func (f *Family) failure(ctx context.Context, server, stage string, err error) error {
	err = fmt.Errorf("smtp %s: %s: %w", server, stage, err)
	var (
		denied *netfence.DeniedError
		reply  *textproto.Error
	)
	switch {
	case errors.As(err, &denied):
		return op.Permanent(err)
	case errors.As(err, &reply):
		if reply.Code >= 500 {
			return op.Permanent(err)
		}
		return err
	case ctx.Err() != nil:
		return fmt.Errorf("%w (%w)", err, ctx.Err())
	case errors.As(err, new(*tls.CertificateVerificationError)):
		// The same certificate is presented on every retry.
		return op.Permanent(err)
	case strings.Contains(err.Error(), "unencrypted connection"):
		// net/smtp's PlainAuth refused to send the password in the clear.
		return op.Permanent(fmt.Errorf("%w: the server offers neither TLS nor STARTTLS", err))
	}
	return err
}

// bytes is the message as sent after DATA: headers, then the body as
// quoted-printable HTML.
func (m *message) bytes() []byte {
	var b bytes.Buffer
	header := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	header("From", m.from.String())
	to := make([]string, len(m.to))
	for i, a := range m.to {
		to[i] = a.String()
	}
	header("To", strings.Join(to, ", "))
	header("Subject", mime.QEncoding.Encode("utf-8", m.subject))
	header("Date", m.date.Format("Mon, 02 Jan 2006 15:04:05 -0700"))
	header("Message-ID", m.id)
	header("MIME-Version", "1.0")
	header("Content-Type", `text/html; charset="utf-8"`)
	header("Content-Transfer-Encoding", "quoted-printable")
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	_, _ = qp.Write([]byte(m.body))
	_ = qp.Close()
	return b.Bytes()
}
