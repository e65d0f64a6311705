package netfence

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"path"
	"strconv"
	"strings"
	"syscall"
)

// Config is what a Policy is built from.
type Config struct {
	// AllowCIDRs and DenyCIDRs are CIDRs ("10.0.0.0/8", "fd00::/8") or
	// single addresses ("10.1.2.3").
	AllowCIDRs, DenyCIDRs []string
	// AllowHosts and DenyHosts are host name globs in path.Match syntax,
	// matched case-insensitively against the host of the URL:
	// "*.corp.example" matches every name under corp.example.
	AllowHosts, DenyHosts []string
	// DenyLoopback adds the built-in loopback and unspecified-address
	// denies; a cluster install sets it.
	DenyLoopback bool
	// APIServers are the API server's addresses: a URL such as the Host
	// of a rest.Config ("https://10.96.0.1:443"), a host:port, or a bare
	// host, which is denied on every port. Names are resolved by New and
	// denied by name too.
	APIServers []string
	// Resolver resolves the API servers' names in New and every host name
	// at dial time; nil means net.DefaultResolver.
	Resolver *net.Resolver
}

// Policy decides which destinations may be dialled. It is immutable and
// safe for concurrent use.
type Policy struct {
	deny, api, allow, builtin []rule
	resolver                  *net.Resolver
}

// rule matches either addresses (prefix, and port unless it is 0) or host
// names (host, a glob; for the API server an exact name, with port).
type rule struct {
	name   string
	prefix netip.Prefix
	host   string
	port   uint16
}

// matchAddr reports whether r matches addr.
func (r rule) matchAddr(addr netip.AddrPort) bool {
	return r.prefix.IsValid() && r.prefix.Contains(plain(addr.Addr())) && (r.port == 0 || r.port == addr.Port())
}

// plain is a without an IPv6 zone and as IPv4 when it is IPv4-mapped:
// a Prefix never contains a zoned address, and "::ffff:169.254.169.254"
// reaches 169.254.169.254.
func plain(a netip.Addr) netip.Addr { return a.Unmap().WithZone("") }

// matchHost reports whether r matches host name host (lower case, no
// trailing dot) on port.
func (r rule) matchHost(host string, port uint16) bool {
	if r.host == "" || host == "" {
		return false
	}
	ok, _ := path.Match(r.host, host) // the pattern was checked by New
	return ok && (r.port == 0 || r.port == port)
}

// linkLocal are the built-in denies that always apply.
var linkLocal = []rule{
	{name: "link-local 169.254.0.0/16", prefix: netip.MustParsePrefix("169.254.0.0/16")},
	{name: "link-local fe80::/10", prefix: netip.MustParsePrefix("fe80::/10")},
}

// loopback are the built-in denies of Config.DenyLoopback.
var loopback = []rule{
	{name: "loopback 127.0.0.0/8", prefix: netip.MustParsePrefix("127.0.0.0/8")},
	{name: "loopback ::1", prefix: netip.MustParsePrefix("::1/128")},
	{name: "unspecified 0.0.0.0/8", prefix: netip.MustParsePrefix("0.0.0.0/8")},
	{name: "unspecified ::", prefix: netip.MustParsePrefix("::/128")},
}

// Default is the Policy of an empty Config: only the link-local denies.
func Default() *Policy {
	return &Policy{builtin: linkLocal, resolver: net.DefaultResolver}
}

// New builds the Policy of cfg. It fails on a malformed CIDR, glob or API
// server address, and when an API server's name does not resolve.
func New(ctx context.Context, cfg Config) (*Policy, error) {
	p := &Policy{resolver: cfg.Resolver}
	if p.resolver == nil {
		p.resolver = net.DefaultResolver
	}
	var err error
	if p.deny, err = operatorRules("deny", cfg.DenyCIDRs, cfg.DenyHosts); err != nil {
		return nil, err
	}
	if p.allow, err = operatorRules("allow", cfg.AllowCIDRs, cfg.AllowHosts); err != nil {
		return nil, err
	}
	for _, s := range cfg.APIServers {
		rs, err := p.apiServerRules(ctx, s)
		if err != nil {
			return nil, err
		}
		p.api = append(p.api, rs...)
	}
	p.builtin = append(p.builtin, linkLocal...)
	if cfg.DenyLoopback {
		p.builtin = append(p.builtin, loopback...)
	}
	return p, nil
}

