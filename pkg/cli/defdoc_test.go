package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/rest"

	"github.com/stepflow-dev/stepflow/pkg/defschema"
	"github.com/stepflow-dev/stepflow/pkg/op"
	"github.com/stepflow-dev/stepflow/pkg/op/builtin"
)

const docDef = `import "vela/op"

"notify-team": {
	type:        "workflow-step"
	description: "Tell a team that a step is done."
}
template: {
	wait: op.#ConditionalWait & {continue: parameter.ready}
	parameter: {
		// +usage=The team to tell
		team: string
		// +usage=How loud
		level: *"info" | "warn" | "error"
		ready: *true | bool
		channels?: [...{
			// +usage=The channel's name
			name: string
		}]
	}
}
`

func TestDefDoc(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify-team.cue")
	if err := os.WriteFile(path, []byte(docDef), 0o644); err != nil {
		t.Fatal(err)
	}
	deps := func(out *bytes.Buffer) Deps {
		return Deps{Stdout: out, Stderr: out, Ops: func(func() (*rest.Config, error)) (*op.Registry, error) {
			return op.NewRegistry().Add(builtin.New()), nil
		}}
	}
	var md bytes.Buffer
	if code := Main(deps(&md), []string{"def", "doc", "-f", path}); code != 0 {
		t.Fatalf("def doc: exit %d: %s", code, md.String())
	}
	for _, want := range []string{
		"# notify-team\n\nTell a team that a step is done.\n",
		"| team | string | yes |  | The team to tell |\n",
		"| level | \"info\" \\| \"warn\" \\| \"error\" | no | `\"info\"` | How loud |\n",
		"| ready | boolean | no | `true` |  |\n",
		"| channels | [object] | no |  |  |\n",
		"| channels[].name | string | yes |  | The channel's name |\n",
	} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md.String())
		}
	}

	var js bytes.Buffer
	if code := Main(deps(&js), []string{"def", "doc", "-f", path, "-o", "json"}); code != 0 {
		t.Fatalf("def doc -o json: exit %d: %s", code, js.String())
	}
	var s defschema.Schema
	if err := json.Unmarshal(js.Bytes(), &s); err != nil {
		t.Fatalf("-o json is not a JSON Schema: %v\n%s", err, js.String())
	}
	if s.SchemaURI != defschema.Draft || len(s.Required) != 1 || s.Required[0] != "team" ||
		string(s.Properties["level"].Default) != `"info"` || s.Properties["team"].Description != "The team to tell" {
		t.Errorf("schema: %s", js.String())
	}

	var bad bytes.Buffer
	if code := Main(deps(&bad), []string{"def", "doc", "-f", path, "-o", "yaml"}); code == 0 || !strings.Contains(bad.String(), "want markdown or json") {
		t.Errorf("-o yaml: exit %d: %s", code, bad.String())
	}
	broken := filepath.Join(t.TempDir(), "broken.cue")
	if err := os.WriteFile(broken, []byte("parameter: {a: string\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if code := Main(deps(&out), []string{"def", "doc", "-f", broken}); code == 0 || !strings.Contains(out.String(), "broken") {
		t.Errorf("a template that does not compile: exit %d: %s", code, out.String())
	}
}
