package handlers_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"partyledger/app"
	"partyledger/models"
)

// concurrently runs n copies of f at once and returns the statuses they got.
func concurrently(n int, f func(i int) int) map[int]int {
	var mu sync.Mutex
	got := map[int]int{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			s := f(i)
			mu.Lock()
			got[s]++
			mu.Unlock()
		}(i)
	}
	close(start)
	wg.Wait()
	return got
}

func TestOneInviteManyBinds(t *testing.T) {
	e := newEnv(t, nil)
	tr := e.seedTree()
	var inv app.Invite
	e.post(fmt.Sprintf("/api/v1/members/%d/invite", tr.alice), e.adminT, nil).want(201).decode(&inv)
	binds := make([]string, 10)
	for i := range binds {
		var u struct {
			BindToken string `json:"bind_token"`
		}
		e.post("/api/v1/auth/wechat/login", "", map[string]string{"code": fmt.Sprintf("ok-openid-racer-%d", i)}).want(200).decode(&u)
		binds[i] = u.BindToken
	}
	got := concurrently(len(binds), func(i int) int {
		return e.post("/api/v1/auth/wechat/bind", "", map[string]string{"bind_token": binds[i], "invite_code": inv.InviteCode}).Status
	})
	// The others find the code spent (the compare-and-set on the invite), not the member
	// bound: the invite is what they presented.
	if got[200] != 1 || got[422] != len(binds)-1 {
		t.Fatalf("statuses %v: want exactly one bind, and 422 for the others", got)
	}
	var bound int64
	e.db.R.Model(&models.Member{}).Where("wechat_openid IS NOT NULL").Count(&bound)
	if bound != 1 {
		t.Fatalf("%d members bound", bound)
	}
}

func TestOneRefreshTokenManyRefreshes(t *testing.T) {
	e := newEnv(t, nil)
	tr := e.seedTree()
	liveTokens := func() int64 {
		var n int64
		e.db.R.Model(&models.RefreshToken{}).Where("member_id = ? AND revoked_at IS NULL AND used_at IS NULL", tr.bob).Count(&n)
		return n
	}
	others := liveTokens() // bob's other session, from seedTree
	pair, err := e.svc.Identity.Tokens().NewSession(t.Context(), tr.bob)
	if err != nil {
		t.Fatal(err)
	}
	got := concurrently(10, func(int) int {
		return e.post("/api/v1/auth/refresh", "", map[string]string{"refresh_token": pair.RefreshToken}).Status
	})
	// At most one rotation wins; every loser counts as reuse and revokes the family,
	// so even the winner's new token is dead afterwards unless it won alone.
	if got[200] > 1 || got[200]+got[401] != 10 {
		t.Fatalf("statuses %v", got)
	}
	if live := liveTokens() - others; got[401] > 0 && live != 0 {
		t.Fatalf("reuse was seen but %d tokens of the family still live", live)
	}
	if others != 1 || liveTokens() != 1 {
		t.Fatalf("bob's other session was touched: %d live before, %d after", others, liveTokens())
	}
}

func TestExpiredInvite(t *testing.T) {
	e := newEnv(t, map[string]string{"LEDGER_INVITE_TTL": "1ms"})
	tr := e.seedTree()
	var inv app.Invite
	e.post(fmt.Sprintf("/api/v1/members/%d/invite", tr.alice), e.adminT, nil).want(201).decode(&inv)
	time.Sleep(10 * time.Millisecond)
	var u struct {
		BindToken string `json:"bind_token"`
	}
	e.post("/api/v1/auth/wechat/login", "", map[string]string{"code": "ok-openid-late"}).want(200).decode(&u)
	e.post("/api/v1/auth/wechat/bind", "", map[string]string{"bind_token": u.BindToken, "invite_code": inv.InviteCode}).want(422)
	// A disabled member gets no invite.
	e.json("PATCH", fmt.Sprintf("/api/v1/members/%d", tr.bob), e.adminT, map[string]string{"status": "inactive"}).want(200)
	e.post(fmt.Sprintf("/api/v1/members/%d/invite", tr.bob), e.adminT, nil).want(409)
}

