package models_test

import (
	"encoding/json"
	"testing"
	"time"

	"partyledger/models"
)

// FuzzParsePoints: whatever ParsePoints accepts has one decimal at most and survives a
// trip through String and through JSON unchanged.
func FuzzParsePoints(f *testing.F) {
	for _, s := range []string{"2", "-1.5", "0.5", "10", "1e3", "0.05", " 1", "99999999999999999999", "-0", "+2", ".5", "5.", "0x10", "1_0", "２"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := models.ParsePoints(s)
		if err != nil {
			return
		}
		if q, err := models.ParsePoints(p.String()); err != nil || q != p {
			t.Fatalf("%q → %d → %q → %d, %v", s, p, p.String(), q, err)
		}
		b, err := json.Marshal(p)
		var r models.Points
		if err != nil || json.Unmarshal(b, &r) != nil || r != p {
			t.Fatalf("%q → %d → JSON %s → %d", s, p, b, r)
		}
	})
}

// FuzzPointsJSON: a JSON value becomes points only as a number with one decimal at most,
// and what it becomes writes back as the same number.
func FuzzPointsJSON(f *testing.F) {
	for _, s := range []string{`2`, `2.5`, `"2"`, `2.55`, `1e2`, `null`, `-0.5`, `1e400`, `[]`, `0.10`, `-0`, `9223372036854775807`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var p models.Points
		if err := json.Unmarshal(b, &p); err != nil {
			return
		}
		out, err := json.Marshal(p)
		var q models.Points
		if err != nil || json.Unmarshal(out, &q) != nil || q != p {
			t.Fatalf("%s → %d → %s → %d", b, p, out, q)
		}
	})
}

// FuzzParsePeriodAndDate: accepted periods and dates are real months and days, written
// the one canonical way.
func FuzzParsePeriodAndDate(f *testing.F) {
	for _, s := range []string{"2026-11", "2026-13", "2026-02-29", "2024-02-29", "2026-1", "0000-01", "2026-11-21", "2026-11-31", "9999-12-31", "2026-11-21T00:00:00Z", "２０２６-11"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if p, err := models.ParsePeriod(s); err == nil {
			if tm, err := time.Parse("2006-01", string(p)); err != nil || tm.Format("2006-01") != s {
				t.Fatalf("period %q accepted as %q (%v)", s, p, err)
			}
		}
		if d, err := models.ParseDate(s); err == nil {
			if tm, err := time.Parse("2006-01-02", string(d)); err != nil || tm.Format("2006-01-02") != s || d.Period() != models.Period(s[:7]) {
				t.Fatalf("date %q accepted as %q (%v)", s, d, err)
			}
		}
	})
}
