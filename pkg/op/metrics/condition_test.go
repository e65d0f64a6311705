package metrics

import (
	"math"
	"testing"
)

func TestCondition(t *testing.T) {
	for _, tc := range []struct {
		cond  string
		value float64
		holds bool
	}{
		{">=0.95", 0.95, true},
		{">=0.95", 0.9499, false},
		{" >= 0.95 ", 1, true},
		{">0.95", 0.95, false},
		{"<10", 9, true},
		{"<=10", 10, true},
		{"==1", 1, true},
		{"==1", 0, false},
		{"!=0", 0, false},
		{"!=0", 3, true},
		{">-1e3", -999, true},
		{">=0", math.NaN(), false},
		{"!=0", math.NaN(), false},
	} {
		c, err := parseCondition(tc.cond)
		if err != nil {
			t.Errorf("%q: %v", tc.cond, err)
			continue
		}
		if got := c.holds(tc.value); got != tc.holds {
			t.Errorf("%v %s = %v, want %v", tc.value, tc.cond, got, tc.holds)
		}
	}
	for _, bad := range []string{"", "0.95", "=>1", ">=", ">= x", "== NaN", ">=1 && <2"} {
		if _, err := parseCondition(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}
