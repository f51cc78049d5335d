package app_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"partyledger/app"
	"partyledger/app/apptest"
	"partyledger/models"
)

// TestClaimsWrittenTogetherFailAlone: one transaction of the claim writer holds claims
// that must be written and claims that must not: a second use of an idempotency key, a
// photo that does not exist (the database refuses the whole batch, so each claim is
// written again alone) and a request whose deadline has passed. The good ones are written
// whole, photos and audit records included; the others leave nothing behind.
func TestClaimsWrittenTogetherFailAlone(t *testing.T) {
	db := apptest.OpenDB(t)
	loc := time.UTC
	_, _, members, _, claims, _, uploads := setupRandom(t, db, loc)
	loader := identityOf(db)
	m := []models.Member{members[1], members[2], members[7], members[8], members[13]}
	photo := make([]int64, len(m))
	for i, mem := range m {
		_, photo[i] = withPhoto(t, loader, uploads, mem.ID)
	}
	day := models.Today(time.Now(), loc)
	claim := func(mem models.Member, key string, note string) models.Claim {
		now := time.Now().UTC().Truncate(time.Microsecond)
		c := models.Claim{MemberID: mem.ID, BranchID: mem.BranchID, RuleCode: "four_ones.read_theory", RuleVersion: 1, Period: day.Period(),
			OccurredOn: day, Quantity: 10, PointsRequested: 10, Status: models.ClaimPending, Note: note, RequestHash: note, CreatedAt: now, UpdatedAt: now}
		if key != "" {
			c.IdempotencyKey = &key
		}
		return c
	}
	past := time.Now().Add(-time.Second)
	soon := time.Now().Add(time.Minute)
	written, errs := claims.WriteClaimsTogether(
		[]models.Claim{claim(m[0], "k-1", "first"), claim(m[1], "", "no key"), claim(m[0], "k-1", "same key"), claim(m[2], "", "bad photo"), claim(m[3], "", "too late"), claim(m[4], "k-2", "last")},
		[][]int64{{photo[0]}, {photo[1]}, {photo[0]}, {photo[2], 1 << 40}, {photo[3]}, nil},
		[]time.Time{soon, {}, soon, soon, past, soon})
	for i, want := range []bool{true, true, false, false, false, true} {
		if got := errs[i] == nil && written[i].ID > 0; got != want {
			t.Errorf("claim %d (%s): written %v (id %d, err %v), want %v", i, written[i].Note, got, written[i].ID, errs[i], want)
		}
	}
	if !errors.Is(errs[4], context.DeadlineExceeded) {
		t.Errorf("the late claim: %v, want the deadline", errs[4])
	}
	var rows []struct {
		ID, MemberID int64
		Note         string
		Photos       int64
		Audits       int64
	}
	if err := db.R.Raw(`SELECT c.id, c.member_id, c.note,
  (SELECT COUNT(*) FROM claim_evidence e WHERE e.claim_id = c.id) AS photos,
  (SELECT COUNT(*) FROM audit_log l WHERE l.entity = 'claim' AND l.entity_id = c.id AND l.action = 'claim.submitted') AS audits
FROM claims c ORDER BY c.id`).Scan(&rows).Error; err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(rows)
	want := fmt.Sprint([]struct {
		ID, MemberID int64
		Note         string
		Photos       int64
		Audits       int64
	}{{written[0].ID, m[0].ID, "first", 1, 1}, {written[1].ID, m[1].ID, "no key", 1, 1}, {written[5].ID, m[4].ID, "last", 0, 1}})
	if got != want {
		t.Fatalf("claims in the database:\n got %s\nwant %s", got, want)
	}
}

// TestConcurrentSubmissionsAreEachWrittenOnce: 35 members file at once (so that the
// writer's transactions take several claims each), each twice with one key and once
// without; every submission gets its own claim or, for the retry, the first one, and
// the database holds exactly those, each with its photo and audit record.
func TestConcurrentSubmissionsAreEachWrittenOnce(t *testing.T) {
	ctx := context.Background()
	db := apptest.OpenDB(t)
	loc := time.UTC
	_, _, members, _, claims, _, uploads := setupRandom(t, db, loc)
	loader := identityOf(db)
	day := string(models.Today(time.Now(), loc))
	type result struct {
		member  int64
		keyed   bool
		id      int64
		created bool
	}
	var mu sync.Mutex
	var results []result
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, mem := range members[1:] {
		a, photo := withPhoto(t, loader, uploads, mem.ID)
		for _, key := range []string{"same", "same", ""} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				in := app.ClaimInput{RuleCode: "four_ones.read_theory", OccurredOn: day, EvidenceIDs: []int64{photo}}
				c, created, err := claims.Submit(ctx, a, key, in)
				if err != nil {
					t.Errorf("member %d, key %q: %v", a.ID, key, err)
					return
				}
				mu.Lock()
				results = append(results, result{a.ID, key != "", c.ID, created})
				mu.Unlock()
			}()
		}
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		return
	}
	keyed := map[int64]map[int64]int{} // member → claim id → answers
	created := map[int64]bool{}
	for _, r := range results {
		if r.keyed {
			if keyed[r.member] == nil {
				keyed[r.member] = map[int64]int{}
			}
			keyed[r.member][r.id]++
		}
		if r.created {
			if created[r.id] {
				t.Errorf("claim %d created twice", r.id)
			}
			created[r.id] = true
		}
	}
	for mem, ids := range keyed {
		if len(ids) != 1 {
			t.Errorf("member %d's two submissions with one key got claims %v", mem, ids)
		}
	}
	var n, photos, audits int64
	db.R.Raw("SELECT COUNT(*) FROM claims").Scan(&n)
	db.R.Raw("SELECT COUNT(*) FROM claim_evidence").Scan(&photos)
	db.R.Raw("SELECT COUNT(*) FROM audit_log WHERE action = 'claim.submitted'").Scan(&audits)
	want := int64(2 * (len(members) - 1))
	if int64(len(created)) != want || n != want || photos != want || audits != want {
		t.Fatalf("%d claims created, %d in the database, %d photos, %d audit records; want %d of each", len(created), n, photos, audits, want)
	}
}

// withPhoto loads a member as a request would and uploads a photo of theirs.
func withPhoto(t *testing.T, loader *app.Identity, uploads *app.Uploads, member int64) (*app.Actor, int64) {
	t.Helper()
	a, err := loader.Actor(context.Background(), member)
	if err != nil {
		t.Fatal(err)
	}
	u, err := uploads.Create(context.Background(), a, tinyPNG())
	if err != nil {
		t.Fatal(err)
	}
	return a, u.ID
}
