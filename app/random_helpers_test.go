package app_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"testing"
	"time"

	"partyledger/app"
	"partyledger/models"
)

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

// tinyPNG is the smallest photo uploads take: a PNG signature and a little more.
func tinyPNG() io.Reader {
	return bytesReader(append([]byte("\x89PNG\r\n\x1a\n"), make([]byte, 32)...))
}

// identityOf returns the identity service of db, which loads callers as requests do.
func identityOf(db *app.DB) *app.Identity {
	return app.NewIdentity(db, app.NewTokens(db, []byte("k0123456789abcdef0123456789abcdef"), time.Minute, time.Hour), nil, false,
		app.RateLimit{N: 1, Per: time.Second}, app.RateLimit{N: 1, Per: time.Second}, nil)
}

// setupRandom builds a committee with two general branches of three branches each and
// six members per branch; the first member of each branch is its secretary.
func setupRandom(t *testing.T, db *app.DB, loc *time.Location) (*app.Actor, []int64, []models.Member, *app.Ledger, *app.Claims, *app.Activities, *app.Uploads) {
	t.Helper()
	ctx := context.Background()
	cfg := app.Config{AdminUsername: "admin", AdminPassword: "admin-pass-1"}
	if _, err := app.Bootstrap(ctx, db, cfg, app.NewLogger(io.Discard, "error")); err != nil {
		t.Fatal(err)
	}
	sys, err := app.SystemActor(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	root := sys.Grants[0].OrgID
	orgSvc, memSvc := app.NewOrgs(db), app.NewMembers(db, time.Hour)
	orgs := []int64{root}
	var members []models.Member
	// The second general branch sits in a committee of its own, so that members rank in
	// two committees and branches can move between them.
	committee, err := orgSvc.Create(ctx, sys, app.OrgInput{ParentID: &root, Kind: models.KindCommittee, Name: "高校党委"})
	if err != nil {
		t.Fatal(err)
	}
	orgs = append(orgs, committee.ID)
	for g := 0; g < 2; g++ {
		parent := []int64{root, committee.ID}[g]
		gb, err := orgSvc.Create(ctx, sys, app.OrgInput{ParentID: &parent, Kind: models.KindGeneralBranch, Name: fmt.Sprintf("总支%d", g)})
		if err != nil {
			t.Fatal(err)
		}
		orgs = append(orgs, gb.ID)
		for b := 0; b < 3; b++ {
			br, err := orgSvc.Create(ctx, sys, app.OrgInput{ParentID: &gb.ID, Kind: models.KindBranch, Name: fmt.Sprintf("支部%d%d", g, b)})
			if err != nil {
				t.Fatal(err)
			}
			orgs = append(orgs, br.ID)
			for i := 0; i < 6; i++ {
				m, err := memSvc.Create(ctx, sys, app.MemberInput{MemberNo: fmt.Sprintf("R%d%d%d", g, b, i), Name: fmt.Sprintf("党员%d%d%d", g, b, i), BranchID: br.ID})
				if err != nil {
					t.Fatal(err)
				}
				if i == 0 {
					if _, err := memSvc.SetRoles(ctx, sys, m.ID, []app.RoleInput{{Role: models.RoleSecretary, OrgID: br.ID}}); err != nil {
						t.Fatal(err)
					}
				}
				members = append(members, m)
			}
		}
	}
	return sys, orgs, members, app.NewLedger(db, loc, 5), app.NewClaims(db, loc), app.NewActivities(db, loc), app.NewUploads(db, app.FSStore{Dir: t.TempDir()})
}

func secretaryOf(m models.Member, all []models.Member) models.Member {
	return secretaryOfBranch(m.BranchID, all)
}

func memberByID(all []models.Member, id int64) models.Member {
	for _, m := range all {
		if m.ID == id {
			return m
		}
	}
	return models.Member{}
}

// actorOf loads member m as a request would.
func actorOf(t *testing.T, loader *app.Identity, m models.Member) *app.Actor {
	t.Helper()
	a, err := loader.Actor(context.Background(), m.ID)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// ledgerIsTrue checks, after a random run, that approved claims and their entries agree,
// that no capped rule's total is above its cap, that Verify passes, and that the
// committees' counts the writes kept are what migration 6 counts afresh.
func ledgerIsTrue(t *testing.T, db *app.DB, seed uint64) {
	t.Helper()
	ctx := context.Background()
	// Approved claims and their entries agree; nothing else has a claim entry.
	var rows []struct {
		ID            int64
		Status        string
		PointsAwarded *int64
		EntryPoints   *int64
	}
	db.R.Raw(`SELECT c.id, c.status, c.points_awarded, e.points AS entry_points FROM claims c LEFT JOIN entries e ON e.claim_id = c.id`).Scan(&rows)
	for _, r := range rows {
		switch {
		case r.Status == models.ClaimApproved && *r.PointsAwarded > 0 && (r.EntryPoints == nil || *r.EntryPoints != *r.PointsAwarded):
			t.Fatalf("seed %d: approved claim %d awarded %d but its entry is %v", seed, r.ID, *r.PointsAwarded, r.EntryPoints)
		case r.Status == models.ClaimApproved && *r.PointsAwarded == 0 && r.EntryPoints != nil:
			t.Fatalf("seed %d: claim %d approved at nothing (capped) has an entry of %d", seed, r.ID, *r.EntryPoints)
		case r.Status != models.ClaimApproved && r.EntryPoints != nil:
			t.Fatalf("seed %d: %s claim %d has an entry", seed, r.Status, r.ID)
		}
	}
	// No capped rule's total is above its cap, computed from the entries themselves.
	var over []struct {
		MemberID int64
		Period   string
		RuleCode string
		Sum      int64
		Cap      int64
	}
	db.R.Raw(`SELECT e.member_id, e.period, e.rule_code, SUM(e.points) AS sum, r.monthly_cap AS cap
		FROM entries e JOIN rules r ON r.code = e.rule_code AND r.version = e.rule_version
		WHERE r.monthly_cap IS NOT NULL GROUP BY e.member_id, e.period, e.rule_code, r.monthly_cap HAVING SUM(e.points) > r.monthly_cap`).Scan(&over)
	if len(over) > 0 {
		t.Fatalf("seed %d: over the cap: %+v", seed, over)
	}
	rep, err := app.Verify(ctx, db)
	if err != nil {
		t.Fatalf("seed %d: verify: %v", seed, err)
	}
	if rep.Entries == 0 {
		t.Fatal("no entries")
	}
	// The committees' counts that the writes kept are what migration 6 counts afresh.
	if err := db.MigrateDownTo(ctx, 5); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := app.Verify(ctx, db); err != nil {
		t.Fatalf("seed %d: verify after counting the committees afresh: %v", seed, err)
	}
}

// secretaryOfBranch is the secretary of a branch of setupRandom's: its first member.
func secretaryOfBranch(branchID int64, all []models.Member) models.Member {
	for _, x := range all {
		if x.BranchID == branchID {
			return x
		}
	}
	return models.Member{}
}

// randomSeed is a random test's seed: LEDGER_TEST_SEED if set, else the clock's. It is
// logged, to be given again.
func randomSeed(t *testing.T) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("LEDGER_TEST_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("seed %d (LEDGER_TEST_SEED=%d runs it again)", seed, seed)
	return seed
}
