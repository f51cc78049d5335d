package handlers_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"mime/multipart"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"partyledger/app"
	"partyledger/handlers"
	"partyledger/models"
)

// Smallest bytes each format is recognised by.
var (
	pngBytes  = append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), bytes.Repeat([]byte{7}, 64)...)
	jpegBytes = append([]byte("\xff\xd8\xff\xe0\x00\x10JFIF\x00"), bytes.Repeat([]byte{7}, 64)...)
	webpBytes = append([]byte("RIFF\x24\x00\x00\x00WEBPVP8 "), bytes.Repeat([]byte{7}, 64)...)
)

func (e *testEnv) upload(token, name string, data []byte) *result {
	e.t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	fw, _ := w.CreateFormFile("file", name)
	fw.Write(data)
	w.Close()
	return e.send(request{method: "POST", path: "/api/v1/uploads", token: token, ctype: w.FormDataContentType(), body: buf.Bytes()})
}

func (e *testEnv) uploadID(token string) int64 {
	e.t.Helper()
	var u struct{ ID int64 }
	e.upload(token, "photo.png", pngBytes).want(201).decode(&u)
	return u.ID
}

func (e *testEnv) claim(token, key string, body map[string]any) *result {
	e.t.Helper()
	raw, _ := jsonMarshal(body)
	h := map[string]string{}
	if key != "" {
		h["Idempotency-Key"] = key
	}
	return e.send(request{method: "POST", path: "/api/v1/claims", token: token, ctype: "application/json", body: raw, header: h})
}

func TestUploads(t *testing.T) {
	e := newEnv(t, nil)
	tr := e.seedTree()
	for name, data := range map[string][]byte{"a.png": pngBytes, "a.jpg": jpegBytes, "a.webp": webpBytes} {
		e.upload(tr.aliceT, name, data).want(201)
	}
	e.upload(tr.aliceT, "a.gif", []byte("GIF89a\x01\x00\x01\x00")).want(415)
	e.upload(tr.aliceT, "evil.jpg", []byte("<html><script>alert(1)</script></html>")).want(415)
	e.upload(tr.aliceT, "big.png", append(append([]byte{}, pngBytes...), make([]byte, app.MaxUploadBytes)...)).want(413)
	e.upload(tr.aliceT, "empty.png", nil).want(422)
	e.send(request{method: "POST", path: "/api/v1/uploads", token: tr.aliceT, ctype: "image/png", body: pngBytes}).want(415)
	var up struct {
		ID  int64
		URL string
	}
	e.upload(tr.aliceT, "photo.png", pngBytes).want(201).decode(&up)
	id := up.ID
	if up.URL != fmt.Sprintf("/api/v1/uploads/%d", id) {
		t.Fatalf("upload %d answered with url %q", id, up.URL)
	}
	r := e.get(up.URL, tr.aliceT).want(200)
	if !bytes.Equal(r.Body, pngBytes) || r.Header.Get("Content-Type") != "image/png" || r.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("served %d bytes as %q", len(r.Body), r.Header.Get("Content-Type"))
	}
	// A member's photo stays out of shared caches, and nothing in it may run or load.
	if r.Header.Get("Cache-Control") != "private, max-age=3600" || r.Header.Get("Content-Security-Policy") != "default-src 'none'" {
		t.Fatalf("photo served with Cache-Control %q, Content-Security-Policy %q", r.Header.Get("Cache-Control"), r.Header.Get("Content-Security-Policy"))
	}
	// Others see it only once it is evidence of a claim they may see.
	e.get(fmt.Sprintf("/api/v1/uploads/%d", id), tr.secT).want(404)
	e.claim(tr.aliceT, "", map[string]any{"rule_code": "four_ones.read_theory", "occurred_on": today(e), "evidence_ids": []int64{id}}).want(201)
	e.get(fmt.Sprintf("/api/v1/uploads/%d", id), tr.secT).want(200)
	e.get(fmt.Sprintf("/api/v1/uploads/%d", id), tr.leadT).want(200)
	e.get(fmt.Sprintf("/api/v1/uploads/%d", id), tr.bobT).want(404)
	e.get("/api/v1/uploads/999999", tr.aliceT).want(404)

	// Each upload is in the audit log, under its owner's branch: who, what, when, and
	// never where it is stored.
	var audit app.List[models.AuditRecord]
	e.get(fmt.Sprintf("/api/v1/audit?org_id=%d&limit=100", tr.b1), e.adminT).want(200).decode(&audit)
	uploads := 0
	for _, rec := range audit.Items {
		if rec.Action != "upload.created" {
			continue
		}
		uploads++
		if rec.ActorID == nil || *rec.ActorID != tr.alice || rec.OrgID == nil || *rec.OrgID != tr.b1 || strings.Contains(rec.After, "uploads/") || !strings.Contains(rec.After, `"sha256"`) {
			t.Fatalf("an upload's audit record: %+v", rec)
		}
	}
	if uploads != 4 { // the three formats and photo.png; the refused ones are not
		t.Fatalf("%d uploads in the audit log, want 4", uploads)
	}
}

