package http

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	nethttp "net/http"
	"sync"

	"github.com/go-resty/resty/v2"

	"github.com/stepflow-dev/stepflow/pkg/op"
)

// Keys of the TLS Secret named by tls_config.
const (
	keyCA   = "ca.crt"
	keyCert = "tls.crt"
	keyKey  = "tls.key"
)

// maxTLSClients bounds how many clients with their own TLS material a Family
// keeps; the least recently used one goes first.
const maxTLSClients = 16

// tlsClients caches one resty client per distinct TLS material, keyed by the
// hash of the Secret's ca.crt, tls.crt and tls.key. A Secret whose content
// changes gets a new client; the old one ages out.
type tlsClients struct {
	// base is cloned for each client; nil when the Family's transport is
	// not an *http.Transport, and so cannot take a TLS config.
	base *nethttp.Transport
	// build wraps a transport into a resty client set up like the Family's.
	build func(nethttp.RoundTripper) *resty.Client

	mu      sync.Mutex
	clock   uint64
	clients map[[sha256.Size]byte]*tlsClient
}

type tlsClient struct {
	client    *resty.Client
	transport *nethttp.Transport
	used      uint64
}

// get returns the client for the TLS material in data, the content of the
// Secret ref (namespace/name, for error messages).
func (c *tlsClients) get(ref string, data map[string][]byte) (*resty.Client, error) {
	if c.base == nil {
		return nil, op.Permanentf("tls_config (secret %s): the op's transport is not an *http.Transport and cannot take a TLS config", ref)
	}
	key := tlsHash(data)

	c.mu.Lock()
	defer c.mu.Unlock()
	c.clock++
	if e, ok := c.clients[key]; ok {
		e.used = c.clock
		return e.client, nil
	}

	cfg, err := tlsConfig(ref, data, c.base.TLSClientConfig)
	if err != nil {
		return nil, err
	}
	t := c.base.Clone()
	t.TLSClientConfig = cfg
	if len(c.clients) >= maxTLSClients {
		c.evict()
	}
	e := &tlsClient{client: c.build(t), transport: t, used: c.clock}
	c.clients[key] = e
	return e.client, nil
}

// evict drops the least recently used client.
func (c *tlsClients) evict() {
	var (
		oldest [sha256.Size]byte
		found  bool
		used   uint64
	)
	for k, e := range c.clients {
		if !found || e.used < used {
			oldest, used, found = k, e.used, true
		}
	}
	if found {
		c.clients[oldest].transport.CloseIdleConnections()
		delete(c.clients, oldest)
	}
}

// tlsHash identifies TLS material by the content of the three keys.
func tlsHash(data map[string][]byte) [sha256.Size]byte {
	h := sha256.New()
	for _, k := range []string{keyCA, keyCert, keyKey} {
		v, ok := data[k]
		// The presence byte and length keep ("ab","") and ("a","b") apart.
		var n [9]byte
		if ok {
			n[0] = 1
		}
		binary.LittleEndian.PutUint64(n[1:], uint64(len(v)))
		h.Write(n[:])
		h.Write(v)
	}
	var sum [sha256.Size]byte
	copy(sum[:], h.Sum(nil))
	return sum
}

// tlsConfig builds a client TLS config from a Secret's content, on top of
// base (which may be nil). Bad content is permanent: the same Secret fails
// the same way on every retry. No error carries key material.
func tlsConfig(ref string, data map[string][]byte, base *tls.Config) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if base != nil {
		cfg = base.Clone()
	}
	ca, hasCA := data[keyCA]
	cert, hasCert := data[keyCert]
	key, hasKey := data[keyKey]
	if !hasCA && !hasCert && !hasKey {
		return nil, op.Permanentf("tls_config: secret %s has none of %s, %s, %s", ref, keyCA, keyCert, keyKey)
	}
	if hasCA {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(ca) {
			return nil, op.Permanentf("tls_config: %s in secret %s holds no PEM certificate", keyCA, ref)
		}
		cfg.RootCAs = pool
	}
	switch {
	case hasCert && hasKey:
		pair, err := tls.X509KeyPair(cert, key)
		if err != nil {
			return nil, op.Permanentf("tls_config: %s and %s in secret %s are not a usable key pair: %w", keyCert, keyKey, ref, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	case hasCert || hasKey:
		return nil, op.Permanentf("tls_config: secret %s needs both %s and %s for a client certificate", ref, keyCert, keyKey)
	}
	return cfg, nil
}
