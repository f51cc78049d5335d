package handlers_test

import (
	"context"
	"fmt"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"partyledger/app"
	"partyledger/models"
)

func today(e *testEnv) string { return time.Now().In(e.cfg.Location).Format("2006-01-02") }

func TestRuleCatalogue(t *testing.T) {
	e := newEnv(t, nil)
	tr := e.seedTree()
	var list struct{ Items []models.Rule }
	e.get("/api/v1/rules", tr.aliceT).want(200).decode(&list)
	byCode := map[string]models.Rule{}
	for _, r := range list.Items {
		byCode[r.Code] = r
	}
	if len(byCode) != 10 || !byCode["four_ones.read_theory"].NeedsEvidence || !byCode["pioneer.duty"].NeedsAssignment ||
		byCode["volunteer.hours"].MonthlyCap == nil || *byCode["volunteer.hours"].MonthlyCap != 100 || byCode["activity.day"].How != "checkin" {
		t.Fatalf("seeded catalogue: %+v", byCode)
	}
	e.post("/api/v1/rules", tr.aliceT, map[string]any{"code": "x.y", "name": "x", "category": "activity", "how": "claim", "points": 1, "unit": "once"}).want(403)
	var r models.Rule
	e.post("/api/v1/rules", e.adminT, map[string]any{"code": "volunteer.teaching", "name": "支教", "category": "volunteer", "how": "claim", "points": 1.5, "unit": "hour", "monthly_cap": 6}).want(201).decode(&r)
	if r.Version != 1 || r.Points != 15 || *r.MonthlyCap != 60 {
		t.Fatalf("created %+v", r)
	}
	e.post("/api/v1/rules", e.adminT, map[string]any{"code": "volunteer.teaching", "name": "支教", "category": "volunteer", "how": "claim", "points": 1, "unit": "hour"}).want(409)
	bad := e.post("/api/v1/rules", e.adminT, map[string]any{"code": "Bad Code", "category": "nope", "how": "claim", "points": 1.25, "unit": "once"})
	if bad.Status != 422 {
		t.Fatalf("bad rule: %d %s", bad.Status, bad.Body)
	}
	// Each fault alone is refused and named.
	for _, c := range []struct {
		field string
		set   map[string]any
	}{
		{"code", map[string]any{"code": "Bad Code"}},
		{"code", map[string]any{"code": "volunteer."}},
		{"code", map[string]any{"code": "volunteer..teaching"}},
		{"code", map[string]any{"code": ".volunteer"}},
		{"code", map[string]any{"code": "1volunteer"}},
		{"code", map[string]any{"code": ""}},
		{"code", map[string]any{"code": "activity." + strings.Repeat("x", 56)}}, // 65 characters
		{"name", map[string]any{"name": nil}},
		{"category", map[string]any{"category": nil}},
		{"how", map[string]any{"how": nil}},
		{"unit", map[string]any{"unit": nil}},
		{"points", map[string]any{"points": nil}},
		{"points", map[string]any{"points": -1}},
		{"points", map[string]any{"points": 0}},
		{"monthly_cap", map[string]any{"monthly_cap": 0}},
		{"unit", map[string]any{"unit": "any"}},
		{"needs_assignment", map[string]any{"how": "checkin", "needs_assignment": true}},
	} {
		body := map[string]any{"code": "activity.test", "name": "测试", "category": "activity", "how": "claim", "points": 1, "unit": "once"}
		for k, v := range c.set {
			body[k] = v
		}
		if f := e.post("/api/v1/rules", e.adminT, body).want(422).errFields(); len(f) != 1 || f[c.field] == "" {
			t.Errorf("%v: fields %v, want %s alone", c.set, f, c.field)
		}
	}
	// A manual rule may be worth 0 and take any amount.
	e.post("/api/v1/rules", e.adminT, map[string]any{"code": "adjust.other", "name": "其他调整", "category": "adjustment", "how": "manual", "points": 0, "unit": "any"}).want(201)
	e.json("PATCH", "/api/v1/rules/volunteer.teaching", e.adminT, map[string]any{"points": 2, "monthly_cap": nil}).want(200).decode(&r)
	if r.Version != 2 || r.Points != 20 || r.MonthlyCap != nil {
		t.Fatalf("patched %+v", r)
	}
	e.json("PATCH", "/api/v1/rules/volunteer.teaching", e.adminT, map[string]any{"how": "manual"}).want(422)
	if f := e.json("PATCH", "/api/v1/rules/volunteer.teaching", e.adminT, map[string]any{"code": "volunteer.other", "points": 3}).want(422).errFields(); f["code"] == "" {
		t.Fatalf("a rule's code changed by an edit: fields %v", f)
	}
	e.json("PATCH", "/api/v1/rules/volunteer.teaching", e.adminT, map[string]any{"code": "volunteer.teaching"}).want(200) // its own code is no change
	e.json("PATCH", "/api/v1/rules/nope.nope", e.adminT, map[string]any{"points": 2}).want(404)
	// An admin of a general branch does not edit the catalogue of the whole tree.
	_, gaT := e.newAdmin("GA1", tr.b1, tr.gb1)
	e.json("PATCH", "/api/v1/rules/volunteer.teaching", gaT, map[string]any{"points": 3}).want(403)

	// Every change of the catalogue is in the audit log of the whole tree, before and
	// after, for the admins of the root, who alone may change it; a general branch's
	// admin reads their subtree's log, where the catalogue is not.
	var audit app.List[models.AuditRecord]
	e.get(fmt.Sprintf("/api/v1/audit?org_id=%d&limit=100", e.rootID), e.adminT).want(200).decode(&audit)
	actions := map[string]int{}
	for _, rec := range audit.Items {
		if rec.Entity == "rule" {
			actions[rec.Action]++
			if rec.Action == "rule.updated" && (rec.Before == "" || rec.After == "" || rec.ActorID == nil) {
				t.Fatalf("a rule's edit recorded as %+v", rec)
			}
		}
	}
	if actions["rule.created"] != 2 || actions["rule.updated"] != 2 {
		t.Fatalf("the catalogue's audit records: %v", actions)
	}
	e.get(fmt.Sprintf("/api/v1/audit?org_id=%d&limit=100", tr.gb1), gaT).want(200).decode(&audit)
	for _, rec := range audit.Items {
		if rec.Entity == "rule" {
			t.Fatalf("a general branch's admin reads the catalogue's audit record %+v", rec)
		}
	}

	// A rule switched off takes no claims until it is switched on again.
	e.json("PATCH", "/api/v1/rules/volunteer.teaching", e.adminT, map[string]any{"active": false}).want(200)
	teach := map[string]any{"rule_code": "volunteer.teaching", "occurred_on": today(e), "quantity": 2}
	if f := e.claim(tr.aliceT, "", teach).want(422).errFields(); f["rule_code"] == "" {
		t.Fatalf("a claim under a rule switched off: fields %v", f)
	}
	e.json("PATCH", "/api/v1/rules/volunteer.teaching", e.adminT, map[string]any{"active": true}).want(200)
	e.claim(tr.aliceT, "", teach).want(201)
}

