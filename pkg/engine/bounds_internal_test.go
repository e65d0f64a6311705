package engine

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestTruncate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		msg   string
		limit int
		want  string
	}{
		{"short", "boom", 64, "boom"},
		{"exactly the limit", strings.Repeat("a", 64), 64, strings.Repeat("a", 64)},
		{"long", strings.Repeat("a", 100), 64, strings.Repeat("a", 64-len("… (truncated, 100 bytes)")) + "… (truncated, 100 bytes)"},
		// "é" is two bytes: the cut never splits it.
		{"multi-byte", strings.Repeat("é", 50), 65, strings.Repeat("é", 19) + "… (truncated, 100 bytes)"},
		{"limit below the mark", strings.Repeat("a", 100), 4, "… (truncated, 100 bytes)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := truncate(tc.msg, tc.limit)
			if got != tc.want {
				t.Errorf("truncate = %q, want %q", got, tc.want)
			}
			if !utf8.ValidString(got) {
				t.Errorf("truncate = %q is not valid UTF-8", got)
			}
			if len(got) <= tc.limit && truncate(got, tc.limit) != got {
				t.Errorf("truncating twice changes the message")
			}
		})
	}
}
