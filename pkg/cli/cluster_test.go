package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/stepflow-dev/stepflow/pkg/clusters"
)

// writeKubeconfig writes a kubeconfig with one context per auth info, all
// on one cluster, and returns its path.
func writeKubeconfig(t *testing.T, dir string, current string, auths map[string]*clientcmdapi.AuthInfo) string {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["edge"] = &clientcmdapi.Cluster{Server: "https://edge.example:6443", CertificateAuthorityData: []byte("CA")}
	for name, a := range auths {
		cfg.AuthInfos[name] = a
		cfg.Contexts[name] = &clientcmdapi.Context{Cluster: "edge", AuthInfo: name}
	}
	cfg.CurrentContext = current
	path := filepath.Join(dir, "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCredentialsFromKubeconfig(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("tok-SECRET-from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	for f, data := range map[string]string{certFile: "CERT", keyFile: "KEY-SECRET"} {
		if err := os.WriteFile(f, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	path := writeKubeconfig(t, dir, "token", map[string]*clientcmdapi.AuthInfo{
		"token":      {Token: "tok-SECRET"},
		"token-file": {TokenFile: tokenFile},
		"cert":       {ClientCertificateData: []byte("CERT"), ClientKeyData: []byte("KEY-SECRET")},
		"cert-files": {ClientCertificate: certFile, ClientKey: keyFile},
		"exec":       {Exec: &clientcmdapi.ExecConfig{Command: "get-token", APIVersion: "client.authentication.k8s.io/v1", InteractiveMode: clientcmdapi.NeverExecInteractiveMode}},
		"password":   {Username: "admin", Password: "pw-SECRET"},
	})
	edge := clusters.Credentials{Endpoint: "https://edge.example:6443", CA: []byte("CA")}
	with := func(f func(*clusters.Credentials)) clusters.Credentials { c := edge; f(&c); return c }
	tests := []struct {
		context string
		want    clusters.Credentials
		wantErr string
	}{
		{context: "", want: with(func(c *clusters.Credentials) { c.Type, c.Token = clusters.ServiceAccountToken, "tok-SECRET" })},
		{context: "token-file", want: with(func(c *clusters.Credentials) { c.Type, c.Token = clusters.ServiceAccountToken, "tok-SECRET-from-file" })},
		{context: "cert", want: with(func(c *clusters.Credentials) {
			c.Type, c.Cert, c.Key = clusters.X509Certificate, []byte("CERT"), []byte("KEY-SECRET")
		})},
		{context: "cert-files", want: with(func(c *clusters.Credentials) {
			c.Type, c.Cert, c.Key = clusters.X509Certificate, []byte("CERT"), []byte("KEY-SECRET")
		})},
		{context: "exec", wantErr: "context exec: authenticates with neither a bearer token nor a client certificate"},
		{context: "password", wantErr: "context password: authenticates with neither a bearer token nor a client certificate"},
		{context: "missing", wantErr: `context "missing" does not exist`},
	}
	for _, tt := range tests {
		t.Run(tt.context, func(t *testing.T) {
			got, err := credentialsFrom(path, tt.context)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one saying %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "SECRET") {
					t.Errorf("the error holds a credential: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("credentials (-want +got):\n%s", diff)
			}
		})
	}
}

func TestClusterNames(t *testing.T) {
	for name, ok := range map[string]bool{"edge": true, "prod.eu-1": true, "local": false, "": false, "Edge": false, "a/b": false} {
		if err := checkClusterName(name); (err == nil) != ok {
			t.Errorf("checkClusterName(%q) = %v, want ok=%v", name, err, ok)
		}
	}
}
