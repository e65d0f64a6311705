package netfence_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stepflow-dev/stepflow/pkg/netfence"
	"github.com/stepflow-dev/stepflow/pkg/netfence/netfencetest"
)

// names is a fixed DNS for the tests: api.cluster.test is an API server
// reached by name.
func names(t *testing.T) *net.Resolver {
	t.Helper()
	return netfencetest.Serve(t, func(name string) []netip.Addr {
		if name == "api.cluster.test" {
			return []netip.Addr{netip.MustParseAddr("10.0.0.9")}
		}
		return nil
	}).Resolver()
}

func newPolicy(t *testing.T, cfg netfence.Config) *netfence.Policy {
	t.Helper()
	p, err := netfence.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p
}

// deniedBy returns the rule of a *DeniedError, "" for nil, and fails the
// test on any other error.
func deniedBy(t *testing.T, err error) string {
	t.Helper()
	if err == nil {
		return ""
	}
	var d *netfence.DeniedError
	if !errors.As(err, &d) {
		t.Fatalf("error is not a *netfence.DeniedError: %T %v", err, err)
	}
	return d.Rule
}

func TestCheck(t *testing.T) {
	resolver := names(t)
	cluster := netfence.Config{DenyLoopback: true}
	tests := []struct {
		name string
		cfg  netfence.Config
		host string
		addr string
		// rule is the rule that denies, "" when allowed.
		rule string
	}{
		// Built-in: link-local always, loopback only in a cluster.
		{name: "metadata", addr: "169.254.169.254:80", rule: "link-local 169.254.0.0/16"},
		{name: "metadata as IPv4-mapped IPv6", addr: "[::ffff:169.254.169.254]:80", rule: "link-local 169.254.0.0/16"},
		{name: "IPv6 link-local", addr: "[fe80::1]:80", rule: "link-local fe80::/10"},
		{name: "public", addr: "203.0.113.7:443"},
		{name: "loopback outside a cluster", addr: "127.0.0.1:8080"},
		{name: "loopback in a cluster", cfg: cluster, addr: "127.0.0.1:8080", rule: "loopback 127.0.0.0/8"},
		{name: "other loopback in a cluster", cfg: cluster, addr: "127.1.2.3:8080", rule: "loopback 127.0.0.0/8"},
		{name: "IPv6 loopback in a cluster", cfg: cluster, addr: "[::1]:8080", rule: "loopback ::1"},
		{name: "unspecified in a cluster", cfg: cluster, addr: "0.0.0.0:8080", rule: "unspecified 0.0.0.0/8"},
		{name: "private address in a cluster", cfg: cluster, addr: "10.1.2.3:80"},

		// An operator's allow overrides the built-in denies it covers.
		{name: "loopback allowed in a cluster",
			cfg:  netfence.Config{DenyLoopback: true, AllowCIDRs: []string{"127.0.0.0/8", "::1"}},
			addr: "127.0.0.1:8080"},
		{name: "IPv6 loopback allowed in a cluster",
			cfg:  netfence.Config{DenyLoopback: true, AllowCIDRs: []string{"127.0.0.0/8", "::1"}},
			addr: "[::1]:8080"},
		{name: "allow covers only its CIDR",
			cfg:  netfence.Config{AllowCIDRs: []string{"169.254.10.0/24"}},
			addr: "169.254.169.254:80", rule: "link-local 169.254.0.0/16"},
		{name: "allowed link-local subnet",
			cfg:  netfence.Config{AllowCIDRs: []string{"169.254.10.0/24"}},
			addr: "169.254.10.1:80"},

		// An operator's deny wins over an allow.
		{name: "deny wins over allow",
			cfg:  netfence.Config{AllowCIDRs: []string{"10.0.0.0/8"}, DenyCIDRs: []string{"10.1.0.0/16"}},
			addr: "10.1.2.3:80", rule: "deny-cidr 10.1.0.0/16"},
		{name: "allow outside the deny",
			cfg:  netfence.Config{AllowCIDRs: []string{"10.0.0.0/8"}, DenyCIDRs: []string{"10.1.0.0/16"}},
			addr: "10.2.0.1:80"},
		{name: "IPv4-mapped deny",
			cfg:  netfence.Config{DenyCIDRs: []string{"::ffff:10.0.0.0/104"}},
			addr: "10.1.2.3:80", rule: "deny-cidr 10.0.0.0/8"},
		{name: "IPv4-mapped single address deny",
			cfg:  netfence.Config{DenyCIDRs: []string{"::ffff:203.0.113.7"}},
			addr: "[::ffff:203.0.113.7]:443", rule: "deny-cidr 203.0.113.7/32"},
		{name: "single address deny",
			cfg:  netfence.Config{DenyCIDRs: []string{"203.0.113.7"}},
			addr: "203.0.113.7:443", rule: "deny-cidr 203.0.113.7/32"},

		// Host globs.
		{name: "denied host glob",
			cfg:  netfence.Config{DenyHosts: []string{"*.internal"}},
			host: "metadata.google.internal", addr: "203.0.113.5:80", rule: "deny-host *.internal"},
		{name: "host glob ignores case and the root dot",
			cfg:  netfence.Config{DenyHosts: []string{"*.Internal"}},
			host: "Metadata.Google.Internal.", addr: "203.0.113.5:80", rule: "deny-host *.internal"},
		{name: "host glob does not match another name",
			cfg:  netfence.Config{DenyHosts: []string{"*.internal"}},
			host: "internal.example", addr: "203.0.113.5:80"},
		{name: "allowed host on loopback in a cluster",
			cfg:  netfence.Config{DenyLoopback: true, AllowHosts: []string{"hooks.corp.example"}},
			host: "hooks.corp.example", addr: "127.0.0.1:80"},
		{name: "another host on loopback in a cluster",
			cfg:  netfence.Config{DenyLoopback: true, AllowHosts: []string{"hooks.corp.example"}},
			host: "evil.example", addr: "127.0.0.1:80", rule: "loopback 127.0.0.0/8"},
		{name: "denied host glob wins over allowed CIDR",
			cfg:  netfence.Config{AllowCIDRs: []string{"203.0.113.0/24"}, DenyHosts: []string{"*.internal"}},
			host: "x.internal", addr: "203.0.113.5:80", rule: "deny-host *.internal"},

		// The API server, on its port; no allow opens it.
		{name: "API server",
			cfg:  netfence.Config{APIServers: []string{"https://127.0.0.1:6443"}, AllowCIDRs: []string{"127.0.0.0/8"}},
			addr: "127.0.0.1:6443", rule: "api-server https://127.0.0.1:6443"},
		{name: "API server's host on another port",
			cfg:  netfence.Config{APIServers: []string{"https://127.0.0.1:6443"}, AllowCIDRs: []string{"127.0.0.0/8"}},
			addr: "127.0.0.1:8080"},
		{name: "API server URL without a port",
			cfg:  netfence.Config{APIServers: []string{"https://10.96.0.1"}},
			addr: "10.96.0.1:443", rule: "api-server https://10.96.0.1"},
		{name: "kubernetes.default service IP on any port",
			cfg:  netfence.Config{APIServers: []string{"10.96.0.1"}},
			addr: "10.96.0.1:80", rule: "api-server 10.96.0.1"},
		{name: "API server by name, reached at its address",
			cfg:  netfence.Config{APIServers: []string{"https://api.cluster.test:6443"}, Resolver: resolver},
			host: "other.test", addr: "10.0.0.9:6443", rule: "api-server https://api.cluster.test:6443"},
		{name: "API server by name, allowed host glob",
			cfg: netfence.Config{APIServers: []string{"https://api.cluster.test:6443"}, Resolver: resolver,
				AllowHosts: []string{"*.test"}},
			host: "api.cluster.test", addr: "10.0.0.9:6443", rule: "api-server https://api.cluster.test:6443"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPolicy(t, tt.cfg)
			err := p.Check(tt.host, netip.MustParseAddrPort(tt.addr))
			if got := deniedBy(t, err); got != tt.rule {
				t.Fatalf("Check(%q, %s) denied by %q, want %q (err %v)", tt.host, tt.addr, got, tt.rule, err)
			}
		})
	}
}

