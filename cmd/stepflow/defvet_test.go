package main

import (
	"strings"
	"testing"
)

// A definition in `vela def` layout whose template refers to a parameter
// it does not declare: the typo is on line 11 of the file, column 28.
const typoDef = `import "vela/op"

// A greeting.
"greet": {
	type:        "workflow-step"
	description: "Says hello"
}
template: {
	msg: op.#Log & {
		// the typo: nme for name
		data: "hello \(parameter.nme)"
	}
	parameter: name: string
}
`

// def vet reports a reference to an undefined parameter field, with the
// position in the file on disk (its path, real line and column), not in
// the template cut out of it.
func TestCLIDefVetPositionsInFile(t *testing.T) {
	noKubeconfig(t)
	f := writeFile(t, "greet.cue", typoDef)
	code, out, errs := stepflow(t, "def", "vet", f)
	if code == 0 || out != "" {
		t.Fatalf("vet passed a typo: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	for _, want := range []string{"reference to parameter.nme", "(declared: name)", f + ":11:28"} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr %q does not contain %q", errs, want)
		}
	}
	// step run reports the same position in its failed outcome.
	res := stepRun(t, "-f", f, "--properties", `{"name": "world"}`)
	if res.Outcome != "failed" || !strings.Contains(res.Message, f+":11:28") {
		t.Errorf("step run: outcome %s: %s", res.Outcome, res.Message)
	}
}