func TestClaimLifecycle(t *testing.T) {
	e := newEnv(t, nil)
	tr := e.seedTree()
	day := today(e)
	photo := e.uploadID(tr.aliceT)
	read := map[string]any{"rule_code": "four_ones.read_theory", "occurred_on": day, "note": "读《习近平谈治国理政》", "evidence_ids": []int64{photo}}
	var c models.Claim
	e.claim(e.adminT, "", read).want(403) // the admin is a member of the committee, not of a branch
	e.claim(tr.aliceT, "", read).want(201).decode(&c)
	if c.Status != "pending" || c.PointsRequested != 20 || c.Quantity != 10 || c.BranchID != tr.b1 || len(c.EvidenceIDs) != 1 || c.RuleVersion != 1 {
		t.Fatalf("claim: %+v", c)
	}
	// Who sees it, with its photos.
	var got models.Claim
	e.get(fmt.Sprintf("/api/v1/claims/%d", c.ID), tr.secT).want(200).decode(&got)
	if fmt.Sprint(got.EvidenceIDs) != fmt.Sprint([]int64{photo}) {
		t.Fatalf("read: photos %v, want [%d]", got.EvidenceIDs, photo)
	}
	e.get(fmt.Sprintf("/api/v1/claims/%d", c.ID), tr.bobT).want(404)
	e.get(fmt.Sprintf("/api/v1/claims/%d", c.ID), tr.leadT).want(200) // a leader above the branch
	var q app.List[models.Claim]
	e.get("/api/v1/approvals", tr.secT).want(200).decode(&q)
	if len(q.Items) != 1 || q.Items[0].ID != c.ID {
		t.Fatalf("queue: %+v", q.Items)
	}
	e.get("/api/v1/approvals", tr.aliceT).want(403)
	// An admin holds every power of the roles below them: the queue of their subtree too.
	e.get("/api/v1/approvals", e.adminT).want(200).decode(&q)
	if len(q.Items) != 1 || q.Items[0].ID != c.ID {
		t.Fatalf("the admin's queue: %+v", q.Items)
	}
	// A plain member holds the member role over their branch, and /me says so.
	var me struct{ Roles []app.Grant }
	e.get("/api/v1/me", tr.aliceT).want(200).decode(&me)
	if len(me.Roles) != 1 || me.Roles[0].Role != models.RoleMember || me.Roles[0].OrgID != tr.b1 {
		t.Fatalf("alice's roles: %+v", me.Roles)
	}
	e.get(fmt.Sprintf("/api/v1/claims?member_id=%d", tr.alice), tr.bobT).want(404)

	// Approve once; a second decision is a conflict.
	var d app.Decision
	e.post(fmt.Sprintf("/api/v1/claims/%d/approve", c.ID), tr.bobT, nil).want(404)
	e.post(fmt.Sprintf("/api/v1/claims/%d/approve", c.ID), tr.secT, nil).want(200).decode(&d)
	if d.Capped || d.Entry == nil || d.Entry.Points != 20 || d.Entry.Source != "claim" || *d.Entry.ClaimID != c.ID || d.Claim.Status != "approved" || *d.Claim.PointsAwarded != 20 ||
		fmt.Sprint(d.Claim.EvidenceIDs) != fmt.Sprint([]int64{photo}) {
		t.Fatalf("decision: %+v", d)
	}
	e.post(fmt.Sprintf("/api/v1/claims/%d/approve", c.ID), tr.secT, nil).want(409)
	e.post(fmt.Sprintf("/api/v1/claims/%d/reject", c.ID), tr.secT, map[string]string{"reason": "x"}).want(409)
	e.post(fmt.Sprintf("/api/v1/claims/%d/withdraw", c.ID), tr.aliceT, nil).want(409)
	// The same duty again in the month: the cap (2) is reached, so nothing more is awarded.
	e.claim(tr.aliceT, "", read).want(201).decode(&c)
	e.post(fmt.Sprintf("/api/v1/claims/%d/approve", c.ID), tr.secT, nil).want(200).decode(&d)
	if !d.Capped || d.Entry != nil || *d.Claim.PointsAwarded != 0 {
		t.Fatalf("capped decision: %+v", d)
	}

	// Reject needs a reason; withdraw is the owner's, for pending claims. Every answer
	// carries the claim's photos, in order.
	second := e.uploadID(tr.aliceT)
	two := map[string]any{"rule_code": "four_ones.read_theory", "occurred_on": day, "evidence_ids": []int64{second, photo}}
	e.claim(tr.aliceT, "", two).want(201).decode(&c)
	if fmt.Sprint(c.EvidenceIDs) != fmt.Sprint([]int64{photo, second}) {
		t.Fatalf("filed: photos %v", c.EvidenceIDs)
	}
	e.post(fmt.Sprintf("/api/v1/claims/%d/reject", c.ID), tr.secT, map[string]string{"reason": " "}).want(422)
	e.post(fmt.Sprintf("/api/v1/claims/%d/reject", c.ID), tr.secT, map[string]string{"reason": "照片与活动无关"}).want(200).decode(&c)
	if c.Status != "rejected" || c.Reason == nil || *c.Reason != "照片与活动无关" || fmt.Sprint(c.EvidenceIDs) != fmt.Sprint([]int64{photo, second}) {
		t.Fatalf("rejected: %+v", c)
	}
	e.claim(tr.aliceT, "", read).want(201).decode(&c)
	e.post(fmt.Sprintf("/api/v1/claims/%d/withdraw", c.ID), tr.bobT, nil).want(404)
	e.post(fmt.Sprintf("/api/v1/claims/%d/withdraw", c.ID), tr.aliceT, nil).want(200).decode(&got)
	if got.Status != "withdrawn" || fmt.Sprint(got.EvidenceIDs) != fmt.Sprint([]int64{photo}) {
		t.Fatalf("withdrawn: %+v", got)
	}
	e.post(fmt.Sprintf("/api/v1/claims/%d/approve", c.ID), tr.secT, nil).want(409)

	// Nobody decides their own claim.
	secPhoto := e.uploadID(tr.secT)
	e.claim(tr.secT, "", map[string]any{"rule_code": "four_ones.volunteer", "occurred_on": day, "evidence_ids": []int64{secPhoto}}).want(201).decode(&c)
	e.post(fmt.Sprintf("/api/v1/claims/%d/approve", c.ID), tr.secT, nil).want(403)

	// The queue holds pending claims and never the secretary's own; decided ones on request.
	e.get("/api/v1/approvals", tr.secT).want(200).decode(&q)
	if len(q.Items) != 0 {
		t.Fatalf("queue after the decisions: %+v", q.Items)
	}
	e.get("/api/v1/approvals?status=rejected", tr.secT).want(200).decode(&q)
	if len(q.Items) != 1 || q.Items[0].Status != "rejected" || q.Items[0].MemberID != tr.alice {
		t.Fatalf("rejected in the queue: %+v", q.Items)
	}
	// A member's own claims, by status and by month.
	statuses := func(path string) []string {
		var l app.List[models.Claim]
		e.get(path, tr.aliceT).want(200).decode(&l)
		var out []string
		for _, c := range l.Items {
			out = append(out, c.Status)
		}
		return out
	}
	if got := statuses("/api/v1/claims?status=approved"); fmt.Sprint(got) != "[approved approved]" {
		t.Fatalf("alice's approved claims: %v", got)
	}
	if got := statuses("/api/v1/claims?period=" + day[:7]); fmt.Sprint(got) != "[approved approved rejected withdrawn]" {
		t.Fatalf("alice's claims this month: %v", got)
	}
	month, _ := time.Parse("2006-01", day[:7])
	if got := statuses("/api/v1/claims?period=" + month.AddDate(0, -1, 0).Format("2006-01")); len(got) != 0 {
		t.Fatalf("alice's claims last month: %v", got)
	}

	// Volunteer hours: 0.5 steps, capped at 10 a month.
	hours := func(q any) *result {
		return e.claim(tr.aliceT, "", map[string]any{"rule_code": "volunteer.hours", "occurred_on": day, "quantity": q, "evidence_ids": []int64{photo}})
	}
	for _, bad := range []any{0.3, 0, -1, 24.5, 1.25} {
		if r := hours(bad); r.Status != 422 {
			t.Errorf("quantity %v: %d %s", bad, r.Status, r.Body)
		}
	}
	hours(8).want(201).decode(&c)
	e.post(fmt.Sprintf("/api/v1/claims/%d/approve", c.ID), tr.secT, nil).want(200).decode(&d)
	hours(3.5).want(201).decode(&c)
	if c.PointsRequested != 35 {
		t.Fatalf("3.5 hours request %s points", c.PointsRequested)
	}
	e.post(fmt.Sprintf("/api/v1/claims/%d/approve", c.ID), tr.secT, nil).want(200).decode(&d)
	if !d.Capped || d.Entry.Points != 20 {
		t.Fatalf("hours over the cap: %+v", d)
	}

	// Bad claims.
	other := e.uploadID(tr.bobT)
	for name, body := range map[string]map[string]any{
		"unknown rule":      {"rule_code": "nope", "occurred_on": day},
		"check-in rule":     {"rule_code": "activity.day", "occurred_on": day},
		"manual rule":       {"rule_code": "adjust.bonus", "occurred_on": day},
		"future":            {"rule_code": "four_ones.read_theory", "occurred_on": time.Now().AddDate(0, 0, 3).Format("2006-01-02"), "evidence_ids": []int64{photo}},
		"not a date":        {"rule_code": "four_ones.read_theory", "occurred_on": "yesterday", "evidence_ids": []int64{photo}},
		"no evidence":       {"rule_code": "four_ones.read_theory", "occurred_on": day},
		"someone's photo":   {"rule_code": "four_ones.read_theory", "occurred_on": day, "evidence_ids": []int64{other}},
		"too many photos":   {"rule_code": "four_ones.read_theory", "occurred_on": day, "evidence_ids": []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
		"quantity for once": {"rule_code": "four_ones.read_theory", "occurred_on": day, "evidence_ids": []int64{photo}, "quantity": 2},
		"long note":         {"rule_code": "four_ones.read_theory", "occurred_on": day, "evidence_ids": []int64{photo}, "note": strings.Repeat("长", 501)},
		"assignment given":  {"rule_code": "four_ones.read_theory", "occurred_on": day, "evidence_ids": []int64{photo}, "assignment_id": 1},
	} {
		if r := e.claim(tr.aliceT, "", body); r.Status != 422 {
			t.Errorf("%s: %d %s", name, r.Status, r.Body)
		}
	}

	// Pioneer posts: a claim needs an assignment active on the day.
	var post models.Post
	e.post("/api/v1/posts", tr.aliceT, map[string]any{"branch_id": tr.b1, "name": "教学先锋岗"}).want(404)
	e.post("/api/v1/posts", tr.secT, map[string]any{"branch_id": tr.b1, "name": "教学先锋岗", "duties": "承担本科生党课"}).want(201).decode(&post)
	if r := e.post("/api/v1/posts", tr.secT, map[string]any{"branch_id": tr.b1, "name": "教学先锋岗"}).want(409); !strings.Contains(string(r.Body), "教学先锋岗") {
		t.Fatalf("a second post of one name: %s, want the name in the message", r.Body)
	}
	e.post("/api/v1/posts", tr.secT, map[string]any{"branch_id": tr.b2, "name": "科研先锋岗"}).want(404)
	if r := e.post("/api/v1/posts", e.adminT, map[string]any{"branch_id": tr.gb1, "name": "总支先锋岗"}); r.Status != 422 || r.errFields()["branch_id"] == "" {
		t.Fatalf("a post of a general branch: %d %s", r.Status, r.Body)
	}
	var as models.PostAssignment
	assign := func(member int64, from, to string) *result {
		return e.post(fmt.Sprintf("/api/v1/posts/%d/assignments", post.ID), tr.secT, map[string]any{"member_id": member, "starts_on": from, "ends_on": to, "commitment": "亮身份、亮职责、亮承诺"})
	}
	assign(tr.bob, day, day).want(422) // not of this branch
	var gone models.Member
	e.post("/api/v1/members", e.adminT, map[string]any{"member_no": "A009", "name": "赵离职", "branch_id": tr.b1}).want(201).decode(&gone)
	e.json("PATCH", fmt.Sprintf("/api/v1/members/%d", gone.ID), e.adminT, map[string]string{"status": "inactive"}).want(200)
	if f := assign(gone.ID, day, day).want(422).errFields(); f["member_id"] == "" {
		t.Fatalf("a post for a disabled member: fields %v", f)
	}
	// Only the branch's secretary assigns: not a member to herself.
	e.post(fmt.Sprintf("/api/v1/posts/%d/assignments", post.ID), tr.aliceT, map[string]any{"member_id": tr.alice, "starts_on": day, "ends_on": day, "commitment": "亮身份"}).want(404)
	assign(tr.alice, day, "2000-01-01").want(422)
	long := map[string]any{"member_id": tr.alice, "starts_on": day, "ends_on": day, "commitment": strings.Repeat("诺", 1001)}
	if f := e.post(fmt.Sprintf("/api/v1/posts/%d/assignments", post.ID), tr.secT, long).want(422).errFields(); f["commitment"] == "" {
		t.Fatalf("a commitment of 1001 characters: fields %v", f)
	}
	// A post with nobody on it lists an empty array of assignments, not null.
	if r := e.get("/api/v1/posts", tr.aliceT).want(200); !strings.Contains(string(r.Body), `"assignments":[]`) {
		t.Fatalf("a post with no assignments: %s", r.Body)
	}
	yearStart, yearEnd := day[:4]+"-01-01", day[:4]+"-12-31"
	assign(tr.alice, yearStart, yearEnd).want(201).decode(&as)
	var posts app.List[app.PostWithAssignments]
	e.get("/api/v1/posts", tr.aliceT).want(200).decode(&posts)
	if len(posts.Items) != 1 || len(posts.Items[0].Assignments) != 1 {
		t.Fatalf("alice sees posts %+v", posts.Items)
	}
	e.get("/api/v1/posts", tr.bobT).want(200).decode(&posts) // b1's posts are not b2's
	if len(posts.Items) != 0 {
		t.Fatalf("bob sees posts %+v", posts.Items)
	}
	pioneer := func(asg any, on string) *result {
		return e.claim(tr.aliceT, "", map[string]any{"rule_code": "pioneer.duty", "occurred_on": on, "assignment_id": asg})
	}
	if r := pioneer(nil, day).want(422); !strings.Contains(r.errFields()["assignment_id"], "needs your pioneer-post assignment") {
		t.Fatalf("pioneer duty without an assignment: %s, want assignment_id named", r.Body)
	}
	pioneer(as.ID, fmt.Sprintf("%d-12-31", time.Now().Year()-1)).want(422) // before it starts
	if f := e.claim(tr.aliceT, "", map[string]any{"rule_code": "pioneer.duty", "occurred_on": day, "assignment_id": as.ID, "note": strings.Repeat("记", 501)}).want(422).errFields(); f["note"] == "" {
		t.Fatalf("a note of 501 characters: fields %v", f)
	}
	var ended models.PostAssignment
	assign(tr.alice, "2000-01-01", time.Now().In(e.cfg.Location).AddDate(0, 0, -1).Format("2006-01-02")).want(201).decode(&ended)
	if f := pioneer(ended.ID, day).want(422).errFields(); f["assignment_id"] == "" {
		t.Fatalf("pioneer duty after the assignment ended: fields %v", f)
	}
	pioneer(as.ID, day).want(201).decode(&c)
	e.post(fmt.Sprintf("/api/v1/claims/%d/approve", c.ID), tr.secT, nil).want(200).decode(&d)
	if d.Entry.Points != 30 || d.Entry.Category != "pioneer" {
		t.Fatalf("pioneer entry: %+v", d.Entry)
	}
	// A member who has moved to another branch no longer holds the old branch's post.
	var mover models.Member
	e.post("/api/v1/members", e.adminT, map[string]any{"member_no": "A010", "name": "钱调动", "branch_id": tr.b1}).want(201).decode(&mover)
	var moverAs models.PostAssignment
	assign(mover.ID, yearStart, yearEnd).want(201).decode(&moverAs)
	e.json("PATCH", fmt.Sprintf("/api/v1/members/%d", mover.ID), e.adminT, map[string]any{"branch_id": tr.b2}).want(200)
	if r := e.claim(e.tokenFor(mover.ID), "", map[string]any{"rule_code": "pioneer.duty", "occurred_on": day, "assignment_id": moverAs.ID}).want(422); !strings.Contains(r.errFields()["assignment_id"], "your branch") {
		t.Fatalf("pioneer duty on a post of the branch the member left: %s", r.Body)
	}

	// Batch: a result for every claim, failures included.
	var ids []int64
	for _, rule := range []string{"four_ones.listen_masses", "four_ones.guide_activists"} {
		e.claim(tr.aliceT, "", map[string]any{"rule_code": rule, "occurred_on": day, "evidence_ids": []int64{photo}}).want(201).decode(&c)
		ids = append(ids, c.ID)
	}
	e.post("/api/v1/approvals/batch", tr.secT, map[string]any{"claim_ids": ids, "action": "reject"}).want(422)
	if f := e.post("/api/v1/approvals/batch", tr.secT, map[string]any{"claim_ids": ids, "action": "reject", "reason": strings.Repeat("因", 501)}).want(422).errFields(); !strings.Contains(f["reason"], "at most 500") {
		t.Fatalf("a batch rejected with a reason of 501 characters: fields %v", f)
	}
	e.post("/api/v1/approvals/batch", tr.secT, map[string]any{"claim_ids": []int64{ids[0], ids[0]}, "action": "approve"}).want(422)
	e.post("/api/v1/approvals/batch", tr.secT, map[string]any{"claim_ids": make([]int64, 101), "action": "approve"}).want(422)
	many := make([]int64, 101) // distinct, so that only their number is wrong
	for i := range many {
		many[i] = int64(1_000_000 + i)
	}
	for _, list := range [][]int64{many, {}} {
		if f := e.post("/api/v1/approvals/batch", tr.secT, map[string]any{"claim_ids": list, "action": "approve"}).want(422).errFields(); !strings.Contains(f["claim_ids"], "1 to 100") {
			t.Fatalf("a batch of %d claims: fields %v", len(list), f)
		}
	}
	var batch struct{ Results []app.BatchResult }
	e.post("/api/v1/approvals/batch", tr.secT, map[string]any{"claim_ids": []int64{ids[0], 999999, ids[1]}, "action": "approve"}).want(200).decode(&batch)
	if len(batch.Results) != 3 || batch.Results[0].Status != "approved" || batch.Results[1].Error == nil || batch.Results[1].Error.Code != "not_found" || batch.Results[2].Status != "approved" {
		t.Fatalf("batch: %+v", batch.Results)
	}

	// A rule edit makes a new version; a claim keeps the version it was filed under.
	e.claim(tr.carT, "", map[string]any{"rule_code": "four_ones.listen_masses", "occurred_on": day, "evidence_ids": []int64{e.uploadID(tr.carT)}}).want(201).decode(&c)
	e.json("PATCH", "/api/v1/rules/four_ones.listen_masses", e.adminT, map[string]any{"points": 3, "monthly_cap": 3}).want(200)
	var b3Sec models.Member
	e.post("/api/v1/members", e.adminT, map[string]any{"member_no": "S003", "name": "机关书记", "branch_id": tr.b3}).want(201).decode(&b3Sec)
	e.json("PUT", fmt.Sprintf("/api/v1/members/%d/roles", b3Sec.ID), e.adminT, []map[string]any{{"role": "secretary", "org_id": tr.b3}}).want(200)
	e.post(fmt.Sprintf("/api/v1/claims/%d/approve", c.ID), e.tokenFor(b3Sec.ID), nil).want(200).decode(&d)
	if d.Entry.RuleVersion != 1 || d.Entry.Points != 20 {
		t.Fatalf("old claim under the new rule: %+v", d.Entry)
	}

	// A closed month takes no claims; closed for another branch only, it still takes them.
	e.post("/api/v1/periods/"+day[:7]+"/close", e.adminT, map[string]any{"org_id": tr.b2}).want(200)
	e.claim(tr.aliceT, "", read).want(201)
	e.post("/api/v1/periods/"+day[:7]+"/close", e.adminT, map[string]any{"org_id": e.rootID}).want(200)
	e.claim(tr.aliceT, "", read).want(409)
	if _, err := app.Verify(context.Background(), e.db); err != nil {
		t.Fatal(err)
	}
}

func TestIdempotentClaims(t *testing.T) {
	e := newEnv(t, nil)
	tr := e.seedTree()
	photo := e.uploadID(tr.aliceT)
	body := map[string]any{"rule_code": "four_ones.read_theory", "occurred_on": today(e), "evidence_ids": []int64{photo}}
	var first, again models.Claim
	e.claim(tr.aliceT, "key-1", body).want(201).decode(&first)
	r := e.claim(tr.aliceT, "key-1", body).want(201)
	r.decode(&again)
	if again.ID != first.ID || r.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay: %d vs %d", again.ID, first.ID)
	}
	other := map[string]any{"rule_code": "four_ones.volunteer", "occurred_on": today(e), "evidence_ids": []int64{photo}}
	e.claim(tr.aliceT, "key-1", other).want(409)
	e.claim(tr.aliceT, strings.Repeat("k", 129), body).want(422)
	for _, key := range []string{"has space", "tab\tkey", "键-1"} {
		if f := e.claim(tr.aliceT, key, body).want(422).errFields(); f["Idempotency-Key"] == "" {
			t.Fatalf("Idempotency-Key %q: fields %v", key, f)
		}
	}
	// Keys are per member.
	e.claim(tr.bobT, "key-1", map[string]any{"rule_code": "four_ones.read_theory", "occurred_on": today(e), "evidence_ids": []int64{e.uploadID(tr.bobT)}}).want(201).decode(&again)
	if again.ID == first.ID {
		t.Fatal("another member's key returned alice's claim")
	}
	// Twenty concurrent submissions with one key make one claim.
	ids := make(chan int64, 20)
	got := concurrently(20, func(int) int {
		r := e.claim(tr.aliceT, "key-burst", body)
		var c models.Claim
		r.decode(&c)
		ids <- c.ID
		return r.Status
	})
	close(ids)
	seen := map[int64]bool{}
	for id := range ids {
		seen[id] = true
	}
	var n int64
	e.db.R.Model(&models.Claim{}).Where("idempotency_key = ?", "key-burst").Count(&n)
	if got[201] != 20 || len(seen) != 1 || n != 1 {
		t.Fatalf("statuses %v, %d distinct answers, %d claims", got, len(seen), n)
	}
	// After the month closes, a retry still gets its first answer; a new request gets 409.
	e.post("/api/v1/periods/"+today(e)[:7]+"/close", e.adminT, map[string]any{"org_id": e.rootID}).want(200)
	r = e.claim(tr.aliceT, "key-1", body).want(201)
	r.decode(&again)
	if again.ID != first.ID {
		t.Fatalf("replay after closing: claim %d, want %d", again.ID, first.ID)
	}
	e.claim(tr.aliceT, "key-new", body).want(409)
}

