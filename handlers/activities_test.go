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

func TestActivitiesAndCheckins(t *testing.T) {
	e := newEnv(t, nil)
	tr := e.seedTree()
	now := time.Now()
	window := map[string]any{"starts_at": now.Add(-time.Hour).Format(time.RFC3339), "ends_at": now.Add(time.Hour).Format(time.RFC3339)}
	activity := func(token string, org int64, rule string, extra map[string]any) *result {
		body := map[string]any{"org_id": org, "title": "三会一课：支部党员大会", "rule_code": rule}
		for k, v := range window {
			body[k] = v
		}
		for k, v := range extra {
			body[k] = v
		}
		return e.post("/api/v1/activities", token, body)
	}
	here := map[string]any{"lat": 39.9990, "lng": 116.3260, "radius_m": 200}
	var act models.Activity
	activity(tr.secT, tr.b1, "meeting.attend", here).want(201).decode(&act)
	if len(act.CheckinCode) != 16 {
		t.Fatalf("code %q", act.CheckinCode)
	}
	for name, extra := range map[string]map[string]any{
		"claim rule":         {"rule_code": "four_ones.read_theory"},
		"ends before starts": {"ends_at": now.Add(-2 * time.Hour).Format(time.RFC3339)},
		"bad time":           {"starts_at": "tomorrow"},
		"radius, no place":   {"radius_m": 100},
		"lat out of range":   {"lat": 91.0, "lng": 0.0},
		"over 7 days":        {"ends_at": now.Add(-time.Hour + 7*24*time.Hour + time.Minute).Format(time.RFC3339)},
		// Outside the years the ledger keeps (MySQL's DATETIME starts at the year 1000).
		"year 999":  {"starts_at": "0999-06-01T10:00:00Z", "ends_at": "0999-06-01T12:00:00Z"},
		"year 1999": {"starts_at": "1999-06-01T10:00:00Z", "ends_at": "1999-06-01T12:00:00Z"},
		"year 2101": {"starts_at": "2101-06-01T10:00:00Z", "ends_at": "2101-06-01T12:00:00Z"},
	} {
		if r := activity(tr.secT, tr.b1, "meeting.attend", extra); r.Status != 422 {
			t.Errorf("%s: %d %s", name, r.Status, r.Body)
		}
	}
	activity(tr.secT, tr.b2, "meeting.attend", nil).want(404)
	activity(tr.aliceT, tr.b1, "meeting.attend", nil).want(404)

	// Members see it without the code; the secretary sees the code.
	var list app.List[models.Activity]
	e.get("/api/v1/activities", tr.aliceT).want(200).decode(&list)
	if len(list.Items) != 1 || list.Items[0].CheckinCode != "" {
		t.Fatalf("alice sees %+v", list.Items)
	}
	e.get("/api/v1/activities", tr.bobT).want(200).decode(&list)
	if len(list.Items) != 0 {
		t.Fatalf("bob sees b1's activity")
	}

	// A week is the longest an activity lasts.
	activity(tr.secT, tr.b1, "meeting.attend", map[string]any{"ends_at": now.Add(-time.Hour + 7*24*time.Hour).Format(time.RFC3339)}).want(201)

	checkin := func(token string, id int64, code string, lat, lng any) *result {
		return e.post(fmt.Sprintf("/api/v1/activities/%d/checkin", id), token, map[string]any{"code": code, "lat": lat, "lng": lng})
	}
	checkin(tr.aliceT, act.ID, "WRONGCODE", 39.999, 116.326).want(422)
	checkin(tr.aliceT, act.ID, act.CheckinCode, nil, nil).want(422)
	checkin(tr.aliceT, act.ID, act.CheckinCode, 40.1, 116.326).want(422) // about 11 km off
	checkin(tr.bobT, act.ID, act.CheckinCode, 39.999, 116.326).want(404)
	var res app.CheckinResult
	checkin(tr.aliceT, act.ID, act.CheckinCode, 39.9995, 116.3262).want(201).decode(&res)
	if res.Entry == nil || res.Entry.Points != 10 || res.Entry.Source != "checkin" || res.Checkin.EntryID == nil {
		t.Fatalf("check-in: %+v", res)
	}
	if r := checkin(tr.aliceT, act.ID, act.CheckinCode, 39.9995, 116.3262); r.Status != 409 || !strings.Contains(string(r.Body), "checked in already") {
		t.Fatalf("second check-in: %d %s", r.Status, r.Body)
	}

	// The code rotates; the old one stops working.
	var rotated models.Activity
	e.post(fmt.Sprintf("/api/v1/activities/%d/code", act.ID), tr.aliceT, nil).want(404)
	e.post(fmt.Sprintf("/api/v1/activities/%d/code", act.ID), tr.secT, nil).want(200).decode(&rotated)
	checkin(tr.secT, act.ID, act.CheckinCode, 39.999, 116.326).want(422)
	checkin(tr.secT, act.ID, rotated.CheckinCode, 39.999, 116.326).want(201)

	// A committee-wide activity day, without a place: anyone in the tree checks in.
	var day models.Activity
	activity(e.adminT, e.rootID, "activity.day", nil).want(201).decode(&day)
	checkin(tr.bobT, day.ID, day.CheckinCode, nil, nil).want(201)
	// Outside the window.
	var later models.Activity
	activity(e.adminT, e.rootID, "activity.day", map[string]any{"starts_at": now.Add(time.Hour).Format(time.RFC3339), "ends_at": now.Add(2 * time.Hour).Format(time.RFC3339)}).want(201).decode(&later)
	checkin(tr.bobT, later.ID, later.CheckinCode, nil, nil).want(409)
	var over models.Activity
	activity(e.adminT, e.rootID, "activity.day", map[string]any{"starts_at": now.Add(-3 * time.Hour).Format(time.RFC3339), "ends_at": now.Add(-2 * time.Hour).Format(time.RFC3339)}).want(201).decode(&over)
	checkin(tr.bobT, over.ID, over.CheckinCode, nil, nil).want(409)

	// meeting.attend is capped at 4 a month: the fifth meeting earns nothing.
	for i := 0; i < 4; i++ {
		var m models.Activity
		activity(tr.secT, tr.b1, "meeting.attend", nil).want(201).decode(&m)
		checkin(tr.aliceT, m.ID, m.CheckinCode, nil, nil).want(201).decode(&res)
	}
	if !res.Capped || res.Entry != nil {
		t.Fatalf("fifth meeting: %+v", res)
	}

	// Attendance is for the secretary.
	var att app.List[app.AttendanceRow]
	e.get(fmt.Sprintf("/api/v1/activities/%d/attendance", act.ID), tr.secT).want(200).decode(&att)
	if len(att.Items) != 2 || att.Items[0].Name != "王小丽" {
		t.Fatalf("attendance: %+v", att.Items)
	}
	e.get(fmt.Sprintf("/api/v1/activities/%d/attendance", act.ID), tr.aliceT).want(404)
	e.get(fmt.Sprintf("/api/v1/activities/%d/attendance", act.ID), tr.bobT).want(404)
	// A leader above reads it too, page by page.
	var first, second app.List[app.AttendanceRow]
	e.get(fmt.Sprintf("/api/v1/activities/%d/attendance?limit=1", act.ID), tr.leadT).want(200).decode(&first)
	if len(first.Items) != 1 || first.NextCursor == nil || first.Items[0].ID != att.Items[0].ID {
		t.Fatalf("attendance, first page: %+v", first)
	}
	e.get(fmt.Sprintf("/api/v1/activities/%d/attendance?limit=1&cursor=%s", act.ID, *first.NextCursor), tr.leadT).want(200).decode(&second)
	if len(second.Items) != 1 || second.NextCursor != nil || second.Items[0].ID != att.Items[1].ID {
		t.Fatalf("attendance, second page: %+v", second)
	}

	// A secretary over a general branch sees, with their codes, the activities of every
	// branch inside it, not only of their own line of orgs; a member of such a branch
	// sees them without.
	var gbSec models.Member
	e.post("/api/v1/members", e.adminT, map[string]any{"member_no": "GS1", "name": "总支书记", "branch_id": tr.b1}).want(201).decode(&gbSec)
	e.json("PUT", fmt.Sprintf("/api/v1/members/%d/roles", gbSec.ID), e.adminT, []map[string]any{{"role": "secretary", "org_id": tr.gb1}}).want(200)
	var inB2 models.Activity
	activity(e.adminT, tr.b2, "meeting.attend", nil).want(201).decode(&inB2)
	codeIn := func(token string) (string, bool) {
		for cursor, pages := "", 0; pages < 10; pages++ {
			var l app.List[models.Activity]
			e.get("/api/v1/activities?cursor="+cursor, token).want(200).decode(&l)
			for _, a := range l.Items {
				if a.ID == inB2.ID {
					return a.CheckinCode, true
				}
			}
			if l.NextCursor == nil {
				break
			}
			cursor = *l.NextCursor
		}
		return "", false
	}
	if code, ok := codeIn(e.tokenFor(gbSec.ID)); !ok || code != inB2.CheckinCode {
		t.Fatalf("gb1's secretary lists b2's activity: %v, code %q", ok, code)
	}
	if code, ok := codeIn(tr.bobT); !ok || code != "" {
		t.Fatalf("bob lists b2's activity: %v, code %q", ok, code)
	}
	if _, ok := codeIn(tr.secT); ok {
		t.Fatal("b1's secretary lists b2's activity")
	}

	// A check-in tapped five times at once counts once.
	var tap models.Activity
	activity(e.adminT, e.rootID, "activity.day", nil).want(201).decode(&tap)
	got := concurrently(5, func(int) int { return checkin(tr.carT, tap.ID, tap.CheckinCode, nil, nil).Status })
	var n int64
	e.db.R.Model(&models.Checkin{}).Where("activity_id = ? AND member_id = ?", tap.ID, tr.carol).Count(&n)
	if got[201] != 1 || got[409] != 4 || n != 1 {
		t.Fatalf("five taps: %v, %d check-ins", got, n)
	}
	// A closed month takes no check-ins.
	var closedDay models.Activity
	activity(e.adminT, e.rootID, "activity.day", nil).want(201).decode(&closedDay)
	e.post("/api/v1/periods/"+today(e)[:7]+"/close", e.adminT, map[string]any{"org_id": tr.gb1}).want(200)
	checkin(tr.bobT, closedDay.ID, closedDay.CheckinCode, nil, nil).want(409)
	checkin(tr.carT, closedDay.ID, closedDay.CheckinCode, nil, nil).want(201) // b3 is not under gb1
	if _, err := app.Verify(context.Background(), e.db); err != nil {
		t.Fatal(err)
	}

	// A rule the admins switched off takes no new activities.
	e.json("PATCH", "/api/v1/rules/meeting.attend", e.adminT, map[string]any{"active": false}).want(200)
	if r := activity(tr.secT, tr.b1, "meeting.attend", nil).want(422); r.errFields()["rule_code"] == "" {
		t.Fatalf("inactive rule: %s", r.Body)
	}
}

