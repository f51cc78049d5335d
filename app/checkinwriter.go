package app

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"

	"partyledger/models"
)

// The check-in writer (Activities.writer) writes check-ins, and under load it writes many
// members' check-ins in one transaction (a sharedWriter), as the approval writer does for
// approvals. A meeting's members check in within a minute of each other; alone, each
// check-in is about a dozen statements and a commit, and all of them move members between
// the same few scores of their committee's month (hot rows, locked until each commit).
// Together, each kind of row is one statement for all of them, and the commit and those
// rows' locks are shared.
//
// A check-in runs with the cached copy of its caller, which its transaction checks first
// (actorcheck.go): one whose copy is out of date gets ErrActorChanged, with nothing
// written. In a shared transaction a member who checked in already (a double tap that
// reached another transaction first among them), or whose month is closed, gets their
// own answer. A member's second check-in in the same transaction is written alone after it
// commits, so that it meets the first. If the transaction fails for any other reason it
// is rolled back whole and every check-in is written alone.

// checkinWrite is one request's check-in on its way to the database.
type checkinWrite struct {
	ticket
	actor *Actor
	act   activityScope
	in    CheckinInput
	now   time.Time
	day   models.Date // now's, in the ledger's time zone
	res   CheckinResult
}

// newCheckinWriter returns the check-in writer of s: two transactions at once on MySQL,
// as the approval writer, whose shared transactions meet on the same score rows.
func newCheckinWriter(s *Activities) *sharedWriter[*checkinWrite] {
	return newSharedWriter(s.db, 2, checkinTogether,
		func(ctx context.Context, cw *checkinWrite) { cw.res, cw.err = s.checkinAlone(ctx, cw) },
		func(cw *checkinWrite, err error) { cw.res, cw.err = CheckinResult{}, err })
}

// CheckinsWritten counts the check-ins answered so far from a transaction shared with
// others, and from one of their own.
func (s *Activities) CheckinsWritten() (together, alone uint64) { return s.writer.written() }

var errCheckedIn = models.Errorf(models.EConflict, "you have checked in already")

// errRuleRetired answers a check-in at an activity whose rule an admin has switched off
// since it was made: like a claim under such a rule, it earns nothing and is not taken.
func errRuleRetired(rule models.Rule) error {
	return models.Errorf(models.EConflict, "check-ins for %s (%s) are no longer taken: an admin has switched the rule off", rule.Name, rule.Code)
}

