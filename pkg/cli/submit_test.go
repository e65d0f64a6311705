package cli

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseParams(t *testing.T) {
	for _, tc := range []struct {
		in      []string
		want    map[string]any
		wantErr string
	}{
		{in: nil, want: map[string]any{}},
		{in: []string{"n=3", "s='3'", "b=true", "l=[a, 1]", "o={x: 1}", "eq=a=b", "empty="},
			want: map[string]any{"n": 3.0, "s": "3", "b": true, "l": []any{"a", 1.0}, "o": map[string]any{"x": 1.0}, "eq": "a=b", "empty": nil}},
		{in: []string{"a.b=1", "a.c.d=x", "e=2"},
			want: map[string]any{"a": map[string]any{"b": 1.0, "c": map[string]any{"d": "x"}}, "e": 2.0}},
		{in: []string{"o={x: 1}", "o.y=2"}, want: map[string]any{"o": map[string]any{"x": 1.0, "y": 2.0}}},
		{in: []string{"noequals"}, wantErr: `-p "noequals": want KEY=VALUE`},
		{in: []string{"=v"}, wantErr: `-p "=v": want KEY=VALUE`},
		{in: []string{"a.=1"}, wantErr: `-p a.: empty part in the dotted key`},
		{in: []string{".a=1"}, wantErr: `-p .a: empty part in the dotted key`},
		{in: []string{"a=1", "a=2"}, wantErr: `-p a: a is set twice`},
		{in: []string{"a.b=1", "a.b=2"}, wantErr: `-p a.b: a.b is set twice`},
		{in: []string{"a=null", "a.b=1"}, wantErr: `-p a.b: a is set to a value already, so it cannot hold b`},
		{in: []string{"a.b=1", "a.b.c.d=1"}, wantErr: `-p a.b.c.d: a.b is set to a value already, so it cannot hold c.d`},
		{in: []string{"k=[a"}, wantErr: `-p k: value "[a" is not YAML`},
	} {
		got, err := parseParams(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("parseParams(%q): error %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseParams(%q): %v", tc.in, err)
			continue
		}
		if d := cmp.Diff(tc.want, got); d != "" {
			t.Errorf("parseParams(%q) (-want +got):\n%s", tc.in, d)
		}
	}
}