func TestManualEntriesReversalsAndClosedMonths(t *testing.T) {
	e := newEnv(t, nil)
	tr := e.seedTree()
	day := today(e)
	period := day[:7]
	bonus := func(token string, member int64, points any, extra ...string) *result {
		body := map[string]any{"member_id": member, "rule_code": "adjust.bonus", "points": points, "reason": "优秀志愿者", "occurred_on": day}
		if len(extra) == 2 {
			body[extra[0]] = extra[1]
		}
		return e.post("/api/v1/entries", token, body)
	}
	var first, second models.Entry
	bonus(tr.secT, tr.alice, 2.5).want(201).decode(&first)
	if first.Points != 25 || first.Seq != 1 || first.PrevHash != app.GenesisHash || first.Hash == "" || first.BranchID != tr.b1 || first.Period != models.Period(period) {
		t.Fatalf("first entry: %+v", first)
	}
	e.post("/api/v1/entries", tr.secT, map[string]any{"member_id": tr.alice, "rule_code": "adjust.deduct", "points": 1, "reason": "未参加组织生活", "occurred_on": day}).want(201).decode(&second)
	if second.Points != -10 || second.Seq != 2 || second.PrevHash != first.Hash {
		t.Fatalf("second entry: %+v", second)
	}
	// Scope, self, and bad input.
	bonus(tr.secT, tr.bob, 1).want(404)
	bonus(tr.secT, tr.sec, 1).want(403)
	bonus(tr.aliceT, tr.bob, 1).want(404)
	for name, c := range map[string][]any{
		"zero": {0}, "negative": {-1}, "two decimals": {1.25}, "string": {"1"},
		"future":   {1, "occurred_on", time.Now().AddDate(0, 0, 2).Format("2006-01-02")},
		"bad date": {1, "occurred_on", "2026-02-30"}, "blank reason": {1, "reason", "  "}, "not manual": {1, "rule_code", "four_ones.read_theory"},
	} {
		extra := []string{}
		if len(c) == 3 {
			extra = []string{c[1].(string), c[2].(string)}
		}
		if r := bonus(tr.secT, tr.alice, c[0], extra...); r.Status != 422 {
			t.Errorf("%s: %d %s", name, r.Status, r.Body)
		}
	}

	// Reading entries: the member, their secretary, leaders above; nobody else.
	var page app.List[models.Entry]
	e.get(fmt.Sprintf("/api/v1/members/%d/entries?period=%s", tr.alice, period), tr.aliceT).want(200).decode(&page)
	if len(page.Items) != 2 || page.Items[0].ID != second.ID {
		t.Fatalf("entries: %+v", page.Items)
	}
	// Page by page, newest first: the cursor carries on where the last page ended.
	var page1, page2 app.List[models.Entry]
	e.get(fmt.Sprintf("/api/v1/members/%d/entries?period=%s&limit=1", tr.alice, period), tr.aliceT).want(200).decode(&page1)
	if len(page1.Items) != 1 || page1.Items[0].ID != page.Items[0].ID || page1.NextCursor == nil {
		t.Fatalf("first page of one: %+v, cursor %v", page1.Items, page1.NextCursor)
	}
	e.get(fmt.Sprintf("/api/v1/members/%d/entries?period=%s&limit=1&cursor=%s", tr.alice, period, url.QueryEscape(*page1.NextCursor)), tr.aliceT).want(200).decode(&page2)
	if len(page2.Items) != 1 || page2.Items[0].ID != page.Items[1].ID || page2.NextCursor != nil {
		t.Fatalf("second page of one: %+v, cursor %v", page2.Items, page2.NextCursor)
	}
	e.get(fmt.Sprintf("/api/v1/members/%d/entries", tr.alice), tr.leadT).want(200)
	e.get(fmt.Sprintf("/api/v1/members/%d/entries", tr.alice), tr.bobT).want(404)
	e.get(fmt.Sprintf("/api/v1/members/%d/entries?period=2026-13", tr.alice), tr.aliceT).want(422)

	// Reversal: once, not of a reversal, with a reason.
	var rev models.Entry
	e.post(fmt.Sprintf("/api/v1/entries/%d/reverse", first.ID), tr.secT, map[string]string{"reason": ""}).want(422)
	e.post(fmt.Sprintf("/api/v1/entries/%d/reverse", first.ID), tr.secT, map[string]string{"reason": "录入错误"}).want(201).decode(&rev)
	if rev.Points != -25 || rev.ReversesID == nil || *rev.ReversesID != first.ID || rev.Source != "reversal" || rev.Seq != 3 {
		t.Fatalf("reversal: %+v", rev)
	}
	if r := e.post(fmt.Sprintf("/api/v1/entries/%d/reverse", first.ID), tr.secT, map[string]string{"reason": "again"}); r.Status != 409 || !strings.Contains(string(r.Body), "reversed already") {
		t.Fatalf("second reversal: %d %s", r.Status, r.Body)
	}
	e.post(fmt.Sprintf("/api/v1/entries/%d/reverse", rev.ID), tr.secT, map[string]string{"reason": "undo"}).want(409)
	e.post(fmt.Sprintf("/api/v1/entries/%d/reverse", second.ID), tr.bobT, map[string]string{"reason": "x"}).want(404)
	e.post("/api/v1/entries/999999/reverse", tr.secT, map[string]string{"reason": "x"}).want(404)
	var total models.MemberTotal
	e.db.R.Where("member_id = ? AND category = ?", tr.alice, "adjustment").Take(&total)
	if total.Points != -10 {
		t.Fatalf("alice's adjustment total is %s, want -1", total.Points)
	}

	// A closed month takes nothing new until it is reopened with a reason.
	e.post("/api/v1/periods/"+period+"/close", tr.secT, map[string]any{"org_id": e.rootID}).want(404)
	e.post("/api/v1/periods/"+period+"/close", e.adminT, map[string]any{"org_id": tr.b2}).want(200)
	e.post("/api/v1/periods/"+period+"/close", e.adminT, map[string]any{"org_id": tr.g1}).want(422) // a group's entries are its branch's
	bonus(tr.secT, tr.alice, 1).want(201)                                                           // b1 is open
	e.post("/api/v1/periods/"+period+"/close", e.adminT, map[string]any{"org_id": tr.gb1}).want(200)
	e.post("/api/v1/periods/"+period+"/close", e.adminT, map[string]any{"org_id": tr.gb1}).want(409)
	bonus(tr.secT, tr.alice, 1).want(409)
	e.post(fmt.Sprintf("/api/v1/entries/%d/reverse", second.ID), tr.secT, map[string]string{"reason": "x"}).want(409)
	e.post("/api/v1/periods/"+period+"/reopen", e.adminT, map[string]any{"org_id": tr.gb1}).want(422)
	e.post("/api/v1/periods/"+period+"/reopen", e.adminT, map[string]any{"org_id": tr.gb1, "reason": "补录遗漏的志愿活动"}).want(200)
	e.post("/api/v1/periods/"+period+"/reopen", e.adminT, map[string]any{"org_id": tr.gb1, "reason": "again"}).want(409)
	bonus(tr.secT, tr.alice, 1).want(201)
	e.post("/api/v1/periods/2999-01/close", e.adminT, map[string]any{"org_id": e.rootID}).want(422)
	month, _ := time.Parse("2006-01", period)
	e.post("/api/v1/periods/"+month.AddDate(0, 1, 0).Format("2006-01")+"/close", e.adminT, map[string]any{"org_id": e.rootID}).want(422)
	e.post("/api/v1/periods/May/close", e.adminT, map[string]any{"org_id": e.rootID}).want(422)

	// The audit log has all of it, for admins.
	var audit app.List[models.AuditRecord]
	e.get(fmt.Sprintf("/api/v1/audit?org_id=%d&limit=100", e.rootID), e.adminT).want(200).decode(&audit)
	actions := map[string]int{}
	for _, r := range audit.Items {
		actions[r.Action]++
	}
	if actions["entry.manual"] != 4 || actions["entry.reversed"] != 1 || actions["period.closed"] != 2 || actions["period.reopened"] != 1 {
		t.Fatalf("audit actions: %v", actions)
	}
	// The first admin, made at start, is recorded with no actor, by username only.
	for _, r := range audit.Items {
		if r.Action == "bootstrap.admin_created" && (r.ActorID != nil || !strings.Contains(r.After, `"username"`) || strings.Contains(strings.ToLower(r.After), "password")) {
			t.Fatalf("the bootstrap's audit record: %+v", r)
		}
	}
	if actions["bootstrap.admin_created"] != 1 {
		t.Fatalf("audit actions: %v", actions)
	}
	e.get(fmt.Sprintf("/api/v1/audit?org_id=%d", e.rootID), tr.secT).want(403)
	e.get("/api/v1/audit", e.adminT).want(422)
	e.get(fmt.Sprintf("/api/v1/audit?org_id=%d&since=yesterday", e.rootID), e.adminT).want(422)
	// since keeps the records made at or after it, whatever the offset it is written in.
	if audit.NextCursor != nil {
		t.Fatal("the audit log has more than one page; the check below needs all of it")
	}
	mid := audit.Items[len(audit.Items)/2].CreatedAt
	want := 0
	for _, r := range audit.Items {
		if !r.CreatedAt.Before(mid) {
			want++
		}
	}
	beijing := time.FixedZone("CST", 8*3600)
	var since app.List[models.AuditRecord]
	e.get(fmt.Sprintf("/api/v1/audit?org_id=%d&limit=100&since=%s", e.rootID, url.QueryEscape(mid.In(beijing).Format(time.RFC3339Nano))), e.adminT).want(200).decode(&since)
	if len(since.Items) != want || want == len(audit.Items) || since.Items[0].CreatedAt.Before(mid) {
		t.Fatalf("audit since %v: %d records, want %d of %d", mid, len(since.Items), want, len(audit.Items))
	}
	e.get(fmt.Sprintf("/api/v1/audit?org_id=%d&since=%s", e.rootID, url.QueryEscape(time.Now().Add(time.Hour).Format(time.RFC3339))), e.adminT).want(200).decode(&since)
	if len(since.Items) != 0 {
		t.Fatalf("audit since an hour ahead: %d records", len(since.Items))
	}

	// A secretary does not correct their own points; someone above them does.
	var own models.Entry
	bonus(e.adminT, tr.sec, 1).want(201).decode(&own)
	e.post(fmt.Sprintf("/api/v1/entries/%d/reverse", own.ID), tr.secT, map[string]string{"reason": "录入错误"}).want(403)
	e.post(fmt.Sprintf("/api/v1/entries/%d/reverse", own.ID), e.adminT, map[string]string{"reason": "录入错误"}).want(201)

	// Six requests reopening one month at once: one reopens it, the others get 409, and it
	// is reopened once.
	e.post("/api/v1/periods/"+period+"/close", e.adminT, map[string]any{"org_id": tr.gb1}).want(200)
	got := concurrently(6, func(int) int {
		return e.post("/api/v1/periods/"+period+"/reopen", e.adminT, map[string]any{"org_id": tr.gb1, "reason": "补录"}).Status
	})
	var reopened int64
	e.db.R.Model(&models.AuditRecord{}).Where("action = ?", "period.reopened").Count(&reopened)
	if got[200] != 1 || got[409] != 5 || reopened != 2 {
		t.Fatalf("six reopens at once: %v, %d reopenings in the audit log, want 2", got, reopened)
	}

	if _, err := app.Verify(context.Background(), e.db); err != nil {
		t.Fatalf("verify: %v", err)
	}
}