// checkinTogether writes the check-ins of batch in tx and sets each one's outcome, except
// those it returns, which are to be written alone. It sets every outcome afresh, since
// writeTx may run it again.
func checkinTogether(_ context.Context, tx *gorm.DB, batch []*checkinWrite) (alone []*checkinWrite, err error) {
	actors := make([]*Actor, len(batch))
	for i, cw := range batch {
		cw.res, cw.err = CheckinResult{}, nil
		actors[i] = cw.actor
	}
	current, err := currentActors(tx, actors)
	if err != nil {
		return nil, err
	}
	// Each member once, in the order of their IDs (the order every writer takes members
	// in).
	var todo []*checkinWrite
	seen := map[int64]bool{}
	for _, cw := range batch {
		if !current[cw.actor] {
			cw.err = ErrActorChanged
			continue
		}
		if seen[cw.actor.ID] {
			alone = append(alone, cw)
			continue
		}
		seen[cw.actor.ID] = true
		todo = append(todo, cw)
	}
	slices.SortFunc(todo, func(a, b *checkinWrite) int { return cmp.Compare(a.actor.ID, b.actor.ID) })

	// The check-ins first, as a check-in alone writes its own before it takes its member.
	// A member who checked in already (a double tap that reached another transaction
	// first, say) makes the INSERT fail on the key, which undoes just that statement: the
	// members who have a check-in are answered, and the others inserted again.
	for len(todo) > 0 {
		rows := make([]models.Checkin, len(todo))
		for i, cw := range todo {
			rows[i] = cw.checkin()
		}
		ierr := tx.Create(&rows).Error
		if ierr == nil {
			break
		}
		if !isDuplicate(ierr) {
			return nil, dbError("check in", ierr)
		}
		have, err := checkinsOf(tx, todo)
		if err != nil {
			return nil, err
		}
		kept := todo[:0:0]
		for _, cw := range todo {
			if have[cw.key()] != 0 {
				cw.err = errCheckedIn
			} else {
				kept = append(kept, cw)
			}
		}
		if len(kept) == len(todo) {
			return nil, dbError("check in", ierr)
		}
		todo = kept
	}
	if len(todo) == 0 {
		return alone, nil
	}
	ids, err := checkinsOf(tx, todo)
	if err != nil {
		return nil, err
	}
	for _, cw := range todo {
		cw.res.Checkin = cw.checkin()
		if cw.res.Checkin.ID = ids[cw.key()]; cw.res.Checkin.ID == 0 {
			return nil, fmt.Errorf("check in: member %d's check-in not found after writing it", cw.actor.ID)
		}
	}

	reqs := make([]memberLock, len(todo))
	for i, cw := range todo {
		reqs[i] = memberLock{MemberID: cw.actor.ID, Path: cw.actor.BranchPath, Period: cw.day.Period(), RuleCode: cw.act.RuleCode}
	}
	locked, err := lockMembers(tx, reqs)
	if err != nil {
		return nil, err
	}
	rules := map[string]models.Rule{}
	var refused []int64        // check-ins written and then refused, to take away again
	var earned []*checkinWrite // in the order of entries
	var entries []entryWrite
	for _, cw := range todo {
		l := locked[cw.actor.ID]
		if l.Closed {
			cw.res, cw.err = CheckinResult{}, errClosed(cw.day.Period())
			refused = append(refused, ids[cw.key()])
			continue
		}
		rule, ok := rules[cw.act.RuleCode]
		if !ok {
			if rule, err = currentRule(tx, cw.act.RuleCode); err != nil {
				return nil, err
			}
			rules[cw.act.RuleCode] = rule
		}
		if !rule.Active {
			cw.res, cw.err = CheckinResult{}, errRuleRetired(rule)
			refused = append(refused, ids[cw.key()])
			continue
		}
		st := l.memberState
		var award models.Points
		award, cw.res.Capped = capAward(rule, rule.Points, st.RuleTotal)
		if award > 0 {
			e := chainEntry(&st.Head, cw.entryFor(rule, award), cw.now)
			entries = append(entries, entryWrite{Entry: e, moves: st.advance(e)})
			earned = append(earned, cw)
		}
	}
	if len(refused) > 0 {
		// A closed month, or a rule switched off, takes no check-ins: theirs go, as a
		// check-in alone rolls back.
		if err := tx.Where("id IN ?", refused).Delete(&models.Checkin{}).Error; err != nil {
			return nil, dbError("check in", err)
		}
	}
	if len(entries) > 0 {
		if err := writeEntries(tx, entries); err != nil {
			return nil, err
		}
		if err := setCheckinEntries(tx, earned, entries); err != nil {
			return nil, err
		}
	}
	// An audit record of each check-in written, capped ones (no entry) included.
	var audit []models.AuditRecord
	for _, cw := range todo {
		if cw.err != nil {
			continue // refused: nothing of it is written
		}
		rec, err := auditRecord(&cw.actor.ID, &cw.actor.BranchID, "checkin.created", "checkin", cw.res.Checkin.ID, nil, cw.res.Checkin)
		if err != nil {
			return nil, err
		}
		audit = append(audit, rec)
	}
	if err := writeAudits(tx, audit); err != nil {
		return nil, err
	}
	return alone, nil
}

