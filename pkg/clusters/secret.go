package clusters

import (
	"fmt"
	"net/url"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
)

// The keys of KubeVela's cluster Secret format.
const (
	// CredentialTypeLabel marks a Secret as a cluster Secret and says how
	// its credentials authenticate.
	CredentialTypeLabel = "cluster.core.oam.dev/cluster-credential-type"
	KeyEndpoint         = "endpoint"
	KeyCA               = "ca.crt"
	KeyToken            = "token"
	KeyCert             = "tls.crt"
	KeyKey              = "tls.key"
)

// CredentialType is the value of CredentialTypeLabel.
type CredentialType string

// The credential types Stepflow reads.
const (
	ServiceAccountToken CredentialType = "ServiceAccountToken"
	X509Certificate     CredentialType = "X509Certificate"
)

// Credentials are what a cluster Secret holds. Its String never prints the
// token or the key.
type Credentials struct {
	Type     CredentialType
	Endpoint string
	CA       []byte
	// Token is set for ServiceAccountToken; Cert and Key for
	// X509Certificate.
	Token     string
	Cert, Key []byte
}

// String names the credentials without their secrets.
func (c Credentials) String() string {
	return fmt.Sprintf("%s credentials for %s", c.Type, c.Endpoint)
}

// GoString keeps %#v from printing the secrets too.
func (c Credentials) GoString() string { return c.String() }

// validate reports what the credentials lack, naming keys, never values.
func (c Credentials) validate() error {
	u, err := url.Parse(c.Endpoint)
	switch {
	case c.Endpoint == "":
		return fmt.Errorf("data.%s is required", KeyEndpoint)
	case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		return fmt.Errorf("data.%s %q is not an http(s) URL", KeyEndpoint, c.Endpoint)
	}
	switch c.Type {
	case ServiceAccountToken:
		if c.Token == "" {
			return fmt.Errorf("%s needs data.%s", c.Type, KeyToken)
		}
	case X509Certificate:
		var missing []string
		if len(c.Cert) == 0 {
			missing = append(missing, "data."+KeyCert)
		}
		if len(c.Key) == 0 {
			missing = append(missing, "data."+KeyKey)
		}
		if len(missing) > 0 {
			return fmt.Errorf("%s needs %s", c.Type, strings.Join(missing, " and "))
		}
	default:
		return fmt.Errorf("label %s is %q: want %s or %s", CredentialTypeLabel, c.Type, ServiceAccountToken, X509Certificate)
	}
	return nil
}

// Parse reads the credentials of a cluster Secret. Its errors name the
// Secret's keys, never their values.
func Parse(s *corev1.Secret) (Credentials, error) {
	t, ok := s.Labels[CredentialTypeLabel]
	if !ok {
		return Credentials{}, fmt.Errorf("secret %s/%s is not a cluster Secret: it has no label %s", s.Namespace, s.Name, CredentialTypeLabel)
	}
	c := Credentials{
		Type:     CredentialType(t),
		Endpoint: strings.TrimSpace(string(s.Data[KeyEndpoint])),
		CA:       s.Data[KeyCA],
		Token:    strings.TrimSpace(string(s.Data[KeyToken])),
		Cert:     s.Data[KeyCert],
		Key:      s.Data[KeyKey],
	}
	if err := c.validate(); err != nil {
		return Credentials{}, fmt.Errorf("cluster Secret %s/%s: %w", s.Namespace, s.Name, err)
	}
	return c, nil
}

// Secret is the cluster Secret that holds c for cluster name in the system
// namespace ns.
func Secret(ns, name string, c Credentials) (*corev1.Secret, error) {
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("cluster %q: %w", name, err)
	}
	data := map[string][]byte{KeyEndpoint: []byte(c.Endpoint)}
	if len(c.CA) > 0 {
		data[KeyCA] = c.CA
	}
	switch c.Type {
	case ServiceAccountToken:
		data[KeyToken] = []byte(c.Token)
	case X509Certificate:
		data[KeyCert], data[KeyKey] = c.Cert, c.Key
	}
	return &corev1.Secret{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, Name: name,
			Labels: map[string]string{CredentialTypeLabel: string(c.Type)},
		},
		Type: corev1.SecretTypeOpaque,
		Data: data,
	}, nil
}

// restConfig is the connection c describes. It holds the secrets: never
// format it into an error or a log line.
func (c Credentials) restConfig() *rest.Config {
	cfg := &rest.Config{Host: c.Endpoint, TLSClientConfig: rest.TLSClientConfig{CAData: c.CA}}
	switch c.Type {
	case ServiceAccountToken:
		cfg.BearerToken = c.Token
	case X509Certificate:
		cfg.CertData, cfg.KeyData = c.Cert, c.Key
	}
	return cfg
}
