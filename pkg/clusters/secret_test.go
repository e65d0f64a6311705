package clusters

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const (
	testToken = "tok-SECRET-do-not-print"
	testKey   = "-----BEGIN KEY-----SECRET-KEY-do-not-print"
)

func clusterSecret(label string, data map[string]string) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "vela-system", Name: "edge"}, Data: map[string][]byte{}}
	if label != "" {
		s.Labels = map[string]string{CredentialTypeLabel: label}
	}
	for k, v := range data {
		s.Data[k] = []byte(v)
	}
	return s
}

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		secret  *corev1.Secret
		want    Credentials
		wantErr string
	}{{
		name:   "token",
		secret: clusterSecret("ServiceAccountToken", map[string]string{"endpoint": "https://10.0.0.1:6443\n", "ca.crt": "CA", "token": testToken + "\n"}),
		want:   Credentials{Type: ServiceAccountToken, Endpoint: "https://10.0.0.1:6443", CA: []byte("CA"), Token: testToken},
	}, {
		name:   "certificate",
		secret: clusterSecret("X509Certificate", map[string]string{"endpoint": "https://edge:6443", "tls.crt": "CERT", "tls.key": testKey}),
		want:   Credentials{Type: X509Certificate, Endpoint: "https://edge:6443", Cert: []byte("CERT"), Key: []byte(testKey)},
	}, {
		name:    "no label",
		secret:  clusterSecret("", map[string]string{"endpoint": "https://edge", "token": testToken}),
		wantErr: "secret vela-system/edge is not a cluster Secret: it has no label cluster.core.oam.dev/cluster-credential-type",
	}, {
		name:    "unknown type",
		secret:  clusterSecret("Password", map[string]string{"endpoint": "https://edge", "token": testToken}),
		wantErr: `cluster Secret vela-system/edge: label cluster.core.oam.dev/cluster-credential-type is "Password": want ServiceAccountToken or X509Certificate`,
	}, {
		name:    "no endpoint",
		secret:  clusterSecret("ServiceAccountToken", map[string]string{"token": testToken}),
		wantErr: "cluster Secret vela-system/edge: data.endpoint is required",
	}, {
		name:    "endpoint not a URL",
		secret:  clusterSecret("ServiceAccountToken", map[string]string{"endpoint": "edge:6443", "token": testToken}),
		wantErr: `cluster Secret vela-system/edge: data.endpoint "edge:6443" is not an http(s) URL`,
	}, {
		name:    "no token",
		secret:  clusterSecret("ServiceAccountToken", map[string]string{"endpoint": "https://edge", "tls.key": testKey}),
		wantErr: "cluster Secret vela-system/edge: ServiceAccountToken needs data.token",
	}, {
		name:    "no certificate",
		secret:  clusterSecret("X509Certificate", map[string]string{"endpoint": "https://edge", "tls.key": testKey, "token": testToken}),
		wantErr: "cluster Secret vela-system/edge: X509Certificate needs data.tls.crt",
	}, {
		name:    "no certificate and key",
		secret:  clusterSecret("X509Certificate", map[string]string{"endpoint": "https://edge"}),
		wantErr: "cluster Secret vela-system/edge: X509Certificate needs data.tls.crt and data.tls.key",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.secret)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("credentials (-want +got):\n%s", diff)
			}
			// Secret writes back what Parse reads.
			s, err := Secret("vela-system", "edge", got)
			if err != nil {
				t.Fatal(err)
			}
			again, err := Parse(s)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, again); diff != "" {
				t.Errorf("Parse(Secret(c)) differs (-c +got):\n%s", diff)
			}
		})
	}
}

// Formatting credentials, the usual way to leak them into a log line,
// prints neither the token nor the key.
func TestCredentialsDoNotPrintSecrets(t *testing.T) {
	for _, c := range []Credentials{
		{Type: ServiceAccountToken, Endpoint: "https://edge", Token: testToken},
		{Type: X509Certificate, Endpoint: "https://edge", Cert: []byte("CERT"), Key: []byte(testKey)},
	} {
		for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
			out := fmt.Sprintf(format, c)
			if strings.Contains(out, "SECRET") {
				t.Errorf("%s of %s credentials prints a secret: %s", format, c.Type, out)
			}
		}
	}
}
