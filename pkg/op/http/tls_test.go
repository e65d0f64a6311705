package http

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	nethttp "net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// serveTLS starts a recording HTTPS server; tune, when set, adjusts its TLS
// config before it starts. It returns the server and its certificate as PEM.
func serveTLS(t *testing.T, tune func(*tls.Config)) (*server, []byte) {
	t.Helper()
	s := &server{}
	s.Server = httptest.NewUnstartedServer(s.record(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		if len(r.TLS.PeerCertificates) > 0 {
			w.Header().Set("X-Client", r.TLS.PeerCertificates[0].Subject.CommonName)
		}
	}))
	s.TLS = &tls.Config{}
	if tune != nil {
		tune(s.TLS)
	}
	s.StartTLS()
	t.Cleanup(s.Close)
	return s, pemOf("CERTIFICATE", s.Certificate().Raw)
}

func pemOf(kind string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der})
}

// authority is a throwaway CA that issues client certificates.
type authority struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newAuthority(t *testing.T) *authority {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &authority{cert: cert, key: key}
}

// issue returns a client certificate and its key, as PEM.
func (a *authority) issue(t *testing.T, cn string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, &key.PublicKey, a.key)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pemOf("CERTIFICATE", der), pemOf("PRIVATE KEY", pkcs8)
}

func TestTLSFromSecret(t *testing.T) {
	srv, ca := serveTLS(t, nil)
	store := secrets{
		"team-a/ca":   {keyCA: ca},
		"certs/ca":    {keyCA: ca},
		"team-a/junk": {keyCA: []byte("not PEM")},
		"team-a/none": {"other": []byte("x")},
		"team-a/half": {keyCA: ca, keyCert: ca},
	}
	tests := []struct {
		name      string
		noReader  bool
		tls       *TLSConfig
		wantErr   bool
		permanent bool
	}{
		{name: "no tls_config: unknown authority, retryable", tls: nil, wantErr: true},
		{name: "CA from the step's namespace", tls: &TLSConfig{Secret: "ca"}},
		{name: "CA from another namespace", tls: &TLSConfig{Secret: "ca", Namespace: "certs"}},
		{name: "missing secret", tls: &TLSConfig{Secret: "nope"}, wantErr: true},
		{name: "no secret reader", noReader: true, tls: &TLSConfig{Secret: "ca"}, wantErr: true, permanent: true},
		{name: "ca.crt is not PEM", tls: &TLSConfig{Secret: "junk"}, wantErr: true, permanent: true},
		{name: "no TLS keys at all", tls: &TLSConfig{Secret: "none"}, wantErr: true, permanent: true},
		{name: "tls.crt without tls.key", tls: &TLSConfig{Secret: "half"}, wantErr: true, permanent: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var reader SecretReader = store
			if tc.noReader {
				reader = nil
			}
			_, err := run(t, New(Options{Secrets: reader}), &Params{URL: srv.URL, TLSConfig: tc.tls})
			if !tc.wantErr {
				if err != nil {
					t.Fatalf("call failed: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("call succeeded, want an error")
			}
			if got := opError(t, err).Permanent; got != tc.permanent {
				t.Errorf("permanent = %v, want %v: %v", got, tc.permanent, err)
			}
		})
	}
}

func TestTLSClientCertificate(t *testing.T) {
	ca := newAuthority(t)
	srv, serverCA := serveTLS(t, func(c *tls.Config) {
		pool := x509.NewCertPool()
		pool.AddCert(ca.cert)
		c.ClientCAs = pool
		c.ClientAuth = tls.RequireAndVerifyClientCert
	})
	cert, key := ca.issue(t, "stepflow-client")
	store := secrets{
		"team-a/ca-only": {keyCA: serverCA},
		"team-a/mtls":    {keyCA: serverCA, keyCert: cert, keyKey: key},
	}
	f := New(Options{Secrets: store})

	if _, err := run(t, f, &Params{URL: srv.URL, TLSConfig: &TLSConfig{Secret: "ca-only"}}); err == nil {
		t.Error("call without a client certificate succeeded")
	}
	got, err := run(t, f, &Params{URL: srv.URL, TLSConfig: &TLSConfig{Secret: "mtls"}})
	if err != nil {
		t.Fatalf("call with a client certificate failed: %v", err)
	}
	if c := got.Header["X-Client"]; len(c) != 1 || c[0] != "stepflow-client" {
		t.Errorf("server saw client %q, want stepflow-client", c)
	}
}

func TestTLSClientsAreCachedAndBounded(t *testing.T) {
	srv, ca := serveTLS(t, nil)
	store := secrets{}
	f := New(Options{Secrets: store})
	call := func(secret string) {
		t.Helper()
		if _, err := run(t, f, &Params{URL: srv.URL, TLSConfig: &TLSConfig{Secret: secret}}); err != nil {
			t.Fatalf("call with secret %s failed: %v", secret, err)
		}
	}

	store["team-a/a"] = map[string][]byte{keyCA: ca}
	store["team-a/same"] = map[string][]byte{keyCA: ca}
	call("a")
	call("a")
	call("same")
	if n := len(f.tls.clients); n != 1 {
		t.Errorf("after three calls with one CA: %d clients, want 1", n)
	}

	// Text around a PEM block changes the content, not the meaning: each
	// secret below is new TLS material that still works.
	for i := range maxTLSClients + 3 {
		name := fmt.Sprintf("v%d", i)
		store["team-a/"+name] = map[string][]byte{keyCA: append([]byte(fmt.Sprintf("version %d\n", i)), ca...)}
		call(name)
	}
	if n := len(f.tls.clients); n != maxTLSClients {
		t.Errorf("%d clients cached, want the bound %d", n, maxTLSClients)
	}
}

func TestTLSNeedsAnHTTPTransport(t *testing.T) {
	srv, ca := serveTLS(t, nil)
	rt := roundTripper(func(r *nethttp.Request) (*nethttp.Response, error) {
		return nethttp.DefaultTransport.RoundTrip(r)
	})
	f := New(Options{Secrets: secrets{"team-a/ca": {keyCA: ca}}, Transport: rt})
	_, err := run(t, f, &Params{URL: srv.URL, TLSConfig: &TLSConfig{Secret: "ca"}})
	if err == nil || !opError(t, err).Permanent {
		t.Errorf("err = %v, want a permanent error", err)
	}
}

type roundTripper func(*nethttp.Request) (*nethttp.Response, error)

func (f roundTripper) RoundTrip(r *nethttp.Request) (*nethttp.Response, error) { return f(r) }