func TestCheckURL(t *testing.T) {
	p := newPolicy(t, netfence.Config{
		DenyHosts:  []string{"*.internal"},
		APIServers: []string{"https://api.cluster.test:6443"},
		Resolver:   names(t),
	})
	tests := []struct {
		url  string
		rule string
	}{
		{url: "http://169.254.169.254/latest/meta-data/", rule: "link-local 169.254.0.0/16"},
		{url: "http://[fe80::1%25eth0]:8080/", rule: "link-local fe80::/10"},
		{url: "http://metadata.google.internal/", rule: "deny-host *.internal"},
		{url: "https://API.cluster.test:6443/api", rule: "api-server https://api.cluster.test:6443"},
		{url: "https://api.cluster.test/"},
		{url: "https://example.com/"},
		// A name is judged by name only; its address, at dial time.
		{url: "http://localhost/"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			u, err := url.Parse(tt.url)
			if err != nil {
				t.Fatal(err)
			}
			if got := deniedBy(t, p.CheckURL(u)); got != tt.rule {
				t.Fatalf("CheckURL(%s) denied by %q, want %q", tt.url, got, tt.rule)
			}
		})
	}
}

func TestCheckLookup(t *testing.T) {
	dns := netfencetest.Serve(t, func(name string) []netip.Addr {
		switch name {
		case "metadata.test":
			return []netip.Addr{netip.MustParseAddr("203.0.113.7"), netip.MustParseAddr("169.254.169.254")}
		case "public.test":
			return []netip.Addr{netip.MustParseAddr("203.0.113.7")}
		}
		return nil
	})
	p := newPolicy(t, netfence.Config{DenyHosts: []string{"*.internal"}, Resolver: dns.Resolver()})
	tests := []struct {
		host string
		rule string
	}{
		// Any address the name resolves to that is denied denies it.
		{"metadata.test", "link-local 169.254.0.0/16"},
		{"public.test", ""},
		{"169.254.169.254", "link-local 169.254.0.0/16"},
		{"x.internal", "deny-host *.internal"},
		// A name that does not resolve here is left to the proxy.
		{"outside.test", ""},
	}
	for _, tt := range tests {
		u := &url.URL{Scheme: "http", Host: tt.host}
		if got := deniedBy(t, p.CheckLookup(context.Background(), u)); got != tt.rule {
			t.Errorf("CheckLookup(%s) denied by %q, want %q", tt.host, got, tt.rule)
		}
	}
}