// A party group's meeting (党小组会, one of 三会一课): the branch's secretary makes an
// activity of the group; the group's members see it and check in, and the branch's other
// members neither see it nor check in. Before, the group's own members got 404 for it.
func TestAPartyGroupsMeeting(t *testing.T) {
	e := newEnv(t, nil)
	tr := e.seedTree()
	now := time.Now()
	var other models.Member // in b1, in no group
	e.post("/api/v1/members", e.adminT, map[string]any{"member_no": "N001", "name": "庚", "branch_id": tr.b1}).want(201).decode(&other)
	otherT := e.tokenFor(other.ID)
	var act models.Activity
	e.post("/api/v1/activities", tr.secT, map[string]any{"org_id": tr.g1, "title": "三会一课：党小组会", "rule_code": "meeting.attend",
		"starts_at": now.Add(-time.Hour).Format(time.RFC3339), "ends_at": now.Add(time.Hour).Format(time.RFC3339)}).want(201).decode(&act)
	sees := func(token string) bool {
		for _, id := range listIDs(e, "/api/v1/activities", token, func(a models.Activity) int64 { return a.ID }) {
			if id == act.ID {
				return true
			}
		}
		return false
	}
	if !sees(tr.aliceT) || sees(otherT) || sees(tr.bobT) || !sees(tr.secT) {
		t.Fatalf("who sees the group's meeting: alice %v, b1's member outside the group %v, bob %v, the secretary %v",
			sees(tr.aliceT), sees(otherT), sees(tr.bobT), sees(tr.secT))
	}
	checkin := func(token string) *result {
		return e.post(fmt.Sprintf("/api/v1/activities/%d/checkin", act.ID), token, map[string]any{"code": act.CheckinCode})
	}
	checkin(otherT).want(404)
	checkin(tr.bobT).want(404)
	var res app.CheckinResult
	checkin(tr.aliceT).want(201).decode(&res)
	if res.Entry == nil || res.Entry.Points != 10 || res.Entry.BranchID != tr.b1 {
		t.Fatalf("alice's check-in at her group's meeting: %+v", res)
	}
	var att app.List[app.AttendanceRow]
	e.get(fmt.Sprintf("/api/v1/activities/%d/attendance", act.ID), tr.secT).want(200).decode(&att)
	if len(att.Items) != 1 || att.Items[0].MemberID != tr.alice {
		t.Fatalf("attendance: %+v", att.Items)
	}
	// Out of the group, out of its meetings.
	e.json("PATCH", fmt.Sprintf("/api/v1/members/%d", tr.alice), e.adminT, map[string]any{"group_id": nil}).want(200)
	if sees(tr.aliceT) {
		t.Fatal("alice still sees her old group's meeting")
	}
}