func TestCapsHoldUnderConcurrentApprovals(t *testing.T) {
	e := newEnv(t, map[string]string{"LEDGER_CLAIM_LIMIT_MEMBER": "100/1m"}) // 50 claims of one member

	tr := e.seedTree()
	photo := e.uploadID(tr.aliceT)
	ids := make([]int64, 50)
	for i := range ids {
		var c models.Claim
		e.claim(tr.aliceT, "", map[string]any{"rule_code": "volunteer.hours", "occurred_on": today(e), "quantity": 1, "evidence_ids": []int64{photo}}).want(201).decode(&c)
		ids[i] = c.ID
	}
	got := concurrently(50, func(i int) int {
		return e.post(fmt.Sprintf("/api/v1/claims/%d/approve", ids[i]), tr.secT, nil).Status
	})
	if got[200] != 50 {
		t.Fatalf("statuses %v", got)
	}
	var awarded []int64
	e.db.R.Model(&models.Claim{}).Where("id IN ?", ids).Pluck("points_awarded", &awarded)
	var sum, full int64
	for _, a := range awarded {
		sum += a
		if a == 10 {
			full++
		}
	}
	var rt models.RuleTotal
	e.db.R.Where("member_id = ? AND rule_code = ?", tr.alice, "volunteer.hours").Take(&rt)
	if sum != 100 || full != 10 || rt.Points != 100 {
		t.Fatalf("awarded %d tenths in %d full awards, rule total %s; the cap is 10", sum, full, rt.Points)
	}
	// The 40 approved at nothing (capped) wrote no entry.
	var entries int64
	e.db.R.Model(&models.Entry{}).Where("claim_id IN ?", ids).Count(&entries)
	if entries != 10 {
		t.Fatalf("%d entries for 10 awards", entries)
	}
	if _, err := app.Verify(context.Background(), e.db); err != nil {
		t.Fatal(err)
	}
}