func TestExpiredRefreshToken(t *testing.T) {
	e := newEnv(t, map[string]string{"LEDGER_REFRESH_TTL": "1s"})
	tr := e.seedTree()
	fresh, err := e.svc.Identity.Tokens().NewSession(t.Context(), tr.alice)
	if err != nil {
		t.Fatal(err)
	}
	e.post("/api/v1/auth/refresh", "", map[string]string{"refresh_token": fresh.RefreshToken}).want(200)
	stale, err := e.svc.Identity.Tokens().NewSession(t.Context(), tr.alice)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	e.post("/api/v1/auth/refresh", "", map[string]string{"refresh_token": stale.RefreshToken}).want(401)
}

// TestTwoAdminsEditOneRuleAtOnce: edits of one rule racing each other each make a version
// or are told to try again (409); none fails, and no version is made twice. SQLite runs
// the edits one after another, so there every one succeeds; MariaDB lets them read the
// same version at once, and the losers get 409.
func TestTwoAdminsEditOneRuleAtOnce(t *testing.T) {
	e := newEnv(t, nil)
	tr := e.seedTree()
	_, secondT := e.newAdmin("ADM2", tr.b1, e.rootID)
	admins := []string{e.adminT, secondT}
	const n = 10
	var mu sync.Mutex
	var bodies []string
	got := concurrently(n, func(i int) int {
		r := e.json("PATCH", "/api/v1/rules/volunteer.hours", admins[i%2], map[string]any{"points": i + 1})
		if r.Status != 200 {
			mu.Lock()
			bodies = append(bodies, fmt.Sprintf("%d %s", r.Status, r.Body))
			mu.Unlock()
		}
		return r.Status
	})
	t.Logf("%d edits at once: %v", n, got)
	if got[200]+got[409] != n || got[200] == 0 {
		t.Fatalf("%d edits at once: %v %v", n, got, bodies)
	}
	for _, b := range bodies {
		if !strings.Contains(b, "changed meanwhile") {
			t.Fatalf("a lost edit was told %s", b)
		}
	}
	var versions []int
	if err := e.db.R.Model(&models.Rule{}).Where("code = ?", "volunteer.hours").Order("version").Pluck("version", &versions).Error; err != nil {
		t.Fatal(err)
	}
	if len(versions) != 1+got[200] || versions[len(versions)-1] != 1+got[200] {
		t.Fatalf("versions %v after %d edits took", versions, got[200])
	}
	var audits int64
	e.db.R.Model(&models.AuditRecord{}).Where("action = ? AND entity = ?", "rule.updated", "rule").Count(&audits)
	if audits != int64(got[200]) {
		t.Fatalf("%d audit records for %d edits", audits, got[200])
	}
}

// Ten closes of one month for one org at once close it once (409 for the others), and
// one reopening opens it: a second closed row would keep the month shut after the
// admin was told it is open. Ten reopenings at once reopen it once.
func TestOneMonthClosedAndReopenedManyTimesAtOnce(t *testing.T) {
	e := newEnv(t, nil)
	tr := e.seedTree()
	period := today(e)[:7]
	for round := 0; round < 3; round++ {
		got := concurrently(10, func(int) int {
			return e.post("/api/v1/periods/"+period+"/close", e.adminT, map[string]any{"org_id": tr.b1}).Status
		})
		if got[200] != 1 || got[409] != 9 {
			t.Fatalf("round %d, ten closes at once: %v, want one 200 and nine 409", round, got)
		}
		var open int64
		e.db.R.Model(&models.ClosedPeriod{}).Where("org_id = ? AND period = ? AND reopened_at IS NULL", tr.b1, period).Count(&open)
		if open != 1 {
			t.Fatalf("round %d: %d closed rows for one month", round, open)
		}
		e.post("/api/v1/entries", tr.secT, map[string]any{"member_id": tr.alice, "rule_code": "adjust.bonus", "points": 1, "reason": "r", "occurred_on": today(e)}).want(409)
		got = concurrently(10, func(int) int {
			return e.post("/api/v1/periods/"+period+"/reopen", e.adminT, map[string]any{"org_id": tr.b1, "reason": "更正"}).Status
		})
		if got[200] != 1 || got[409] != 9 {
			t.Fatalf("round %d, ten reopenings at once: %v, want one 200 and nine 409", round, got)
		}
		e.post("/api/v1/entries", tr.secT, map[string]any{"member_id": tr.alice, "rule_code": "adjust.bonus", "points": 1, "reason": "r", "occurred_on": today(e)}).want(201)
	}
	var audits int64
	e.db.R.Model(&models.AuditRecord{}).Where("action IN ?", []string{"period.closed", "period.reopened"}).Count(&audits)
	if audits != 6 {
		t.Fatalf("%d audit records for three closes and three reopenings", audits)
	}
}

