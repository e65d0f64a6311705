package http

import (
	"context"
	"io"
	nethttp "net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stepflow-dev/stepflow/pkg/netfence"
	"github.com/stepflow-dev/stepflow/pkg/netfence/netfencetest"
)

// loopbackOnly is a DNS where every name in names is 127.0.0.1 and any
// other name does not exist.
func loopbackOnly(t *testing.T, names ...string) *netfencetest.DNS {
	t.Helper()
	return netfencetest.Serve(t, func(name string) []netip.Addr {
		for _, n := range names {
			if n == name {
				return []netip.Addr{netip.MustParseAddr("127.0.0.1")}
			}
		}
		return nil
	})
}

// fence builds a Policy, or fails the test.
func fence(t *testing.T, cfg netfence.Config) *netfence.Policy {
	t.Helper()
	p, err := netfence.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// port is the port of a test server.
func port(t *testing.T, s *server) string {
	t.Helper()
	u, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Port()
}

// wantDenied asserts that err is a permanent op error whose message holds
// each of parts.
func wantDenied(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatal("the request was sent")
	}
	e := opError(t, err)
	if !e.Permanent {
		t.Errorf("a denied request is retryable: %v", err)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not say %q", err, p)
		}
	}
}

// TestMetadataDenied: the cloud metadata address is refused by default,
// whether the URL names it or a host name resolves to it (then at dial
// time, by the Control hook: nothing is sent, no network is needed).
func TestMetadataDenied(t *testing.T) {
	dns := netfencetest.Serve(t, func(name string) []netip.Addr {
		if name == "metadata.test" {
			return []netip.Addr{netip.MustParseAddr("169.254.169.254")}
		}
		return nil
	})
	f := New(Options{Fence: fence(t, netfence.Config{Resolver: dns.Resolver()})})
	tests := []struct {
		url  string
		want string
	}{
		{"http://169.254.169.254/latest/meta-data/",
			`GET http://169.254.169.254/latest/meta-data/: destination 169.254.169.254:80 denied by rule "link-local 169.254.0.0/16"`},
		{"http://metadata.test/latest/meta-data/",
			`GET http://metadata.test/latest/meta-data/: destination metadata.test (169.254.169.254:80) denied by rule "link-local 169.254.0.0/16"`},
		{"http://[fe80::a9fe:a9fe]/",
			`destination [fe80::a9fe:a9fe]:80 denied by rule "link-local fe80::/10"`},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			_, err := run(t, f, &Params{URL: tt.url})
			wantDenied(t, err, tt.want, `op http.do at "notify.do"`)
		})
	}
}

