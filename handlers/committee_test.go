package handlers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"partyledger/app"
	"partyledger/models"
)

// A member's rank in their committee is summed from each committee's count of members at
// each score, which every entry and every org move keeps. The test keeps its own tree
// and points, and after each move compares every member's ranks with a count of its own.
func TestCommitteeRanksFollowEntriesAndOrgMoves(t *testing.T) {
	e := newEnv(t, nil)
	parent := map[int64]int64{}
	kind := map[int64]string{e.rootID: "committee"}
	org := func(p int64, k, name string) int64 {
		t.Helper()
		var o models.Org
		e.post("/api/v1/orgs", e.adminT, map[string]any{"parent_id": p, "kind": k, "name": name}).want(201).decode(&o)
		parent[o.ID], kind[o.ID] = p, k
		return o.ID
	}
	c1 := org(e.rootID, "committee", "第一高校党委")
	c2 := org(e.rootID, "committee", "第二高校党委")
	c3 := org(c2, "committee", "附属医院党委") // a committee inside a committee
	g1 := org(c1, "general_branch", "文学院党总支")
	b1 := org(g1, "branch", "教工第一党支部")
	b2 := org(g1, "branch", "研究生第一党支部")
	b3 := org(c1, "branch", "机关第一党支部")
	b4 := org(c2, "branch", "机关第二党支部")
	b5 := org(c3, "branch", "医院第一党支部")
	b6 := org(e.rootID, "branch", "省直第一党支部") // under the root committee itself

	now := time.Now().In(e.cfg.Location)
	first := time.Date(now.Year(), now.Month(), 1, 12, 0, 0, 0, e.cfg.Location)
	days := []string{first.Format("2006-01-02"), first.AddDate(0, -1, 0).Format("2006-01-02")}

	// Three members a branch; the third earns nothing, and points tie within and across
	// branches.
	branchOf := map[int64]int64{}
	pts := map[models.Period]map[int64]models.Points{}
	bonus := func(who int64, points float64, day string) {
		t.Helper()
		e.post("/api/v1/entries", e.adminT, map[string]any{"member_id": who, "rule_code": "adjust.bonus", "points": points, "reason": "测试", "occurred_on": day}).want(201)
		per := models.Period(day[:7])
		if pts[per] == nil {
			pts[per] = map[int64]models.Points{}
		}
		pts[per][who] += models.Points(points * 10)
	}
	for i, b := range []int64{b1, b2, b3, b4, b5, b6} {
		for j := 0; j < 3; j++ {
			var m models.Member
			e.post("/api/v1/members", e.adminT, map[string]any{"member_no": fmt.Sprintf("M%d%d", i, j), "name": fmt.Sprintf("党员%d%d", i, j), "branch_id": b}).want(201).decode(&m)
			branchOf[m.ID] = b
			if j < 2 {
				bonus(m.ID, float64(1+(i+j)%3)*2.5, days[0])
				bonus(m.ID, float64(1+(i*j)%4), days[1])
			}
		}
	}

	// The bootstrap admin, staff placed at the root committee itself, earns points too:
	// their row is on the province's board, and in no committee's count.
	var admin struct {
		ID int64 `json:"id"`
	}
	e.get("/api/v1/me", e.adminT).want(200).decode(&admin)
	second, secondT := e.newAdmin("ADM2", b3, e.rootID) // nobody records points for themself: a second admin does
	branchOf[second] = b3
	e.post("/api/v1/entries", secondT, map[string]any{"member_id": admin.ID, "rule_code": "adjust.bonus", "points": 5, "reason": "测试", "occurred_on": days[0]}).want(201)
	staff := map[models.Period]models.Points{models.Period(days[0][:7]): 50} // tied with members on 5

	// The test's own account: the nearest committee above a branch, and whether an org
	// is inside another.
	inside := func(o, anc int64) bool {
		for ; o != 0; o = parent[o] {
			if o == anc {
				return true
			}
		}
		return false
	}
	committeeOf := func(b int64) int64 {
		for o := parent[b]; ; o = parent[o] {
			if kind[o] == "committee" {
				return o
			}
		}
	}
	check := func(stage string) {
		t.Helper()
		for _, day := range days {
			per := models.Period(day[:7])
			for who, b := range branchOf {
				c, mine := committeeOf(b), pts[per][who]
				wantBranch, wantCommittee := int64(1), int64(1)
				for other, ob := range branchOf {
					if pts[per][other] > mine && ob == b {
						wantBranch++
					}
					if pts[per][other] > mine && inside(ob, c) {
						wantCommittee++
					}
				}
				// Their own row on the boards of their committee and of the province.
				wantProvince := wantCommittee
				for other, ob := range branchOf {
					if pts[per][other] > mine && !inside(ob, c) {
						wantProvince++
					}
				}
				if staff[per] > mine {
					wantProvince++
				}
				for org, want := range map[int64]int64{c: wantCommittee, e.rootID: wantProvince} {
					var b memberBoardResp
					e.get(fmt.Sprintf("/api/v1/leaderboards/members?org_id=%d&period=%s&limit=1", org, per), e.tokenFor(who)).want(200).decode(&b)
					if b.Me == nil || b.Me.Rank != want || b.Me.Points != mine {
						t.Fatalf("%s, %s: member %d's own row on org %d's board is %+v, want rank %d with %s", stage, per, who, org, b.Me, want, mine)
					}
				}
				// Once as the member (their own line of orgs is known), once as an admin.
				for _, token := range []string{e.tokenFor(who), e.adminT} {
					var sum struct {
						Total           models.Points
						RankInBranch    int64  `json:"rank_in_branch"`
						CommitteeID     *int64 `json:"committee_id"`
						RankInCommittee *int64 `json:"rank_in_committee"`
					}
					e.get(fmt.Sprintf("/api/v1/members/%d/summary?period=%s", who, per), token).want(200).decode(&sum)
					if sum.Total != mine || sum.RankInBranch != wantBranch || sum.CommitteeID == nil || *sum.CommitteeID != c ||
						sum.RankInCommittee == nil || *sum.RankInCommittee != wantCommittee {
						t.Fatalf("%s, %s: member %d in branch %d: got total %s, rank %d in branch, committee %s rank %s; want %s, %d, committee %d rank %d",
							stage, per, who, b, sum.Total, sum.RankInBranch, orNil(sum.CommitteeID), orNil(sum.RankInCommittee), mine, wantBranch, c, wantCommittee)
					}
				}
			}
		}
		if _, err := app.Verify(context.Background(), e.db); err != nil {
			t.Fatalf("%s: verify: %v", stage, err)
		}
	}
	check("before any move")

	move := func(o, to int64) {
		t.Helper()
		e.json("PATCH", fmt.Sprintf("/api/v1/orgs/%d", o), e.adminT, map[string]any{"parent_id": to}).want(200)
		parent[o] = to
	}
	move(b2, c2) // a branch to another committee
	check("a branch moved to another committee")
	move(g1, c3) // a general branch (with b1) into the nested committee
	check("a general branch moved into a nested committee")
	move(c3, c1) // a committee with its branches under another: their committee stays c3
	check("a committee moved under another")
	move(b6, g1) // from the root committee itself to deep inside c1
	check("a branch moved from the root down")

	// Entries after the moves count under the branches' committees now.
	for who, b := range branchOf {
		if b == b6 || b == b2 {
			bonus(who, 1.5, days[0])
		}
	}
	check("entries after the moves")

	// A count that the month totals do not bear out fails verify.
	if err := e.db.W.Exec("UPDATE committee_points SET members = members + 1 WHERE committee_id = ?", c3).Error; err != nil {
		t.Fatal(err)
	}
	if _, err := app.Verify(context.Background(), e.db); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("committee %d", c3)) {
		t.Fatalf("verify of a tampered committee count: %v", err)
	}
}

