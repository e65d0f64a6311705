package charts

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
)

// httpArgs are the controller's --http-* flags in a rendering.
func httpArgs(t *testing.T, r rendered) []string {
	t.Helper()
	d := as[appsv1.Deployment](t, r.one(t, "Deployment", namespace, release))
	var args []string
	for _, a := range d.Spec.Template.Spec.Containers[0].Args {
		if strings.HasPrefix(a, "--http-") {
			args = append(args, a)
		}
	}
	return args
}

func TestHTTPFenceValues(t *testing.T) {
	tests := []struct {
		name, values string
		want         []string
	}{
		// The controller's built-in denies need no flag: it detects the
		// cluster from KUBERNETES_SERVICE_HOST, and uses no proxy.
		{name: "defaults", values: "", want: nil},
		{name: "lists and proxies", values: `
http:
  allow: {cidrs: [10.0.0.0/8, "fd00::/8"], hosts: ["*.corp.example"]}
  deny: {cidrs: [10.20.0.0/16], hosts: ["*.db.internal", metadata.google.internal]}
  proxyFromEnvironment: true
`, want: []string{
			"--http-allow-cidr=10.0.0.0/8",
			"--http-allow-cidr=fd00::/8",
			"--http-allow-host=*.corp.example",
			"--http-deny-cidr=10.20.0.0/16",
			"--http-deny-host=*.db.internal",
			"--http-deny-host=metadata.google.internal",
			"--http-proxy-from-environment=true",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, httpArgs(t, render(t, tt.values))); diff != "" {
				t.Errorf("--http-* args (-want +got):\n%s", diff)
			}
		})
	}
}
