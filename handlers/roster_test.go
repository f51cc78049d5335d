package handlers_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"mime/multipart"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/xuri/excelize/v2"
	"golang.org/x/text/encoding/simplifiedchinese"

	"partyledger/app"
	"partyledger/handlers"
	"partyledger/models"
)

func TestMembersCannotCallAdminEndpoints(t *testing.T) {
	e := newEnv(t, nil)
	tr := e.seedTree()
	calls := []struct {
		method, path string
		body         any
	}{
		{"GET", "/api/v1/orgs", nil},
		{"POST", "/api/v1/orgs", map[string]any{"parent_id": tr.b1, "kind": "group", "name": "x"}},
		{"GET", fmt.Sprintf("/api/v1/orgs/%d", tr.b1), nil},
		{"PATCH", fmt.Sprintf("/api/v1/orgs/%d", tr.b1), map[string]any{"name": "x"}},
		{"GET", "/api/v1/members", nil},
		{"POST", "/api/v1/members", map[string]any{"member_no": "X1", "name": "某人", "branch_id": tr.b1}},
		{"POST", fmt.Sprintf("/api/v1/members/%d/invite", tr.alice), nil},
		{"PUT", fmt.Sprintf("/api/v1/members/%d/roles", tr.bob), []map[string]any{{"role": "admin", "org_id": e.rootID}}},
	}
	for _, c := range calls {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			var r *result
			if c.body == nil && c.method == "GET" {
				r = e.get(c.path, tr.aliceT)
			} else {
				r = e.json(c.method, c.path, tr.aliceT, c.body)
			}
			if r.Status != 403 {
				t.Fatalf("a plain member got %d: %s", r.Status, r.Body)
			}
		})
	}
	// PATCH of another member by a plain member: not in scope, so it does not exist for them.
	e.json("PATCH", fmt.Sprintf("/api/v1/members/%d", tr.bob), tr.aliceT, map[string]any{"name": "x"}).want(404)
	e.importFile(tr.aliceT, "r.csv", []byte("member_no,name,branch\nX,Y,1\n")).want(403)
	// A member reads themself, and no one else.
	e.get(fmt.Sprintf("/api/v1/members/%d", tr.alice), tr.aliceT).want(200)
	e.get(fmt.Sprintf("/api/v1/members/%d", tr.sec), tr.aliceT).want(404)
}

func mustMultipart(t testing.TB, name string, data []byte) [2]string {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	fw, err := w.CreateFormFile("file", name)
	if err != nil {
		t.Fatal(err)
	}
	fw.Write(data)
	w.Close()
	return [2]string{w.FormDataContentType(), buf.String()}
}

func TestSecretaryStaysInsideTheirBranch(t *testing.T) {
	e := newEnv(t, nil)
	tr := e.seedTree()
	// Inside: their branch's members, invites for them.
	var list app.List[models.Member]
	e.get("/api/v1/members?limit=100", tr.secT).want(200).decode(&list)
	got := map[int64]bool{}
	for _, m := range list.Items {
		got[m.ID] = true
		if m.BranchID != tr.b1 {
			t.Errorf("secretary of b1 sees member %d of branch %d", m.ID, m.BranchID)
		}
	}
	if !got[tr.alice] || !got[tr.sec] || len(got) != 2 {
		t.Fatalf("secretary sees %v, want alice and sec", got)
	}
	e.get(fmt.Sprintf("/api/v1/members/%d", tr.alice), tr.secT).want(200)
	e.post(fmt.Sprintf("/api/v1/members/%d/invite", tr.alice), tr.secT, nil).want(201)
	e.get(fmt.Sprintf("/api/v1/orgs/%d", tr.b1), tr.secT).want(200)
	// Outside: other branches do not exist for them.
	e.get(fmt.Sprintf("/api/v1/members/%d", tr.bob), tr.secT).want(404)
	e.post(fmt.Sprintf("/api/v1/members/%d/invite", tr.bob), tr.secT, nil).want(404)
	e.get(fmt.Sprintf("/api/v1/members/%d/roles", tr.bob), tr.secT).want(404)
	e.get(fmt.Sprintf("/api/v1/orgs/%d", tr.b2), tr.secT).want(404)
	e.get(fmt.Sprintf("/api/v1/members?org_id=%d", tr.b2), tr.secT).want(404)
	// Secretaries read, admins write.
	e.post("/api/v1/members", tr.secT, map[string]any{"member_no": "X1", "name": "某人", "branch_id": tr.b1}).want(403)
	e.json("PUT", fmt.Sprintf("/api/v1/members/%d/roles", tr.alice), tr.secT, []map[string]any{{"role": "secretary", "org_id": tr.b1}}).want(403)
	e.json("PATCH", fmt.Sprintf("/api/v1/members/%d", tr.alice), tr.secT, map[string]any{"name": "x"}).want(404)
	// A leader of the committee reads the whole roster.
	e.get("/api/v1/members?limit=100", tr.leadT).want(200).decode(&list)
	if len(list.Items) != 6 { // five members and the admin
		t.Fatalf("leader sees %d members, want 6", len(list.Items))
	}

	// An admin of one general branch grants only inside it.
	_, gaT := e.newAdmin("GA1", tr.b1, tr.gb1)
	e.json("PUT", fmt.Sprintf("/api/v1/members/%d/roles", tr.bob), gaT, []map[string]any{{"role": "secretary", "org_id": tr.b2}}).want(200)
	r := e.json("PUT", fmt.Sprintf("/api/v1/members/%d/roles", tr.bob), gaT, []map[string]any{{"role": "admin", "org_id": e.rootID}}).want(422)
	if r.errFields()["[0].org_id"] == "" {
		t.Fatalf("fields: %s", r.Body)
	}
	// nor strip a role granted above them.
	e.json("PUT", fmt.Sprintf("/api/v1/members/%d/roles", tr.lead), gaT, []any{}).want(404)
	e.json("PUT", fmt.Sprintf("/api/v1/members/%d/roles", tr.bob), e.adminT, []map[string]any{{"role": "leader", "org_id": e.rootID}}).want(200)
	e.json("PUT", fmt.Sprintf("/api/v1/members/%d/roles", tr.bob), gaT, []any{}).want(403)
	e.post("/api/v1/orgs", gaT, map[string]any{"parent_id": e.rootID, "kind": "branch", "name": "越权支部"}).want(404)
	e.post("/api/v1/orgs", gaT, map[string]any{"parent_id": tr.gb1, "kind": "branch", "name": "新支部"}).want(201)
}

