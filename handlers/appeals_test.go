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

func TestAppealsInThePublicityWindow(t *testing.T) {
	e := newEnv(t, nil)
	tr := e.seedTree()
	P := models.Period(today(e)[:7])
	rule := models.FourOnesRules[0]
	claim := func(token string) models.Claim {
		t.Helper()
		var c models.Claim
		e.claim(token, "", map[string]any{"rule_code": rule, "occurred_on": today(e), "quantity": 1, "evidence_ids": []int64{e.uploadID(token)}}).want(201).decode(&c)
		return c
	}
	rejected := claim(tr.aliceT)
	e.post(fmt.Sprintf("/api/v1/claims/%d/reject", rejected.ID), tr.secT, map[string]string{"reason": "照片不清楚"}).want(200)
	approved := claim(tr.aliceT)
	e.post("/api/v1/entries", e.adminT, map[string]any{"member_id": tr.alice, "rule_code": "adjust.bonus", "points": 3, "reason": "表彰", "occurred_on": today(e)}).want(201)

	appeal := func(token string, body map[string]any) *result { return e.post("/api/v1/appeals", token, body) }
	// Nothing to appeal before the month is closed and published.
	if r := appeal(tr.aliceT, map[string]any{"period": P, "reason": "积分有误"}); r.Status != 409 || !strings.Contains(string(r.Body), "not been closed") {
		t.Fatalf("appeal before the month closed: %d %s", r.Status, r.Body)
	}
	e.post("/api/v1/periods/"+string(P)+"/close", e.adminT, map[string]any{"org_id": e.rootID}).want(200)

	var onClaim, onMonth models.Appeal
	appeal(tr.aliceT, map[string]any{"period": P, "claim_id": rejected.ID, "reason": "照片已补充"}).want(201).decode(&onClaim)
	appeal(tr.aliceT, map[string]any{"period": P, "claim_id": rejected.ID, "reason": "again"}).want(409)
	appeal(tr.aliceT, map[string]any{"period": P, "reason": "四个一应为完成"}).want(201).decode(&onMonth)
	appeal(tr.aliceT, map[string]any{"period": P, "claim_id": 999999, "reason": "r"}).want(404)
	// A claim is appealed in the month it was for.
	month, _ := time.Parse("2006-01", string(P))
	wrong := appeal(tr.aliceT, map[string]any{"period": month.AddDate(0, -1, 0).Format("2006-01"), "claim_id": rejected.ID, "reason": "r"}).want(422)
	if wrong.errFields()["claim_id"] == "" {
		t.Fatalf("a claim appealed in another month: %s", wrong.Body)
	}
	appeal(tr.bobT, map[string]any{"period": P, "claim_id": rejected.ID, "reason": "r"}).want(404) // not his
	var pending models.Claim
	e.get(fmt.Sprintf("/api/v1/claims/%d", approved.ID), tr.aliceT).want(200).decode(&pending)
	appeal(tr.aliceT, map[string]any{"period": P, "claim_id": pending.ID, "reason": "r"}).want(409) // not rejected
	appeal(tr.aliceT, map[string]any{"period": P, "reason": " "}).want(422)
	appeal(tr.aliceT, map[string]any{"period": "2026-13", "reason": "r"}).want(422)
	appeal(tr.aliceT, map[string]any{"period": P, "reason": "r", "extra": 1}).want(422)
	if onClaim.Status != "open" || onClaim.ClaimID == nil || *onClaim.ClaimID != rejected.ID || onClaim.MemberID != tr.alice {
		t.Fatalf("appeal: %+v", onClaim)
	}

	// Who sees them: the member, and leaders and admins above the branch.
	count := func(token string) int {
		var l app.List[models.Appeal]
		e.get("/api/v1/appeals?status=open", token).want(200).decode(&l)
		return len(l.Items)
	}
	if a, l, s, b := count(tr.aliceT), count(tr.leadT), count(tr.secT), count(tr.bobT); a != 2 || l != 2 || s != 0 || b != 0 {
		t.Fatalf("visible appeals: alice %d, leader %d, secretary %d, bob %d", a, l, s, b)
	}
	e.get("/api/v1/appeals?status=lost", tr.aliceT).want(422)

	// Who decides: never the member, never the secretary who decided the claim, not a
	// secretary at all.
	uphold := func(token string, id int64, body map[string]any) *result {
		return e.post(fmt.Sprintf("/api/v1/appeals/%d/uphold", id), token, body)
	}
	uphold(tr.secT, onClaim.ID, map[string]any{"points": 2, "reason": "r"}).want(404)
	uphold(tr.aliceT, onClaim.ID, map[string]any{"points": 2, "reason": "r"}).want(403)
	e.json("PUT", fmt.Sprintf("/api/v1/members/%d/roles", tr.sec), e.adminT, []map[string]any{{"role": "secretary", "org_id": tr.b1}, {"role": "leader", "org_id": tr.gb1}}).want(200)
	secT := e.tokenFor(tr.sec)
	uphold(secT, onClaim.ID, map[string]any{"points": 2, "reason": "r"}).want(403)
	uphold(tr.leadT, onClaim.ID, map[string]any{"points": 0, "reason": "r"}).want(422)
	uphold(tr.leadT, onClaim.ID, map[string]any{"points": -2, "reason": "r"}).want(422)
	uphold(tr.leadT, onMonth.ID, map[string]any{"points": 100.1, "reason": "r"}).want(422) // a correction is 100 points at most
	uphold(tr.leadT, onMonth.ID, map[string]any{"points": -100.1, "reason": "r"}).want(422)
	uphold(tr.leadT, onClaim.ID, map[string]any{"points": 2}).want(422)
	uphold(tr.leadT, 999999, map[string]any{"points": 2, "reason": "r"}).want(404)

	// Upholding records a correcting entry in the closed month; other writes stay locked.
	var d struct {
		Appeal models.Appeal
		Entry  *models.Entry
	}
	uphold(tr.leadT, onClaim.ID, map[string]any{"points": 2, "reason": "照片已核实"}).want(200).decode(&d)
	if d.Appeal.Status != "upheld" || d.Entry == nil || d.Entry.Source != "appeal" || d.Entry.Period != P || d.Entry.RuleCode != rule ||
		d.Entry.Points != 20 || d.Appeal.EntryID == nil || *d.Appeal.EntryID != d.Entry.ID || *d.Appeal.DecidedBy != tr.lead {
		t.Fatalf("upheld: %+v %+v", d.Appeal, d.Entry)
	}
	if r := uphold(tr.leadT, onClaim.ID, map[string]any{"points": 2, "reason": "again"}); r.Status != 409 || !strings.Contains(string(r.Body), "upheld already") {
		t.Fatalf("second decision: %d %s", r.Status, r.Body)
	}
	e.post(fmt.Sprintf("/api/v1/appeals/%d/dismiss", onClaim.ID), tr.leadT, map[string]any{"reason": "r"}).want(409)
	e.post("/api/v1/entries", e.adminT, map[string]any{"member_id": tr.alice, "rule_code": "adjust.bonus", "points": 1, "reason": "r", "occurred_on": today(e)}).want(409)

	// Dismissing needs a reason; one decision each.
	e.post(fmt.Sprintf("/api/v1/appeals/%d/dismiss", onMonth.ID), tr.leadT, map[string]any{"reason": ""}).want(422)
	e.post(fmt.Sprintf("/api/v1/appeals/%d/dismiss", onMonth.ID), tr.leadT, map[string]any{"reason": "其余三项未提交"}).want(200).decode(&d)
	if d.Appeal.Status != "dismissed" || d.Entry != nil || d.Appeal.DecisionReason == nil {
		t.Fatalf("dismissed: %+v", d)
	}
	uphold(tr.leadT, onMonth.ID, map[string]any{"points": 1, "reason": "r"}).want(409)

	// Alice's appeals by status, and page by page, newest first.
	listed := func(q string) []int64 {
		var ids []int64
		for cursor, pages := "", 0; ; pages++ {
			if pages > 10 {
				t.Fatalf("appeals?%s: the pages never end", q)
			}
			var l app.List[models.Appeal]
			e.get("/api/v1/appeals?"+q+"&cursor="+cursor, tr.aliceT).want(200).decode(&l)
			for _, ap := range l.Items {
				ids = append(ids, ap.ID)
			}
			if l.NextCursor == nil {
				return ids
			}
			cursor = *l.NextCursor
		}
	}
	for q, want := range map[string][]int64{
		"status=upheld": {onClaim.ID}, "status=dismissed": {onMonth.ID}, "status=open": nil, "limit=1": {onMonth.ID, onClaim.ID},
	} {
		if got := listed(q); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("alice's appeals?%s: %v, want %v", q, got, want)
		}
	}
	// A list with nothing in it is an empty array, not null, for the mini-program.
	if r := e.get("/api/v1/appeals?status=open", tr.aliceT).want(200); !strings.Contains(string(r.Body), `"items":[]`) {
		t.Fatalf("an empty list: %s", r.Body)
	}

	// The closed month's total now includes the correction, and the ledger verifies.
	var sum struct {
		Total    models.Points
		FourOnes map[string]bool `json:"four_ones"`
	}
	e.get(fmt.Sprintf("/api/v1/members/%d/summary?period=%s", tr.alice, P), tr.aliceT).want(200).decode(&sum)
	if sum.Total != 50 || !sum.FourOnes["listen_masses"] {
		t.Fatalf("alice's month after the appeal: %+v", sum)
	}
	if _, err := app.Verify(context.Background(), e.db); err != nil {
		t.Fatal(err)
	}
	var audit app.List[models.AuditRecord]
	e.get(fmt.Sprintf("/api/v1/audit?org_id=%d&limit=100", e.rootID), e.adminT).want(200).decode(&audit)
	actions := map[string]int{}
	for _, r := range audit.Items {
		actions[r.Action]++
	}
	if actions["appeal.filed"] != 2 || actions["appeal.upheld"] != 1 || actions["appeal.dismissed"] != 1 {
		t.Fatalf("audit: %v", actions)
	}

	// A leader and an admin upholding one appeal at once, three times each: one correction
	// is written.
	var bobs models.Appeal
	appeal(tr.bobT, map[string]any{"period": P, "reason": "志愿时长漏记"}).want(201).decode(&bobs)
	leaders := []string{tr.leadT, e.adminT}
	got := concurrently(6, func(i int) int {
		return uphold(leaders[i%2], bobs.ID, map[string]any{"points": 1, "reason": "已核实"}).Status
	})
	var corrections int64
	e.db.R.Model(&models.Entry{}).Where("member_id = ? AND source = ?", tr.bob, "appeal").Count(&corrections)
	if got[200] != 1 || got[409] != 5 || corrections != 1 {
		t.Fatalf("six upholds at once: %v, %d corrections", got, corrections)
	}
	if _, err := app.Verify(context.Background(), e.db); err != nil {
		t.Fatal(err)
	}

	// A month's correction may take points away: it is a deduction.
	var carols models.Appeal
	appeal(tr.carT, map[string]any{"period": P, "reason": "志愿时长多记"}).want(201).decode(&carols)
	uphold(tr.leadT, carols.ID, map[string]any{"points": -1.5, "reason": "重复登记"}).want(200).decode(&d)
	if d.Entry == nil || d.Entry.RuleCode != "adjust.deduct" || d.Entry.Points != -15 || d.Entry.MemberID != tr.carol || d.Entry.Period != P {
		t.Fatalf("a month's correction downwards: %+v", d.Entry)
	}

	// After the window the month is final.
	past := time.Now().Add(-time.Hour).UTC()
	if err := e.db.W.Model(&models.ClosedPeriod{}).Where("period = ?", P).Update("public_until", past).Error; err != nil {
		t.Fatal(err)
	}
	appeal(tr.bobT, map[string]any{"period": P, "reason": "r"}).want(409)
}