// TestLoopback: a cluster install denies loopback, unless the operator
// allows it.
func TestLoopback(t *testing.T) {
	tests := []struct {
		name string
		cfg  netfence.Config
		// rule denies the request; "" means it is sent.
		rule string
	}{
		{name: "outside a cluster", cfg: netfence.Config{}},
		{name: "in a cluster", cfg: netfence.Config{DenyLoopback: true}, rule: `"loopback 127.0.0.0/8"`},
		{name: "in a cluster, allowed", cfg: netfence.Config{DenyLoopback: true, AllowCIDRs: []string{"127.0.0.0/8"}}},
		{name: "in a cluster, allowed elsewhere", cfg: netfence.Config{DenyLoopback: true, AllowCIDRs: []string{"10.0.0.0/8"}},
			rule: `"loopback 127.0.0.0/8"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := serve(t, nil)
			_, err := run(t, New(Options{Fence: fence(t, tt.cfg)}), &Params{URL: srv.URL + "/hook"})
			hits, _ := srv.saw()
			if tt.rule == "" {
				if err != nil || hits != 1 {
					t.Fatalf("err %v, %d hits; want the request sent", err, hits)
				}
				return
			}
			wantDenied(t, err, "GET "+srv.URL+"/hook: destination 127.0.0.1:", "denied by rule "+tt.rule)
			if hits != 0 {
				t.Fatalf("the denied server got %d hits", hits)
			}
		})
	}
}

// TestAPIServerDenied: the API server's address is denied, by address and
// by name, even where loopback is allowed; another port of the same host
// is not.
func TestAPIServerDenied(t *testing.T) {
	api := serve(t, nil)
	other := serve(t, nil)
	dns := loopbackOnly(t, "kubernetes.test", "alias.test")
	apiPort := port(t, api)
	f := New(Options{Fence: fence(t, netfence.Config{
		DenyLoopback: true, AllowCIDRs: []string{"127.0.0.0/8"},
		APIServers: []string{"https://kubernetes.test:" + apiPort},
		Resolver:   dns.Resolver(),
	})})
	rule := `denied by rule "api-server https://kubernetes.test:` + apiPort + `"`
	for _, u := range []string{
		"http://127.0.0.1:" + apiPort + "/api",
		"https://kubernetes.test:" + apiPort + "/api",
		// A name the rule does not know is denied at dial time.
		"http://alias.test:" + apiPort + "/api",
	} {
		_, err := run(t, f, &Params{URL: u})
		wantDenied(t, err, "GET "+u+": destination", rule)
	}
	if hits, _ := api.saw(); hits != 0 {
		t.Fatalf("the API server got %d hits", hits)
	}
	if _, err := run(t, f, &Params{URL: other.URL}); err != nil {
		t.Fatalf("another port of the API server's host: %v", err)
	}
}

// TestRedirectToDeniedDestination: an allowed server redirects to a denied
// destination; the redirect is not followed, and the target never gets a
// request, whether the URL shows it is denied or only the address it
// resolves to does.
func TestRedirectToDeniedDestination(t *testing.T) {
	target := serve(t, nil)
	targetPort := port(t, target)
	dns := loopbackOnly(t, "evil.internal", "alias.test")
	p := fence(t, netfence.Config{
		DenyHosts:  []string{"*.internal"},
		APIServers: []string{target.URL},
		Resolver:   dns.Resolver(),
	})
	tests := []struct {
		to   string
		rule string
		// byURL: the redirect's URL shows it is denied, and the message
		// says it was a redirect.
		byURL bool
	}{
		{"http://169.254.169.254/latest/meta-data/", `"link-local 169.254.0.0/16"`, true},
		{target.URL + "/api", `"api-server ` + target.URL + `"`, true},
		{"http://evil.internal:" + targetPort + "/", `"deny-host *.internal"`, true},
		// Only the dial sees that alias.test is the API server's address.
		{"http://alias.test:" + targetPort + "/", `"api-server ` + target.URL + `"`, false},
	}
	for _, tt := range tests {
		t.Run(tt.to, func(t *testing.T) {
			from := serve(t, func(w nethttp.ResponseWriter, r *nethttp.Request) {
				nethttp.Redirect(w, r, tt.to, nethttp.StatusFound)
			})
			_, err := run(t, New(Options{Fence: p}), &Params{URL: from.URL + "/start"})
			wantDenied(t, err, "GET "+from.URL+"/start: ", "denied by rule "+tt.rule)
			if tt.byURL {
				wantDenied(t, err, "GET "+from.URL+"/start: redirected to "+tt.to+": destination")
			}
			if hits, _ := from.saw(); hits != 1 {
				t.Fatalf("the redirecting server got %d hits, want 1", hits)
			}
		})
	}
	if hits, _ := target.saw(); hits != 0 {
		t.Fatalf("the denied target got %d hits", hits)
	}
}

// TestRedirectToAllowedDestination: redirects the fence allows are
// followed.
func TestRedirectToAllowedDestination(t *testing.T) {
	target := serve(t, func(w nethttp.ResponseWriter, _ *nethttp.Request) { _, _ = io.WriteString(w, "here") })
	from := serve(t, func(w nethttp.ResponseWriter, r *nethttp.Request) {
		nethttp.Redirect(w, r, target.URL+"/there", nethttp.StatusFound)
	})
	ret, err := run(t, New(Options{}), &Params{URL: from.URL})
	if err != nil || ret.Body != "here" {
		t.Fatalf("got %+v, %v", ret, err)
	}
}

// TestHostGlobs: the operator's host globs deny and allow by the URL's
// host name.
func TestHostGlobs(t *testing.T) {
	dns := loopbackOnly(t, "svc.internal", "hooks.corp.test", "other.corp.test")
	p := fence(t, netfence.Config{
		DenyLoopback: true,
		DenyHosts:    []string{"*.internal"},
		AllowHosts:   []string{"hooks.corp.test", "*.internal"},
		Resolver:     dns.Resolver(),
	})
	tests := []struct {
		host string
		rule string
	}{
		{host: "svc.internal", rule: `"deny-host *.internal"`},
		{host: "SVC.Internal", rule: `"deny-host *.internal"`},
		{host: "hooks.corp.test"},
		{host: "other.corp.test", rule: `"loopback 127.0.0.0/8"`},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			srv := serve(t, nil)
			_, err := run(t, New(Options{Fence: p}), &Params{URL: "http://" + tt.host + ":" + port(t, srv) + "/"})
			hits, _ := srv.saw()
			if tt.rule == "" {
				if err != nil || hits != 1 {
					t.Fatalf("err %v, %d hits; want the request sent", err, hits)
				}
				return
			}
			wantDenied(t, err, "denied by rule "+tt.rule)
			if hits != 0 {
				t.Fatalf("the denied server got %d hits", hits)
			}
		})
	}
}

// TestDNSRebinding: a name that resolved to an allowed address for one
// request and to the metadata address for the next is denied the second
// time, because the check is on the address each connection dials.
func TestDNSRebinding(t *testing.T) {
	srv := serve(t, func(w nethttp.ResponseWriter, _ *nethttp.Request) {
		// A new connection, so a new lookup, for the next request.
		w.Header().Set("Connection", "close")
	})
	var to atomic.Value
	to.Store(netip.MustParseAddr("127.0.0.1"))
	dns := netfencetest.Serve(t, func(name string) []netip.Addr {
		if name == "rebind.test" {
			return []netip.Addr{to.Load().(netip.Addr)}
		}
		return nil
	})
	f := New(Options{Fence: fence(t, netfence.Config{Resolver: dns.Resolver()})})
	u := "http://rebind.test:" + port(t, srv) + "/"
	if _, err := run(t, f, &Params{URL: u}); err != nil {
		t.Fatalf("first request: %v", err)
	}
	to.Store(netip.MustParseAddr("169.254.169.254"))
	_, err := run(t, f, &Params{URL: u})
	wantDenied(t, err, "destination rebind.test (169.254.169.254:"+port(t, srv)+`) denied by rule "link-local 169.254.0.0/16"`)
	if hits, _ := srv.saw(); hits != 1 {
		t.Fatalf("the server got %d hits, want 1", hits)
	}
}

// TestProxyFromEnvironment: the proxy variables are ignored unless
// Options.ProxyFromEnvironment is set.
func TestProxyFromEnvironment(t *testing.T) {
	target := serve(t, func(w nethttp.ResponseWriter, _ *nethttp.Request) { _, _ = io.WriteString(w, "direct") })
	proxy := serve(t, func(w nethttp.ResponseWriter, _ *nethttp.Request) { _, _ = io.WriteString(w, "proxied") })
	for _, k := range []string{"HTTP_PROXY", "http_proxy"} {
		t.Setenv(k, proxy.URL)
	}
	for _, k := range []string{"NO_PROXY", "no_proxy", "REQUEST_METHOD"} {
		t.Setenv(k, "")
	}
	// Requests to loopback never go through a proxy: use a name.
	dns := loopbackOnly(t, "target.test")
	u := "http://target.test:" + port(t, target) + "/"
	for _, fromEnv := range []bool{false, true} {
		f := New(Options{Fence: fence(t, netfence.Config{Resolver: dns.Resolver()}), ProxyFromEnvironment: fromEnv})
		ret, err := run(t, f, &Params{URL: u})
		if err != nil {
			t.Fatal(err)
		}
		want := map[bool]string{false: "direct", true: "proxied"}[fromEnv]
		if ret.Body != want {
			t.Errorf("ProxyFromEnvironment %v: the request went %s, want %s", fromEnv, ret.Body, want)
		}
	}
	if hits, _ := proxy.saw(); hits != 1 {
		t.Errorf("the proxy got %d hits, want 1", hits)
	}
}

// TestProxiedRequestIsChecked: a request through a proxy is checked on the
// addresses its host resolves to, since the dial only sees the proxy.
func TestProxiedRequestIsChecked(t *testing.T) {
	proxy := serve(t, nil)
	for _, k := range []string{"HTTP_PROXY", "http_proxy"} {
		t.Setenv(k, proxy.URL)
	}
	for _, k := range []string{"NO_PROXY", "no_proxy", "REQUEST_METHOD"} {
		t.Setenv(k, "")
	}
	dns := netfencetest.Serve(t, func(name string) []netip.Addr {
		if name == "metadata.test" {
			return []netip.Addr{netip.MustParseAddr("169.254.169.254")}
		}
		return nil
	})
	f := New(Options{Fence: fence(t, netfence.Config{Resolver: dns.Resolver()}), ProxyFromEnvironment: true})
	_, err := run(t, f, &Params{URL: "http://metadata.test/latest/meta-data/"})
	wantDenied(t, err, `GET http://metadata.test/latest/meta-data/: destination metadata.test (169.254.169.254:80) denied by rule "link-local 169.254.0.0/16"`)
	// A name only the proxy can resolve goes to the proxy.
	if _, err := run(t, f, &Params{URL: "http://outside.test/"}); err != nil {
		t.Fatalf("a name that does not resolve here: %v", err)
	}
	if hits, _ := proxy.saw(); hits != 1 {
		t.Errorf("the proxy got %d hits, want 1", hits)
	}
}

// TestTransportIsFenced: a transport given in Options dials through the
// fence too, and so do the clients of tls_config, which clone it.
func TestTransportIsFenced(t *testing.T) {
	srv := serve(t, nil)
	dns := loopbackOnly(t, "inside.test")
	given := &nethttp.Transport{Proxy: nethttp.ProxyFromEnvironment}
	f := New(Options{Transport: given, Fence: fence(t, netfence.Config{DenyLoopback: true, Resolver: dns.Resolver()})})
	// Only the dial sees that the name is loopback.
	_, err := run(t, f, &Params{URL: "http://inside.test:" + port(t, srv) + "/"})
	wantDenied(t, err, `denied by rule "loopback 127.0.0.0/8"`)
	if hits, _ := srv.saw(); hits != 0 {
		t.Fatalf("the server got %d hits", hits)
	}
	if f.tls.base.Proxy != nil || f.tls.base.DialContext == nil {
		t.Fatal("the tls_config clients' base transport takes proxies from the environment or dials unfenced")
	}
	if given.DialContext != nil {
		t.Fatal("the given transport was changed")
	}
}