func TestOrgTree(t *testing.T) {
	e := newEnv(t, nil)
	tr := e.seedTree()
	bad := []map[string]any{
		{"parent_id": e.rootID, "kind": "group", "name": "x"},        // a group under a committee
		{"parent_id": tr.b1, "kind": "branch", "name": "x"},          // a branch under a branch
		{"parent_id": tr.g1, "kind": "group", "name": "x"},           // a group under a group
		{"parent_id": tr.gb1, "kind": "general_branch", "name": "x"}, // a general branch under one
		{"parent_id": tr.gb1, "kind": "committee", "name": "x"},      // a committee under a general branch
		{"parent_id": tr.b1, "kind": "committee", "name": "x"},       // a committee under a branch
		{"parent_id": tr.b1, "kind": "general_branch", "name": "x"},  // a general branch under a branch
		{"parent_id": tr.g1, "kind": "branch", "name": "x"},          // a branch under a group
		{"parent_id": tr.gb1, "kind": "branch", "name": "教工第一党支部"},   // a sibling's name
		{"parent_id": tr.gb1, "kind": "branch", "name": "   "},
		{"parent_id": tr.gb1, "kind": "branch", "name": strings.Repeat("支", 101)},
		{"kind": "branch", "name": "x"},
		{"parent_id": 0, "kind": "branch", "name": "x"},
		{"parent_id": -1, "kind": "branch", "name": "x"},
	}
	for i, b := range bad {
		if r := e.post("/api/v1/orgs", e.adminT, b); r.Status != 422 || len(r.errFields()) == 0 {
			t.Errorf("case %d: %d %s", i, r.Status, r.Body)
		}
	}
	e.post("/api/v1/orgs", e.adminT, map[string]any{"parent_id": 999999, "kind": "branch", "name": "x"}).want(404)
	if r := e.post("/api/v1/orgs", e.adminT, map[string]any{"parent_id": tr.gb1, "kind": "party", "name": "x"}); r.Status != 422 || !strings.Contains(r.errFields()["kind"], "must be committee") {
		t.Fatalf("an unknown kind: %d %s", r.Status, r.Body)
	}
	// Committees nest (a province holds universities).
	var sub models.Org
	e.post("/api/v1/orgs", e.adminT, map[string]any{"parent_id": e.rootID, "kind": "committee", "name": "二级党委"}).want(201).decode(&sub)

	// Move b3 under gb1: its members move into gb1's subtree with it, at once for a
	// secretary of gb1 whose roles the server has already read.
	var gbSec models.Member
	e.post("/api/v1/members", e.adminT, map[string]any{"member_no": "GS1", "name": "总支书记", "branch_id": tr.b1}).want(201).decode(&gbSec)
	e.json("PUT", fmt.Sprintf("/api/v1/members/%d/roles", gbSec.ID), e.adminT, []map[string]any{{"role": "secretary", "org_id": tr.gb1}}).want(200)
	gbSecT := e.tokenFor(gbSec.ID)
	e.get(fmt.Sprintf("/api/v1/members/%d", tr.carol), gbSecT).want(404)
	e.get(fmt.Sprintf("/api/v1/members/%d", tr.carol), gbSecT).want(404)
	e.json("PATCH", fmt.Sprintf("/api/v1/orgs/%d", tr.b3), e.adminT, map[string]any{"parent_id": tr.gb1, "name": "机关第二党支部"}).want(200)
	e.get(fmt.Sprintf("/api/v1/members/%d", tr.carol), gbSecT).want(200)
	// A renamed branch shows in /me at the next request.
	var me struct {
		Branch struct{ Name string } `json:"branch"`
	}
	e.get("/api/v1/me", tr.carT).want(200).decode(&me)
	if me.Branch.Name != "机关第二党支部" {
		t.Fatalf("carol's branch is %q after the rename", me.Branch.Name)
	}
	e.json("PATCH", fmt.Sprintf("/api/v1/orgs/%d", tr.b3), e.adminT, map[string]any{"name": "机关第三党支部"}).want(200)
	e.get("/api/v1/me", tr.carT).want(200).decode(&me)
	if me.Branch.Name != "机关第三党支部" {
		t.Fatalf("carol's branch is %q after the second rename", me.Branch.Name)
	}
	// No cycles, and no moving the root.
	e.json("PATCH", fmt.Sprintf("/api/v1/orgs/%d", tr.gb1), e.adminT, map[string]any{"parent_id": tr.b1}).want(422)
	if r := e.json("PATCH", fmt.Sprintf("/api/v1/orgs/%d", e.rootID), e.adminT, map[string]any{"parent_id": sub.ID}); r.Status != 422 || !strings.Contains(string(r.Body), "root committee cannot move") {
		t.Fatalf("moving the root: %d %s", r.Status, r.Body)
	}
	// A committee may sit under a committee, but not under one inside it, nor under itself.
	var subsub models.Org
	e.post("/api/v1/orgs", e.adminT, map[string]any{"parent_id": sub.ID, "kind": "committee", "name": "院系党委"}).want(201).decode(&subsub)
	e.json("PATCH", fmt.Sprintf("/api/v1/orgs/%d", sub.ID), e.adminT, map[string]any{"parent_id": subsub.ID}).want(422)
	e.json("PATCH", fmt.Sprintf("/api/v1/orgs/%d", sub.ID), e.adminT, map[string]any{"parent_id": sub.ID}).want(422)
	// Moves keep the kinds' order: no branch under a branch.
	e.json("PATCH", fmt.Sprintf("/api/v1/orgs/%d", tr.b1), e.adminT, map[string]any{"parent_id": tr.b2}).want(422)
	e.json("PATCH", fmt.Sprintf("/api/v1/orgs/%d", tr.b1), e.adminT, map[string]any{"name": "研究生第一党支部"}).want(422)

	// Pages of two never repeat or skip.
	seen := map[int64]bool{}
	next := ""
	for pages := 0; pages < 10; pages++ {
		var list app.List[models.Org]
		e.get("/api/v1/orgs?limit=2&cursor="+next, e.adminT).want(200).decode(&list)
		for _, o := range list.Items {
			if seen[o.ID] {
				t.Fatalf("org %d on two pages", o.ID)
			}
			seen[o.ID] = true
		}
		if list.NextCursor == nil {
			break
		}
		next = *list.NextCursor
	}
	if len(seen) != 8 {
		t.Fatalf("paged through %d orgs, want 8", len(seen))
	}
	// Each filter alone and both together (b3 now sits under gb1).
	for q, want := range map[string][]int64{
		fmt.Sprintf("kind=branch&parent_id=%d", tr.gb1):   {tr.b1, tr.b2, tr.b3},
		fmt.Sprintf("kind=branch&parent_id=%d", e.rootID): nil,
		fmt.Sprintf("parent_id=%d", e.rootID):             {tr.gb1, sub.ID},
		"kind=committee":                                  {e.rootID, sub.ID, subsub.ID},
		"kind=group":                                      {tr.g1},
	} {
		if got := listIDs(e, "/api/v1/orgs?"+q, e.adminT, func(o models.Org) int64 { return o.ID }); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("orgs?%s: %v, want %v", q, got, want)
		}
	}
	e.get("/api/v1/orgs?kind=nope", e.adminT).want(422)
	e.get("/api/v1/orgs?limit=0", e.adminT).want(422)
	e.get("/api/v1/orgs?limit=1000", e.adminT).want(200) // clamped, not refused
	e.get("/api/v1/orgs?cursor=bogus", e.adminT).want(422)
	e.get("/api/v1/orgs?cursor="+base64.RawURLEncoding.EncodeToString([]byte("id:-5")), e.adminT).want(422)
	e.get("/api/v1/orgs/abc", e.adminT).want(404)
}