// twoSecretaries returns the tokens of two secretaries over tr's branch b1: its own, and
// one of the general branch above it.
func (e *testEnv) twoSecretaries(tr tree) []string {
	e.t.Helper()
	var gbSec models.Member
	e.post("/api/v1/members", e.adminT, map[string]any{"member_no": "GS1", "name": "总支书记", "branch_id": tr.b2}).want(201).decode(&gbSec)
	e.json("PUT", fmt.Sprintf("/api/v1/members/%d/roles", gbSec.ID), e.adminT, []map[string]any{{"role": "secretary", "org_id": tr.gb1}}).want(200)
	return []string{tr.secT, e.tokenFor(gbSec.ID)}
}

func TestTwoSecretariesDecideOneClaim(t *testing.T) {
	e := newEnv(t, nil)
	tr := e.seedTree()
	tokens := e.twoSecretaries(tr)
	photo := e.uploadID(tr.aliceT)
	for round := 0; round < 5; round++ {
		var c models.Claim
		e.claim(tr.aliceT, "", map[string]any{"rule_code": "volunteer.hours", "occurred_on": today(e), "quantity": 0.5, "evidence_ids": []int64{photo}}).want(201).decode(&c)
		got := concurrently(2, func(i int) int {
			if round%2 == 1 && i == 1 {
				return e.post(fmt.Sprintf("/api/v1/claims/%d/reject", c.ID), tokens[i], map[string]string{"reason": "重复"}).Status
			}
			return e.post(fmt.Sprintf("/api/v1/claims/%d/approve", c.ID), tokens[i], nil).Status
		})
		if got[200] != 1 || got[409] != 1 {
			t.Fatalf("round %d: %v", round, got)
		}
		var entries int64
		e.db.R.Model(&models.Entry{}).Where("claim_id = ?", c.ID).Count(&entries)
		var cur models.Claim
		e.db.R.Take(&cur, c.ID)
		if (cur.Status == "approved") != (entries == 1) || entries > 1 {
			t.Fatalf("round %d: claim %s with %d entries", round, cur.Status, entries)
		}
	}
}

