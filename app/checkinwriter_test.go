package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"partyledger/app"
	"partyledger/app/apptest"
	"partyledger/models"
)

// TestCheckinsWrittenTogetherFailAlone: one transaction of the check-in writer holds
// check-ins that must be written and ones that must not: a member who checked in
// already (whose key makes the transaction's one INSERT fail, so it is answered and the
// others inserted again), a double tap inside the transaction, a member whose month is
// closed. It also holds a member's check-ins at two activities (the second written
// alone, after the first) and a check-in capped by an earlier activity day. Every answer
// must be what the database then holds, entries chained and counted (verify passes).
func TestCheckinsWrittenTogetherFailAlone(t *testing.T) {
	ctx := context.Background()
	db := apptest.OpenDB(t)
	loc := time.UTC
	sys, orgs, members, ledger, _, acts, _ := setupRandom(t, db, loc)
	loader := identityOf(db)
	actor := func(m models.Member) *app.Actor { return actorOf(t, loader, m) }
	now := time.Now()
	activity := func(rule string) models.Activity {
		t.Helper()
		act, err := acts.Create(ctx, sys, app.ActivityInput{OrgID: orgs[0], Title: rule, RuleCode: rule,
			StartsAt: now.Add(-time.Minute).Format(time.RFC3339), EndsAt: now.Add(time.Hour).Format(time.RFC3339)})
		if err != nil {
			t.Fatal(err)
		}
		return act
	}
	day1, day2, meeting := activity("activity.day"), activity("activity.day"), activity("meeting.attend")
	code := func(a models.Activity) app.CheckinInput { return app.CheckinInput{Code: a.CheckinCode} }
	// Before: members[1] earns the month's activity-day points, members[2] is at the meeting.
	if _, err := acts.Checkin(ctx, actor(members[1]), day1.ID, code(day1)); err != nil {
		t.Fatal(err)
	}
	if _, err := acts.Checkin(ctx, actor(members[2]), meeting.ID, code(meeting)); err != nil {
		t.Fatal(err)
	}
	if _, err := ledger.ClosePeriod(ctx, sys, string(models.Today(now, loc).Period()), members[13].BranchID); err != nil {
		t.Fatal(err)
	}
	together0, alone0 := acts.CheckinsWritten()

	type want struct {
		points int64 // > 0: an entry of these points (in tenths); 0: capped, no entry
		code   string
	}
	who := []models.Member{members[1], members[7], members[7], members[8], members[8], members[2], members[13], members[19]}
	at := []models.Activity{day2, day2, meeting, meeting, meeting, meeting, day2, day2}
	wants := []want{{points: 0}, {points: 20}, {points: 10}, {points: 10}, {code: models.EConflict}, {code: models.EConflict}, {code: models.EConflict}, {points: 20}}
	actors, ids, ins := make([]*app.Actor, len(who)), make([]int64, len(who)), make([]app.CheckinInput, len(who))
	for i := range who {
		actors[i], ids[i], ins[i] = actor(who[i]), at[i].ID, code(at[i])
	}
	got, errs := acts.CheckinTogether(ctx, actors, ids, ins)
	for i, w := range wants {
		if w.code != "" {
			var me *models.Error
			if !errors.As(errs[i], &me) || me.Code != w.code {
				t.Errorf("check-in %d: %v, want %s", i, errs[i], w.code)
			}
			continue
		}
		if errs[i] != nil {
			t.Errorf("check-in %d: %v", i, errs[i])
			continue
		}
		r := got[i]
		var row models.Checkin
		if err := db.R.Where("id = ?", r.Checkin.ID).Take(&row).Error; err != nil {
			t.Errorf("check-in %d: id %d: %v", i, r.Checkin.ID, err)
			continue
		}
		if a, b := mustJSON(r.Checkin), mustJSON(row); a != b || row.MemberID != who[i].ID || row.ActivityID != at[i].ID {
			t.Errorf("check-in %d: answered %s, the database holds %s", i, a, b)
		}
		if w.points == 0 {
			if !r.Capped || r.Entry != nil || row.EntryID != nil {
				t.Errorf("check-in %d: capped %v, entry %v, row's entry %v; want capped without an entry", i, r.Capped, r.Entry, row.EntryID)
			}
			continue
		}
		if r.Entry == nil || row.EntryID == nil || *row.EntryID != r.Entry.ID || int64(r.Entry.Points) != w.points {
			t.Errorf("check-in %d: entry %+v, row's entry %v; want %d points", i, r.Entry, row.EntryID, w.points)
			continue
		}
		var e models.Entry
		if err := db.R.Where("id = ?", r.Entry.ID).Take(&e).Error; err != nil {
			t.Fatal(err)
		}
		if a, b := mustJSON(*r.Entry), mustJSON(e); a != b {
			t.Errorf("check-in %d: answered entry %s, the database holds %s", i, a, b)
		}
	}
	together, alone := acts.CheckinsWritten()
	if together-together0 != 6 || alone-alone0 != 2 {
		t.Errorf("%d check-ins answered together, %d alone; want 6 and 2 (a member's second check-in, and the double tap)", together-together0, alone-alone0)
	}
	var n int64
	db.R.Model(&models.Checkin{}).Count(&n)
	if n != 7 {
		t.Errorf("%d check-ins in the database, want 7", n)
	}
	// Each check-in written has one audit record, by its member, under their branch, with
	// the row as written (its entry included); the refused ones have none.
	for i, w := range wants {
		if w.code != "" || errs[i] != nil {
			continue
		}
		var recs []models.AuditRecord
		db.R.Where("action = ? AND entity = ? AND entity_id = ?", "checkin.created", "checkin", got[i].Checkin.ID).Find(&recs)
		if len(recs) != 1 || recs[0].ActorID == nil || *recs[0].ActorID != who[i].ID || recs[0].OrgID == nil || *recs[0].OrgID != who[i].BranchID ||
			recs[0].After != mustJSON(got[i].Checkin) {
			t.Errorf("check-in %d: audit records %+v", i, recs)
		}
	}
	var audited int64
	db.R.Model(&models.AuditRecord{}).Where("action = ?", "checkin.created").Count(&audited)
	if audited != 7 {
		t.Errorf("%d check-ins audited, want the 7 written", audited)
	}
	if _, err := app.Verify(ctx, db); err != nil {
		t.Fatal(err)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