// A party group moved to another branch takes its members with it: a group's members
// are its branch's. Before, alice stayed in b1 with a group of b2, which no PATCH may make.
// Her move is in the audit log as an update, and her secretary is now b2's.
func TestAGroupMovedToAnotherBranchTakesItsMembers(t *testing.T) {
	e := newEnv(t, nil)
	tr := e.seedTree()
	e.json("PUT", fmt.Sprintf("/api/v1/members/%d/roles", tr.bob), e.adminT, []map[string]any{{"role": "secretary", "org_id": tr.b2}}).want(200)
	e.get(fmt.Sprintf("/api/v1/members/%d", tr.alice), tr.bobT).want(404)
	e.json("PATCH", fmt.Sprintf("/api/v1/orgs/%d", tr.g1), e.adminT, map[string]any{"parent_id": tr.b2}).want(200)
	var alice models.Member
	e.get(fmt.Sprintf("/api/v1/members/%d", tr.alice), tr.bobT).want(200).decode(&alice)
	if alice.BranchID != tr.b2 || alice.GroupID == nil || *alice.GroupID != tr.g1 {
		t.Fatalf("alice after her group moved to b2: branch %d, group %v", alice.BranchID, alice.GroupID)
	}
	e.get(fmt.Sprintf("/api/v1/members/%d", tr.alice), tr.secT).want(404) // b1's secretary
	var me struct {
		Branch struct{ ID int64 } `json:"branch"`
	}
	if e.get("/api/v1/me", tr.aliceT).want(200).decode(&me); me.Branch.ID != tr.b2 {
		t.Fatalf("alice's /me says branch %d", me.Branch.ID)
	}
	afters := memberHistory(t, e, tr.alice)
	if last := afters[len(afters)-1]; last["branch_id"] != float64(tr.b2) {
		t.Fatalf("the audit log's last word on alice: %v", last)
	}
	// Members added to the group from now on belong to b2; b1 no longer has it.
	e.post("/api/v1/members", e.adminT, map[string]any{"member_no": "G001", "name": "己", "branch_id": tr.b1, "group_id": tr.g1}).want(422)
	e.post("/api/v1/members", e.adminT, map[string]any{"member_no": "G001", "name": "己", "branch_id": tr.b2, "group_id": tr.g1}).want(201)
	// A group with nobody in it moves alone.
	var g2 models.Org
	e.post("/api/v1/orgs", e.adminT, map[string]any{"parent_id": tr.b1, "kind": "group", "name": "第二党小组"}).want(201).decode(&g2)
	e.json("PATCH", fmt.Sprintf("/api/v1/orgs/%d", g2.ID), e.adminT, map[string]any{"parent_id": tr.b3}).want(200)
}