// TestManyClaimsEachDecidedTwiceAtOnce: twenty members' claims, each approved by two
// secretaries at once, forty requests in all, so that the approval writer's shared
// transactions meet claims another transaction is deciding (on MariaDB, where several
// run at once). Each claim is approved once and the other decision gets 409: in the
// first round claims that fill the month's volunteer cap, each with one entry; in the
// second, claims capped to nothing, with no entry, where the claim's compare-and-set is
// all that stops a second approval.
func TestManyClaimsEachDecidedTwiceAtOnce(t *testing.T) {
	e := newEnv(t, nil)
	tr := e.seedTree()
	tokens := e.twoSecretaries(tr)
	ids := make([]int64, 20)
	for i := range ids {
		var m models.Member
		e.post("/api/v1/members", e.adminT, map[string]any{"member_no": fmt.Sprintf("D%03d", i), "name": "党员", "branch_id": tr.b1}).want(201).decode(&m)
		tok := e.tokenFor(m.ID)
		var c models.Claim
		e.claim(tok, "", map[string]any{"rule_code": "volunteer.hours", "occurred_on": today(e), "quantity": 10, "evidence_ids": []int64{e.uploadID(tok)}}).want(201).decode(&c)
		ids[i] = c.ID
	}
	for round := 0; round < 2; round++ {
		var mu sync.Mutex
		ok := map[int64]int{}
		got := concurrently(2*len(ids), func(i int) int {
			// One secretary goes through the claims from the first, the other from the
			// last, so that the two decisions of a claim mostly come apart.
			id := ids[i/2]
			if i%2 == 1 {
				id = ids[len(ids)-1-i/2]
			}
			st := e.post(fmt.Sprintf("/api/v1/claims/%d/approve", id), tokens[i%2], nil).Status
			if st == 200 {
				mu.Lock()
				ok[id]++
				mu.Unlock()
			}
			return st
		})
		if got[200] != len(ids) || got[409] != len(ids) {
			t.Fatalf("round %d: statuses %v, want %d of 200 and of 409", round, got, len(ids))
		}
		for _, id := range ids {
			var entries int64
			e.db.R.Model(&models.Entry{}).Where("claim_id = ?", id).Count(&entries)
			var c models.Claim
			e.db.R.Take(&c, id)
			if ok[id] != 1 || entries != int64(1-round) || c.PointsAwarded == nil || *c.PointsAwarded != models.Points(100*(1-round)) {
				t.Fatalf("round %d: claim %d approved %d times, %d entries, awarded %v", round, id, ok[id], entries, c.PointsAwarded)
			}
		}
		if round == 0 {
			// The same members file again, over the cap, for the second round.
			for i := range ids {
				var c models.Claim
				e.db.R.Take(&c, ids[i])
				tok := e.tokenFor(c.MemberID)
				e.claim(tok, "", map[string]any{"rule_code": "volunteer.hours", "occurred_on": today(e), "quantity": 0.5, "evidence_ids": []int64{e.uploadID(tok)}}).want(201).decode(&c)
				ids[i] = c.ID
			}
		}
	}
	if _, err := app.Verify(context.Background(), e.db); err != nil {
		t.Fatal(err)
	}
}

func TestClaimSubmissionsAreRateLimited(t *testing.T) {
	e := newEnv(t, map[string]string{"LEDGER_CLAIM_LIMIT_MEMBER": "3/1m", "LEDGER_CLAIM_LIMIT_IP": "5/1m"})
	tr := e.seedTree()
	body := func(i int) map[string]any {
		return map[string]any{"rule_code": "volunteer.hours", "occurred_on": today(e), "quantity": 0.5, "note": fmt.Sprint(i), "evidence_ids": []int64{e.uploadID(tr.aliceT)}}
	}
	// Per member: the fourth submission in a minute waits, retries of it too.
	for i := 0; i < 3; i++ {
		e.claim(tr.aliceT, fmt.Sprintf("k%d", i), body(i)).want(201)
	}
	r := e.claim(tr.aliceT, "k3", body(3)).want(429)
	if r.Header.Get("Retry-After") == "" || r.errCode() != "rate_limited" {
		t.Fatalf("429 without Retry-After or code: %v %s", r.Header, r.Body)
	}
	e.claim(tr.aliceT, "k0", body(0)).want(429) // a replay counts too
	// Per client IP: two more members share the address (the refusals above took nothing
	// from it); a spoofed X-Forwarded-For from an untrusted peer does not make them
	// someone else.
	for i, want := range []int{201, 201, 429} {
		e.claim(tr.bobT, fmt.Sprintf("b%d", i), map[string]any{"rule_code": "volunteer.hours", "occurred_on": today(e), "quantity": 0.5, "evidence_ids": []int64{e.uploadID(tr.bobT)}}).want(want)
	}
	raw, _ := jsonMarshal(map[string]any{"rule_code": "volunteer.hours", "occurred_on": today(e), "quantity": 0.5, "evidence_ids": []int64{e.uploadID(tr.carT)}})
	e.send(request{method: "POST", path: "/api/v1/claims", token: tr.carT, ctype: "application/json", body: raw,
		header: map[string]string{"X-Forwarded-For": "198.51.100.9", "Idempotency-Key": "c0"}}).want(429)
	var n int64
	e.db.R.Model(&models.Claim{}).Count(&n)
	if n != 5 {
		t.Fatalf("%d claims were made, want 5", n)
	}
}

