package models

import (
	"errors"
	"fmt"
	"testing"
)

// TestErrorKeepsItsCauseForTheLogOnly: an Error's text names its cause (for the log),
// errors.Is finds the cause through it, and ErrorCode reads the code through wrapping.
func TestErrorKeepsItsCauseForTheLogOnly(t *testing.T) {
	cause := errors.New("connection refused")
	e := &Error{Code: EUnavailable, Message: "the database is unavailable", Err: cause}
	if got := e.Error(); got != "unavailable: the database is unavailable: connection refused" {
		t.Fatalf("Error() = %q", got)
	}
	if got := Errorf(EConflict, "claim %d is %s", 7, "approved").Error(); got != "conflict: claim 7 is approved" {
		t.Fatalf("Error() without a cause = %q", got)
	}
	if !errors.Is(e, cause) {
		t.Fatal("errors.Is does not find the cause")
	}
	if got := ErrorCode(fmt.Errorf("approve: %w", e)); got != EUnavailable {
		t.Fatalf("ErrorCode of a wrapped error = %q", got)
	}
	if got := ErrorCode(cause); got != EInternal {
		t.Fatalf("ErrorCode of a plain error = %q, want internal", got)
	}
	inv := InvalidField("limit", "must be a whole number")
	if inv.Code != EInvalid || inv.Fields["limit"] != "must be a whole number" {
		t.Fatalf("InvalidField = %+v", inv)
	}
}

// TestOrgPaths: paths are ids between slashes from the root, and a subtree is a prefix
// up to a slash, so /1/2/ does not hold /1/23/.
func TestOrgPaths(t *testing.T) {
	for _, c := range []struct {
		parent string
		id     int64
		want   string
	}{{"", 1, "/1/"}, {"/", 1, "/1/"}, {"/1/", 23, "/1/23/"}} {
		if got := ChildPath(c.parent, c.id); got != c.want {
			t.Errorf("ChildPath(%q, %d) = %q, want %q", c.parent, c.id, got, c.want)
		}
	}
	for _, c := range []struct {
		outer, inner string
		want         bool
	}{
		{"/1/", "/1/", true},
		{"/1/", "/1/2/", true},
		{"/1/2/", "/1/23/", false},
		{"/1/2/", "/1/", false},
		{"", "/1/", false}, // no org: an empty grant holds nothing
	} {
		if got := PathContains(c.outer, c.inner); got != c.want {
			t.Errorf("PathContains(%q, %q) = %v", c.outer, c.inner, got)
		}
	}
}

// TestRolesFitTheirOrgs: which role may be held over which kind of org, and which kind
// of org may sit under which.
func TestRolesFitTheirOrgs(t *testing.T) {
	kinds := []OrgKind{KindCommittee, KindGeneralBranch, KindBranch, KindGroup}
	// One letter per kind, in the order of kinds: y may, n may not.
	grid(t, "over a", kinds, map[Role]string{
		RoleMember:    "nnyn",
		RoleSecretary: "yyyn",
		RoleLeader:    "yynn",
		RoleAdmin:     "yynn",
		"auditor":     "nnnn",
	}, Role.AllowedOn)
	grid(t, "under a", kinds, map[OrgKind]string{
		KindCommittee:     "ynnn",
		KindGeneralBranch: "ynnn",
		KindBranch:        "yynn",
		KindGroup:         "nnyn",
		"":                "nnnn",
	}, OrgKind.CanBeChildOf)
	for _, k := range append(kinds, "", "party") {
		if got := k.Valid(); got != (k != "" && k != "party") {
			t.Errorf("OrgKind(%q).Valid() = %v", k, got)
		}
	}
}

// grid checks f(row, kind) against a table of rows, each a string with y or n for each
// of kinds in order.
func grid[R ~string](t *testing.T, rel string, kinds []OrgKind, want map[R]string, f func(R, OrgKind) bool) {
	t.Helper()
	for r, w := range want {
		for i, k := range kinds {
			if got := f(r, k); got != (w[i] == 'y') {
				t.Errorf("%q %s %s: %v", r, rel, k, got)
			}
		}
	}
}