func TestMemberEdits(t *testing.T) {
	e := newEnv(t, nil)
	tr := e.seedTree()
	e.post("/api/v1/members", e.adminT, map[string]any{"member_no": "A001", "name": "重号", "branch_id": tr.b1}).want(409)
	r := e.post("/api/v1/members", e.adminT, map[string]any{"member_no": "bad no!", "name": " ", "branch_id": 0}).want(422)
	if f := r.errFields(); f["member_no"] == "" || f["name"] == "" || f["branch_id"] == "" {
		t.Fatalf("fields: %v", f)
	}
	e.post("/api/v1/members", e.adminT, map[string]any{"member_no": "Z1", "name": "某", "branch_id": tr.gb1}).want(422) // not a branch
	e.post("/api/v1/members", e.adminT, map[string]any{"member_no": "Z1", "name": "某", "branch_id": tr.b2, "group_id": tr.g1}).want(422)

	// Clear a group with null; give a secretary a password log-in.
	var m models.Member
	e.json("PATCH", fmt.Sprintf("/api/v1/members/%d", tr.alice), e.adminT, map[string]any{"group_id": nil}).want(200).decode(&m)
	if m.GroupID != nil {
		t.Fatal("group not cleared")
	}
	e.json("PATCH", fmt.Sprintf("/api/v1/members/%d", tr.sec), e.adminT, map[string]any{"password": "secret-pass-1"}).want(422) // no username yet
	e.json("PATCH", fmt.Sprintf("/api/v1/members/%d", tr.sec), e.adminT, map[string]any{"username": "chen.sj", "password": "secret-pass-1"}).want(200)
	e.json("PATCH", fmt.Sprintf("/api/v1/members/%d", tr.bob), e.adminT, map[string]any{"username": "chen.sj"}).want(422) // taken
	e.json("PATCH", fmt.Sprintf("/api/v1/members/%d", tr.bob), e.adminT, map[string]any{"username": "Chen.SJ"}).want(422) // taken, in other letters' case
	var pair app.TokenPair
	e.post("/api/v1/auth/password/login", "", map[string]string{"username": "chen.sj", "password": "secret-pass-1"}).want(200).decode(&pair)
	e.get("/api/v1/members", pair.AccessToken).want(200)
	// An empty username takes the password log-in away, for any number of members.
	e.json("PATCH", fmt.Sprintf("/api/v1/members/%d", tr.bob), e.adminT, map[string]any{"username": "li.ming", "password": "secret-pass-2"}).want(200)
	for _, who := range []int64{tr.sec, tr.bob} {
		var cleared struct {
			Username *string `json:"username"`
		}
		e.json("PATCH", fmt.Sprintf("/api/v1/members/%d", who), e.adminT, map[string]any{"username": ""}).want(200).decode(&cleared)
		if cleared.Username != nil {
			t.Fatalf("member %d's username after clearing it: %q", who, *cleared.Username)
		}
	}
	e.post("/api/v1/auth/password/login", "", map[string]string{"username": "chen.sj", "password": "secret-pass-1"}).want(401)
	// Roles fit the org they are held over.
	for _, role := range []map[string]any{{"role": "leader", "org_id": tr.b1}, {"role": "admin", "org_id": tr.b1}, {"role": "secretary", "org_id": tr.g1},
		{"role": "member", "org_id": tr.g1}, {"role": "member", "org_id": tr.gb1}, {"role": "leader", "org_id": tr.g1}} {
		if r := e.json("PUT", fmt.Sprintf("/api/v1/members/%d/roles", tr.bob), e.adminT, []map[string]any{role}); r.Status != 422 || r.errFields()["[0].org_id"] == "" {
			t.Errorf("%v: %d %s", role, r.Status, r.Body)
		}
	}
	// A secretary may serve a branch, a general branch or a committee; a leader or an
	// admin a general branch or a committee.
	for _, role := range []map[string]any{{"role": "secretary", "org_id": e.rootID}, {"role": "secretary", "org_id": tr.gb1}, {"role": "leader", "org_id": tr.gb1}, {"role": "admin", "org_id": tr.gb1}} {
		var got struct {
			Items []struct {
				Role  string `json:"role"`
				OrgID int64  `json:"org_id"`
			} `json:"items"`
		}
		e.json("PUT", fmt.Sprintf("/api/v1/members/%d/roles", tr.bob), e.adminT, []map[string]any{role}).want(200).decode(&got)
		if len(got.Items) != 1 || got.Items[0].Role != role["role"] || got.Items[0].OrgID != role["org_id"] {
			t.Errorf("%v granted as %+v", role, got.Items)
		}
	}
	e.json("PUT", fmt.Sprintf("/api/v1/members/%d/roles", tr.bob), e.adminT, []any{}).want(200)
	// A group is set by id, and only a group of the member's branch. Moving a member to
	// another branch drops their old group.
	e.json("PATCH", fmt.Sprintf("/api/v1/members/%d", tr.alice), e.adminT, map[string]any{"group_id": tr.g1}).want(200).decode(&m)
	if m.GroupID == nil || *m.GroupID != tr.g1 {
		t.Fatalf("alice's group after setting it: %v", m.GroupID)
	}
	if f := e.json("PATCH", fmt.Sprintf("/api/v1/members/%d", tr.bob), e.adminT, map[string]any{"group_id": tr.g1}).want(422).errFields(); f["group_id"] == "" {
		t.Fatalf("a group of another branch: fields %v", f)
	}
	e.json("PATCH", fmt.Sprintf("/api/v1/members/%d", tr.alice), e.adminT, map[string]any{"branch_id": tr.b2}).want(200).decode(&m)
	if m.BranchID != tr.b2 || m.GroupID != nil {
		t.Fatalf("moved member: %+v", m)
	}
	e.json("PATCH", fmt.Sprintf("/api/v1/members/%d", tr.alice), e.adminT, map[string]any{"status": "retired"}).want(422)
	// Every change is in the audit log.
	var n int64
	e.db.R.Model(&models.AuditRecord{}).Where("entity = ? AND entity_id = ?", "member", tr.alice).Count(&n)
	if n < 4 {
		t.Fatalf("alice has %d audit records, want at least 4", n)
	}
	// Search by name prefix.
	var list app.List[models.Member]
	e.get("/api/v1/members?q="+"%E7%8E%8B", e.adminT).want(200).decode(&list) // 王
	if len(list.Items) != 1 || list.Items[0].ID != tr.alice {
		t.Fatalf("search 王: %+v", list.Items)
	}
	// By member number; LIKE's wildcards are plain characters; by status; by org.
	e.json("PATCH", fmt.Sprintf("/api/v1/members/%d", tr.carol), e.adminT, map[string]any{"status": "inactive"}).want(200)
	e.json("PATCH", fmt.Sprintf("/api/v1/members/%d", tr.sec), e.adminT, map[string]any{"group_id": tr.g1}).want(200) // alice has left b1
	for q, want := range map[string][]int64{
		"q=B0":   {tr.bob},
		"q=%25":  nil, // %
		"q=_001": nil,
		"q=%21":  nil, // !, the escape character
		fmt.Sprintf("status=inactive&org_id=%d", e.rootID): {tr.carol},
		fmt.Sprintf("status=active&org_id=%d", tr.b3):      {tr.lead},
		fmt.Sprintf("org_id=%d", tr.b3):                    {tr.carol, tr.lead},
		fmt.Sprintf("org_id=%d", tr.g1):                    {tr.sec}, // a party group's members are in its branch
	} {
		if got := listIDs(e, "/api/v1/members?"+q, e.adminT, func(m models.Member) int64 { return m.ID }); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("members?%s: %v, want %v", q, got, want)
		}
	}
}