// Uploads are limited per member and per client IP, as claims are: a photo may be 10 MB
// and stays on the disk, so one account must not fill the disk at the network's speed.
// A refused upload writes no file and no row.
func TestUploadsAreRateLimited(t *testing.T) {
	e := newEnv(t, map[string]string{"LEDGER_UPLOAD_LIMIT_MEMBER": "3/1h", "LEDGER_UPLOAD_LIMIT_IP": "5/1h"})
	tr := e.seedTree()
	for i := 0; i < 3; i++ {
		e.upload(tr.aliceT, "photo.png", pngBytes).want(201)
	}
	r := e.upload(tr.aliceT, "photo.png", pngBytes).want(429)
	if r.Header.Get("Retry-After") == "" || r.errCode() != "rate_limited" {
		t.Fatalf("429 without Retry-After or code: %v %s", r.Header, r.Body)
	}
	// Two more from the same address, then the address has had its five.
	for _, want := range []int{201, 201, 429} {
		e.upload(tr.bobT, "photo.png", pngBytes).want(want)
	}
	var rows int64
	e.db.R.Model(&models.Upload{}).Count(&rows)
	files := 0
	filepath.WalkDir(filepath.Join(e.cfg.DataDir, "uploads"), func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files++
		}
		return nil
	})
	if rows != 5 || files != 5 {
		t.Fatalf("%d upload rows and %d files for 5 uploads taken", rows, files)
	}
}

// TestAClaimRedoneForAStaleCallerCountsOnce: a claim filed with an out-of-date copy of
// its caller writes nothing and runs again with the caller as they are now; the member's
// allowance pays for it once, so a member with one submission left still files it.
func TestAClaimRedoneForAStaleCallerCountsOnce(t *testing.T) {
	e := newEnv(t, map[string]string{"LEDGER_CLAIM_LIMIT_MEMBER": "3/1m"})
	tr := e.seedTree()
	body := func(i int, photo int64) map[string]any {
		return map[string]any{"rule_code": "volunteer.hours", "occurred_on": today(e), "quantity": 0.5, "note": fmt.Sprint(i), "evidence_ids": []int64{photo}}
	}
	var photos []int64
	for range 4 { // uploaded first: an upload loads the caller afresh
		photos = append(photos, e.uploadID(tr.aliceT))
	}
	for i := range 2 {
		e.claim(tr.aliceT, fmt.Sprintf("k%d", i), body(i, photos[i])).want(201)
	}
	// Moved to another branch: her cached copy is out of date, the claim is redone.
	e.importFile(e.adminT, "move.csv", []byte(fmt.Sprintf("member_no,name,branch\nA001,王小丽,%d\n", tr.b2))).want(200)
	var moved models.Claim
	e.claim(tr.aliceT, "k2", body(2, photos[2])).want(201).decode(&moved)
	if moved.BranchID != tr.b2 {
		t.Fatalf("claim filed in branch %d after the move, want %d", moved.BranchID, tr.b2)
	}
	e.claim(tr.aliceT, "k3", body(3, photos[3])).want(429) // the allowance is used up now
}

// TestTwoSecretariesBatchTheSameClaims: a branch's secretary and their general branch's
// secretary each approve the same twelve members' claims in one batch, at once, three
// times. The approval writer puts each batch's claims in shared transactions, and the two
// batches race for every claim: each claim is approved once, by one of them, with one
// entry; the other is told it was decided already; and the ledger verifies.
func TestTwoSecretariesBatchTheSameClaims(t *testing.T) {
	e := newEnv(t, nil)
	tr := e.seedTree()
	tokens := e.twoSecretaries(tr)
	var members []string
	for i := range 12 {
		var m models.Member
		e.post("/api/v1/members", e.adminT, map[string]any{"member_no": fmt.Sprintf("T%03d", i), "name": fmt.Sprintf("党员%d", i), "branch_id": tr.b1}).want(201).decode(&m)
		members = append(members, e.tokenFor(m.ID))
	}
	together0 := metric(t, e, `ledger_approvals_total{written="together"}`)
	day := today(e)
	for round, rule := range []string{"four_ones.read_theory", "four_ones.listen_masses", "volunteer.hours"} {
		var ids []int64
		for _, token := range members {
			var c models.Claim
			e.claim(token, "", map[string]any{"rule_code": rule, "occurred_on": day, "quantity": 1, "evidence_ids": []int64{e.uploadID(token)}}).want(201).decode(&c)
			ids = append(ids, c.ID)
		}
		results := make([][]app.BatchResult, 2)
		concurrently(2, func(i int) int {
			order := slices.Clone(ids)
			if i == 1 {
				slices.Reverse(order)
			}
			var out struct{ Results []app.BatchResult }
			r := e.post("/api/v1/approvals/batch", tokens[i], map[string]any{"claim_ids": order, "action": "approve"})
			r.want(200).decode(&out)
			results[i] = out.Results
			return r.Status
		})
		approved := map[int64]int{}
		for _, rs := range results {
			if len(rs) != len(ids) {
				t.Fatalf("round %d: %d results for %d claims", round, len(rs), len(ids))
			}
			for _, r := range rs {
				switch {
				case r.Status == models.ClaimApproved && r.Error == nil:
					approved[r.ClaimID]++
				case r.Error == nil || r.Error.Code != models.EConflict:
					t.Errorf("round %d, claim %d: %+v, want approved or conflict", round, r.ClaimID, r)
				}
			}
		}
		for _, id := range ids {
			var entries int64
			e.db.R.Model(&models.Entry{}).Where("claim_id = ?", id).Count(&entries)
			var cur models.Claim
			e.db.R.Take(&cur, id)
			if approved[id] != 1 || entries != 1 || cur.Status != models.ClaimApproved {
				t.Errorf("round %d, claim %d: approved %d times, %d entries, %s", round, id, approved[id], entries, cur.Status)
			}
		}
	}
	if together := metric(t, e, `ledger_approvals_total{written="together"}`); together <= together0 {
		t.Errorf("no approval was written in a shared transaction (%v, before %v)", together, together0)
	}
	if _, err := app.Verify(context.Background(), e.db); err != nil {
		t.Fatal(err)
	}
}