func TestDeniedErrorNamesDestinationAndRule(t *testing.T) {
	p := newPolicy(t, netfence.Config{DenyHosts: []string{"*.internal"}})
	tests := []struct {
		err  error
		want string
	}{
		{p.Check("", netip.MustParseAddrPort("169.254.169.254:80")),
			`destination 169.254.169.254:80 denied by rule "link-local 169.254.0.0/16"`},
		{p.Check("meta.example", netip.MustParseAddrPort("169.254.169.254:80")),
			`destination meta.example (169.254.169.254:80) denied by rule "link-local 169.254.0.0/16"`},
		{p.CheckName("metadata.google.internal", 80),
			`destination metadata.google.internal:80 denied by rule "deny-host *.internal"`},
	}
	for _, tt := range tests {
		if tt.err == nil || tt.err.Error() != tt.want {
			t.Errorf("error %v, want %s", tt.err, tt.want)
		}
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	resolver := names(t)
	tests := []struct {
		name string
		cfg  netfence.Config
		want string
	}{
		{"bad CIDR", netfence.Config{AllowCIDRs: []string{"10.0.0/8"}}, `allow CIDR "10.0.0/8"`},
		{"bad address", netfence.Config{DenyCIDRs: []string{"localhost"}}, `deny CIDR "localhost"`},
		{"bad glob", netfence.Config{DenyHosts: []string{"[a"}}, `deny host "[a" is not a glob`},
		{"empty glob", netfence.Config{AllowHosts: []string{""}}, `allow host "" is not a glob`},
		{"bad API server port", netfence.Config{APIServers: []string{"10.0.0.1:http"}}, `API server "10.0.0.1:http"`},
		{"unknown API server", netfence.Config{APIServers: []string{"https://nowhere.test"}, Resolver: resolver},
			`resolving API server "https://nowhere.test"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := netfence.New(context.Background(), tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New: %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// TestControlRefusesBeforeConnecting dials the metadata address through a
// Dialer whose only check is the Policy's Control hook: the refusal comes
// from the hook, which runs before connect(2), so no packet leaves and no
// network is needed.
func TestControlRefusesBeforeConnecting(t *testing.T) {
	d := net.Dialer{ControlContext: netfence.Default().Control("")}
	for _, addr := range []string{"169.254.169.254:80", "[fe80::1]:80"} {
		conn, err := d.DialContext(context.Background(), "tcp", addr)
		if err == nil {
			conn.Close()
			t.Fatalf("dial %s: connected", addr)
		}
		if rule := deniedBy(t, err); !strings.HasPrefix(rule, "link-local") {
			t.Fatalf("dial %s denied by %q", addr, rule)
		}
	}
}

// listener accepts connections on 127.0.0.1 and counts them.
func listener(t *testing.T) (port string, accepted func() int64) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			c.Close()
		}
	}()
	t.Cleanup(func() { l.Close(); wg.Wait() })
	_, port, _ = net.SplitHostPort(l.Addr().String())
	return port, n.Load
}

// TestDialChecksEachResolvedAddress plays DNS rebinding: the same name
// resolves to an allowed address, then to a denied one. The check is on
// the address each dial resolved, so the second dial is refused.
func TestDialChecksEachResolvedAddress(t *testing.T) {
	var target atomic.Value
	target.Store(netip.MustParseAddr("127.0.0.1"))
	dns := netfencetest.Serve(t, func(name string) []netip.Addr {
		if name == "rebind.test" {
			return []netip.Addr{target.Load().(netip.Addr)}
		}
		return nil
	})
	p := newPolicy(t, netfence.Config{Resolver: dns.Resolver()})
	dial := p.DialContext(&net.Dialer{})
	port, accepted := listener(t)
	ctx := context.Background()

	conn, err := dial(ctx, "tcp4", "rebind.test:"+port)
	if err != nil {
		t.Fatalf("first dial: %v", err)
	}
	conn.Close()

	target.Store(netip.MustParseAddr("169.254.169.254"))
	conn, err = dial(ctx, "tcp4", "rebind.test:"+port)
	if err == nil {
		conn.Close()
		t.Fatal("second dial, to the rebound address: connected")
	}
	var d *netfence.DeniedError
	if !errors.As(err, &d) || d.Host != "rebind.test" || d.Addr != "169.254.169.254:"+port {
		t.Fatalf("second dial: %v, want a refusal of rebind.test at 169.254.169.254:%s", err, port)
	}
	if dns.Queries("rebind.test") < 2 {
		t.Fatalf("rebind.test was looked up %d times, want once per dial", dns.Queries("rebind.test"))
	}
	// The first dial connected: the kernel completed it, and the
	// listener's goroutine accepts it in its own time (it had not yet, once,
	// when make test kept both cores busy).
	for deadline := time.Now().Add(5 * time.Second); accepted() < 1 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if n := accepted(); n != 1 {
		t.Fatalf("listener accepted %d connections, want 1", n)
	}
}

// TestDialRefusesNameOnDeniedAddress: in a cluster, a name that resolves
// to loopback is refused at dial time, and the listener there sees nothing.
func TestDialRefusesNameOnDeniedAddress(t *testing.T) {
	dns := netfencetest.Serve(t, func(name string) []netip.Addr {
		if name == "inside.test" {
			return []netip.Addr{netip.MustParseAddr("127.0.0.1")}
		}
		return nil
	})
	p := newPolicy(t, netfence.Config{DenyLoopback: true, Resolver: dns.Resolver()})
	port, accepted := listener(t)
	conn, err := p.DialContext(&net.Dialer{})(context.Background(), "tcp4", "inside.test:"+port)
	if err == nil {
		conn.Close()
		t.Fatal("connected")
	}
	if rule := deniedBy(t, err); rule != "loopback 127.0.0.0/8" {
		t.Fatalf("denied by %q", rule)
	}
	if n := accepted(); n != 0 {
		t.Fatalf("listener accepted %d connections, want 0", n)
	}
}

// TestDialChecksNameFirst: a denied host glob is refused before the name
// is looked up.
func TestDialChecksNameFirst(t *testing.T) {
	dns := netfencetest.Serve(t, func(string) []netip.Addr { return []netip.Addr{netip.MustParseAddr("127.0.0.1")} })
	p := newPolicy(t, netfence.Config{DenyHosts: []string{"*.internal"}, Resolver: dns.Resolver()})
	_, err := p.DialContext(&net.Dialer{})(context.Background(), "tcp", "metadata.google.internal:80")
	if rule := deniedBy(t, err); rule != "deny-host *.internal" {
		t.Fatalf("denied by %q (err %v)", rule, err)
	}
	if n := dns.Queries("metadata.google.internal"); n != 0 {
		t.Fatalf("the name was looked up %d times", n)
	}
}

// BenchmarkCheck is the cost the fence adds to each connection, with a
// Policy of a typical size.
func BenchmarkCheck(b *testing.B) {
	p, err := netfence.New(context.Background(), netfence.Config{
		DenyLoopback: true,
		AllowCIDRs:   []string{"10.0.0.0/8", "192.168.0.0/16", "fd00::/8"},
		DenyCIDRs:    []string{"10.20.0.0/16", "10.30.0.0/16"},
		AllowHosts:   []string{"*.corp.example", "hooks.example.com"},
		DenyHosts:    []string{"*.internal", "*.db.corp.example"},
		APIServers:   []string{"https://10.96.0.1:443", "10.96.0.1"},
	})
	if err != nil {
		b.Fatal(err)
	}
	addr := netip.MustParseAddrPort("203.0.113.7:443")
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Check("api.example.com", addr); err != nil {
			b.Fatal(err)
		}
	}
}