func (e *testEnv) importFile(token, name string, data []byte) *result {
	e.t.Helper()
	mp := mustMultipart(e.t, name, data)
	return e.send(request{method: "POST", path: "/api/v1/members/import", token: token, ctype: mp[0], body: []byte(mp[1])})
}

func TestImport(t *testing.T) {
	e := newEnv(t, nil)
	tr := e.seedTree()
	before := e.countMembers()

	// Every bad row is named, and nothing is written.
	bad := "党员编号,姓名,支部,党小组\n" +
		"N001,赵一,教工第一党支部,\n" +
		"N002,,教工第一党支部,\n" + // row 3: missing name
		"N001,钱二,教工第一党支部,\n" + // row 4: duplicate number
		"N003,孙三,不存在的支部,\n" + // row 5: unknown branch
		"N 004,李四,教工第一党支部,\n" + // row 6: a space in the number
		"N005," + strings.Repeat("名", 65) + ",教工第一党支部,\n" + // row 7: a name too long
		"N006,吴六,研究生第一党支部,第一党小组\n" + // row 8: a group of another branch
		"N007,郑七,,\n" + // row 9: no branch
		"N008,王八,不存在的支部,第一党小组\n" + // row 10: an unknown branch; its group is not judged
		fmt.Sprintf("N009,冯九,%d,\n", tr.gb1) + // row 11: the id of a general branch
		"N010,陈十,同名党支部,\n" + // row 12: two branches have that name
		fmt.Sprintf("N011,褚十一,%d,\n", tr.g1) // row 13: the id of a group
	// Two branches of one name, in different general branches.
	var gb2 models.Org
	e.post("/api/v1/orgs", e.adminT, map[string]any{"parent_id": e.rootID, "kind": "general_branch", "name": "第二党总支"}).want(201).decode(&gb2)
	for _, parent := range []int64{tr.gb1, gb2.ID} {
		e.post("/api/v1/orgs", e.adminT, map[string]any{"parent_id": parent, "kind": "branch", "name": "同名党支部"}).want(201)
	}
	r := e.importFile(e.adminT, "roster.csv", []byte(bad)).want(422)
	var env struct {
		Error models.Error `json:"error"`
	}
	r.decode(&env)
	rows := map[int]string{}
	for _, re := range env.Error.Rows {
		rows[re.Row] += re.Field + ": " + re.Message + " | "
	}
	for row, want := range map[int]string{
		3: "name: is required", 4: "member_no: duplicates row 2", 5: "branch: no branch named", 6: "member_no: must be",
		7: "name: must have at most 64", 8: "group: is not a group of branch", 9: "branch: is required",
		10: "branch: no branch named", 11: fmt.Sprintf("branch: no branch with id %d", tr.gb1), 12: "branch: several branches are named",
		13: fmt.Sprintf("branch: no branch with id %d", tr.g1),
	} {
		if !strings.HasPrefix(rows[row], want) || strings.Count(rows[row], " | ") != 1 {
			t.Errorf("row %d: %q, want %q alone", row, rows[row], want)
		}
	}
	if len(rows) != 11 {
		t.Fatalf("row errors: %+v", env.Error.Rows)
	}
	if e.countMembers() != before {
		t.Fatal("a failed import wrote members")
	}

	// A good CSV with a BOM and Chinese headers; groups by name; ids or names for branches.
	good := "\ufeff党员编号,姓名,支部,党小组\n" +
		"N001,赵一,教工第一党支部,第一党小组\n" +
		fmt.Sprintf("N002,钱二,%d,\n", tr.b2) +
		"A001,王小丽,教工第一党支部,第一党小组\n" + // unchanged
		"B001,李明明,研究生第一党支部,\n" // renamed
	var res app.ImportResult
	e.importFile(e.adminT, "roster.csv", []byte(good)).want(200).decode(&res)
	if res.Created != 2 || res.Updated != 1 || res.Unchanged != 1 {
		t.Fatalf("result: %+v", res)
	}
	var bob models.Member
	e.db.R.Take(&bob, tr.bob)
	if bob.Name != "李明明" {
		t.Fatalf("bob is %q", bob.Name)
	}

	// A row that changes only a group (from none, or to none) or only a branch is an
	// update. A member moved by the roster is in the new branch at their next request.
	var me struct {
		Branch struct{ ID int64 } `json:"branch"`
	}
	e.get("/api/v1/me", tr.carT).want(200).decode(&me)
	moves := "党员编号,姓名,支部,党小组\n" +
		"S001,陈书记,教工第一党支部,第一党小组\n" + // a group, from none
		"A001,王小丽,教工第一党支部,\n" + // no group any more
		"C001,张伟,研究生第一党支部,\n" // to b2 from b3
	e.importFile(e.adminT, "roster.csv", []byte(moves)).want(200).decode(&res)
	if res.Created != 0 || res.Updated != 3 || res.Unchanged != 0 {
		t.Fatalf("moves: %+v", res)
	}
	e.get("/api/v1/me", tr.carT).want(200).decode(&me)
	if me.Branch.ID != tr.b2 {
		t.Fatalf("carol, moved by the roster, is in branch %d at her next request, want %d", me.Branch.ID, tr.b2)
	}
	// Each member written by an import is in the audit log.
	var imported int64
	e.db.R.Model(&models.AuditRecord{}).Where("action = ?", "member.imported").Count(&imported)
	if imported != 2+1+3 {
		t.Fatalf("%d audit records of imported members, want 6", imported)
	}

	// The same in GB18030, as Excel in China saves CSV.
	gbk, err := simplifiedchinese.GB18030.NewEncoder().String("党员编号,姓名,支部\nN010,欧阳娜娜,教工第一党支部\n")
	if err != nil {
		t.Fatal(err)
	}
	e.importFile(e.adminT, "roster.csv", []byte(gbk)).want(200).decode(&res)
	var nana models.Member
	e.db.R.Where("member_no = ?", "N010").Take(&nana)
	if nana.Name != "欧阳娜娜" {
		t.Fatalf("GB18030 name read as %q", nana.Name)
	}

	// A member number is one member's whatever its letters' case, on both databases:
	// "a001" is alice's row (unchanged), "c001" renames carol, one number twice in other
	// cases is a duplicate row, and a new member cannot take "b001" beside bob's B001.
	e.importFile(e.adminT, "roster.csv", []byte("党员编号,姓名,支部\na001,王小丽,教工第一党支部\nc001,张伟伟,研究生第一党支部\n")).want(200).decode(&res)
	var carol models.Member
	e.db.R.Take(&carol, tr.carol)
	if res.Created != 0 || res.Updated != 1 || res.Unchanged != 1 || res.Rows[1].ID != tr.carol || carol.Name != "张伟伟" || carol.MemberNo != "C001" {
		t.Fatalf("numbers in lower case: %+v, carol %+v", res, carol)
	}
	var twice struct{ Error models.Error }
	e.importFile(e.adminT, "roster.csv", []byte("党员编号,姓名,支部\nn030,甲,教工第一党支部\nN030,乙,教工第一党支部\n")).want(422).decode(&twice)
	if len(twice.Error.Rows) != 1 || twice.Error.Rows[0].Row != 3 || twice.Error.Rows[0].Message != "duplicates row 2" {
		t.Fatalf("one number twice in two cases: %+v", twice.Error.Rows)
	}
	e.post("/api/v1/members", e.adminT, map[string]any{"member_no": "b001", "name": "另一个", "branch_id": tr.b1}).want(409)

	// Rows of empty cells, as a spreadsheet saves them, are skipped, not refused as rows
	// without a number and a name; a bad row after them keeps its own row number.
	blanks := "党员编号,姓名,支部,党小组\n" +
		"N020,蒋二十,教工第一党支部,\n" +
		",,,\n" +
		" , ,\t, \n" +
		"N021,沈二一,教工第一党支部,\n" +
		",,,\n"
	e.importFile(e.adminT, "roster.csv", []byte(blanks)).want(200).decode(&res)
	if res.Created != 2 || res.Updated != 0 || res.Unchanged != 0 {
		t.Fatalf("a roster with blank rows: %+v", res)
	}
	var afterBlanks struct{ Error models.Error }
	e.importFile(e.adminT, "roster.csv", []byte(blanks+"N022,,教工第一党支部,\n")).want(422).decode(&afterBlanks)
	if len(afterBlanks.Error.Rows) != 1 || afterBlanks.Error.Rows[0].Row != 7 || afterBlanks.Error.Rows[0].Field != "name" {
		t.Fatalf("a bad row after blank rows: %+v", afterBlanks.Error.Rows)
	}

	// XLSX, English headers.
	x := excelize.NewFile()
	for i, row := range [][]any{{"member_no", "name", "branch", "status"}, {"X001", "上官婉儿", "机关第一党支部", "正常"}, {"X002", "司马光", tr.b3, "inactive"}} {
		cell, _ := excelize.CoordinatesToCellName(1, i+1)
		x.SetSheetRow("Sheet1", cell, &row)
	}
	var buf bytes.Buffer
	x.Write(&buf)
	e.importFile(e.adminT, "roster.xlsx", buf.Bytes()).want(200).decode(&res)
	if res.Created != 2 {
		t.Fatalf("xlsx: %+v", res)
	}
	var sm models.Member
	e.db.R.Where("member_no = ?", "X002").Take(&sm)
	if sm.Status != models.StatusInactive || sm.BranchID != tr.b3 {
		t.Fatalf("xlsx member: %+v", sm)
	}

	// A file without the needed columns, a wrong media type, no file, too many rows.
	var header struct{ Error models.Error }
	e.importFile(e.adminT, "roster.csv", []byte("编号,名字\n1,2\n")).want(422).decode(&header)
	if len(header.Error.Rows) == 0 || header.Error.Rows[0].Row != 1 || !strings.Contains(header.Error.Message, "lacks required columns") {
		t.Fatalf("a header without the needed columns: %+v", header.Error)
	}
	e.importFile(e.adminT, "roster.csv", []byte("member_no,name,branch,姓名\nQ1,某,1,某\n")).want(422).decode(&header)
	if len(header.Error.Rows) != 1 || header.Error.Rows[0].Row != 1 || header.Error.Rows[0].Field != "name" {
		t.Fatalf("a header naming a column twice: %+v", header.Error)
	}
	e.importFile(e.adminT, "roster.csv", []byte("member_no,name,branch\n")).want(422).decode(&header)
	if header.Error.Fields["file"] == "" {
		t.Fatalf("a header without rows: %+v", header.Error)
	}
	e.importFile(e.adminT, "roster.csv", []byte("member_no,name,branch\nQ1,某\x00,1\n")).want(422).decode(&header)
	if !strings.Contains(header.Error.Fields["file"], "CSV or XLSX") {
		t.Fatalf("a file with a NUL byte: %+v", header.Error)
	}
	e.importFile(e.adminT, "roster.csv", []byte("")).want(422)
	var other bytes.Buffer
	ow := multipart.NewWriter(&other)
	ow.WriteField("roster", good)
	ow.Close()
	if f := e.send(request{method: "POST", path: "/api/v1/members/import", token: e.adminT, ctype: ow.FormDataContentType(), body: other.Bytes()}).want(422).errFields(); f["file"] == "" {
		t.Fatalf("a form without the file field: fields %v", f)
	}
	e.send(request{method: "POST", path: "/api/v1/members/import", token: e.adminT, ctype: "text/csv", body: []byte(good)}).want(415)
	var huge strings.Builder
	huge.WriteString("member_no,name,branch\n")
	for i := 0; i <= app.MaxImportRows; i++ {
		fmt.Fprintf(&huge, "H%05d,某某,%d\n", i, tr.b1)
	}
	e.importFile(e.adminT, "roster.csv", []byte(huge.String())).want(413)
	// A secretary may not import; an admin of a general branch only into it.
	e.importFile(tr.secT, "roster.csv", []byte(good)).want(403)
}

