package models

import (
	"encoding/json"
	"testing"
	"time"
)

func TestPoints(t *testing.T) {
	good := map[string]Points{"0": 0, "2": 20, "0.5": 5, "-1.5": -15, "10": 100, "1.0": 10, "3.50": 35, "1000000": 10_000_000}
	for in, want := range good {
		got, err := ParsePoints(in)
		if err != nil || got != want {
			t.Errorf("ParsePoints(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-", ".5", "1.", "1.25", "1e1", "0x10", "1,5", "abc", "1000001", "99999999999999999999", "1.55", " 1", "+1", "--1",
		// Ten times these wraps around int64 (to 0.4 points, and to a negative number):
		// the number of digits refuses them before any arithmetic.
		"1844674407370955162", "922337203685477581", "10000000"} {
		if _, err := ParsePoints(in); err == nil {
			t.Errorf("ParsePoints(%q) accepted", in)
		}
	}
	for p, want := range map[Points]string{0: "0", 5: "0.5", 20: "2", -15: "-1.5", 123: "12.3", -5: "-0.5"} {
		if p.String() != want {
			t.Errorf("%d formats as %q, want %q", p, p.String(), want)
		}
		var back Points
		if err := json.Unmarshal([]byte(p.String()), &back); err != nil || back != p {
			t.Errorf("round trip of %d: %d %v", p, back, err)
		}
	}
}

func TestPeriodsAndDates(t *testing.T) {
	for _, s := range []string{"2026-02-30", "2026-13-01", "26-01-01", "2026-1-1", "1999-12-31"} {
		if _, err := ParseDate(s); err == nil {
			t.Errorf("ParseDate(%q) accepted", s)
		}
	}
	d, err := ParseDate("2024-02-29")
	if err != nil || d.Period() != "2024-02" {
		t.Fatalf("leap day: %v %v", d, err)
	}
	for _, s := range []string{"2026-00", "2026-13", "2026-1", "abcd-ef", "1999-12", "2101-01"} {
		if _, err := ParsePeriod(s); err == nil {
			t.Errorf("ParsePeriod(%q) accepted", s)
		}
	}
	// The years 2000 to 2100, both included.
	for _, s := range []string{"2000-01", "2100-12"} {
		if p, err := ParsePeriod(s); err != nil || string(p) != s {
			t.Errorf("ParsePeriod(%q) = %q, %v", s, p, err)
		}
	}
	for _, s := range []string{"2000-01-01", "2100-12-31"} {
		if d, err := ParseDate(s); err != nil || string(d) != s {
			t.Errorf("ParseDate(%q) = %q, %v", s, d, err)
		}
	}
	if _, err := ParseDate("2101-01-01"); err == nil {
		t.Errorf("ParseDate(2101-01-01) accepted")
	}
	sh, _ := time.LoadLocation("Asia/Shanghai")
	// 16:30 UTC on 31 January is already 1 February in Shanghai.
	if p := PeriodOf(time.Date(2026, 1, 31, 16, 30, 0, 0, time.UTC), sh); p != "2026-02" {
		t.Fatalf("period %s", p)
	}
	if d := Today(time.Date(2026, 1, 31, 16, 30, 0, 0, time.UTC), sh); d != "2026-02-01" {
		t.Fatalf("today %s", d)
	}
}