// operatorRules parses an operator's CIDRs and host globs; kind is "allow"
// or "deny".
func operatorRules(kind string, cidrs, hosts []string) ([]rule, error) {
	var rs []rule
	for _, s := range cidrs {
		pfx, err := parsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("netfence: %s CIDR %q: %w", kind, s, err)
		}
		rs = append(rs, rule{name: kind + "-cidr " + pfx.String(), prefix: pfx})
	}
	for _, s := range hosts {
		g := normalizeHost(s)
		if _, err := path.Match(g, ""); err != nil || g == "" {
			return nil, fmt.Errorf("netfence: %s host %q is not a glob", kind, s)
		}
		rs = append(rs, rule{name: kind + "-host " + g, host: g})
	}
	return rs, nil
}

// parsePrefix parses a CIDR or a single address, as its one-address
// prefix; IPv4-mapped IPv6 forms become IPv4.
func parsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		if a := pfx.Addr(); a.Is4In6() && pfx.Bits() >= 96 {
			// Addresses are matched unmapped ("::ffff:10.0.0.0/104" is 10.0.0.0/8).
			pfx = netip.PrefixFrom(a.Unmap(), pfx.Bits()-96)
		}
		return pfx.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = plain(a)
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// apiServerRules returns the rules of one API server address: its IPs on
// its port (every port for a bare host), and its name when it has one.
func (p *Policy) apiServerRules(ctx context.Context, s string) ([]rule, error) {
	host, port, err := splitServer(s)
	if err != nil {
		return nil, fmt.Errorf("netfence: API server %q: %w", s, err)
	}
	name := "api-server " + s
	var rs []rule
	addrs := []netip.Addr{}
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = append(addrs, a)
	} else {
		rs = append(rs, rule{name: name, host: normalizeHost(host), port: port})
		if addrs, err = p.resolver.LookupNetIP(ctx, "ip", host); err != nil {
			return nil, fmt.Errorf("netfence: resolving API server %q: %w", s, err)
		}
	}
	for _, a := range addrs {
		a = plain(a)
		rs = append(rs, rule{name: name, prefix: netip.PrefixFrom(a, a.BitLen()), port: port})
	}
	return rs, nil
}

// splitServer splits an API server address into host and port (0: any).
// A URL without a port has its scheme's.
func splitServer(s string) (string, uint16, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", 0, fmt.Errorf("empty address")
	}
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil {
			return "", 0, err
		}
		if u.Hostname() == "" {
			return "", 0, fmt.Errorf("no host")
		}
		port, err := urlPort(u)
		return u.Hostname(), port, err
	}
	if host, port, err := net.SplitHostPort(s); err == nil {
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil {
			return "", 0, fmt.Errorf("port %q: %w", port, err)
		}
		return host, uint16(n), nil
	}
	return strings.Trim(s, "[]"), 0, nil
}

// urlPort is the port of u, or its scheme's default.
func urlPort(u *url.URL) (uint16, error) {
	if p := u.Port(); p != "" {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil {
			return 0, fmt.Errorf("port %q: %w", p, err)
		}
		return uint16(n), nil
	}
	switch strings.ToLower(u.Scheme) {
	case "http":
		return 80, nil
	case "https":
		return 443, nil
	}
	return 0, nil
}

// normalizeHost lower-cases a host name and drops a trailing dot.
func normalizeHost(h string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(h)), ".")
}

