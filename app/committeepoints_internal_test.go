package app

import (
	"math/rand/v2"
	"strings"
	"testing"

	"partyledger/models"
)

// TestCommitteePointsStatements: the moves of committee score counts go out merged by
// row, in (committee, month, score) order whatever order they came in (the order every
// writer locks the rows in), without moves that add up to nothing or have no committee,
// 500 rows a statement, as an upsert in each dialect.
func TestCommitteePointsStatements(t *testing.T) {
	ds := []cpDelta{
		{"2026-11", 2, 30, 1}, {"2026-11", 1, 30, 1}, {"2026-10", 2, 30, -1}, {"2026-11", 2, 30, 2},
		{"2026-11", 1, 50, 1}, {"2026-11", 1, 50, -1}, // adds up to nothing
		{"2026-11", 0, 10, 4}, // a branch with no committee above it
		{"2026-11", 1, 30, 1},
	}
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(ds), func(i, j int) { ds[i], ds[j] = ds[j], ds[i] })
	sts := committeePointsSQL("sqlite", ds)
	if len(sts) != 1 {
		t.Fatalf("%d statements, want 1", len(sts))
	}
	want := []any{models.Period("2026-11"), int64(1), int64(30), int64(2), models.Period("2026-10"), int64(2), int64(30), int64(-1), models.Period("2026-11"), int64(2), int64(30), int64(3)}
	if got := sts[0].args; len(got) != len(want) {
		t.Fatalf("args %v, want %v", got, want)
	} else {
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("args %v, want %v", got, want)
			}
		}
	}
	if q := sts[0].query; strings.Count(q, "(?, ?, ?, ?)") != 3 || !strings.Contains(q, "ON CONFLICT (period, committee_id, points) DO UPDATE SET members = members + excluded.members") {
		t.Fatalf("sqlite statement %q", q)
	}
	if q := committeePointsSQL("mysql", ds)[0].query; !strings.HasSuffix(q, "ON DUPLICATE KEY UPDATE members = members + VALUES(members)") {
		t.Fatalf("mysql statement %q", q)
	}
	var many []cpDelta
	for i := range 1200 {
		many = append(many, cpDelta{"2026-11", 1, models.Points(i), 1})
	}
	if sts := committeePointsSQL("mysql", many); len(sts) != 3 || len(sts[0].args) != 4*500 || len(sts[2].args) != 4*200 {
		t.Fatalf("1,200 rows in %d statements", len(sts))
	}
	if sts := committeePointsSQL("sqlite", []cpDelta{{"2026-11", 1, 10, 1}, {"2026-11", 1, 10, -1}}); len(sts) != 0 {
		t.Fatalf("moves that add up to nothing sent %d statements", len(sts))
	}
}