// A month closed while entries are being written takes none after it: each write either
// commits before the close (its audit record comes first) or finds the month closed
// (409). On MySQL the close takes the subtree's org rows, which every ledger write
// takes shared first.
func TestNoEntryLandsInAMonthAfterItCloses(t *testing.T) {
	e := newEnv(t, nil)
	tr := e.seedTree()
	period := today(e)[:7]
	members := []int64{tr.alice, tr.bob, tr.carol, tr.sec, tr.lead}
	// An entry each first: a member's first entry inserts their chain head, and brand-new
	// heads inserted at once can deadlock among themselves on MySQL (retried, but not
	// what this test is about).
	for _, m := range members {
		e.post("/api/v1/entries", e.adminT, map[string]any{"member_id": m, "rule_code": "adjust.bonus", "points": 0.5, "reason": "r", "occurred_on": today(e)}).want(201)
	}
	var landed, refused int
	for round := 0; round < 5; round++ {
		got := concurrently(41, func(i int) int {
			if i == 20 {
				return e.post("/api/v1/periods/"+period+"/close", e.adminT, map[string]any{"org_id": e.rootID}).want(200).Status
			}
			return e.post("/api/v1/entries", e.adminT, map[string]any{"member_id": members[i%len(members)], "rule_code": "adjust.bonus",
				"points": 0.5, "reason": fmt.Sprintf("round %d", round), "occurred_on": today(e)}).Status
		})
		if got[201]+got[409] != 40 {
			t.Fatalf("round %d: %v", round, got)
		}
		landed, refused = landed+got[201], refused+got[409]
		var closedAt int64
		e.db.R.Model(&models.AuditRecord{}).Where("action = ?", "period.closed").Select("MAX(id)").Scan(&closedAt)
		var after int64
		e.db.R.Model(&models.AuditRecord{}).Where("action = ? AND id > ?", "entry.manual", closedAt).Count(&after)
		if after != 0 {
			t.Fatalf("round %d: %d entries written into %s after it closed", round, after, period)
		}
		var entries int64
		e.db.R.Model(&models.Entry{}).Where("reason = ?", fmt.Sprintf("round %d", round)).Count(&entries)
		if entries != int64(got[201]) {
			t.Fatalf("round %d: %d entries for %d answered 201", round, entries, got[201])
		}
		e.post("/api/v1/periods/"+period+"/reopen", e.adminT, map[string]any{"org_id": e.rootID, "reason": "下一轮"}).want(200)
	}
	t.Logf("%d entries before the closes, %d refused after them", landed, refused)
}

// treeIsWhole checks that every org's path is its parent's path and its own id, and its
// depth one more than its parent's: no cycle, no org left under an old path.
func treeIsWhole(t *testing.T, e *testEnv, when string) {
	t.Helper()
	var orgs []models.Org
	if err := e.db.R.Order("id").Find(&orgs).Error; err != nil {
		t.Fatal(err)
	}
	byID := map[int64]models.Org{}
	for _, o := range orgs {
		byID[o.ID] = o
	}
	for _, o := range orgs {
		if o.ParentID == nil {
			continue
		}
		p := byID[*o.ParentID]
		if o.Path != models.ChildPath(p.Path, o.ID) || o.Depth != p.Depth+1 {
			t.Fatalf("%s: org %d has path %s and depth %d under org %d (%s, depth %d)", when, o.ID, o.Path, o.Depth, p.ID, p.Path, p.Depth)
		}
	}
}