// TestAMeetingChecksInAtOnce: 24 members check in at one activity at once, each tapping
// twice. The check-in writer puts them in shared transactions; every member gets one
// check-in (201) and one conflict (409), one entry of the rule's points, and the ledger
// verifies.
func TestAMeetingChecksInAtOnce(t *testing.T) {
	e := newEnv(t, nil)
	tr := e.seedTree()
	act := e.meetingOfAll()
	ids, tokens := e.newMembers(tr, 24)
	together0 := metric(t, e, `ledger_checkins_total{written="together"}`)
	got := concurrently(2*len(tokens), func(i int) int {
		return e.post(fmt.Sprintf("/api/v1/activities/%d/checkin", act.ID), tokens[i/2], map[string]any{"code": act.CheckinCode}).Status
	})
	if got[201] != len(tokens) || got[409] != len(tokens) {
		t.Fatalf("48 taps of 24 members: %v, want 24 × 201 and 24 × 409", got)
	}
	for _, id := range ids {
		var checkins, entries int64
		var points models.Points
		e.db.R.Model(&models.Checkin{}).Where("activity_id = ? AND member_id = ? AND entry_id IS NOT NULL", act.ID, id).Count(&checkins)
		e.db.R.Model(&models.Entry{}).Where("member_id = ? AND rule_code = 'activity.day'", id).Count(&entries)
		e.db.R.Model(&models.Entry{}).Select("COALESCE(SUM(points), 0)").Where("member_id = ?", id).Scan(&points)
		if checkins != 1 || entries != 1 || points != 20 {
			t.Errorf("member %d: %d check-ins with an entry, %d entries, %v points; want 1, 1 and 2", id, checkins, entries, points)
		}
	}
	var audited int64
	e.db.R.Model(&models.AuditRecord{}).Where("action = ? AND actor_id IN ?", "checkin.created", ids).Count(&audited)
	if audited != int64(len(ids)) {
		t.Errorf("%d check-ins audited, want %d", audited, len(ids))
	}
	if together := metric(t, e, `ledger_checkins_total{written="together"}`); together <= together0 {
		t.Errorf("no check-in was written in a shared transaction (%v, before %v)", together, together0)
	}
	if e.db.Driver == "sqlite" {
		if failed := metric(t, e, "ledger_sqlite_checkpoint_failures_total"); failed != 0 {
			t.Errorf("%v background WAL checkpoints failed", failed)
		}
		if body := string(e.get("/metrics", "").want(200).Body); !strings.Contains(body, "\nledger_sqlite_wal_pages ") {
			t.Error("/metrics has no ledger_sqlite_wal_pages")
		}
	}
	if _, err := app.Verify(context.Background(), e.db); err != nil {
		t.Fatal(err)
	}
}

