package controller

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

func TestRedact(t *testing.T) {
	for _, tc := range []struct {
		name     string
		in, want string
	}{{
		name: "a Secret read: its data's values, keys kept",
		in:   `{"read": {"$returns": {"value": {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"token": "czNjcjN0"}, "stringData": {"k": "v"}}}}}`,
		want: `{"read": {"$returns": {"value": {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"token": "(redacted)"}, "stringData": {"k": "(redacted)"}}}}}`,
	}, {
		name: "a list of Secrets",
		in:   `{"items": [{"kind": "Secret", "data": {"a": "x"}}, {"kind": "ConfigMap", "data": {"a": "x"}}]}`,
		want: `{"items": [{"kind": "Secret", "data": {"a": "(redacted)"}}, {"kind": "ConfigMap", "data": {"a": "x"}}]}`,
	}, {
		name: "a Secret of another group is not the core Secret",
		in:   `{"kind": "Secret", "apiVersion": "example.com/v1", "data": {"a": "x"}}`,
		want: `{"kind": "Secret", "apiVersion": "example.com/v1", "data": {"a": "x"}}`,
	}, {
		name: "a password field (email's from.password)",
		in:   `{"send": {"from": {"address": "a@b", "password": "hunter2"}}, "n": {"password": 3}}`,
		want: `{"send": {"from": {"address": "a@b", "password": "(redacted)"}}, "n": {"password": 3}}`,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			var in, want any
			if err := json.Unmarshal([]byte(tc.in), &in); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal([]byte(tc.want), &want); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, redact(in)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// A value over MaxDebugValueBytes is kept cut, at a rune, saying how much
// was cut.
func TestEncodeRecordCutsValue(t *testing.T) {
	long := strings.Repeat("é", MaxDebugValueBytes) // 2 bytes each
	r := &DebugRecord{ID: "s-1", Value: map[string]any{"blob": long}}
	var got DebugRecord
	if err := json.Unmarshal([]byte(encodeRecord(r)), &got); err != nil {
		t.Fatal(err)
	}
	whole := len(`{"blob":""}`) + len(long)
	if got.Value != nil || len(got.ValueJSON)+got.Cut != whole || len(got.ValueJSON) > MaxDebugValueBytes ||
		len(got.ValueJSON) < MaxDebugValueBytes-1 || !utf8.ValidString(got.ValueJSON) {
		t.Errorf("valueJSON %d bytes, cut %d, of %d", len(got.ValueJSON), got.Cut, whole)
	}
	small := &DebugRecord{ID: "s-1", Value: map[string]any{"a": 1}}
	if s := encodeRecord(small); s != `{"id":"s-1","value":{"a":1}}` {
		t.Errorf("a small value: %s", s)
	}
}

// One tick's records over MaxDebugBytes: the largest lose their values.
func TestBoundTick(t *testing.T) {
	recs := map[string]*DebugRecord{}
	data := map[string]string{}
	for i := 0; i < 12; i++ {
		// 12 values of 20..31 KiB: 306 KiB in all.
		step := fmt.Sprintf("s%02d", i)
		recs[step] = &DebugRecord{ID: step + "-1", Value: strings.Repeat("x", (20+i)<<10)}
		data[step] = encodeRecord(recs[step])
	}
	boundTick(data, recs)
	if n := dataSize(data); n > MaxDebugBytes {
		t.Errorf("%d bytes over the bound of %d", n, MaxDebugBytes)
	}
	var dropped []string
	for step, v := range data {
		var r DebugRecord
		if err := json.Unmarshal([]byte(v), &r); err != nil {
			t.Fatal(err)
		}
		if r.Dropped != "" {
			dropped = append(dropped, step)
			if r.Value != nil || !strings.Contains(r.Dropped, "did not fit") {
				t.Errorf("%s: %s", step, v)
			}
		}
	}
	// 306 KiB less 31 and 30 is 245 KiB: the two largest go.
	if strings.Join(sorted(dropped), ",") != "s10,s11" {
		t.Errorf("dropped %v, want s10 and s11", dropped)
	}
}

// After a patch took the ConfigMap over MaxDebugBytes, the oldest records
// that are not the tick's own lose their values first, then go.
func TestTrimDebug(t *testing.T) {
	rec := func(at string, size int) string {
		return encodeRecord(&DebugRecord{ID: "x", At: at, Value: strings.Repeat("x", size)})
	}
	note := func(at string) string { return encodeRecord(&DebugRecord{ID: "x", At: at, Dropped: "earlier"}) }
	all := map[string]string{
		"old":    rec("2026-01-01T00:00:00Z", 30<<10),
		"older":  rec("2025-01-01T00:00:00Z", 30<<10),
		"middle": rec("2026-06-01T00:00:00Z", 30<<10),
		"mine":   strings.Repeat("y", 200<<10), // this tick's, never read
	}
	mine := map[string]string{"mine": all["mine"]}
	patch := trimDebug(all, mine, "2026-12-01T00:00:00Z")
	// 290 KiB: dropping older's value and old's brings it to 230 KiB.
	if len(patch) != 2 || patch["older"] == nil || patch["old"] == nil || !strings.Contains(*patch["old"], "dropped at 2026-12-01") {
		t.Errorf("patch %v", keys(patch))
	}
	if trimDebug(map[string]string{"mine": all["mine"]}, mine, "") != nil {
		t.Errorf("a ConfigMap under the bound is trimmed")
	}

	// Only notes left to drop besides mine: the oldest go whole.
	notes := map[string]string{"mine": strings.Repeat("y", MaxDebugBytes-200)}
	for i := 0; i < 5; i++ {
		notes[fmt.Sprintf("n%d", i)] = note(fmt.Sprintf("2026-0%d-01T00:00:00Z", i+1))
	}
	patch = trimDebug(notes, map[string]string{"mine": notes["mine"]}, "2026-12-01T00:00:00Z")
	for s, v := range patch {
		if v != nil {
			t.Errorf("%s: a note rewritten: %s", s, *v)
		}
	}
	if _, ok := patch["n0"]; !ok || len(patch) == 0 || len(patch) == 5 {
		t.Errorf("dropped %v: want the oldest notes first, not all", keys(patch))
	}
}

func keys(m map[string]*string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return sorted(out)
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}