func TestVerifyFindsTampering(t *testing.T) {
	e := newEnv(t, nil)
	tr := e.seedTree()
	var ent models.Entry
	for i := 0; i < 3; i++ {
		e.post("/api/v1/entries", tr.secT, map[string]any{"member_id": tr.alice, "rule_code": "adjust.bonus", "points": 1, "reason": "r", "occurred_on": today(e)}).want(201).decode(&ent)
	}
	if rep, err := app.Verify(context.Background(), e.db); err != nil || rep.Entries != 3 {
		t.Fatalf("verify: %+v %v", rep, err)
	}
	tamper := []struct {
		name, do, undo, want string
	}{
		{"points changed", "UPDATE entries SET points = 100 WHERE id = ?", "UPDATE entries SET points = 10 WHERE id = ?", "does not match its hash"},
		{"total changed", "UPDATE member_totals SET points = points + 1 WHERE member_id = (SELECT member_id FROM entries WHERE id = ?)", "UPDATE member_totals SET points = points - 1 WHERE member_id = (SELECT member_id FROM entries WHERE id = ?)", "entries add up to"},
		{"month total changed", "UPDATE member_months SET points = points - 5 WHERE member_id = (SELECT member_id FROM entries WHERE id = ?)", "UPDATE member_months SET points = points + 5 WHERE member_id = (SELECT member_id FROM entries WHERE id = ?)", "month total"},
		{"四个一 flag set", "UPDATE member_months SET four_ones = 4 WHERE member_id = (SELECT member_id FROM entries WHERE id = ?)", "UPDATE member_months SET four_ones = 0 WHERE member_id = (SELECT member_id FROM entries WHERE id = ?)", "四个一 flags"},
		{"entry removed", "UPDATE entries SET seq = seq + 10 WHERE id = ?", "UPDATE entries SET seq = seq - 10 WHERE id = ?", "place"},
		{"rule total changed", "UPDATE rule_totals SET points = points + 1 WHERE member_id = (SELECT member_id FROM entries WHERE id = ?)", "UPDATE rule_totals SET points = points - 1 WHERE member_id = (SELECT member_id FROM entries WHERE id = ?)", "total under adjust.bonus"},
		{"chain head's place changed", "UPDATE member_chains SET seq = seq + 1 WHERE member_id = (SELECT member_id FROM entries WHERE id = ?)", "UPDATE member_chains SET seq = seq - 1 WHERE member_id = (SELECT member_id FROM entries WHERE id = ?)", "chain head says place 4"},
		{"chain head's hash changed", "UPDATE member_chains SET last_hash = (SELECT prev_hash FROM entries WHERE id = ?) WHERE member_id = (SELECT member_id FROM entries WHERE id = ?)",
			"UPDATE member_chains SET last_hash = (SELECT hash FROM entries WHERE id = ?) WHERE member_id = (SELECT member_id FROM entries WHERE id = ?)", "chain head says place 3"},
	}
	for _, c := range tamper {
		if err := e.db.W.Exec(c.do, slices.Repeat([]any{ent.ID}, strings.Count(c.do, "?"))...).Error; err != nil {
			t.Fatal(err)
		}
		_, err := app.Verify(context.Background(), e.db)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), fmt.Sprintf("member %d", tr.alice)) {
			t.Fatalf("%s: verify said %v", c.name, err)
		}
		if err := e.db.W.Exec(c.undo, slices.Repeat([]any{ent.ID}, strings.Count(c.undo, "?"))...).Error; err != nil {
			t.Fatal(err)
		}
		if _, err := app.Verify(context.Background(), e.db); err != nil {
			t.Fatalf("%s undone: %v", c.name, err)
		}
	}

	// An entry rewritten with a hash to match: the next entry no longer links to it.
	var second models.Entry
	e.db.R.Where("member_id = ? AND seq = 2", tr.alice).Take(&second)
	forged := second
	forged.Points = 100
	forged.Hash = app.EntryHash(forged)
	if err := e.db.W.Model(&models.Entry{}).Where("id = ?", second.ID).Updates(map[string]any{"points": forged.Points, "hash": forged.Hash}).Error; err != nil {
		t.Fatal(err)
	}
	if _, err := app.Verify(context.Background(), e.db); err == nil || !strings.Contains(err.Error(), "does not link to the entry before it (chain broken at place 3)") {
		t.Fatalf("rewritten entry: verify said %v", err)
	}
	if err := e.db.W.Model(&models.Entry{}).Where("id = ?", second.ID).Updates(map[string]any{"points": second.Points, "hash": second.Hash}).Error; err != nil {
		t.Fatal(err)
	}

	// Each kind of row kept beside the entries, removed: verify misses it, and passes once
	// it is back.
	type committeeCount struct {
		Period      string
		CommitteeID int64
		Points      int64
		Members     int64
	}
	for _, c := range []struct {
		table, want string
		rows        any
	}{
		{"member_totals", "no total of adjustment", &[]models.MemberTotal{}},
		{"rule_totals", "no total under adjust.bonus", &[]models.RuleTotal{}},
		{"member_months", "no month total", &[]models.MemberMonth{}},
		{"member_chains", "has entries but no chain head", &[]models.MemberChain{}},
		{"committee_points", "has no count of members at 3 points", &[]committeeCount{}},
	} {
		if err := e.db.W.Table(c.table).Find(c.rows).Error; err != nil {
			t.Fatal(err)
		}
		if reflect.ValueOf(c.rows).Elem().Len() == 0 {
			t.Fatalf("%s: no rows to remove", c.table)
		}
		if err := e.db.W.Exec("DELETE FROM " + c.table).Error; err != nil {
			t.Fatal(err)
		}
		if _, err := app.Verify(context.Background(), e.db); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("%s removed: verify said %v", c.table, err)
		}
		if err := e.db.W.Table(c.table).Create(c.rows).Error; err != nil {
			t.Fatal(err)
		}
		if _, err := app.Verify(context.Background(), e.db); err != nil {
			t.Fatalf("%s put back: %v", c.table, err)
		}
	}
}

