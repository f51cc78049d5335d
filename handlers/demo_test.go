package handlers_test

import (
	"testing"
	"time"

	"partyledger/app"
	"partyledger/models"
)

// demoKeepsTheLedgersRules checks that the demo's months of activity are what the service
// itself could have written: nothing dated after today (in the configured zone) or
// recorded after now, no check-in at an activity that has not begun or outside its time; nobody decided their own claim or gave
// themselves a bonus or a deduction; an entry for each approved claim that was awarded
// something, with what was awarded, and none for any other claim; no entry of zero points;
// no member over a rule's monthly cap; no check-in at another branch's meeting. Verify
// checks the chains and totals; these are the rules the write paths hold.
func demoKeepsTheLedgersRules(t *testing.T, db *app.DB, loc *time.Location) {
	t.Helper()
	now := time.Now()
	today := models.Today(now, loc)
	for _, c := range []struct {
		what  string
		query string
		args  []any
	}{
		{"claims dated after today", "SELECT COUNT(*) FROM claims WHERE occurred_on > ?", []any{string(today)}},
		{"entries dated after today", "SELECT COUNT(*) FROM entries WHERE occurred_on > ?", []any{string(today)}},
		{"entries recorded after now", "SELECT COUNT(*) FROM entries WHERE created_at > ?", []any{now.UTC()}},
		{"check-ins at activities not yet begun",
			"SELECT COUNT(*) FROM checkins c JOIN activities a ON a.id = c.activity_id WHERE a.starts_at > ?", []any{now.UTC()}},
		{"check-ins outside their activity's time",
			"SELECT COUNT(*) FROM checkins c JOIN activities a ON a.id = c.activity_id WHERE c.created_at < a.starts_at OR c.created_at > a.ends_at", nil},
		{"claims decided by their own member", "SELECT COUNT(*) FROM claims WHERE decided_by = member_id", nil},
		{"bonuses and deductions members gave themselves", "SELECT COUNT(*) FROM entries WHERE source = 'manual' AND actor_id = member_id", nil},
		{"entries of claims not approved, or not of what was awarded",
			"SELECT COUNT(*) FROM entries e JOIN claims c ON c.id = e.claim_id WHERE c.status <> 'approved' OR c.points_awarded IS NULL OR c.points_awarded <> e.points", nil},
		{"approved claims awarded points and without their entry",
			"SELECT COUNT(*) FROM claims c WHERE c.status = 'approved' AND c.points_awarded > 0 AND NOT EXISTS (SELECT 1 FROM entries e WHERE e.claim_id = c.id)", nil},
		{"claims not approved with points awarded", "SELECT COUNT(*) FROM claims WHERE status <> 'approved' AND points_awarded IS NOT NULL", nil},
		{"entries of zero points", "SELECT COUNT(*) FROM entries WHERE points = 0", nil},
		{"members over a rule's monthly cap",
			`SELECT COUNT(*) FROM (SELECT rule_code, rule_version, SUM(points) AS total FROM entries GROUP BY member_id, period, rule_code, rule_version) t
			  JOIN rules r ON r.code = t.rule_code AND r.version = t.rule_version WHERE r.monthly_cap IS NOT NULL AND t.total > r.monthly_cap`, nil},
		{"check-ins at another branch's meeting",
			`SELECT COUNT(*) FROM checkins c JOIN activities a ON a.id = c.activity_id JOIN orgs o ON o.id = a.org_id JOIN members m ON m.id = c.member_id
			  WHERE o.kind = 'branch' AND a.org_id <> m.branch_id`, nil},
	} {
		var n int64
		if err := db.R.Raw(c.query, c.args...).Scan(&n).Error; err != nil {
			t.Fatalf("%s: %v", c.what, err)
		}
		if n != 0 {
			t.Errorf("the demo has %d %s", n, c.what)
		}
	}
	// And it is not empty where those rules have something to hold.
	var seen struct{ Decided, Manual, Checkins, Capped int64 }
	db.R.Raw(`SELECT (SELECT COUNT(*) FROM claims WHERE decided_by IS NOT NULL) AS decided, (SELECT COUNT(*) FROM entries WHERE source = 'manual') AS manual,
	  (SELECT COUNT(*) FROM checkins) AS checkins, (SELECT COUNT(*) FROM entries e JOIN rules r ON r.code = e.rule_code AND r.version = e.rule_version WHERE r.monthly_cap IS NOT NULL) AS capped`).Scan(&seen)
	if seen.Decided == 0 || seen.Manual == 0 || seen.Checkins == 0 || seen.Capped == 0 {
		t.Fatalf("the demo lacks what its rules are checked on: %+v", seen)
	}
}
