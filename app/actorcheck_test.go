package app_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"partyledger/app"
	"partyledger/app/apptest"
	"partyledger/models"
)

// TestSharedWritesRefuseAStaleCaller: a shared transaction of the approval writer, and one
// of the check-in writer, each hold a write whose caller's copy is out of date (their
// account changed after it was read: auth_rev moved on) beside the same caller's current
// copy. The stale one is refused with ErrActorChanged and leaves nothing behind; the
// current one is written. (A request alone takes the writers' path for one write, which
// the handlers' tests cover.)
func TestSharedWritesRefuseAStaleCaller(t *testing.T) {
	ctx := context.Background()
	db := apptest.OpenDB(t)
	loc := time.UTC
	sys, orgs, members, _, claims, acts, uploads := setupRandom(t, db, loc)
	loader := identityOf(db)
	actor := func(m models.Member) *app.Actor { return actorOf(t, loader, m) }
	stale := func(m models.Member) (old, now *app.Actor) {
		t.Helper()
		old = actor(m)
		if err := db.W.Exec("UPDATE members SET auth_rev = auth_rev + 1 WHERE id = ?", m.ID).Error; err != nil {
			t.Fatal(err)
		}
		return old, actor(m)
	}
	today := string(models.Today(time.Now(), loc))
	file := func(m models.Member) models.Claim {
		t.Helper()
		a, photo := withPhoto(t, loader, uploads, m.ID)
		c, _, err := claims.Submit(ctx, a, "", app.ClaimInput{RuleCode: "four_ones.read_theory", OccurredOn: today, EvidenceIDs: []int64{photo}})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	// Approvals: members[0] is branch 00's secretary, members[1] and [2] are in it.
	first, second := file(members[1]), file(members[2])
	old, now := stale(members[0])
	soon := time.Now().Add(time.Minute)
	ds, errs := claims.ApproveTogether([]*app.Actor{old, now}, []int64{first.ID, second.ID}, []time.Time{soon, soon})
	if !errors.Is(errs[0], app.ErrActorChanged) {
		t.Errorf("approval by the stale copy: %v, want ErrActorChanged", errs[0])
	}
	if errs[1] != nil || ds[1].Claim.Status != models.ClaimApproved {
		t.Errorf("approval by the current copy: %v, %s", errs[1], ds[1].Claim.Status)
	}
	for _, c := range []struct {
		id   int64
		want string
	}{{first.ID, models.ClaimPending}, {second.ID, models.ClaimApproved}} {
		got, err := claims.Get(ctx, sys, c.id)
		if err != nil {
			t.Fatal(err)
		}
		var entries int64
		db.R.Model(&models.Entry{}).Where("claim_id = ?", c.id).Count(&entries)
		if got.Status != c.want || entries != map[bool]int64{true: 1, false: 0}[c.want == models.ClaimApproved] {
			t.Errorf("claim #%d: %s with %d entries, want %s", c.id, got.Status, entries, c.want)
		}
	}

	// Check-ins: members[3] with a stale copy and members[4] with a current one.
	act, err := acts.Create(ctx, sys, app.ActivityInput{OrgID: orgs[0], Title: "支部党员大会", RuleCode: "meeting.attend",
		StartsAt: time.Now().Add(-time.Minute).Format(time.RFC3339), EndsAt: time.Now().Add(time.Hour).Format(time.RFC3339)})
	if err != nil {
		t.Fatal(err)
	}
	old3, _ := stale(members[3])
	in := app.CheckinInput{Code: act.CheckinCode}
	_, cerrs := acts.CheckinTogether(ctx, []*app.Actor{old3, actor(members[4])}, []int64{act.ID, act.ID}, []app.CheckinInput{in, in})
	if !errors.Is(cerrs[0], app.ErrActorChanged) || cerrs[1] != nil {
		t.Errorf("check-ins: %v, want ErrActorChanged and none", cerrs)
	}
	for m, want := range map[int64]int64{members[3].ID: 0, members[4].ID: 1} {
		var n, entries int64
		db.R.Model(&models.Checkin{}).Where("activity_id = ? AND member_id = ?", act.ID, m).Count(&n)
		db.R.Model(&models.Entry{}).Where("member_id = ? AND source = ?", m, models.SourceCheckin).Count(&entries)
		if n != want || entries != want {
			t.Errorf("member %d: %d check-ins and %d entries, want %d", m, n, entries, want)
		}
	}
	if _, err := app.Verify(ctx, db); err != nil {
		t.Fatal(err)
	}
}
