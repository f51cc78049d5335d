package app

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"

	"partyledger/models"
)

// The approval writer (Claims.approvals) writes approvals, and under load it writes many
// requests' approvals in one transaction (a sharedWriter), as the claim writer does
// for submissions. An approval writes at least seven rows (the claim, the entry, the member's
// chain head, three running totals and the audit record); alone, each row is a statement
// and a round trip, and the transaction's commit is its own. Together, each kind of row
// is one statement for all of them, and the commit is shared: a secretary clearing the
// month's queue, or many secretaries at once, cost the database a few statements per
// transaction instead of thirteen per claim.
//
// In a shared transaction every claim is checked as it would be alone (scope, not its
// decider's own, still pending, its month open) and one that fails gets its own answer. A
// second claim of a member already in the transaction is approved alone after it commits,
// so that it is capped by what the first was awarded. If the transaction fails for any
// other reason (another secretary decided a claim meanwhile, say) it is rolled back whole
// and every claim is approved alone.

// approval is one request's approval on its way to the database.
type approval struct {
	ticket
	actor *Actor
	id    int64
	d     Decision
}

// newApprovalWriter returns the approval writer of s. On MySQL two transactions run at
// once: with four, more approvals found a transaction free and went alone, and the shared
// ones met on the committees' score rows; with one, each waited for the last one's commit
// (bench/ledger, MariaDB: about 1,000/s with one or four, 1,300 to 1,650/s with two).
func newApprovalWriter(s *Claims) *sharedWriter[*approval] {
	return newSharedWriter(s.db, 2, s.approveTogether,
		func(ctx context.Context, ap *approval) { ap.d, ap.err = s.approveAlone(ctx, ap.actor, ap.id) },
		func(ap *approval, err error) { ap.d, ap.err = Decision{}, err })
}

// ApprovalsWritten counts the approvals answered so far from a transaction shared with
// others, and from one of their own.
func (s *Claims) ApprovalsWritten() (together, alone uint64) { return s.approvals.written() }

// errDecidedMeanwhile rolls a shared transaction back when one of its claims was decided
// by somebody else after it was read: each claim is then approved alone, and that one
// gets EConflict.
var errDecidedMeanwhile = errors.New("approve together: a claim was decided meanwhile")

// approveTogether approves the claims of batch in tx and sets each one's outcome, except
// those it returns, which are to be approved alone. It sets every outcome afresh, since
// writeTx may run it again.
func (s *Claims) approveTogether(ctx context.Context, tx *gorm.DB, batch []*approval) (alone []*approval, err error) {
	ids := make([]int64, len(batch))
	for i, ap := range batch {
		ap.d, ap.err = Decision{}, nil
		ids[i] = ap.id
	}
	claims, err := loadClaims(ctx, tx, ids)
	if err != nil {
		return nil, err
	}
	deciders := make([]*Actor, len(batch))
	for i, ap := range batch {
		deciders[i] = ap.actor
	}
	current, err := currentActors(tx, deciders)
	if err != nil {
		return nil, err
	}
	// Each member once; in the order of their chain heads, the order every writer takes
	// them in, so that two transactions that meet on members wait instead of deadlocking.
	type work struct {
		ap   *approval
		c    claimScope
		rule models.Rule
		st   memberState
	}
	var todo []*work
	seen := map[int64]bool{}
	for _, ap := range batch {
		c, ok := claims[ap.id]
		var nf error
		if !ok {
			nf = errClaimNotFound
		}
		if !current[ap.actor] {
			ap.err = ErrActorChanged
			continue
		}
		if ap.err = decidableBy(ap.actor, c, nf); ap.err != nil {
			continue
		}
		if seen[c.MemberID] {
			alone = append(alone, ap)
			continue
		}
		seen[c.MemberID] = true
		rule, err := s.db.ruleVersion(tx, c.RuleCode, c.RuleVersion)
		if err != nil {
			return nil, err
		}
		todo = append(todo, &work{ap: ap, c: c, rule: rule})
	}
	if len(todo) == 0 {
		return alone, nil
	}
	slices.SortFunc(todo, func(a, b *work) int { return cmp.Compare(a.c.MemberID, b.c.MemberID) })

	reqs := make([]memberLock, len(todo))
	for i, wk := range todo {
		reqs[i] = memberLock{MemberID: wk.c.MemberID, Path: wk.c.BranchPath, Period: wk.c.Period, RuleCode: wk.c.RuleCode}
	}
	locked, err := lockMembers(tx, reqs)
	if err != nil {
		return nil, err
	}

	// Decide, in memory first: the awards, the entries and the audit records.
	now := s.now().UTC().Truncate(time.Microsecond)
	var decided []*work
	var entries []entryWrite
	var cas strings.Builder
	var casArgs, awardArgs, byArgs []any
	for _, wk := range todo {
		l := locked[wk.c.MemberID]
		if l.Closed {
			wk.ap.err = errClosed(wk.c.Period)
			continue
		}
		wk.st = l.memberState
		award, capped := capAward(wk.rule, wk.c.PointsRequested, wk.st.RuleTotal)
		d := &wk.ap.d
		d.Capped, d.Claim = capped, wk.c.Claim
		d.Claim.Status, d.Claim.PointsAwarded, d.Claim.DecidedBy, d.Claim.DecidedAt, d.Claim.UpdatedAt = models.ClaimApproved, &award, &wk.ap.actor.ID, &now, now
		awardArgs = append(awardArgs, wk.c.ID, award)
		byArgs = append(byArgs, wk.c.ID, wk.ap.actor.ID)
		casArgs = append(casArgs, wk.c.ID)
		if award > 0 {
			e := chainEntry(&wk.st.Head, wk.c.entryFor(wk.rule, award, wk.ap.actor), s.now())
			entries = append(entries, entryWrite{Entry: e, moves: wk.st.advance(e)})
		}
		decided = append(decided, wk)
	}
	if len(decided) == 0 {
		return alone, nil
	}

	// The compare-and-set of decide, for all of them: if any was decided meanwhile, all go
	// alone.
	cas.WriteString("UPDATE claims SET status = ?, points_awarded = CASE id")
	cas.WriteString(strings.Repeat(" WHEN ? THEN ?", len(decided)))
	cas.WriteString(" END, decided_by = CASE id")
	cas.WriteString(strings.Repeat(" WHEN ? THEN ?", len(decided)))
	cas.WriteString(" END, decided_at = ?, updated_at = ? WHERE status = ? AND id IN ?")
	res := tx.Exec(cas.String(), slices.Concat([]any{models.ClaimApproved}, awardArgs, byArgs, []any{now, now, models.ClaimPending, casArgs})...)
	if res.Error != nil {
		return nil, dbError("decide claim", res.Error)
	}
	if res.RowsAffected != int64(len(decided)) {
		return nil, errDecidedMeanwhile
	}
	if err := writeEntries(tx, entries); err != nil {
		return nil, err
	}
	audit := make([]models.AuditRecord, len(decided))
	next := 0
	for i, wk := range decided {
		if d := &wk.ap.d; *d.Claim.PointsAwarded > 0 {
			d.Entry = &entries[next].Entry
			next++
		}
		if audit[i], err = auditRecord(&wk.ap.actor.ID, &wk.c.BranchID, "claim.approved", "claim", wk.c.ID, wk.c.Claim, wk.ap.d.Claim); err != nil {
			return nil, err
		}
	}
	if err := writeAudits(tx, audit); err != nil {
		return nil, err
	}
	return alone, nil
}