// Two committees each moved under the other at once: one move wins, the other is
// refused, and the tree has no cycle. Orgs created under a general branch while its
// committee moves take the committee's new path.
func TestTheOrgTreeStaysWholeUnderConcurrentEdits(t *testing.T) {
	e := newEnv(t, nil)
	org := func(parent int64, kind, name string) int64 {
		var o models.Org
		e.post("/api/v1/orgs", e.adminT, map[string]any{"parent_id": parent, "kind": kind, "name": name}).want(201).decode(&o)
		return o.ID
	}
	c1, c2 := org(e.rootID, "committee", "一院党委"), org(e.rootID, "committee", "二院党委")
	gb := org(c1, "general_branch", "一院党总支")
	for round := 0; round < 5; round++ {
		got := concurrently(2, func(i int) int {
			id, parent := []int64{c1, c2}[i], []int64{c2, c1}[i]
			return e.json("PATCH", fmt.Sprintf("/api/v1/orgs/%d", id), e.adminT, map[string]any{"parent_id": parent}).Status
		})
		if got[200] != 1 || got[200]+got[409]+got[422] != 2 {
			t.Fatalf("round %d, two committees moved under each other at once: %v", round, got)
		}
		treeIsWhole(t, e, fmt.Sprintf("round %d, after the cross moves", round))
		for _, id := range []int64{c1, c2} {
			e.json("PATCH", fmt.Sprintf("/api/v1/orgs/%d", id), e.adminT, map[string]any{"parent_id": e.rootID}).want(200)
		}

		got = concurrently(11, func(i int) int {
			if i == 5 {
				return e.json("PATCH", fmt.Sprintf("/api/v1/orgs/%d", c1), e.adminT, map[string]any{"parent_id": c2}).Status
			}
			return e.post("/api/v1/orgs", e.adminT, map[string]any{"parent_id": gb, "kind": "branch", "name": fmt.Sprintf("第%d轮支部%d", round, i)}).Status
		})
		if got[200] != 1 || got[201] != 10 {
			t.Fatalf("round %d, a move and ten creates below it: %v", round, got)
		}
		treeIsWhole(t, e, fmt.Sprintf("round %d, after creating under a moving org", round))
		e.json("PATCH", fmt.Sprintf("/api/v1/orgs/%d", c1), e.adminT, map[string]any{"parent_id": e.rootID}).want(200)

		// An org and the committee above it moved at once: both moves take, the later
		// from where the earlier left the tree, and the tree is whole.
		got = concurrently(2, func(i int) int {
			if i == 0 {
				return e.json("PATCH", fmt.Sprintf("/api/v1/orgs/%d", c1), e.adminT, map[string]any{"parent_id": c2}).Status
			}
			return e.json("PATCH", fmt.Sprintf("/api/v1/orgs/%d", gb), e.adminT, map[string]any{"parent_id": e.rootID}).Status
		})
		if got[200] != 2 {
			t.Fatalf("round %d, an org and the committee above it moved at once: %v", round, got)
		}
		treeIsWhole(t, e, fmt.Sprintf("round %d, after moving an org and its committee", round))
		e.json("PATCH", fmt.Sprintf("/api/v1/orgs/%d", c1), e.adminT, map[string]any{"parent_id": e.rootID}).want(200)
		e.json("PATCH", fmt.Sprintf("/api/v1/orgs/%d", gb), e.adminT, map[string]any{"parent_id": c1}).want(200)
	}
}

// Role sets PUT for one member at once (two admins, or one admin's double click): each
// replaces the whole set in turn, so the member ends with exactly one of the sets asked
// for, never several added up, and every request is answered 200.
func TestOneMembersRolesSetManyTimesAtOnce(t *testing.T) {
	e := newEnv(t, nil)
	tr := e.seedTree()
	sets := [][]map[string]any{
		{{"role": "secretary", "org_id": tr.b1}, {"role": "member", "org_id": tr.b1}},
		{{"role": "leader", "org_id": tr.gb1}},
		{{"role": "secretary", "org_id": tr.b1}, {"role": "leader", "org_id": tr.gb1}},
		{{"role": "admin", "org_id": tr.gb1}},
	}
	want := map[string]bool{}
	for _, set := range sets {
		var desc []string
		for _, r := range set {
			desc = append(desc, fmt.Sprintf("%s@%d", r["role"], r["org_id"]))
		}
		sort.Strings(desc)
		want[strings.Join(desc, ",")] = true
	}
	for round := 0; round < 10; round++ {
		got := concurrently(8, func(i int) int {
			return e.json("PUT", fmt.Sprintf("/api/v1/members/%d/roles", tr.alice), e.adminT, sets[i%4]).Status
		})
		if got[200] != 8 {
			t.Fatalf("round %d, eight role sets at once: %v", round, got)
		}
		var rows []models.MemberRole
		if err := e.db.R.Where("member_id = ?", tr.alice).Find(&rows).Error; err != nil {
			t.Fatal(err)
		}
		var desc []string
		for _, r := range rows {
			desc = append(desc, fmt.Sprintf("%s@%d", r.Role, r.OrgID))
		}
		sort.Strings(desc)
		if !want[strings.Join(desc, ",")] {
			t.Fatalf("round %d: alice holds %v, which nobody asked for", round, desc)
		}
	}
	var audits int64
	e.db.R.Model(&models.AuditRecord{}).Where("action = ? AND entity_id = ?", "member.roles_set", tr.alice).Count(&audits)
	if audits != 80 {
		t.Fatalf("%d audit records for 80 role sets", audits)
	}
}

