package http

import (
	"fmt"
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	type hit struct {
		at    time.Duration // since the start
		key   string
		limit int
		want  bool
	}
	tests := []struct {
		name   string
		period time.Duration
		hits   []hit
	}{{
		name:   "limit per period",
		period: time.Minute,
		hits: []hit{
			{0, "GET a", 2, true},
			{time.Second, "GET a", 2, true},
			{2 * time.Second, "GET a", 2, false},
			{59 * time.Second, "GET a", 2, false},
			{time.Minute, "GET a", 2, true}, // the first hit left the window
			{time.Minute, "GET a", 2, false},
			{time.Minute + time.Second, "GET a", 2, true}, // and the second
		},
	}, {
		name:   "keys count apart",
		period: time.Minute,
		hits: []hit{
			{0, "GET a", 1, true},
			{0, "POST a", 1, true},
			{0, "GET b", 1, true},
			{0, "GET a", 1, false},
		},
	}, {
		name:   "a turned-away request does not count",
		period: time.Second,
		hits: []hit{
			{0, "GET a", 1, true},
			{500 * time.Millisecond, "GET a", 1, false},
			{time.Second, "GET a", 1, true},
		},
	}, {
		name:   "a higher limit applies from then on",
		period: time.Minute,
		hits: []hit{
			{0, "GET a", 1, true},
			{0, "GET a", 1, false},
			{0, "GET a", 2, true},
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
			var now time.Time
			l := newLimiter(func() time.Time { return now })
			for i, h := range tc.hits {
				now = start.Add(h.at)
				if got := l.allow(h.key, h.limit, tc.period); got != h.want {
					t.Errorf("hit %d (%s at %s): allow = %v, want %v", i, h.key, h.at, got, h.want)
				}
			}
		})
	}
}

func TestLimiterForgetsIdleKeys(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newLimiter(func() time.Time { return now })
	for i := range pruneAbove {
		l.allow(fmt.Sprintf("GET /%d", i), 1, time.Second)
	}
	now = now.Add(time.Second)
	l.allow("GET /new", 1, time.Second)
	if n := len(l.windows); n != 1 {
		t.Errorf("limiter tracks %d keys, want 1 once the others' windows emptied", n)
	}
}
