package app_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"partyledger/app"
	"partyledger/app/apptest"
	"partyledger/models"
)

// TestRandomOperationsKeepTheLedgerTrue runs a long random mix of the ledger's operations
// (claims filed, approved, rejected and withdrawn; bonuses, deductions and reversals;
// check-ins; months closed and reopened) and then checks that approved claims, entries,
// caps and running totals agree and that Verify passes; then a tampered row must fail
// it. The seed is printed; LEDGER_TEST_SEED=n replays a run.
func TestRandomOperationsKeepTheLedgerTrue(t *testing.T) {
	seed := randomSeed(t)
	rng := rand.New(rand.NewPCG(seed, 1))
	ops := 2000
	if testing.Short() {
		ops = 300
	}
	ctx := context.Background()
	db := apptest.OpenDB(t)
	loc, _ := time.LoadLocation("Asia/Shanghai")
	sys, orgs, members, ledger, claims, acts, uploads := setupRandom(t, db, loc)
	orgSvc := app.NewOrgs(db)
	root := sys.Grants[0].OrgID
	// Secretaries are the first member of each branch; actors are read as requests read them.
	actors := map[int64]*app.Actor{}
	loader := identityOf(db)
	actorOf := func(id int64) *app.Actor {
		if a, ok := actors[id]; ok {
			return a
		}
		a, err := loader.Actor(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		actors[id] = a
		return a
	}
	photos := map[int64]int64{}
	photoOf := func(m int64) int64 {
		if id, ok := photos[m]; ok {
			return id
		}
		u, err := uploads.Create(ctx, actorOf(m), tinyPNG())
		if err != nil {
			t.Fatal(err)
		}
		photos[m] = u.ID
		return u.ID
	}
	today := models.Today(time.Now(), loc)
	lastMonth := models.Date(time.Now().In(loc).AddDate(0, -1, -time.Now().In(loc).Day()+1).Format("2006-01-02"))
	days := []models.Date{today, lastMonth}
	claimRules := []string{"four_ones.listen_masses", "four_ones.guide_activists", "four_ones.read_theory", "four_ones.volunteer", "volunteer.hours"}
	var activities []models.Activity
	for _, rule := range []string{"activity.day", "meeting.attend", "meeting.attend"} {
		a, err := acts.Create(ctx, sys, app.ActivityInput{OrgID: root, Title: "活动", RuleCode: rule,
			StartsAt: time.Now().Add(-time.Hour).Format(time.RFC3339), EndsAt: time.Now().Add(time.Hour).Format(time.RFC3339)})
		if err != nil {
			t.Fatal(err)
		}
		activities = append(activities, a)
	}
	var pending []int64
	claimBranch := map[int64]int64{}
	var entryIDs []int64
	counts := map[string]int{}
	expected := func(err error) {
		t.Helper()
		var me *models.Error
		if err != nil && (!errors.As(err, &me) || me.Code == models.EInternal || me.Code == models.EUnavailable) {
			t.Fatalf("seed %d: unexpected error: %v", seed, err)
		}
	}
	for i := 0; i < ops; i++ {
		m := members[rng.IntN(len(members))]
		sec := secretaryOf(m, members)
		switch op := rng.IntN(103); {
		case op < 35: // file a claim
			rule := claimRules[rng.IntN(len(claimRules))]
			in := app.ClaimInput{RuleCode: rule, OccurredOn: string(days[rng.IntN(2)]), EvidenceIDs: []int64{photoOf(m.ID)}}
			if rule == "volunteer.hours" {
				q := models.Points(5 * (1 + rng.IntN(12)))
				in.Quantity = &q
			}
			key := ""
			if rng.IntN(3) == 0 {
				key = fmt.Sprintf("k%d", rng.IntN(50))
			}
			c, created, err := claims.Submit(ctx, actorOf(m.ID), key, in)
			expected(err)
			if err == nil && created {
				pending = append(pending, c.ID)
				claimBranch[c.ID] = m.BranchID
				counts["claim"]++
			}
		case op < 40 && len(pending) > 1: // a secretary approves several at once: shared transactions
			// Up to eight of the branch's claims, and now and then one of another branch's.
			ids := map[int64]bool{pending[rng.IntN(len(pending))]: rng.IntN(4) == 0}
			for _, id := range pending {
				if len(ids) < 9 && claimBranch[id] == sec.BranchID {
					ids[id] = true
				}
			}
			maps.DeleteFunc(ids, func(_ int64, keep bool) bool { return !keep })
			if len(ids) == 0 {
				continue
			}
			batch := slices.Sorted(maps.Keys(ids))
			rs, err := claims.Batch(ctx, actorOf(sec.ID), batch, "approve", "")
			expected(err)
			for _, r := range rs {
				if r.Error != nil {
					expected(r.Error)
				}
				if r.Status == models.ClaimApproved {
					pending = slices.DeleteFunc(pending, func(id int64) bool { return id == r.ClaimID })
					counts["decision"]++
					counts["batch decision"]++
				}
			}
		case op < 60 && len(pending) > 0: // decide one
			j := rng.IntN(len(pending))
			id := pending[j]
			c, err := claims.Get(ctx, sys, id)
			expected(err)
			decider := actorOf(secretaryOf(memberByID(members, c.MemberID), members).ID)
			switch rng.IntN(4) {
			case 0:
				_, err = claims.Reject(ctx, decider, id, "不符合要求")
			case 1:
				_, err = claims.Withdraw(ctx, actorOf(c.MemberID), id)
			default:
				var d app.Decision
				d, err = claims.Approve(ctx, decider, id)
				if err == nil && d.Entry != nil {
					entryIDs = append(entryIDs, d.Entry.ID)
				}
			}
			expected(err)
			if err == nil {
				pending = append(pending[:j], pending[j+1:]...)
				counts["decision"]++
			}
		case op < 72: // bonus or deduction
			code := []string{"adjust.bonus", "adjust.deduct"}[rng.IntN(2)]
			e, err := ledger.Manual(ctx, actorOf(sec.ID), app.ManualInput{MemberID: m.ID, RuleCode: code, Points: models.Points(1 + rng.IntN(30)), Reason: "随机", OccurredOn: string(days[rng.IntN(2)])})
			if m.ID == sec.ID {
				continue
			}
			expected(err)
			if err == nil {
				entryIDs = append(entryIDs, e.ID)
				counts["manual"]++
			}
		case op < 80 && len(entryIDs) > 0: // reverse an entry
			id := entryIDs[rng.IntN(len(entryIDs))]
			_, err := ledger.Reverse(ctx, sys, id, "更正")
			expected(err)
			if err == nil {
				counts["reversal"]++
			}
		case op < 95: // check in
			a := activities[rng.IntN(len(activities))]
			r, err := acts.Checkin(ctx, actorOf(m.ID), a.ID, app.CheckinInput{Code: a.CheckinCode})
			expected(err)
			if err == nil && r.Entry != nil {
				entryIDs = append(entryIDs, r.Entry.ID)
				counts["checkin"]++
			}
		case op < 100: // close or reopen last month somewhere
			org := orgs[rng.IntN(len(orgs))]
			var err error
			if rng.IntN(2) == 0 {
				_, err = ledger.ClosePeriod(ctx, sys, string(lastMonth.Period()), org)
			} else {
				_, err = ledger.ReopenPeriod(ctx, sys, string(lastMonth.Period()), org, "补录")
			}
			expected(err)
			counts["period"]++
		default: // move a branch to a general branch, maybe in the other committee
			var branches, generals []models.Org
			db.R.Where("kind = ?", models.KindBranch).Order("id").Find(&branches)
			db.R.Where("kind = ?", models.KindGeneralBranch).Order("id").Find(&generals)
			to := generals[rng.IntN(len(generals))].ID
			_, err := orgSvc.Update(ctx, sys, branches[rng.IntN(len(branches))].ID, app.OrgPatch{ParentID: &to})
			expected(err)
			if err == nil {
				clear(actors) // their lines of orgs changed; requests read them again
				counts["move"]++
			}
		}
	}
	t.Logf("seed %d: %v", seed, counts)
	if counts["claim"] < ops/10 || counts["decision"] < ops/20 || counts["batch decision"] == 0 || counts["checkin"] == 0 || counts["reversal"] == 0 || counts["move"] == 0 {
		t.Fatalf("seed %d: the mix did too little: %v", seed, counts)
	}

	ledgerIsTrue(t, db, seed)
	// And a tampered row fails it.
	db.W.Exec("UPDATE entries SET points = points + 1 WHERE id = (SELECT MIN(id) FROM entries)")
	if _, err := app.Verify(ctx, db); err == nil {
		t.Fatalf("seed %d: verify passed a tampered ledger", seed)
	}
}