// Invites of one member issued at once (a double click): each new code revokes the
// codes before it, so exactly one stays live, also for a member who had none yet.
func TestOneMemberInvitedManyTimesAtOnce(t *testing.T) {
	e := newEnv(t, nil)
	tr := e.seedTree()
	for round := 0; round < 10; round++ {
		var m models.Member
		e.post("/api/v1/members", e.adminT, map[string]any{"member_no": fmt.Sprintf("INV%02d", round), "name": "新党员", "branch_id": tr.b1}).want(201).decode(&m)
		for n := 0; n < 2; n++ { // first with no code before them, then with one
			got := concurrently(4, func(i int) int {
				return e.post(fmt.Sprintf("/api/v1/members/%d/invite", m.ID), []string{e.adminT, tr.secT}[i%2], nil).Status
			})
			var live int64
			e.db.R.Model(&models.InviteCode{}).Where("member_id = ? AND used_at IS NULL AND revoked_at IS NULL", m.ID).Count(&live)
			if got[201] != 4 || live != 1 {
				t.Fatalf("round %d.%d, four invites at once: %v, %d codes live", round, n, got, live)
			}
		}
	}
}

// One roster imported four times at once (sent twice, or by two admins), beside a POST
// of one of its members: every request goes through, each member exists once, and the
// imports that found a member created meanwhile count it as theirs to update, not as
// a failure.
func TestOneRosterImportedManyTimesAtOnce(t *testing.T) {
	e := newEnv(t, nil)
	tr := e.seedTree()
	for round := 0; round < 5; round++ {
		roster := fmt.Sprintf("member_no,name,branch\nR%d1,甲,%d\nR%d2,乙,%d\nR%d3,丙,%d\n", round, tr.b1, round, tr.b1, round, tr.b2)
		var mu sync.Mutex
		var created int
		got := concurrently(5, func(i int) int {
			if i == 4 {
				return e.post("/api/v1/members", e.adminT, map[string]any{"member_no": fmt.Sprintf("R%d3", round), "name": "丙", "branch_id": tr.b2}).Status
			}
			r := e.importFile(e.adminT, "roster.csv", []byte(roster))
			var res app.ImportResult
			if r.Status == 200 {
				r.decode(&res)
				mu.Lock()
				created += res.Created
				mu.Unlock()
				if res.Created+res.Updated+res.Unchanged != 3 {
					t.Errorf("round %d: an import answered %+v", round, res)
				}
			}
			return r.Status
		})
		if got[200] != 4 || got[201]+got[409] != 1 {
			t.Fatalf("round %d, four imports and a POST at once: %v", round, got)
		}
		var n int64
		e.db.R.Model(&models.Member{}).Where("member_no IN ?", []string{fmt.Sprintf("R%d1", round), fmt.Sprintf("R%d2", round), fmt.Sprintf("R%d3", round)}).Count(&n)
		if want := 3 - got[201]; n != 3 || created != want {
			t.Fatalf("round %d: %d members, %d created by the imports (want 3 and %d)", round, n, created, want)
		}
	}
}

