package app

import (
	"encoding/base64"
	"slices"
	"strings"
	"testing"
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
