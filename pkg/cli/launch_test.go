package cli

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseContext(t *testing.T) {
	cases := []struct {
		in      []string
		want    map[string]any
		wantErr string
	}{
		{in: nil, want: nil},
		{in: []string{"ns=prod", "n=3", "ok=true", "l=[a, b]", "eq=a=b", "empty="},
			want: map[string]any{"ns": "prod", "n": float64(3), "ok": true, "l": []any{"a", "b"}, "eq": "a=b", "empty": nil}},
		{in: []string{"noequals"}, wantErr: `--run-context "noequals": want KEY=VALUE`},
		{in: []string{"=v"}, wantErr: `--run-context "=v": want KEY=VALUE`},
		{in: []string{"k=[a"}, wantErr: `--run-context k: value "[a" is not YAML`},
	}
	for _, tc := range cases {
		got, err := parseContext(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("parseContext(%q): error %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseContext(%q): %v", tc.in, err)
			continue
		}
		if d := cmp.Diff(tc.want, got); d != "" {
			t.Errorf("parseContext(%q) (-want +got):\n%s", tc.in, d)
		}
	}
}