// memberHistory checks that a member's audit records of changes (created, updated,
// imported) form one chain: each one's before is the one before's after, and the last
// after is the member as stored. It returns the afters, as JSON objects.
func memberHistory(t *testing.T, e *testEnv, id int64) []map[string]any {
	t.Helper()
	var recs []models.AuditRecord
	if err := e.db.R.Where("entity = ? AND entity_id = ? AND action IN ?", "member", id, []string{"member.created", "member.updated", "member.imported"}).
		Order("id").Find(&recs).Error; err != nil {
		t.Fatal(err)
	}
	var afters []map[string]any
	for i, r := range recs {
		var before, after map[string]any
		if err := json.Unmarshal([]byte(r.After), &after); err != nil {
			t.Fatalf("record %d: %v", r.ID, err)
		}
		if i > 0 {
			if err := json.Unmarshal([]byte(r.Before), &before); err != nil {
				t.Fatalf("record %d: %v", r.ID, err)
			}
			if !reflect.DeepEqual(before, afters[i-1]) {
				t.Fatalf("record %d (%s) says the member was\n%v\nbut the record before it left\n%v", r.ID, r.Action, before, afters[i-1])
			}
		}
		afters = append(afters, after)
	}
	var now map[string]any
	e.get(fmt.Sprintf("/api/v1/members/%d", id), e.adminT).want(200).decode(&now)
	if len(afters) == 0 || !reflect.DeepEqual(now, afters[len(afters)-1]) {
		t.Fatalf("the member is\n%v\nbut the last record of a change left\n%v", now, afters[len(afters)-1:])
	}
	return afters
}

// PATCHes of one member at once (two admin pages open): each runs on the member as the
// one before it left, so the audit trail is one chain and every answer is a state the
// member was really in. With plain reads on MySQL, each PATCH read the member as it was
// before any of them and wrote that as its "before".
func TestOneMemberPatchedManyTimesAtOnce(t *testing.T) {
	e := newEnv(t, nil)
	tr := e.seedTree()
	var mu sync.Mutex
	var answers []map[string]any
	for round := 0; round < 10; round++ {
		got := concurrently(6, func(i int) int {
			body := []map[string]any{
				{"name": fmt.Sprintf("鲍%d-%d", round, i)},
				{"branch_id": tr.b2},
				{"branch_id": tr.b1, "group_id": tr.g1},
			}[i%3]
			r := e.json("PATCH", fmt.Sprintf("/api/v1/members/%d", tr.bob), e.adminT, body)
			if r.Status == 200 {
				var m map[string]any
				r.decode(&m)
				mu.Lock()
				answers = append(answers, m)
				mu.Unlock()
			}
			return r.Status
		})
		if got[200] != 6 {
			t.Fatalf("round %d, six PATCHes at once: %v", round, got)
		}
	}
	afters := memberHistory(t, e, tr.bob)
	for _, a := range answers {
		found := false
		for _, s := range afters {
			found = found || reflect.DeepEqual(a, s)
		}
		if !found {
			t.Fatalf("a PATCH answered\n%v\nwhich is no state the audit trail has", a)
		}
	}
}

// A roster imported four times at once, each time naming its members otherwise, beside
// PATCHes of those members: each import writes a member from what the request before it
// left, so every member's audit trail is one chain. With plain reads on MySQL an import
// wrote as "before" a member as it was before a PATCH that had committed meanwhile.
func TestARosterImportedBesidePatchesOfItsMembers(t *testing.T) {
	e := newEnv(t, nil)
	tr := e.seedTree()
	var ids []int64
	for k := 0; k < 3; k++ {
		var m models.Member
		e.post("/api/v1/members", e.adminT, map[string]any{"member_no": fmt.Sprintf("P%d", k), "name": "甲", "branch_id": tr.b1}).want(201).decode(&m)
		ids = append(ids, m.ID)
	}
	branches := []int64{tr.b1, tr.b2}
	for round := 0; round < 10; round++ {
		got := concurrently(6, func(i int) int {
			if i >= 4 {
				return e.json("PATCH", fmt.Sprintf("/api/v1/members/%d", ids[i-4]), e.adminT,
					map[string]any{"name": fmt.Sprintf("改%d-%d", round, i), "branch_id": branches[(round+i)%2]}).Status
			}
			roster := "member_no,name,branch\n"
			for k := 0; k < 3; k++ {
				roster += fmt.Sprintf("P%d,名%d-%d,%d\n", k, round, i, branches[(k+i)%2])
			}
			return e.importFile(e.adminT, "roster.csv", []byte(roster)).Status
		})
		if got[200] != 6 {
			t.Fatalf("round %d, four imports and two PATCHes at once: %v", round, got)
		}
	}
	for _, id := range ids {
		memberHistory(t, e, id)
	}
}

