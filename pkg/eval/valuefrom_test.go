package eval

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stepflow-dev/stepflow/pkg/op"
)

// An output's valueFrom may start with imports of CUE's standard library,
// as KubeVela's request example writes it; other imports, renamed ones and
// more than one expression are refused, naming what is wrong.
func TestValueFromWithImports(t *testing.T) {
	e := newTestEvaluator(t, Options{Shards: 1})
	out := e.Evaluate(context.Background(), Request{Step: op.Step{StepName: "s"},
		Definition: Definition{Name: "d", Template: "response: {stargazers_count: 42, name: \"workflow\"}\n"}})
	if out.Phase != Succeeded {
		t.Fatalf("%s: %s", out.Phase, out.Message)
	}
	for _, tc := range []struct {
		expr, want, err string
	}{
		{expr: `response.name`, want: "workflow"},
		{expr: "import \"strconv\"\n\"Current star count: \" + strconv.FormatInt(response[\"stargazers_count\"], 10)\n",
			want: "Current star count: 42"},
		{expr: "import (\n\t\"strings\"\n\t\"encoding/json\"\n)\nstrings.ToUpper(json.Marshal(response.name))",
			want: `"WORKFLOW"`},
		{expr: "import str \"strings\"\nstr.ToUpper(response.name)", err: "may not rename the package (str)"},
		{expr: "import \"vela/op\"\nresponse.name", err: `import "vela/op" at valueFrom:1:8: a valueFrom may import only CUE's standard library`},
		{expr: "import \"example.com/x\"\nresponse.name", err: "only CUE's standard library"},
		{expr: "import \"strings\"\na: 1\nresponse.name", err: "found 2 declarations"},
		{expr: "import \"strings\"\na: strings.ToUpper(response.name)", err: "found a declaration"},
	} {
		got, err := out.Value.Eval(tc.expr)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: %v, %v; want an error saying %q", tc.expr, got, err, tc.err)
		case tc.err == "" && (err != nil || fmt.Sprint(got) != tc.want):
			t.Errorf("%q: %v, %v; want %q", tc.expr, got, err, tc.want)
		}
	}
}
