package ratelimit_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stepflow-dev/stepflow/pkg/ratelimit"
)

var t0 = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

// Each line asks once: class, key, when; the answer is the wait.
func TestReserve(t *testing.T) {
	type ask struct {
		class, key string
		at         time.Duration
		wait       time.Duration
	}
	for _, tc := range []struct {
		name   string
		limits map[string]ratelimit.Limit
		asks   []ask
	}{{
		name:   "starts empty, then one per interval, in the order asked",
		limits: map[string]ratelimit.Limit{"post": {QPS: 2, Burst: 1}},
		asks: []ask{
			{"post", "a", 0, 500 * time.Millisecond},
			{"post", "b", 0, time.Second},
			{"post", "c", 100 * time.Millisecond, 1400 * time.Millisecond},
			// a comes back early: the time left; on time: go.
			{"post", "a", 200 * time.Millisecond, 300 * time.Millisecond},
			{"post", "a", 500 * time.Millisecond, 0},
			// asked again (a repeated tick): still go, no second token.
			{"post", "a", 600 * time.Millisecond, 0},
			{"post", "b", time.Second, 0},
			{"post", "c", 1500 * time.Millisecond, 0},
			// idle long enough to fill the bucket: burst 1 lets one go at once.
			{"post", "d", 10 * time.Second, 0},
			{"post", "e", 10 * time.Second, 500 * time.Millisecond},
		},
	}, {
		name:   "burst",
		limits: map[string]ratelimit.Limit{"post": {QPS: 1, Burst: 3}},
		asks: []ask{
			{"post", "a", 0, time.Second},
			{"post", "b", 5 * time.Second, 0},
			{"post", "c", 5 * time.Second, 0},
			{"post", "d", 5 * time.Second, 0},
			{"post", "e", 5 * time.Second, time.Second},
		},
	}, {
		name:   "an unlimited class and the classes are separate",
		limits: map[string]ratelimit.Limit{"post": {QPS: 1, Burst: 1}, "get": {QPS: 0.5, Burst: 1}},
		asks: []ask{
			{"apply", "x", 0, 0},
			{"apply", "y", 0, 0},
			{"post", "a", 0, time.Second},
			{"get", "a", 0, 2 * time.Second},
		},
	}, {
		name:   "a reservation nobody came back for is dropped after the grace",
		limits: map[string]ratelimit.Limit{"post": {QPS: 1, Burst: 1}},
		asks: []ask{
			{"post", "gone", 0, time.Second},
			{"post", "b", 0, 2 * time.Second},
			// far later: gone's reservation expired, it asks like a newcomer
			// (the bucket has filled meanwhile).
			{"post", "gone", time.Second + ratelimit.Grace + time.Millisecond, 0},
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ratelimit.NewStarts(tc.limits, t0)
			if err != nil {
				t.Fatal(err)
			}
			var got, want []string
			for _, a := range tc.asks {
				wait, limit := s.Reserve(a.class, a.key, at(a.at))
				if (wait > 0) != (limit != "") {
					t.Errorf("%s %s at %v: wait %v with limit %q", a.class, a.key, a.at, wait, limit)
				}
				got = append(got, fmt.Sprintf("%s %s at %v: %v", a.class, a.key, a.at, wait))
				want = append(want, fmt.Sprintf("%s %s at %v: %v", a.class, a.key, a.at, a.wait))
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("waits (-want +got):\n%s", d)
			}
		})
	}
}

// A Starts emptied long after it was made (its controller became the
// leader) is as one made then: its bucket filled meanwhile lets nothing
// through at once.
func TestEmpty(t *testing.T) {
	s, err := ratelimit.NewStarts(map[string]ratelimit.Limit{"post": {QPS: 1, Burst: 3}}, t0)
	if err != nil {
		t.Fatal(err)
	}
	s.Reserve("post", "waiting", t0)
	later := at(time.Hour)
	s.Empty(later)
	if n := s.Held("post"); n != 0 {
		t.Errorf("%d keys held after Empty", n)
	}
	if wait, _ := s.Reserve("post", "a", later); wait != time.Second {
		t.Errorf("first start after Empty waits %v, want 1s", wait)
	}
}

func TestHeldIsBounded(t *testing.T) {
	s, err := ratelimit.NewStarts(map[string]ratelimit.Limit{"post": {QPS: 10, Burst: 1}}, t0)
	if err != nil {
		t.Fatal(err)
	}
	// An hour of starts at the limit: what is held is what Grace covers.
	for i := 0; i < 36000; i++ {
		now := at(time.Duration(i+1) * 100 * time.Millisecond)
		if wait, _ := s.Reserve("post", fmt.Sprint(i), now); wait != 0 {
			t.Fatalf("start %d at its time waits %v", i, wait)
		}
	}
	if n, max := s.Held("post"), int(ratelimit.Grace/(100*time.Millisecond))+1; n > max {
		t.Errorf("%d keys held, want at most %d", n, max)
	}
}

func TestLimitValidate(t *testing.T) {
	for _, l := range []ratelimit.Limit{{QPS: 0, Burst: 1}, {QPS: -1, Burst: 1}, {QPS: 1, Burst: 0}} {
		if _, err := ratelimit.NewStarts(map[string]ratelimit.Limit{"post": l}, t0); err == nil {
			t.Errorf("%+v accepted", l)
		}
	}
	if got, want := (ratelimit.Limit{QPS: 0.5, Burst: 2}).String(), "0.5 per second, burst 2"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

// What a step start costs the engine with a limiter configured: a type
// without a limit (the load benchmark's steps), and one within its limit.
func BenchmarkReserve(b *testing.B) {
	s, err := ratelimit.NewStarts(map[string]ratelimit.Limit{"post": {QPS: 1e9, Burst: 1 << 30}}, t0)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("unlimited type", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			s.Reserve("apply", "abcdefghij", t0)
		}
	})
	keys := make([]string, 1<<16)
	for i := range keys {
		keys[i] = fmt.Sprint(i)
	}
	b.Run("limited type, within its limit", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			s.Reserve("post", keys[i%len(keys)], t0.Add(time.Duration(i)*time.Millisecond))
		}
	})
}