// An activity made before an admin switched its rule off takes no more check-ins, as no
// claims are taken under such a rule: 409, nothing written, whether the check-ins come at
// once (written together) or one by one. Switched on again, it takes them. Before, they
// earned entries under the switched-off version of the rule.
func TestCheckinsAtAnActivityWhoseRuleWasSwitchedOff(t *testing.T) {
	e := newEnv(t, nil)
	tr := e.seedTree()
	act := e.meetingOfAll()
	e.json("PATCH", "/api/v1/rules/activity.day", e.adminT, map[string]any{"active": false}).want(200)
	_, tokens := e.newMembers(tr, 12)
	checkin := func(token string) *result {
		return e.post(fmt.Sprintf("/api/v1/activities/%d/checkin", act.ID), token, map[string]any{"code": act.CheckinCode})
	}
	if got := concurrently(len(tokens), func(i int) int { return checkin(tokens[i]).Status }); got[409] != len(tokens) {
		t.Fatalf("12 check-ins at once under a switched-off rule: %v", got)
	}
	if r := checkin(tr.aliceT).want(409); !strings.Contains(string(r.Body), "switched the rule off") {
		t.Fatalf("a check-in alone under a switched-off rule: %s", r.Body)
	}
	var checkins, entries int64
	e.db.R.Model(&models.Checkin{}).Where("activity_id = ?", act.ID).Count(&checkins)
	e.db.R.Model(&models.Entry{}).Where("rule_code = ?", "activity.day").Count(&entries)
	if checkins != 0 || entries != 0 {
		t.Fatalf("%d check-ins and %d entries written under a switched-off rule", checkins, entries)
	}
	e.json("PATCH", "/api/v1/rules/activity.day", e.adminT, map[string]any{"active": true}).want(200)
	checkin(tr.aliceT).want(201)
	if got := concurrently(len(tokens), func(i int) int { return checkin(tokens[i]).Status }); got[201] != len(tokens) {
		t.Fatalf("12 check-ins at once with the rule on again: %v", got)
	}
}

