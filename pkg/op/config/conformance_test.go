package config_test

import (
	"encoding/json"
	"testing"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/pkg/op"
	"github.com/stepflow-dev/stepflow/pkg/op/config"
	"github.com/stepflow-dev/stepflow/pkg/op/kube"
	"github.com/stepflow-dev/stepflow/pkg/op/optest"
)

func TestConformance(t *testing.T) {
	ns := newNamespace(t)
	velaConfig(t, ns, "to-read", "helm-repository", `{"url":"https://a.example"}`, "", false, "")
	velaConfig(t, ns, "to-delete", "helm-repository", `{"url":"https://b.example"}`, "", false, "")
	family := func() op.Family { return admin("vela-system") }
	// decoded builds the params of do from js, as the evaluator would.
	decoded := func(do, js string) func() any {
		return func() any {
			p := family().Ops()[do].NewParams()
			if err := json.Unmarshal([]byte(js), p); err != nil {
				t.Fatal(err)
			}
			return p
		}
	}
	// A family whose API server holds every request until it is given up.
	slowFamily := func(inFlight *<-chan struct{}) func() op.Family {
		url, arrived := optest.BlockingServer(t)
		*inFlight = arrived
		return func() op.Family {
			c, err := client.New(&rest.Config{Host: url}, client.Options{Mapper: env.Client.RESTMapper()})
			if err != nil {
				t.Fatal(err)
			}
			return config.New(kube.Local(c))
		}
	}
	q := `"namespace":"` + ns + `"`
	var createIn, readIn, listIn, deleteIn <-chan struct{}
	optest.Run(t, optest.Suite{
		New: family,
		Blocking: []optest.Blocking{
			{Name: "create on a slow API", Do: "create", New: slowFamily(&createIn), InFlight: createIn,
				Params: decoded("create", `{"name":"c",`+q+`,"config":{}}`)},
			{Name: "read from a slow API", Do: "read", New: slowFamily(&readIn), InFlight: readIn,
				Params: decoded("read", `{"name":"to-read",`+q+`}`)},
			{Name: "list from a slow API", Do: "list", New: slowFamily(&listIn), InFlight: listIn,
				Params: decoded("list", `{"template":"helm-repository",`+q+`}`)},
			{Name: "delete on a slow API", Do: "delete", New: slowFamily(&deleteIn), InFlight: deleteIn,
				Params: decoded("delete", `{"name":"to-delete",`+q+`}`)},
		},
		Cases: []optest.Case{
			{Name: "create", Do: "create", Params: decoded("create", `{"name":"made",`+q+`,"config":{"a":1}}`)},
			{Name: "read", Do: "read", Params: decoded("read", `{"name":"to-read",`+q+`}`)},
			{Name: "list", Do: "list", Params: decoded("list", `{"template":"helm-repository",`+q+`}`)},
			{Name: "delete", Do: "delete", Params: decoded("delete", `{"name":"to-delete",`+q+`}`)},
			{Name: "create without a name", Do: "create", Invalid: true, Params: decoded("create", `{`+q+`,"config":{}}`)},
			{Name: "read of a missing config", Do: "read", Invalid: true, Params: decoded("read", `{"name":"absent",`+q+`}`)},
			{Name: "list without a template", Do: "list", Invalid: true, Params: decoded("list", `{`+q+`}`)},
		},
	})
}