func TestImportTenThousandRows(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the 10,000-row import runs in the full suite")
	}
	e := newEnv(t, nil)
	tr := e.seedTree()
	var sb strings.Builder
	sb.WriteString("member_no,name,branch\n")
	for i := 0; i < app.MaxImportRows; i++ {
		fmt.Fprintf(&sb, "T%05d,党员%05d,%d\n", i, i, []int64{tr.b1, tr.b2, tr.b3}[i%3])
	}
	var res app.ImportResult
	e.importFile(e.adminT, "big.csv", []byte(sb.String())).want(200).decode(&res)
	if res.Created != app.MaxImportRows {
		t.Fatalf("created %d", res.Created)
	}
	// A page asked for with more than the maximum gets the maximum.
	var page app.List[models.Member]
	e.get("/api/v1/members?limit=1000", e.adminT).want(200).decode(&page)
	if len(page.Items) != app.MaxPageLimit || page.NextCursor == nil {
		t.Fatalf("limit=1000: %d members, next %v", len(page.Items), page.NextCursor)
	}
	if n := e.countMembers(); n != int64(app.MaxImportRows)+6 {
		t.Fatalf("%d members", n)
	}
}

// TestBulkRoutesOutliveTheRequestTimeout: the request timeout is sized for one row's
// worth of work. A roster import and a report get the deadline of bulk work instead, so
// that a big import on a slow disk is not cut short, while every other route still ends
// in 503 (with Retry-After) once its deadline passes.
func TestBulkRoutesOutliveTheRequestTimeout(t *testing.T) {
	e := newEnv(t, nil)
	tr := e.seedTree()
	e.f = handlers.New(handlers.Deps{DB: e.db, Services: e.svc, Log: app.NewLogger(e.logs, "info"),
		Registry: prometheus.NewRegistry(), RequestTimeout: time.Nanosecond})

	r := e.get("/api/v1/members", e.adminT).want(503)
	if r.errCode() != "unavailable" || r.Header.Get("Retry-After") == "" {
		t.Fatalf("past the request timeout: %v %s", r.Header, r.Body)
	}
	roster := fmt.Sprintf("member_no,name,branch\nD001,邓稼先,%d\nD002,钱学森,%d\n", tr.b1, tr.b2)
	var res app.ImportResult
	e.importFile(e.adminT, "roster.csv", []byte(roster)).want(200).decode(&res)
	if res.Created != 2 {
		t.Fatalf("import: %+v", res)
	}
	url := fmt.Sprintf("/api/v1/reports/monthly?org_id=%d&period=%s&format=csv", e.rootID, today(e)[:7])
	if body := e.get(url, tr.leadT).want(200).Body; !strings.Contains(string(body), "钱学森") {
		t.Fatalf("the report misses the imported member:\n%s", body)
	}
}

