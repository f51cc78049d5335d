package app

import (
	"encoding/base64"
	"slices"
	"strings"
	"testing"
	"time"

	"partyledger/models"
)

// TestBranchesRankByTheirOwnMeasure: three branches whose order differs by each measure,
// so that a measure computed as another one (a total for an average, a count of complete
// members for the share of them) puts them in the wrong order.
func TestBranchesRankByTheirOwnMeasure(t *testing.T) {
	rows := func() []BranchRow {
		return []BranchRow{
			{BranchID: 1, Members: 10, Total: 1000, complete: 2}, // average 10, 20 % complete
			{BranchID: 2, Members: 2, Total: 600, complete: 2},   // average 30, all complete
			{BranchID: 3, Members: 4, Total: 400, complete: 1},   // average 10, 25 % complete
		}
	}
	for by, want := range map[string][][2]int64{ // branch, rank
		"total":      {{1, 1}, {2, 2}, {3, 3}},
		"average":    {{2, 1}, {1, 2}, {3, 2}},
		"completion": {{2, 1}, {3, 2}, {1, 3}},
	} {
		r := rows()
		rankBranches(r, by)
		var got [][2]int64
		for _, b := range r {
			got = append(got, [2]int64{b.BranchID, b.Rank})
		}
		if !slices.Equal(got, want) {
			t.Errorf("by %s: got %v, want %v", by, got, want)
		}
	}
}

// TestBranchCursorsBelongToTheirRanking: a cursor is refused by another ranking, and one
// whose key is longer than any the server gives out is refused before it is parsed.
func TestBranchCursorsBelongToTheirRanking(t *testing.T) {
	cursor := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	if c, err := parseBranchCursor(cursor("b:average:15/2:7"), "average"); err != nil || c.id != 7 || c.key.RatString() != "15/2" {
		t.Fatalf("a good cursor: %+v %v", c, err)
	}
	for name, s := range map[string]string{
		"another ranking's":  "b:total:15/2:7",
		"a key of 41 digits": "b:average:" + strings.Repeat("9", 41) + ":7",
		"not a number":       "b:average:x:7",
	} {
		if _, err := parseBranchCursor(cursor(s), "average"); err == nil {
			t.Errorf("%s cursor was taken", name)
		}
	}
}

// TestMemberCursorsAreTheServers: a member leaderboard's cursor reads back what it was
// made from, and anything else is refused, however close it comes.
func TestMemberCursorsAreTheServers(t *testing.T) {
	for _, c := range []memberCursor{{Points: 135, Member: 7}, {Points: -5, Member: 12}, {Points: 0, Member: 0}} {
		got, err := parseMemberCursor(c.encode())
		if err != nil || *got != c {
			t.Fatalf("cursor %+v read back as %+v, %v", c, got, err)
		}
	}
	if c, err := parseMemberCursor(""); c != nil || err != nil {
		t.Fatalf("no cursor: %+v %v", c, err)
	}
	cursor := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	for name, s := range map[string]string{
		"a branch board's tag": cursor("b:135:7"),
		"a negative member":    cursor("m:135:-7"),
		"two parts":            cursor("m:135"),
		"four parts":           cursor("m:135:7:1"),
		"points not a number":  cursor("m:x:7"),
		"member not a number":  cursor("m:135:x"),
		"not base64":           "m:135:7",
	} {
		if _, err := parseMemberCursor(s); err == nil {
			t.Errorf("%s was taken", name)
		}
	}
}

// TestStarsCountTheThresholdsReached: a year total equal to a threshold earns its star.
func TestStarsCountTheThresholdsReached(t *testing.T) {
	g := NewAggregates(nil, time.UTC, []models.Points{600, 1200, 1800, 2400}, 0)
	for total, want := range map[models.Points]int{-50: 1, 0: 1, 599: 1, 600: 2, 1199: 2, 1200: 3, 1800: 4, 2399: 4, 2400: 5, 99999: 5} {
		if got := g.Stars(total); got != want {
			t.Errorf("%s points: %d stars, want %d", total, got, want)
		}
	}
}

// TestAveragesRoundHalfAwayFromZero: a branch's average (and a rate, in thousandths) is
// rounded to the nearest tenth, halves away from zero, below zero as above it.
func TestAveragesRoundHalfAwayFromZero(t *testing.T) {
	for _, c := range []struct{ a, b, want int64 }{
		{15, 10, 2}, {14, 10, 1}, {-15, 10, -2}, {-14, 10, -1}, {-11, 3, -4}, {-10, 3, -3}, {11, 3, 4}, {0, 7, 0}, {-1, 2, -1}, {1, 2, 1},
	} {
		if got := roundDiv(c.a, c.b); got != c.want {
			t.Errorf("roundDiv(%d, %d) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
	if got := shareOf(2, 3); got != 0.667 {
		t.Errorf("shareOf(2, 3) = %v, want 0.667", got)
	}
}