// TestCheckinsCheckTheirCallerInTheirOwnTransaction: a check-in runs with the server's
// cached copy of the caller, checked in the write's own transaction, as claims and
// approvals do (TestWritesCheckTheirCallerInTheirOwnTransaction). Each change to the
// caller after the copy was cached must still take effect at once: a member moved out of
// the activity's branch is refused and nothing is written, one moved into it checks in
// there, a disabled member checks in nowhere.
func TestCheckinsCheckTheirCallerInTheirOwnTransaction(t *testing.T) {
	e := newEnv(t, nil)
	tr := e.seedTree()
	now := time.Now()
	var act models.Activity
	e.post("/api/v1/activities", tr.secT, map[string]any{"org_id": tr.b1, "title": "支部党员大会", "rule_code": "meeting.attend",
		"starts_at": now.Add(-time.Hour).Format(time.RFC3339), "ends_at": now.Add(time.Hour).Format(time.RFC3339)}).want(201).decode(&act)
	checkin := func(token string) *result {
		return e.post(fmt.Sprintf("/api/v1/activities/%d/checkin", act.ID), token, map[string]any{"code": act.CheckinCode})
	}
	written := func(member int64) (checkins, entries int64) {
		e.db.R.Model(&models.Checkin{}).Where("activity_id = ? AND member_id = ?", act.ID, member).Count(&checkins)
		e.db.R.Model(&models.Entry{}).Where("member_id = ? AND source = ?", member, models.SourceCheckin).Count(&entries)
		return
	}
	for _, token := range []string{tr.aliceT, tr.bobT, tr.secT} {
		e.get("/api/v1/activities", token).want(200) // each caller's copy is cached
	}

	// Alice moves from b1 to b2: b1's meeting is no longer hers.
	e.json("PATCH", fmt.Sprintf("/api/v1/members/%d", tr.alice), e.adminT, map[string]any{"branch_id": tr.b2}).want(200)
	checkin(tr.aliceT).want(404)
	if c, n := written(tr.alice); c+n != 0 {
		t.Fatalf("a member moved out of the branch: %d check-ins and %d entries written", c, n)
	}

	// Bob moves from b2 into b1: he checks in, and earns in b1.
	e.json("PATCH", fmt.Sprintf("/api/v1/members/%d", tr.bob), e.adminT, map[string]any{"branch_id": tr.b1}).want(200)
	var res app.CheckinResult
	checkin(tr.bobT).want(201).decode(&res)
	if res.Entry == nil || res.Entry.BranchID != tr.b1 {
		t.Fatalf("a member moved into the branch: %+v, want an entry in branch %d", res.Entry, tr.b1)
	}

	// The secretary, disabled, checks in nowhere.
	e.json("PATCH", fmt.Sprintf("/api/v1/members/%d", tr.sec), e.adminT, map[string]any{"status": "inactive"}).want(200)
	checkin(tr.secT).want(401)
	if c, n := written(tr.sec); c+n != 0 {
		t.Fatalf("a disabled member: %d check-ins and %d entries written", c, n)
	}
}

// meetingOfAll opens a committee-wide activity day (全体党员大会) that began a minute ago
// and lasts an hour.
func (e *testEnv) meetingOfAll() models.Activity {
	e.t.Helper()
	now := time.Now()
	var act models.Activity
	e.post("/api/v1/activities", e.adminT, map[string]any{"org_id": e.rootID, "title": "全体党员大会", "rule_code": "activity.day",
		"starts_at": now.Add(-time.Minute).Format(time.RFC3339), "ends_at": now.Add(time.Hour).Format(time.RFC3339)}).want(201).decode(&act)
	return act
}

// newMembers adds n members (M000, M001, …) to b1 and b3 by turns and returns their ids
// and tokens.
func (e *testEnv) newMembers(tr tree, n int) (ids []int64, tokens []string) {
	e.t.Helper()
	for i := range n {
		var m models.Member
		e.post("/api/v1/members", e.adminT, map[string]any{"member_no": fmt.Sprintf("M%03d", i), "name": fmt.Sprintf("党员%d", i), "branch_id": []int64{tr.b1, tr.b3}[i%2]}).want(201).decode(&m)
		ids, tokens = append(ids, m.ID), append(tokens, e.tokenFor(m.ID))
	}
	return ids, tokens
}