// TestAnAdminOfAGeneralBranchStaysInIt: an admin whose role is over one general branch
// (b1 and b2) adds members, imports the roster, reopens months, reads the audit log and
// edits the org tree only inside it, never in b3. Each refusal here is a check of its own in the code, which no
// other test reached.
func TestAnAdminOfAGeneralBranchStaysInIt(t *testing.T) {
	e := newEnv(t, nil)
	tr := e.seedTree()
	e.json("PUT", fmt.Sprintf("/api/v1/members/%d/roles", tr.bob), e.adminT, []map[string]any{{"role": "admin", "org_id": tr.gb1}}).want(200)

	// Members: added inside his general branch only.
	e.post("/api/v1/members", tr.bobT, map[string]any{"member_no": "X001", "name": "韩梅", "branch_id": tr.b3}).want(422)
	e.post("/api/v1/members", tr.bobT, map[string]any{"member_no": "X001", "name": "韩梅", "branch_id": tr.b2}).want(201)

	// A roster import does not take a member from outside into his branches.
	e.importFile(tr.bobT, "roster.csv", []byte(fmt.Sprintf("member_no,name,branch\nC001,张伟,%d\n", tr.b2))).want(422)
	var carol models.Member
	e.db.R.Take(&carol, tr.carol)
	if carol.BranchID != tr.b3 {
		t.Fatalf("an admin of gb1 moved carol from b3 to branch %d", carol.BranchID)
	}

	// Closed months: he reopens b2's, and neither he nor a secretary b3's.
	period := today(e)[:7]
	for _, b := range []int64{tr.b2, tr.b3} {
		e.post("/api/v1/periods/"+period+"/close", e.adminT, map[string]any{"org_id": b}).want(200)
	}
	reopen := func(token string, org int64) *result {
		return e.post("/api/v1/periods/"+period+"/reopen", token, map[string]any{"org_id": org, "reason": "补录遗漏的志愿活动"})
	}
	reopen(tr.bobT, tr.b3).want(404)
	reopen(tr.secT, tr.b3).want(404)
	reopen(tr.bobT, tr.b2).want(200)
	reopen(e.adminT, tr.b3).want(200) // closed until now

	// The audit log: his general branch's records only.
	e.get(fmt.Sprintf("/api/v1/audit?org_id=%d", e.rootID), tr.bobT).want(404)
	e.get(fmt.Sprintf("/api/v1/audit?org_id=%d", tr.b3), tr.bobT).want(404)
	var audit app.List[models.AuditRecord]
	e.get(fmt.Sprintf("/api/v1/audit?org_id=%d&limit=100", tr.gb1), tr.bobT).want(200).decode(&audit)
	inside := map[int64]bool{tr.gb1: true, tr.b1: true, tr.g1: true, tr.b2: true}
	actions := map[string]int{}
	for _, r := range audit.Items {
		if r.OrgID == nil || !inside[*r.OrgID] {
			t.Fatalf("an admin of gb1 reads an audit record of org %v: %+v", r.OrgID, r)
		}
		actions[r.Action]++
	}
	if actions["period.closed"] != 1 || actions["period.reopened"] != 1 {
		t.Fatalf("gb1's audit log: %v", actions)
	}

	// The org tree: he renames inside, and neither edits b3 nor moves b2 out from under gb1.
	e.json("PATCH", fmt.Sprintf("/api/v1/orgs/%d", tr.b3), tr.bobT, map[string]any{"name": "机关第二党支部"}).want(404)
	e.json("PATCH", fmt.Sprintf("/api/v1/orgs/%d", tr.b2), tr.bobT, map[string]any{"parent_id": e.rootID}).want(422)
	var b2 models.Org
	e.json("PATCH", fmt.Sprintf("/api/v1/orgs/%d", tr.b2), tr.bobT, map[string]any{"name": "研究生第二党支部"}).want(200).decode(&b2)
	if b2.ParentID == nil || *b2.ParentID != tr.gb1 || b2.Name != "研究生第二党支部" {
		t.Fatalf("b2 after his edits: %+v", b2)
	}
}