func orNil(p *int64) string {
	if p == nil {
		return "nil"
	}
	return fmt.Sprint(*p)
}

// Entries written while their branches move between committees count under the committee
// each branch is in when the entry commits: afterwards every committee's counts agree
// with the month totals, and no request failed.
func TestCommitteeCountsHoldWhileBranchesMove(t *testing.T) {
	e := newEnv(t, nil)
	org := func(p int64, k, name string) int64 {
		t.Helper()
		var o models.Org
		e.post("/api/v1/orgs", e.adminT, map[string]any{"parent_id": p, "kind": k, "name": name}).want(201).decode(&o)
		return o.ID
	}
	c1 := org(e.rootID, "committee", "第一高校党委")
	c2 := org(e.rootID, "committee", "第二高校党委")
	branches := []int64{org(c1, "branch", "第一党支部"), org(c1, "branch", "第二党支部"), org(c2, "branch", "第三党支部")}
	var members []int64
	for i := 0; i < 24; i++ {
		var m models.Member
		e.post("/api/v1/members", e.adminT, map[string]any{"member_no": fmt.Sprintf("R%02d", i), "name": fmt.Sprintf("党员%d", i), "branch_id": branches[i%3]}).want(201).decode(&m)
		members = append(members, m.ID)
	}
	day := time.Now().In(e.cfg.Location).Format("2006-01-02")
	const writers, moves = 48, 12
	got := concurrently(writers+moves, func(i int) int {
		if i >= writers { // an admin moves a branch to the other committee and back
			b := branches[i%3]
			to := []int64{c1, c2}[i%2]
			return e.json("PATCH", fmt.Sprintf("/api/v1/orgs/%d", b), e.adminT, map[string]any{"parent_id": to}).Status
		}
		return e.post("/api/v1/entries", e.adminT, map[string]any{"member_id": members[i%len(members)], "rule_code": "adjust.bonus",
			"points": float64(1 + i%4), "reason": "并发", "occurred_on": day}).Status
	})
	if got[201] != writers || got[200] != moves {
		t.Fatalf("statuses %v: want %d entries and %d moves", got, writers, moves)
	}
	treeIsWhole(t, e, "after moving each branch four times at once")
	if _, err := app.Verify(context.Background(), e.db); err != nil {
		t.Fatalf("verify: %v", err)
	}
}