func TestConcurrentEntriesKeepOneChain(t *testing.T) {
	e := newEnv(t, nil)
	tr := e.seedTree()
	got := concurrently(20, func(int) int {
		return e.post("/api/v1/entries", tr.secT, map[string]any{"member_id": tr.alice, "rule_code": "adjust.bonus", "points": 0.5, "reason": "r", "occurred_on": today(e)}).Status
	})
	if got[201] != 20 {
		t.Fatalf("statuses %v", got)
	}
	var ent models.Entry
	e.db.R.Where("member_id = ?", tr.alice).Order("seq DESC").Take(&ent)
	got = concurrently(10, func(int) int {
		return e.post(fmt.Sprintf("/api/v1/entries/%d/reverse", ent.ID), tr.secT, map[string]string{"reason": "dup"}).Status
	})
	if got[201] != 1 || got[409] != 9 {
		t.Fatalf("ten reversals of one entry: %v", got)
	}
	rep, err := app.Verify(context.Background(), e.db)
	if err != nil || rep.Entries != 21 {
		t.Fatalf("verify: %+v %v", rep, err)
	}
	var total models.MemberTotal
	e.db.R.Where("member_id = ?", tr.alice).Take(&total)
	if total.Points != 95 {
		t.Fatalf("total %s, want 9.5", total.Points)
	}
}