// setCheckinEntries links each earning check-in to its entry (earned and entries in the
// same order) in one statement.
func setCheckinEntries(tx *gorm.DB, earned []*checkinWrite, entries []entryWrite) error {
	var set strings.Builder
	args := make([]any, 0, 2*len(entries)+1)
	in := make([]int64, len(entries))
	set.WriteString("UPDATE checkins SET entry_id = CASE id")
	for i, cw := range earned {
		cw.res.Entry = &entries[i].Entry
		cw.res.Checkin.EntryID = &entries[i].ID
		set.WriteString(" WHEN ? THEN ?")
		args = append(args, cw.res.Checkin.ID, entries[i].ID)
		in[i] = cw.res.Checkin.ID
	}
	set.WriteString(" END WHERE id IN ?")
	if err := tx.Exec(set.String(), append(args, in)...).Error; err != nil {
		return dbError("check in", err)
	}
	return nil
}

// checkinsOf reads the IDs of the check-ins of cws' members at their activities, by
// (activity, member); those not found are missing.
func checkinsOf(tx *gorm.DB, cws []*checkinWrite) (map[idKey[int64, int64]]int64, error) {
	acts, members := make([]int64, len(cws)), make([]int64, len(cws))
	for i, cw := range cws {
		acts[i], members[i] = cw.act.ID, cw.actor.ID
	}
	ids, err := idsByKey(tx, "checkins", "activity_id", "member_id", acts, members)
	return ids, dbError("check in", err)
}

// checkinAlone writes one check-in in a transaction of its own.
func (s *Activities) checkinAlone(ctx context.Context, cw *checkinWrite) (CheckinResult, error) {
	var res CheckinResult
	err := s.db.writeTx(ctx, func(tx *gorm.DB) error {
		res = CheckinResult{}
		if err := checkCurrent(tx, cw.actor); err != nil {
			return err
		}
		ci := cw.checkin()
		if err := tx.Create(&ci).Error; err != nil {
			if isDuplicate(err) {
				return errCheckedIn
			}
			return dbError("check in", err)
		}
		st, err := lockMember(tx, cw.actor.ID, cw.actor.BranchPath, cw.day.Period(), cw.act.RuleCode)
		if err != nil {
			return err
		}
		rule, err := currentRule(tx, cw.act.RuleCode)
		if err != nil {
			return err
		}
		if !rule.Active {
			return errRuleRetired(rule)
		}
		var award models.Points
		award, res.Capped = capAward(rule, rule.Points, st.RuleTotal)
		if award > 0 {
			e, err := appendEntry(tx, &st, cw.entryFor(rule, award), cw.now)
			if err != nil {
				return err
			}
			res.Entry = &e
			ci.EntryID = &e.ID
			if err := tx.Model(&models.Checkin{}).Where("id = ?", ci.ID).Update("entry_id", e.ID).Error; err != nil {
				return dbError("check in", err)
			}
		}
		res.Checkin = ci
		return writeAudit(tx, &cw.actor.ID, &cw.actor.BranchID, "checkin.created", "checkin", ci.ID, nil, ci)
	})
	return res, err
}

// key is the check-in's (activity, member), which may be written once.
func (cw *checkinWrite) key() idKey[int64, int64] { return idKey[int64, int64]{cw.act.ID, cw.actor.ID} }

// checkin is the row of the check-in, without its entry.
func (cw *checkinWrite) checkin() models.Checkin {
	return models.Checkin{ActivityID: cw.act.ID, MemberID: cw.actor.ID, Lat: cw.in.Lat, Lng: cw.in.Lng, CreatedAt: cw.now.UTC().Truncate(time.Microsecond)}
}

// entryFor is the entry a check-in earns.
func (cw *checkinWrite) entryFor(rule models.Rule, award models.Points) entryInput {
	return entryInput{MemberID: cw.actor.ID, BranchID: cw.actor.BranchID, Rule: rule, OccurredOn: cw.day, Points: award,
		Source: models.SourceCheckin, Reason: truncateRunes(cw.act.Title, 500), ActorID: &cw.actor.ID}
}