// A member moved out of a general branch's admin's scope while that admin imports a
// roster naming them: the import either went first (and the move after it) or sees the
// move and refuses the row. It never puts the member back where the admin may not have
// them. With plain reads on MySQL the import checked scope against where the member had
// been and moved them back.
func TestAMemberMovedAwayDuringAnImport(t *testing.T) {
	e := newEnv(t, nil)
	tr := e.seedTree()
	_, gaT := e.newAdmin("GA1", tr.b1, tr.gb1)
	refused := 0
	for round := 0; round < 20; round++ {
		var m models.Member
		no := fmt.Sprintf("MV%02d", round)
		e.post("/api/v1/members", e.adminT, map[string]any{"member_no": no, "name": "乙", "branch_id": tr.b1}).want(201).decode(&m)
		roster := fmt.Sprintf("member_no,name,branch\n%s,乙%d,%d\n", no, round, tr.b2)
		got := concurrently(2, func(i int) int {
			if i == 0 {
				return e.importFile(gaT, "roster.csv", []byte(roster)).Status
			}
			return e.json("PATCH", fmt.Sprintf("/api/v1/members/%d", m.ID), e.adminT, map[string]any{"branch_id": tr.b3}).Status
		})
		refused += got[422]
		if got[200]+got[422] != 2 || got[422] > 1 {
			t.Fatalf("round %d, an import and a move at once: %v", round, got)
		}
		var now models.Member
		e.get(fmt.Sprintf("/api/v1/members/%d", m.ID), e.adminT).want(200).decode(&now)
		if now.BranchID != tr.b3 {
			t.Fatalf("round %d: the member moved to branch %d is in %d after an import by an admin of another subtree", round, tr.b3, now.BranchID)
		}
		memberHistory(t, e, m.ID)
	}
	t.Logf("20 imports beside a move: %d saw the move and refused the row", refused)
}

// A member assigned a pioneer post of their branch while an admin moves them to another
// branch: the assignment either went first (and the move after it) or sees the move and
// is refused; a post of a branch is never given to someone who has already left it. The
// audit log orders the two: the assignment's record comes before the move's.
func TestAMemberAssignedAPostWhileMovedAway(t *testing.T) {
	e := newEnv(t, nil)
	tr := e.seedTree()
	var post models.Post
	e.post("/api/v1/posts", tr.secT, map[string]any{"branch_id": tr.b1, "name": "服务先锋岗"}).want(201).decode(&post)
	refused := 0
	for round := 0; round < 20; round++ {
		var m models.Member
		e.post("/api/v1/members", e.adminT, map[string]any{"member_no": fmt.Sprintf("PA%02d", round), "name": "丁", "branch_id": tr.b1}).want(201).decode(&m)
		var as models.PostAssignment
		got := concurrently(2, func(i int) int {
			if i == 1 {
				return e.json("PATCH", fmt.Sprintf("/api/v1/members/%d", m.ID), e.adminT, map[string]any{"branch_id": tr.b2}).Status
			}
			r := e.post(fmt.Sprintf("/api/v1/posts/%d/assignments", post.ID), tr.secT,
				map[string]any{"member_id": m.ID, "starts_on": "2026-09-01", "ends_on": "2027-07-31", "commitment": "服务师生"})
			if r.Status == 201 {
				r.decode(&as)
			}
			return r.Status
		})
		if got[200] != 1 || got[201]+got[422] != 1 {
			t.Fatalf("round %d, an assignment and a move at once: %v", round, got)
		}
		refused += got[422]
		if got[201] == 1 {
			var assigned, moved models.AuditRecord
			e.db.R.Where("action = ? AND entity_id = ?", "post.assigned", as.ID).Take(&assigned)
			e.db.R.Where("action = ? AND entity_id = ?", "member.updated", m.ID).Take(&moved)
			if assigned.ID == 0 || moved.ID == 0 || assigned.ID > moved.ID {
				t.Fatalf("round %d: the post was assigned (audit record %d) after the member left the branch (record %d)", round, assigned.ID, moved.ID)
			}
		}
	}
	t.Logf("20 assignments beside a move: %d saw the move and were refused", refused)
}

