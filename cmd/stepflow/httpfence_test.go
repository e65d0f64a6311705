package main

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/stepflow-dev/stepflow/pkg/controller"
	"github.com/stepflow-dev/stepflow/pkg/netfence"
)

// TestControllerHTTPFlags: the --http-* flags become the controller's HTTP
// options; in a pod (KUBERNETES_SERVICE_HOST set) loopback and the
// kubernetes.default service IP ($KUBERNETES_SERVICE_HOST, which
// newControllerCmd reads into apiServiceHost) are denied unless the flags
// say otherwise.
func TestControllerHTTPFlags(t *testing.T) {
	tests := []struct {
		name        string
		serviceHost string
		args        []string
		want        controller.HTTPOptions
	}{{
		name: "outside a cluster",
		want: controller.HTTPOptions{},
	}, {
		name:        "in a pod",
		serviceHost: "10.96.0.1",
		want: controller.HTTPOptions{DenyAPIEndpoints: true, Fence: netfence.Config{
			DenyLoopback: true, APIServers: []string{"10.96.0.1"},
		}},
	}, {
		name:        "in a pod, without the in-cluster defaults",
		serviceHost: "10.96.0.1",
		args:        []string{"--in-cluster-defaults=false"},
		want:        controller.HTTPOptions{Fence: netfence.Config{APIServers: []string{"10.96.0.1"}}},
	}, {
		name: "lists and proxies",
		args: []string{
			"--http-allow-cidr=127.0.0.0/8,::1", "--http-allow-cidr=10.0.0.0/8",
			"--http-deny-cidr=10.20.0.0/16",
			"--http-allow-host=*.corp.example", "--http-deny-host=*.internal",
			"--http-proxy-from-environment", "--in-cluster-defaults",
		},
		want: controller.HTTPOptions{ProxyFromEnvironment: true, DenyAPIEndpoints: true, Fence: netfence.Config{
			AllowCIDRs:   []string{"127.0.0.0/8", "::1", "10.0.0.0/8"},
			DenyCIDRs:    []string{"10.20.0.0/16"},
			AllowHosts:   []string{"*.corp.example"},
			DenyHosts:    []string{"*.internal"},
			DenyLoopback: true,
		}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := &controllerOptions{apiServiceHost: tt.serviceHost}
			if err := controllerCmd(o).ParseFlags(tt.args); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, o.httpOptions(), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("HTTP options (-want +got):\n%s", diff)
			}
		})
	}
}
