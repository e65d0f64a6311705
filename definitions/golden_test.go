// Golden tests of the shipped step definitions: each template evaluated
// with recorded op results, no cluster needed. A case is
// testdata/DEFINITION/CASE.txtar; pkg/deftest documents its format and runs
// it, as `stepflow def test` does for a definition author's own step types.
package definitions_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stepflow-dev/stepflow/pkg/deftest"
	"github.com/stepflow-dev/stepflow/pkg/eval"
	"github.com/stepflow-dev/stepflow/pkg/op/opset"
)

func TestShippedDefinitions(t *testing.T) {
	suites, err := deftest.Find(".")
	if err != nil {
		t.Fatal(err)
	}
	ev, err := eval.New(eval.Options{Ops: opset.Catalog()})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, s := range suites {
		if len(s.Cases) == 0 {
			continue
		}
		def, err := s.Definition()
		if err != nil {
			t.Fatal(err)
		}
		for _, file := range s.Cases {
			n++
			t.Run(s.Name+"/"+strings.TrimSuffix(filepath.Base(file), ".txtar"), func(t *testing.T) {
				c, err := deftest.LoadCase(file)
				if err != nil {
					t.Fatal(err)
				}
				r := deftest.Run(context.Background(), ev, def, c)
				t.Logf("%s %s: %s", r.Phase, r.Reason, r.Message)
				if testing.Verbose() {
					data, _ := json.MarshalIndent(r.Outcome.Data, "", "  ")
					t.Logf("evaluated:\n%s", data)
				}
				for _, p := range r.Problems {
					t.Error(p)
				}
			})
		}
	}
	if n == 0 {
		t.Fatal("no cases under testdata/")
	}
}
