package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
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

	// A second use of a key alone fails alone, inside the shared transaction: the other
	// claims are not written again one by one.
	together, alone := claims.ClaimsWritten()
	written, errs = claims.WriteClaimsTogether(
		[]models.Claim{claim(m[1], "k-3", "keyed"), claim(m[2], "", "unkeyed"), claim(m[1], "k-3", "same key again")},
		[][]int64{{photo[1]}, {photo[2]}, nil}, []time.Time{soon, soon, soon})
	for i, want := range []bool{true, true, false} {
		if got := errs[i] == nil && written[i].ID > 0; got != want {
			t.Errorf("second batch, claim %d (%s): written %v (id %d, err %v), want %v", i, written[i].Note, got, written[i].ID, errs[i], want)
		}
	}
	if t2, a2 := claims.ClaimsWritten(); t2-together != 3 || a2 != alone {
		t.Fatalf("second batch: %d answered from the shared transaction and %d alone, want 3 and 0", t2-together, a2-alone)
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

// TestClaimsCheckedTogetherAnsweredAlone: the writer checks the claims of one
// transaction against the database together, and each gets its own answer. In the first
// batch a retry of a key in the same batch makes the one INSERT of the keyed claims fail,
// so they are written one by one; the second batch has no such retry and goes in whole,
// its IDs read back by key. Every answer must be what the database then holds.
func TestClaimsCheckedTogetherAnsweredAlone(t *testing.T) {
	ctx := context.Background()
	db := apptest.OpenDB(t)
	loc := time.UTC
	sys, _, members, ledger, claims, _, uploads := setupRandom(t, db, loc)
	loader := identityOf(db)
	now := time.Now()
	day := string(models.Today(now, loc))
	first := time.Date(now.In(loc).Year(), now.In(loc).Month()-1, 1, 12, 0, 0, 0, loc)
	lastMonth := first.Format("2006-01-02")
	m := []*app.Actor{}
	photo := []int64{}
	for _, i := range []int{1, 2, 7, 8, 13, 14, 19} {
		a, p := withPhoto(t, loader, uploads, members[i].ID)
		m, photo = append(m, a), append(photo, p)
	}
	// Last month is closed for m[4]'s branch only (m[6] is in another branch); m[2] holds a
	// pioneer post this month.
	if _, err := ledger.ClosePeriod(ctx, sys, lastMonth[:7], m[4].BranchID); err != nil {
		t.Fatal(err)
	}
	posts := app.NewPosts(db)
	post, err := posts.Create(ctx, sys, app.PostInput{BranchID: m[2].BranchID, Name: "理论学习岗"})
	if err != nil {
		t.Fatal(err)
	}
	as, err := posts.Assign(ctx, sys, post.ID, app.AssignmentInput{MemberID: m[2].ID, StartsOn: lastMonth, EndsOn: day, Commitment: "带头学习"})
	if err != nil {
		t.Fatal(err)
	}
	hours := models.Points(25)
	read := func(note string, photos ...int64) app.ClaimInput {
		return app.ClaimInput{RuleCode: "four_ones.read_theory", OccurredOn: day, EvidenceIDs: photos, Note: note}
	}
	type want struct {
		created bool
		code    string // when not created
		field   string
	}
	check := func(name string, got []models.Claim, created []bool, errs []error, wants []want) {
		t.Helper()
		for i, w := range wants {
			if w.created || (w.code == "" && errs[i] == nil) {
				if errs[i] != nil || created[i] != w.created || got[i].ID == 0 {
					t.Errorf("%s %d: created %v, id %d, err %v; want created %v", name, i, created[i], got[i].ID, errs[i], w.created)
					continue
				}
				stored, err := claims.Get(ctx, sys, got[i].ID)
				if err != nil {
					t.Errorf("%s %d: %v", name, i, err)
					continue
				}
				a, _ := json.Marshal(got[i])
				b, _ := json.Marshal(stored)
				if string(a) != string(b) {
					t.Errorf("%s %d: answered\n %s\nbut the database holds\n %s", name, i, a, b)
				}
				continue
			}
			var me *models.Error
			if !errors.As(errs[i], &me) || me.Code != w.code || (w.field != "" && me.Fields[w.field] == "") {
				t.Errorf("%s %d: %v, want %s on %q", name, i, errs[i], w.code, w.field)
			}
		}
	}

	got, created, errs := claims.SubmitTogether(ctx,
		[]*app.Actor{m[0], m[1], m[3], m[3], m[0], m[4], m[5], m[1], m[2], m[6], m[6]},
		[]string{"a", "b", "c", "d", "a", "e", "", "f", "g", "", ""},
		[]app.ClaimInput{
			read("好", photo[0]),
			{RuleCode: "volunteer.hours", OccurredOn: day, Quantity: &hours, EvidenceIDs: []int64{photo[1]}},
			read("别人的照片", photo[0]),
			{RuleCode: "no.such.rule", OccurredOn: day},
			read("好", photo[0]), // a retry of the first, in the same batch
			{RuleCode: "four_ones.read_theory", OccurredOn: lastMonth, EvidenceIDs: []int64{photo[4]}},
			read("无键", photo[5]),
			{RuleCode: "pioneer.duty", OccurredOn: day, EvidenceIDs: []int64{photo[1]}},
			{RuleCode: "pioneer.duty", OccurredOn: day, EvidenceIDs: []int64{photo[2]}, AssignmentID: &as.ID},
			{RuleCode: "pioneer.duty", OccurredOn: day, EvidenceIDs: []int64{photo[6]}, AssignmentID: &as.ID}, // not theirs
			{RuleCode: "four_ones.read_theory", OccurredOn: lastMonth, EvidenceIDs: []int64{photo[6]}},        // open in m[6]'s branch
		})
	check("first batch", got, created, errs, []want{{created: true}, {created: true}, {code: models.EInvalid, field: "evidence_ids"},
		{code: models.EInvalid, field: "rule_code"}, {}, {code: models.EConflict}, {created: true},
		{code: models.EInvalid, field: "assignment_id"}, {created: true}, {code: models.EInvalid, field: "assignment_id"}, {created: true}})
	if got[4].ID != got[0].ID || created[4] {
		t.Errorf("the retry got claim %d (created %v), want the first's, %d", got[4].ID, created[4], got[0].ID)
	}

	// The second batch: keyed claims of several members and one without a key, all good.
	actors := []*app.Actor{m[0], m[1], m[3], m[5], m[6], m[0]}
	keys := []string{"h", "i", "j", "k", "l", ""}
	var ins []app.ClaimInput
	for i := range actors {
		ins = append(ins, read(fmt.Sprintf("第二批%d", i), photo[slices.Index(m, actors[i])]))
	}
	got, created, errs = claims.SubmitTogether(ctx, actors, keys, ins)
	wants := make([]want, len(actors))
	for i := range wants {
		wants[i] = want{created: true}
	}
	check("second batch", got, created, errs, wants)
	for i, c := range got {
		if c.Note != ins[i].Note || c.MemberID != actors[i].ID {
			t.Errorf("second batch %d: claim %d is %q of member %d, want %q of %d", i, c.ID, c.Note, c.MemberID, ins[i].Note, actors[i].ID)
		}
	}
	var n, photos, audits int64
	db.R.Raw("SELECT COUNT(*) FROM claims").Scan(&n)
	db.R.Raw("SELECT COUNT(*) FROM claim_evidence").Scan(&photos)
	db.R.Raw("SELECT COUNT(*) FROM audit_log WHERE action = 'claim.submitted'").Scan(&audits)
	if n != 11 || photos != 11 || audits != 11 {
		t.Errorf("%d claims, %d photos, %d audit records in the database; want 11 of each", n, photos, audits)
	}
}
