package http

import (
	"context"
	"testing"

	"github.com/stepflow-dev/stepflow/pkg/op"
)

// Every Secret the op reads (headers, TLS material, in the step's
// namespace or another) is asked for as the step's identity, so the
// reader can act as it.
func TestSecretsAreReadAsTheStep(t *testing.T) {
	step := testStep
	step.ServiceAccount = "notifier"
	type ask struct {
		step            op.Step
		namespace, name string
	}
	for _, tc := range []struct {
		name   string
		params Params
		want   ask
	}{
		{"headersFromSecret", Params{Request: Request{HeadersFromSecret: []SecretHeader{{Name: "Authorization", Secret: "api", Key: "token"}}}},
			ask{step, "team-a", "api"}},
		{"tls_config in another namespace", Params{TLSConfig: &TLSConfig{Secret: "ca", Namespace: "certs"}},
			ask{step, "certs", "ca"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var asked []ask
			reader := SecretReaderFunc(func(_ context.Context, s op.Step, namespace, name string) (map[string][]byte, error) {
				asked = append(asked, ask{s, namespace, name})
				return nil, op.Permanentf("serviceaccount %s/%s may not get secrets %q", s.Namespace, s.ServiceAccount, name)
			})
			srv := serve(t, nil)
			p := tc.params
			p.URL = srv.URL
			f := New(Options{Secrets: reader})
			call := newCall(f, &p)
			call.Step = step
			_, err := runCall(t, context.Background(), call)
			if !op.IsPermanent(err) {
				t.Errorf("a denied Secret read: want a permanent failure, got %v", err)
			}
			if len(asked) != 1 || asked[0] != tc.want {
				t.Errorf("asked for %+v, want %+v", asked, tc.want)
			}
			if hits, _ := srv.saw(); hits != 0 {
				t.Errorf("the request went out (%d hits) without its Secret", hits)
			}
		})
	}
}