// Members put in a party group while the group moves to another branch: each is either
// placed first and moves with the group, or waits and is refused (the group is no longer
// the branch's). Before, placing read the group without a lock, and on MySQL members
// landed in the old branch with a group of the new one in every round.
func TestMembersPlacedInAGroupWhileItMoves(t *testing.T) {
	e := newEnv(t, nil)
	tr := e.seedTree()
	for round := 0; round < 20; round++ {
		from, to := []int64{tr.b1, tr.b2}[round%2], []int64{tr.b2, tr.b1}[round%2]
		got := concurrently(9, func(i int) int {
			if i == 0 {
				return 1000 + e.json("PATCH", fmt.Sprintf("/api/v1/orgs/%d", tr.g1), e.adminT, map[string]any{"parent_id": to}).Status
			}
			return e.post("/api/v1/members", e.adminT, map[string]any{"member_no": fmt.Sprintf("G%d-%d", round, i), "name": "戊", "branch_id": from, "group_id": tr.g1}).Status
		})
		if got[1200] != 1 || got[201]+got[422] != 8 {
			t.Fatalf("round %d, a group's move and eight members put in it: %v", round, got)
		}
		var astray int64
		e.db.R.Raw("SELECT COUNT(*) FROM members m JOIN orgs g ON g.id = m.group_id WHERE g.parent_id <> m.branch_id").Scan(&astray)
		if astray > 0 {
			t.Fatalf("round %d (%v): %d members in a group of another branch", round, got, astray)
		}
	}
}

// Expired refresh tokens are purged, and nothing answers differently for it: an expired
// token is refused, spent or not, and its family's live token still refreshes.
func TestExpiredRefreshTokensArePurged(t *testing.T) {
	e := newEnv(t, nil)
	tr := e.seedTree()
	tokens := e.svc.Identity.Tokens()
	refresh := func(rt string, want int) string {
		t.Helper()
		var pair app.TokenPair
		r := e.post("/api/v1/auth/refresh", "", map[string]string{"refresh_token": rt}).want(want)
		if want == 200 {
			r.decode(&pair)
		}
		return pair.RefreshToken
	}
	a0, err := tokens.NewSession(t.Context(), tr.alice)
	if err != nil {
		t.Fatal(err)
	}
	a1 := refresh(a0.RefreshToken, 200) // a0 is spent now, a1 is its family's live one
	b0, err := tokens.NewSession(t.Context(), tr.bob)
	if err != nil {
		t.Fatal(err)
	}
	expire := func(rts ...string) {
		t.Helper()
		for _, rt := range rts {
			sum := sha256.Sum256([]byte(rt))
			if res := e.db.W.Model(&models.RefreshToken{}).Where("token_hash = ?", hex.EncodeToString(sum[:])).Update("expires_at", time.Now().UTC().Add(-time.Minute)); res.Error != nil || res.RowsAffected != 1 {
				t.Fatalf("expire a token: %v, %d rows", res.Error, res.RowsAffected)
			}
		}
	}
	expire(a0.RefreshToken, b0.RefreshToken)
	var before int64
	e.db.R.Model(&models.RefreshToken{}).Count(&before)
	n, err := app.PurgeRefreshTokens(t.Context(), e.db, time.Now())
	if err != nil || n != 2 {
		t.Fatalf("purged %d (%v), want the 2 expired", n, err)
	}
	var after int64
	e.db.R.Model(&models.RefreshToken{}).Count(&after)
	if after != before-2 {
		t.Fatalf("%d refresh tokens before the purge and %d after", before, after)
	}
	refresh(a0.RefreshToken, 401)
	refresh(b0.RefreshToken, 401)
	refresh(a1, 200) // the spent a0 came back, but expired: its family is not revoked
	if n, err := app.PurgeRefreshTokens(t.Context(), e.db, time.Now()); err != nil || n != 0 {
		t.Fatalf("a second purge: %d %v", n, err)
	}
}