// TestWritesCheckTheirCallerInTheirOwnTransaction: claims and approvals run with the
// server's cached copy of the caller, checked in the write's own transaction. Each change
// to the caller after the copy was cached must still take effect at once: a removed role
// refuses the approval and writes nothing, a granted one is found, a disabled member files
// nothing and gets no replay, a moved member claims in their new branch.
func TestWritesCheckTheirCallerInTheirOwnTransaction(t *testing.T) {
	e := newEnv(t, nil)
	tr := e.seedTree()
	day := today(e)
	photos := map[string]int64{}
	body := func(key, rule string) map[string]any {
		if photos[key] == 0 {
			photos[key] = e.uploadID(tr.aliceT)
		}
		return map[string]any{"rule_code": rule, "occurred_on": day, "note": "学习", "evidence_ids": []int64{photos[key]}}
	}
	claim := func(tok, key, rule string) models.Claim {
		t.Helper()
		var c models.Claim
		e.claim(tok, key, body(key, rule)).want(201).decode(&c)
		return c
	}
	status := func(id int64) string {
		t.Helper()
		var c models.Claim
		e.get(fmt.Sprintf("/api/v1/claims/%d", id), e.adminT).want(200).decode(&c)
		return string(c.Status)
	}
	a := claim(tr.aliceT, "a", "four_ones.read_theory")
	b := claim(tr.aliceT, "b", "four_ones.volunteer")
	c := claim(tr.aliceT, "c", "four_ones.listen_masses")

	// A role removed after the secretary's copy was cached.
	e.post(fmt.Sprintf("/api/v1/claims/%d/approve", a.ID), tr.secT, nil).want(200)
	e.json("PUT", fmt.Sprintf("/api/v1/members/%d/roles", tr.sec), e.adminT, []any{}).want(200)
	e.post(fmt.Sprintf("/api/v1/claims/%d/approve", b.ID), tr.secT, nil).want(404) // a plain member of the branch now
	if s := status(b.ID); s != "pending" {
		t.Fatalf("claim approved by a secretary whose role was removed: %s", s)
	}

	// A role granted after the copy (without it) was cached.
	e.post(fmt.Sprintf("/api/v1/claims/%d/approve", b.ID), tr.bobT, nil).want(404) // not his branch
	e.json("PUT", fmt.Sprintf("/api/v1/members/%d/roles", tr.bob), e.adminT, []map[string]any{{"role": "secretary", "org_id": tr.b1}}).want(200)
	e.post(fmt.Sprintf("/api/v1/claims/%d/approve", b.ID), tr.bobT, nil).want(200)
	if s := status(b.ID); s != "approved" {
		t.Fatalf("claim not approved by a secretary just granted the role: %s", s)
	}

	// A member moved to another branch after their copy was cached claims there. (Their
	// photos are uploaded first: an upload reloads the caller.)
	toMove, fresh := body("d", "four_ones.guide_activists"), body("e", "four_ones.listen_masses")
	e.importFile(e.adminT, "move.csv", []byte(fmt.Sprintf("member_no,name,branch\nA001,王小丽,%d\n", tr.b2))).want(200)
	var moved models.Claim
	e.claim(tr.aliceT, "d", toMove).want(201).decode(&moved)
	if moved.BranchID != tr.b2 {
		t.Fatalf("claim filed in branch %d after the move, want %d", moved.BranchID, tr.b2)
	}

	// A member disabled after their copy was cached files nothing, and is not answered
	// from their earlier claims either.
	e.json("PATCH", fmt.Sprintf("/api/v1/members/%d", tr.alice), e.adminT, map[string]string{"status": "inactive"}).want(200)
	e.claim(tr.aliceT, "e", fresh).want(401)
	e.claim(tr.aliceT, "c", body("c", "four_ones.listen_masses")).want(401) // c's own key and body
	var n int64
	e.db.R.Model(&models.Claim{}).Where("member_id = ?", tr.alice).Count(&n)
	if n != 4 {
		t.Fatalf("%d claims of the member, want 4", n)
	}
	if s := status(c.ID); s != "pending" {
		t.Fatalf("claim c: %s", s)
	}
}

// storedPhoto returns the file of an upload, "" once its row is gone.
func (e *testEnv) storedPhoto(id int64) string {
	e.t.Helper()
	var keys []string
	if err := e.db.R.Model(&models.Upload{}).Where("id = ?", id).Pluck("storage_key", &keys).Error; err != nil {
		e.t.Fatal(err)
	}
	if len(keys) == 0 {
		return ""
	}
	return filepath.Join(e.cfg.DataDir, filepath.FromSlash(keys[0]))
}

// ageUploads makes uploads look uploaded long ago, files included.
func (e *testEnv) ageUploads(ago time.Duration, ids ...int64) {
	e.t.Helper()
	then := time.Now().Add(-ago)
	for _, id := range ids {
		if err := os.Chtimes(e.storedPhoto(id), then, then); err != nil {
			e.t.Fatal(err)
		}
	}
	if err := e.db.W.Model(&models.Upload{}).Where("id IN ?", ids).Update("created_at", then.UTC()).Error; err != nil {
		e.t.Fatal(err)
	}
}