// Check decides a destination: host is the name that was dialled ("" or
// the IP for an IP literal) and addr the address it resolved to. It
// returns nil or a *DeniedError.
func (p *Policy) Check(host string, addr netip.AddrPort) error {
	host = normalizeHost(host)
	if a, err := netip.ParseAddr(host); err == nil && plain(a) == plain(addr.Addr()) {
		host = ""
	}
	deny := func(r rule) error { return &DeniedError{Host: host, Addr: addr.String(), Rule: r.name} }
	for _, r := range p.deny {
		if r.matchAddr(addr) || r.matchHost(host, addr.Port()) {
			return deny(r)
		}
	}
	for _, r := range p.api {
		if r.matchAddr(addr) || r.matchHost(host, addr.Port()) {
			return deny(r)
		}
	}
	for _, r := range p.allow {
		if r.matchAddr(addr) || r.matchHost(host, addr.Port()) {
			return nil
		}
	}
	for _, r := range p.builtin {
		if r.matchAddr(addr) {
			return deny(r)
		}
	}
	return nil
}

// CheckName applies the rules a host name can be judged by before it is
// resolved: the operator's deny globs and the API server's names. An IP
// literal is checked in full. port is the port to be dialled.
func (p *Policy) CheckName(host string, port uint16) error {
	if a, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		return p.Check("", netip.AddrPortFrom(a, port))
	}
	host = normalizeHost(host)
	for _, rs := range [][]rule{p.deny, p.api} {
		for _, r := range rs {
			if r.matchHost(host, port) {
				return &DeniedError{Host: host, Port: port, Rule: r.name}
			}
		}
	}
	return nil
}

// CheckURL is CheckName on the host and port of u (the scheme's default
// port when u names none).
func (p *Policy) CheckURL(u *url.URL) error {
	port, err := urlPort(u)
	if err != nil {
		return err
	}
	return p.CheckName(u.Hostname(), port)
}

// CheckLookup checks the host of u by the addresses it resolves to now,
// as well as by name: for a request a proxy carries, which resolves the
// name itself, this is the best the fence can do. A name that does not
// resolve here is judged by name only, since a proxy is often the only way
// to names outside.
func (p *Policy) CheckLookup(ctx context.Context, u *url.URL) error {
	port, err := urlPort(u)
	if err != nil {
		return err
	}
	return p.checkLookup(ctx, u.Hostname(), port)
}

func (p *Policy) checkLookup(ctx context.Context, host string, port uint16) error {
	if err := p.CheckName(host, port); err != nil {
		return err
	}
	if _, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		return nil // CheckName checked it in full
	}
	addrs, err := p.resolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil
	}
	for _, a := range addrs {
		if err := p.Check(host, netip.AddrPortFrom(a, port)); err != nil {
			return err
		}
	}
	return nil
}

// DialContext returns a dial function for an http.Transport: it checks the
// host name, then dials with a copy of d whose Control hook checks each
// address the name resolved to before the socket sends anything. d's
// Resolver, when nil, becomes the Policy's; its own Control hooks are
// replaced.
func (p *Policy) DialContext(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	base := *d
	if base.Resolver == nil {
		base.Resolver = p.resolver
	}
	base.Control = nil
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, portStr, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		port, err := strconv.ParseUint(portStr, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("netfence: port of %q: %w", addr, err)
		}
		if err := p.CheckName(host, uint16(port)); err != nil {
			return nil, err
		}
		dd := base
		dd.ControlContext = p.Control(host)
		return dd.DialContext(ctx, network, addr)
	}
}

// Control returns a net.Dialer ControlContext hook that refuses, before any
// packet, a connection to an address the Policy denies; host is the name
// being dialled.
func (p *Policy) Control(host string) func(ctx context.Context, network, address string, c syscall.RawConn) error {
	return func(_ context.Context, _, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("netfence: cannot judge address %q: %w", address, err)
		}
		return p.Check(host, ap)
	}
}

// DeniedError is a destination the Policy refused, and the rule that
// refused it.
type DeniedError struct {
	// Host is the name dialled; "" for an IP literal.
	Host string
	// Addr is the resolved address, "" when the name alone was refused.
	Addr string
	// Port is the port of a name refused before it was resolved.
	Port uint16
	Rule string
}

func (e *DeniedError) Error() string {
	var dest string
	switch {
	case e.Addr == "":
		dest = net.JoinHostPort(e.Host, strconv.Itoa(int(e.Port)))
	case e.Host == "":
		dest = e.Addr
	default:
		dest = e.Host + " (" + e.Addr + ")"
	}
	return fmt.Sprintf("destination %s denied by rule %q", dest, e.Rule)
}
