package deftest

import (
	"strings"
	"testing"
)

func TestParseCase(t *testing.T) {
	const want = "-- want.json --\n{\"outcome\": \"succeeded\"}\n"
	cases := []struct {
		name, in, wantErr string
	}{
		{name: "minimal", in: want},
		{name: "every file", in: "-- properties.json --\n{\"a\": 1}\n-- context.json --\n{\"x\": true}\n" +
			"-- ops.json --\n{\"apply\": {\"returns\": {}}}\n-- outputs.json --\n[{\"name\": \"ip\", \"valueFrom\": \"apply.ip\"}]\n" +
			"-- want.json --\n{\"outcome\": \"succeeded\", \"outputs\": {\"ip\": \"10.0.0.1\"}}\n"},
		{name: "no want", in: "-- properties.json --\n{}\n", wantErr: "c.txtar: no want.json"},
		{name: "no outcome", in: "-- want.json --\n{\"reason\": \"x\"}\n", wantErr: "want.json: no outcome"},
		{name: "unknown want field", in: "-- want.json --\n{\"outcome\": \"failed\", \"mesage\": \"x\"}\n", wantErr: `want.json: json: unknown field "mesage"`},
		{name: "unknown file", in: want + "-- prop.json --\n{}\n", wantErr: "prop.json: unknown file"},
		{name: "twice", in: want + want, wantErr: "want.json appears twice"},
		{name: "bad properties", in: "-- properties.json --\n{a: 1}\n" + want, wantErr: "properties.json: invalid character"},
		{name: "output without valueFrom", in: "-- outputs.json --\n[{\"name\": \"ip\"}]\n" + want, wantErr: "outputs.json: output 0: want a name and a valueFrom"},
		{name: "undeclared output", in: "-- want.json --\n{\"outcome\": \"succeeded\", \"outputs\": {\"ip\": 1}}\n", wantErr: `output "ip" is not declared in outputs.json`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseCase("testdata/x/c.txtar", []byte(tc.in))
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("error: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want one with %q", err, tc.wantErr)
			case err == nil && c.Name != "c":
				t.Errorf("name %q, want c", c.Name)
			}
		})
	}
}
