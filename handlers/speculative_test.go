package handlers_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// metric reads the value of one series (name{labels}, as /metrics prints it); zero if
// it is not there.
func metric(t *testing.T, e *testEnv, series string) float64 {
	t.Helper()
	for _, line := range strings.Split(string(e.get("/metrics", "").want(200).Body), "\n") {
		if name, value, ok := strings.Cut(line, " "); ok && name == series {
			n, err := strconv.ParseFloat(value, 64)
			if err != nil {
				t.Fatalf("metric line %q", line)
			}
			return n
		}
	}
	return 0
}

// speculativeReads reads ledger_speculative_reads_total from /metrics.
func speculativeReads(t *testing.T, e *testEnv) (kept, redone int) {
	t.Helper()
	return int(metric(t, e, `ledger_speculative_reads_total{outcome="kept"}`)), int(metric(t, e, `ledger_speculative_reads_total{outcome="redone"}`))
}

// Summaries and leaderboards run beside the caller's lookup (authRead), with the roles
// cached from the caller's last request. An answer worked out with roles that have changed
// since must never be sent: each change below is followed by a request that the old roles
// would answer differently, and it must get the answer the new ones give.
func TestReadsBesideTheCallersLookupFollowChangedRoles(t *testing.T) {
	e := newEnv(t, nil)
	tr := e.seedTree()
	board := func(org int64, token string) *result {
		return e.get(fmt.Sprintf("/api/v1/leaderboards/members?org_id=%d", org), token)
	}
	board(tr.b1, tr.aliceT).want(200) // her roles are cached from here on
	k0, r0 := speculativeReads(t, e)
	board(tr.b1, tr.aliceT).want(200)
	if k, r := speculativeReads(t, e); k != k0+1 || r != r0 {
		t.Fatalf("a read with current roles: kept %d -> %d, redone %d -> %d", k0, k, r0, r)
	}
	check := func(what string, call func() *result, status int) {
		t.Helper()
		k0, r0 := speculativeReads(t, e)
		call().want(status)
		if k, r := speculativeReads(t, e); k != k0 || r != r0+1 {
			t.Fatalf("%s: kept %d -> %d, redone %d -> %d (want one redone)", what, k0, k, r0, r)
		}
	}

	// A member moved to another branch no longer sees the old one's board.
	e.json("PATCH", fmt.Sprintf("/api/v1/members/%d", tr.alice), e.adminT, map[string]any{"branch_id": tr.b2}).want(200)
	check("moved away", func() *result { return board(tr.b1, tr.aliceT) }, 404)
	var b memberBoardResp
	board(tr.b2, tr.aliceT).want(200).decode(&b)
	if b.Me == nil {
		t.Fatal("no own row on the new branch's board")
	}

	// A secretary given a branch sees its summary at once, and loses it at once.
	summary := func() *result { return e.get(fmt.Sprintf("/api/v1/branches/%d/summary", tr.b2), tr.secT) }
	summary().want(404)
	summary().want(404)
	e.json("PUT", fmt.Sprintf("/api/v1/members/%d/roles", tr.sec), e.adminT, []map[string]any{{"role": "secretary", "org_id": tr.b2}}).want(200)
	check("given a branch", summary, 200)
	e.json("PUT", fmt.Sprintf("/api/v1/members/%d/roles", tr.sec), e.adminT, []map[string]any{}).want(200)
	check("role taken away", summary, 404)

	// A member who leaves is turned away at once.
	e.json("PATCH", fmt.Sprintf("/api/v1/members/%d", tr.alice), e.adminT, map[string]any{"status": "inactive"}).want(200)
	check("left", func() *result { return board(tr.b2, tr.aliceT) }, 401)
}