// A photo that no claim took within LEDGER_UPLOAD_KEEP is removed, row and file, and
// audited; photos that claims use, and younger ones, stay. Files of the store that no
// upload names are removed too, once they are as old.
func TestUnusedPhotosAreSwept(t *testing.T) {
	e := newEnv(t, nil)
	tr := e.seedTree()
	ctx := context.Background()
	keep := e.cfg.UploadKeep
	if keep != 72*time.Hour {
		t.Fatalf("LEDGER_UPLOAD_KEEP is %v by default, want 72h", keep)
	}
	unused, used, young, bobs := e.uploadID(tr.aliceT), e.uploadID(tr.aliceT), e.uploadID(tr.aliceT), e.uploadID(tr.bobT)
	e.claim(tr.aliceT, "", map[string]any{"rule_code": "four_ones.read_theory", "occurred_on": today(e), "evidence_ids": []int64{used}}).want(201)
	e.ageUploads(keep+time.Hour, unused, used, bobs)
	e.ageUploads(keep-time.Hour, young)
	files := map[int64]string{}
	for _, id := range []int64{unused, used, young, bobs} {
		files[id] = e.storedPhoto(id)
	}
	// Files no upload names: one as old as the swept photos, one of a Put cut short, one
	// just written (its row may be on its way).
	uploadsDir := filepath.Join(e.cfg.DataDir, "uploads")
	strayOld, strayTmp, strayNew := filepath.Join(uploadsDir, "2020-01", "7-lost"), filepath.Join(uploadsDir, "2020-01", "7-cut.1a2b.tmp"), filepath.Join(uploadsDir, "2020-01", "7-new")
	os.MkdirAll(filepath.Dir(strayOld), 0o700)
	for _, f := range []string{strayOld, strayTmp, strayNew} {
		if err := os.WriteFile(f, pngBytes, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	long := time.Now().Add(-keep - time.Hour)
	os.Chtimes(strayOld, long, long)
	os.Chtimes(strayTmp, long, long)

	done, err := e.svc.Uploads.Sweep(ctx, keep)
	if err != nil || done.Uploads != 2 || done.Bytes != 2*int64(len(pngBytes)) {
		t.Fatalf("the sweep removed %+v (%v), want the two unused old photos", done, err)
	}
	for id, gone := range map[int64]bool{unused: true, bobs: true, used: false, young: false} {
		_, err := os.Stat(files[id])
		if gone != errors.Is(err, os.ErrNotExist) || gone != (e.storedPhoto(id) == "") {
			t.Fatalf("upload %d: file %v, row %q; want gone %v", id, err, e.storedPhoto(id), gone)
		}
	}
	e.get(fmt.Sprintf("/api/v1/uploads/%d", unused), tr.aliceT).want(404)
	e.get(fmt.Sprintf("/api/v1/uploads/%d", used), tr.secT).want(200)
	e.get(fmt.Sprintf("/api/v1/uploads/%d", young), tr.aliceT).want(200)
	// A swept photo is evidence of nothing.
	r := e.claim(tr.aliceT, "", map[string]any{"rule_code": "four_ones.read_theory", "occurred_on": today(e), "evidence_ids": []int64{unused}}).want(422)
	if r.errFields()["evidence_ids"] == "" {
		t.Fatalf("a claim with a swept photo: %s", r.Body)
	}
	// Audited by nobody under the owner's branch, with what was removed but not where it
	// was stored.
	var recs []models.AuditRecord
	e.db.R.Where("action = ?", "upload.deleted").Order("entity_id").Find(&recs)
	if len(recs) != 2 || recs[0].EntityID != unused || recs[1].EntityID != bobs {
		t.Fatalf("audit of the sweep: %+v", recs)
	}
	for i, branch := range []int64{tr.b1, tr.b2} {
		rec := recs[i]
		if rec.ActorID != nil || rec.OrgID == nil || *rec.OrgID != branch || !strings.Contains(rec.Before, `"sha256"`) || strings.Contains(rec.Before, "uploads/") || rec.After != "null" {
			t.Fatalf("audit record of a swept photo: %+v", rec)
		}
	}
	// Again: nothing more to do.
	if again, err := e.svc.Uploads.Sweep(ctx, keep); err != nil || again != (app.UploadSweep{}) {
		t.Fatalf("a second sweep: %+v %v", again, err)
	}
	strays, err := e.svc.Uploads.Strays(ctx, keep)
	if err != nil || strays.Strays != 2 {
		t.Fatalf("strays: %+v %v, want the old file and the cut one", strays, err)
	}
	for f, gone := range map[string]bool{strayOld: true, strayTmp: true, strayNew: false, files[used]: false, files[young]: false} {
		if _, err := os.Stat(f); gone != errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s: %v, want gone %v", f, err, gone)
		}
	}
}

// The server sweeps by itself: the sweeper started as cmd/server starts it removes an
// unused old photo, logs it, and stops when asked.
func TestTheSweeperRunsInTheBackground(t *testing.T) {
	e := newEnv(t, nil)
	tr := e.seedTree()
	id := e.uploadID(tr.aliceT)
	file := e.storedPhoto(id)
	e.ageUploads(e.cfg.UploadKeep+time.Minute, id)
	sw := app.StartSweeper(e.db, e.svc.Uploads, e.cfg.UploadKeep, time.Millisecond, app.NewLogger(e.logs, "info"))
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(e.logs.String(), "swept unused photos") && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	sw.Stop()
	if _, err := os.Stat(file); e.storedPhoto(id) != "" || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the sweeper left the unused photo (file: %v)", err)
	}
	if !strings.Contains(e.logs.String(), `"msg":"swept unused photos","removed":1`) {
		t.Fatalf("the sweep is not in the log:\n%s", e.logs.String())
	}
	// And in /metrics, as the server serves them.
	if c := sw.Counts(); c != (app.SweepCounts{Uploads: 1}) {
		t.Fatalf("the sweeper counts %+v", c)
	}
	reg := prometheus.NewRegistry()
	handlers.New(handlers.Deps{DB: e.db, Services: e.svc, Log: app.NewLogger(e.logs, "info"), Registry: reg, Sweeper: sw})
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		if strings.Contains(f.GetName(), "swept") || strings.Contains(f.GetName(), "sweep") || strings.Contains(f.GetName(), "purged") {
			got[f.GetName()] = f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	want := map[string]float64{"ledger_swept_uploads_total": 1, "ledger_swept_stray_files_total": 0, "ledger_purged_refresh_tokens_total": 0, "ledger_sweep_failures_total": 0}
	if !maps.Equal(got, want) {
		t.Fatalf("the sweep's metrics: %v, want %v", got, want)
	}
}

// Sweeps that meet claims taking their photos, and each other: each photo ends either
// evidence of its claim, row and file kept, or swept once with its claim refused (422);
// never a claim whose photo is gone, and never a 500 or 503.
func TestPhotosSweptWhileClaimsTakeThem(t *testing.T) {
	e := newEnv(t, map[string]string{"LEDGER_CLAIM_LIMIT_MEMBER": "1000/1m", "LEDGER_CLAIM_LIMIT_IP": "10000/1m", "LEDGER_UPLOAD_LIMIT_MEMBER": "10000/1h", "LEDGER_UPLOAD_LIMIT_IP": "10000/1h"})
	tr := e.seedTree()
	ctx := context.Background()
	keep := e.cfg.UploadKeep
	taken, swept := 0, 0
	for round := 0; round < 8; round++ {
		ids := make([]int64, 12)
		for i := range ids {
			ids[i] = e.uploadID(tr.aliceT)
		}
		e.ageUploads(keep+time.Hour, ids...)
		files := make([]string, len(ids))
		for i, id := range ids {
			files[i] = e.storedPhoto(id)
		}
		// Two sweeps (the server's and an operator's ledgerctl sweep) beside the claims.
		statuses := make([]int, len(ids))
		var sweeps [2]app.UploadSweep
		var sweepErrs [2]error
		concurrently(len(ids)+2, func(i int) int {
			if i >= len(ids) {
				sweeps[i-len(ids)], sweepErrs[i-len(ids)] = e.svc.Uploads.Sweep(ctx, keep)
				return 0
			}
			statuses[i] = e.claim(tr.aliceT, "", map[string]any{"rule_code": "four_ones.read_theory", "occurred_on": today(e), "evidence_ids": []int64{ids[i]}}).Status
			return statuses[i]
		})
		if sweepErrs[0] != nil || sweepErrs[1] != nil {
			t.Fatalf("round %d: the sweeps failed: %v", round, sweepErrs)
		}
		roundSwept := 0
		for i, id := range ids {
			var uses int64
			e.db.R.Model(&models.ClaimEvidence{}).Where("upload_id = ?", id).Count(&uses)
			_, statErr := os.Stat(files[i])
			row := e.storedPhoto(id) != ""
			switch statuses[i] {
			case 201:
				if !row || statErr != nil || uses != 1 {
					t.Fatalf("round %d: a claim took photo %d, whose row is there: %v (file: %v), evidence of %d claims", round, id, row, statErr, uses)
				}
				taken++
			case 422:
				if row || !errors.Is(statErr, os.ErrNotExist) || uses != 0 {
					t.Fatalf("round %d: a claim was refused photo %d, which is still there (row %v, file %v, %d uses)", round, id, row, statErr, uses)
				}
				roundSwept++
			default:
				t.Fatalf("round %d: a claim answered %d", round, statuses[i])
			}
		}
		// Each swept photo was counted and audited once, by whichever sweep took it.
		var audited int64
		e.db.R.Model(&models.AuditRecord{}).Where("action = ? AND entity_id IN ?", "upload.deleted", ids).Count(&audited)
		if sweeps[0].Uploads+sweeps[1].Uploads != roundSwept || audited != int64(roundSwept) {
			t.Fatalf("round %d: %d photos swept, the sweeps say %d and %d, the audit log %d", round, roundSwept, sweeps[0].Uploads, sweeps[1].Uploads, audited)
		}
		swept += roundSwept
	}
	t.Logf("%d photos taken by their claims, %d swept first", taken, swept)
	if taken == 0 || swept == 0 {
		t.Logf("the sweep and the claims did not meet both ways this run")
	}
}
