// Package netfencetest serves host names for tests of what is dialled
// after a name resolves: a real DNS server on 127.0.0.1 (UDP) whose
// answers the test chooses, and may change between lookups to play DNS
// rebinding, and a *net.Resolver that asks only it.
package netfencetest

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// Answers returns the addresses of a host name (lower case, no trailing
// dot); none means the name does not exist.
type Answers func(name string) []netip.Addr

// DNS is a DNS server for one test.
type DNS struct {
	conn    net.PacketConn
	answers Answers

	mu      sync.Mutex
	queries map[string]int
}

// Serve starts a DNS server answering with answers; the test's cleanup
// stops it.
func Serve(t testing.TB, answers Answers) *DNS {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("netfencetest: DNS server: %v", err)
	}
	d := &DNS{conn: conn, answers: answers, queries: map[string]int{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.serve()
	}()
	t.Cleanup(func() {
		_ = conn.Close()
		<-done
	})
	return d
}

// Resolver returns a resolver that sends every DNS query to d (names in
// /etc/hosts, such as localhost, still resolve from there).
func (d *DNS) Resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var dialer net.Dialer
		return dialer.DialContext(ctx, "udp", d.conn.LocalAddr().String())
	}}
}

// Queries returns how many A and AAAA queries name got.
func (d *DNS) Queries(name string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.queries[name]
}

func (d *DNS) serve() {
	buf := make([]byte, 1500)
	for {
		n, from, err := d.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		if reply, ok := d.reply(buf[:n]); ok {
			_, _ = d.conn.WriteTo(reply, from)
		}
	}
}

// reply answers one query: the A or AAAA records of its name, no records
// for other types, NXDOMAIN for a name answers does not know.
func (d *DNS) reply(query []byte) ([]byte, bool) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil, false
	}
	q, err := p.Question()
	if err != nil {
		return nil, false
	}
	name := strings.TrimSuffix(strings.ToLower(q.Name.String()), ".")
	d.mu.Lock()
	d.queries[name]++
	d.mu.Unlock()
	addrs := d.answers(name)

	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true,
		RecursionDesired: h.RecursionDesired, RecursionAvailable: true}
	if len(addrs) == 0 {
		rh.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, rh)
	b.EnableCompression()
	if b.StartQuestions() != nil || b.Question(q) != nil || b.StartAnswers() != nil {
		return nil, false
	}
	rr := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 0}
	for _, a := range addrs {
		switch {
		case q.Type == dnsmessage.TypeA && a.Is4():
			if b.AResource(rr, dnsmessage.AResource{A: a.As4()}) != nil {
				return nil, false
			}
		case q.Type == dnsmessage.TypeAAAA && a.Is6() && !a.Is4In6():
			if b.AAAAResource(rr, dnsmessage.AAAAResource{AAAA: a.As16()}) != nil {
				return nil, false
			}
		}
	}
	out, err := b.Finish()
	return out, err == nil
}
