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

// TestApprovalsWrittenTogetherFailAlone: one transaction of the approval writer holds
// approvals that must be written and approvals that must not: a decider's own claim, a
// claim of another branch, a claim rejected already, a claim in a closed month and a
// request whose deadline has passed. It also holds a second claim of a member already in
// it, which is approved after the first and capped by it, and a claim capped by what
// the member was awarded before. The good ones are answered as the database then holds
// them, with their entries, chained and counted (verify passes); the others get their
// own errors and leave nothing behind.
func TestApprovalsWrittenTogetherFailAlone(t *testing.T) {
	ctx := context.Background()
	db := apptest.OpenDB(t)
	loc := time.UTC
	sys, _, members, ledger, claims, _, uploads := setupRandom(t, db, loc)
	loader := identityOf(db)
	today := models.Today(time.Now(), loc)
	lastMonth := models.Date(time.Now().UTC().AddDate(0, -1, -time.Now().UTC().Day()+1).Format("2006-01-02"))
	file := func(m models.Member, rule string, day models.Date, hours models.Points) models.Claim {
		t.Helper()
		a, photo := withPhoto(t, loader, uploads, m.ID)
		in := app.ClaimInput{RuleCode: rule, OccurredOn: string(day), EvidenceIDs: []int64{photo}}
		if hours > 0 {
			in.Quantity = &hours
		}
		c, _, err := claims.Submit(ctx, a, "", in)
		if err != nil {
			t.Fatalf("member %d files %s: %v", m.ID, rule, err)
		}
		return c
	}
	actor := func(m models.Member) *app.Actor { return actorOf(t, loader, m) }
	// Branch 00: secretary members[0], members 1–5; branch 01: secretary members[6]; branch
	// 02: secretary members[12]; branch 10: secretary members[18].
	sec00, sec01 := actor(members[0]), actor(members[6])
	first := file(members[1], "four_ones.read_theory", today, 0)
	hours := file(members[7], "volunteer.hours", today, 25)
	second := file(members[1], "four_ones.read_theory", today, 0) // read_theory's cap is 20: the first uses it up
	own := file(members[0], "four_ones.volunteer", today, 0)
	otherBranch := file(members[13], "four_ones.read_theory", today, 0)
	rejected := file(members[2], "four_ones.read_theory", today, 0)
	if _, err := claims.Reject(ctx, sec00, rejected.ID, "照片不清楚"); err != nil {
		t.Fatal(err)
	}
	closed := file(members[19], "four_ones.read_theory", lastMonth, 0)
	if _, err := ledger.ClosePeriod(ctx, sys, string(lastMonth.Period()), members[19].BranchID); err != nil {
		t.Fatal(err)
	}
	late := file(members[3], "four_ones.read_theory", today, 0)
	// Member 8 has 8 of volunteer.hours' 10 points a month already: 5 more hours are cut to 2 points.
	before := file(members[8], "volunteer.hours", today, 80)
	if _, err := claims.Approve(ctx, sec01, before.ID); err != nil {
		t.Fatal(err)
	}
	capped := file(members[8], "volunteer.hours", today, 50)
	sec10 := actor(members[18])

	past, soon := time.Now().Add(-time.Second), time.Now().Add(time.Minute)
	together0, alone0 := claims.ApprovalsWritten()
	cs := []models.Claim{first, hours, second, own, otherBranch, rejected, closed, late, capped}
	ds, errs := claims.ApproveTogether(
		[]*app.Actor{sec00, sec01, sec00, sec00, sec00, sec00, sec10, sec00, sec01},
		[]int64{first.ID, hours.ID, second.ID, own.ID, otherBranch.ID, rejected.ID, closed.ID, late.ID, capped.ID},
		[]time.Time{soon, {}, soon, soon, soon, soon, soon, past, soon})
	// All but the late one and the member's second claim were answered from the shared
	// transaction; the second alone, after it.
	if together, alone := claims.ApprovalsWritten(); together-together0 != 7 || alone-alone0 != 1 {
		t.Errorf("%d answered together and %d alone, want 7 and 1", together-together0, alone-alone0)
	}
	code := func(err error) string {
		var me *models.Error
		if errors.As(err, &me) {
			return string(me.Code)
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return "deadline"
		}
		return "other: " + err.Error()
	}
	wantErr := map[int]string{3: string(models.EForbidden), 4: string(models.ENotFound), 5: string(models.EConflict), 6: string(models.EConflict), 7: "deadline"}
	wantAward := map[int]models.Points{0: 20, 1: 25, 2: 0, 8: 20} // in tenths
	wantCapped := map[int]bool{2: true, 8: true}
	for i, c := range cs {
		if want, bad := wantErr[i]; bad {
			if errs[i] == nil || code(errs[i]) != want {
				t.Errorf("claim %d (#%d): error %v, want %s", i, c.ID, errs[i], want)
			}
			got, err := claims.Get(ctx, sys, c.ID)
			if err != nil {
				t.Fatal(err)
			}
			if wantStatus := map[bool]string{true: models.ClaimRejected, false: models.ClaimPending}[i == 5]; got.Status != wantStatus {
				t.Errorf("claim %d (#%d): %s after the batch, want %s", i, c.ID, got.Status, wantStatus)
			}
			continue
		}
		if errs[i] != nil {
			t.Errorf("claim %d (#%d): %v", i, c.ID, errs[i])
			continue
		}
		d := ds[i]
		if d.Claim.Status != models.ClaimApproved || d.Claim.PointsAwarded == nil || *d.Claim.PointsAwarded != wantAward[i] || d.Capped != wantCapped[i] {
			t.Errorf("claim %d (#%d): %s, awarded %v, capped %v; want approved, %d, %v", i, c.ID, d.Claim.Status, d.Claim.PointsAwarded, d.Capped, wantAward[i], wantCapped[i])
		}
		// The answer is what the database holds.
		got, err := claims.Get(ctx, sys, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		gotJSON, _ := json.Marshal(got)
		ansJSON, _ := json.Marshal(d.Claim)
		if string(gotJSON) != string(ansJSON) {
			t.Errorf("claim %d: answered\n %s\nbut the database holds\n %s", i, ansJSON, gotJSON)
		}
		if (d.Entry != nil) != (wantAward[i] > 0) {
			t.Errorf("claim %d: entry %v, want one only for points", i, d.Entry)
			continue
		}
		if d.Entry != nil {
			var e models.Entry
			if err := db.R.Where("claim_id = ?", c.ID).Take(&e).Error; err != nil {
				t.Fatalf("claim %d: its entry: %v", i, err)
			}
			if e.ID != d.Entry.ID || e.Hash != d.Entry.Hash || e.Seq != d.Entry.Seq || e.Points != wantAward[i] {
				t.Errorf("claim %d: answered entry #%d seq %d %s, the database holds #%d seq %d %s", i, d.Entry.ID, d.Entry.Seq, d.Entry.Hash, e.ID, e.Seq, e.Hash)
			}
		}
	}
	var audits int64
	db.R.Model(&models.AuditRecord{}).Where("action = 'claim.approved' AND entity_id IN ?", []int64{first.ID, hours.ID, second.ID, capped.ID}).Count(&audits)
	if audits != 4 {
		t.Errorf("%d audit records of the four approvals, want 4", audits)
	}
	if _, err := app.Verify(ctx, db); err != nil {
		t.Fatalf("verify: %v", err)
	}
}