// TestOrgTreeDepthIsBounded: committees nest, but an org's path of ids must fit its
// column (255 characters). Nesting deeper, or moving a subtree so deep that one of its
// orgs would not fit, is refused with 422 naming parent_id, on both databases, and
// changes nothing.
func TestOrgTreeDepthIsBounded(t *testing.T) {
	e := newEnv(t, nil)
	tr := e.seedTree()
	parent, levels := e.rootID, 0
	for {
		r := e.post("/api/v1/orgs", e.adminT, map[string]any{"parent_id": parent, "kind": "committee", "name": fmt.Sprintf("第%d级党委", levels+1)})
		if r.Status == 422 {
			if r.errFields()["parent_id"] == "" {
				t.Fatalf("too deep, but: %s", r.Body)
			}
			break
		}
		var o models.Org
		r.want(201).decode(&o)
		parent, levels = o.ID, levels+1
		if levels > 200 {
			t.Fatal("200 nested committees and no refusal: the paths are longer than their column")
		}
	}
	var deepest models.Org
	e.db.R.Take(&deepest, parent)
	if len(deepest.Path) > 255 || len(deepest.Path) < 240 {
		t.Fatalf("the deepest committee's path has %d characters after %d levels", len(deepest.Path), levels)
	}
	// gb1 holds b1, which holds g1: moved under the deepest committee, they would not fit.
	var before models.Org
	e.db.R.Take(&before, tr.g1)
	if r := e.json("PATCH", fmt.Sprintf("/api/v1/orgs/%d", tr.gb1), e.adminT, map[string]any{"parent_id": parent}).want(422); r.errFields()["parent_id"] == "" {
		t.Fatalf("a move too deep: %s", r.Body)
	}
	var after models.Org
	e.db.R.Take(&after, tr.g1)
	if after.Path != before.Path {
		t.Fatalf("a refused move changed a path: %q → %q", before.Path, after.Path)
	}
}
