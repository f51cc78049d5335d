package app

import (
	"context"
	"time"

	"gorm.io/gorm"

	"partyledger/models"
)

// ClaimsWritten counts the claims the claim writer answered from a transaction shared
// with others, and from one of their own.
func (s *Claims) ClaimsWritten() (together, alone uint64) { return s.writer.written() }

// WriteClaimsTogether runs one transaction of the claim writer over claims, as if they had
// queued together and passed their checks (each filed by its MemberID, with its photos
// and its request's deadline, zero for none), and returns each claim as written (ID 0 if
// not) and its error.
func (s *Claims) WriteClaimsTogether(claims []models.Claim, evidence [][]int64, deadlines []time.Time) ([]models.Claim, []error) {
	batch := make([]*claimWrite, len(claims))
	for i, c := range claims {
		batch[i] = &claimWrite{check: claimCheck{member: c.MemberID, ruleCode: c.RuleCode, photos: evidence[i]}, actor: c.MemberID, ticket: ticket{deadline: deadlines[i]},
			prepare: func(*claimCheck) (models.Claim, error) { return c, nil }}
	}
	s.writer.q.take(batch)
	out, errs := make([]models.Claim, len(batch)), make([]error, len(batch))
	for i, cw := range batch {
		out[i], errs[i] = cw.claim, cw.err
	}
	return out, errs
}

// SubmitTogether is Submit for several submissions at once, whose claims the writer
// checks and writes in one transaction, as if they had queued together.
func (s *Claims) SubmitTogether(ctx context.Context, actors []*Actor, keys []string, ins []ClaimInput) ([]models.Claim, []bool, []error) {
	out, created, errs := make([]models.Claim, len(ins)), make([]bool, len(ins)), make([]error, len(ins))
	var batch []*claimWrite
	var at []int
	for i := range ins {
		cw, err := s.toWrite(actors[i], keys[i], ins[i])
		if err != nil {
			errs[i] = err
			continue
		}
		batch, at = append(batch, cw), append(at, i)
	}
	s.writer.q.take(batch)
	for j, cw := range batch {
		i := at[j]
		out[i], created[i], errs[i] = s.written(ctx, cw, cw.err)
	}
	return out, created, errs
}

// WriteTogether runs fns as one transaction of a transaction group over d would (each
// write in a savepoint of its own, with its request's deadline, zero for none), on either
// database, and returns each write's error.
func (d *DB) WriteTogether(fns []func(tx *gorm.DB) error, deadlines []time.Time) []error {
	g := newTxGroup(d)
	batch := make([]*txJob, len(fns))
	for i, fn := range fns {
		batch[i] = &txJob{fn: fn, ticket: ticket{deadline: deadlines[i]}}
	}
	g.q.take(batch)
	errs := make([]error, len(batch))
	for i, j := range batch {
		errs[i] = j.err
	}
	return errs
}

// AddCommitteePointsLater moves n members to committee's score points in per the way a
// ledger write does: in its transaction, just before the commit.
func AddCommitteePointsLater(tx *gorm.DB, per models.Period, committee int64, points models.Points, n int64) error {
	return addCommitteePointsLater(tx, []cpDelta{{Period: per, Committee: committee, Points: points, N: n}})
}

// MigrateDownTo undoes the migrations after version.
func (d *DB) MigrateDownTo(ctx context.Context, version int64) error {
	p, err := d.gooseProvider()
	if err != nil {
		return err
	}
	_, err = p.DownTo(ctx, version)
	return err
}

// ApproveTogether runs one transaction of the approval writer over the claims ids, each
// decided by its actor, as if they had queued together (each with its request's deadline,
// zero for none), and returns each decision and error.
func (s *Claims) ApproveTogether(actors []*Actor, ids []int64, deadlines []time.Time) ([]Decision, []error) {
	batch := make([]*approval, len(ids))
	for i, id := range ids {
		batch[i] = &approval{actor: actors[i], id: id, ticket: ticket{deadline: deadlines[i]}}
	}
	s.approvals.q.take(batch)
	ds, errs := make([]Decision, len(batch)), make([]error, len(batch))
	for i, ap := range batch {
		ds[i], errs[i] = ap.d, ap.err
	}
	return ds, errs
}

// CheckinTogether runs one transaction of the check-in writer over check-ins, as if they
// had queued together: actors[i] at activity acts[i] with ins[i]. It returns each
// check-in's answer and error.
func (s *Activities) CheckinTogether(ctx context.Context, actors []*Actor, acts []int64, ins []CheckinInput) ([]CheckinResult, []error) {
	out, errs := make([]CheckinResult, len(ins)), make([]error, len(ins))
	var batch []*checkinWrite
	var at []int
	for i := range ins {
		cw, err := s.toWrite(ctx, actors[i], acts[i], ins[i])
		if err != nil {
			errs[i] = err
			continue
		}
		batch, at = append(batch, cw), append(at, i)
	}
	s.writer.q.take(batch)
	for j, cw := range batch {
		out[at[j]], errs[at[j]] = cw.res, cw.err
	}
	return out, errs
}

// Scan is scan, the one-row read of the summaries and leaderboards.
func Scan(q *gorm.DB, dest any) error { return scan(q, dest) }
