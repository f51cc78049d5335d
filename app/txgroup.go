package app

import (
	"context"
	"fmt"
	"strconv"

	"gorm.io/gorm"
)

// txGroup runs SQLite's ledger writes (writeTx) as a group commit. SQLite has one writer
// connection, so ledger writes queue for it anyway; here, the writes that queue while a
// transaction runs go into the next transaction together, each in a savepoint of its
// own: a write that fails is rolled back to its savepoint and answered with its error,
// and the others commit. One transaction, one commit and one hand-off of the connection
// serve them all. If the transaction itself fails, each write runs again alone, so one
// write's trouble is never another's answer.
//
// MySQL runs its writes side by side on a pool instead: there a shared transaction would
// hold every member's locks until the slowest write of the lot is done.
type txGroup struct {
	db *DB
	q  group[*txJob]
}

// txJob is one writeTx call waiting for the writer.
type txJob struct {
	ticket
	fn func(tx *gorm.DB) error
}

// maxTxGroup bounds the writes of one transaction.
const maxTxGroup = 64

func newTxGroup(db *DB) *txGroup {
	g := &txGroup{db: db}
	g.q = group[*txJob]{slots: 1, max: maxTxGroup, commit: g.commit}
	return g
}

func (g *txGroup) do(ctx context.Context, fn func(tx *gorm.DB) error) error {
	return g.q.do(ctx, &txJob{fn: fn})
}

// commit runs batch in one transaction and sets every write's outcome.
func (g *txGroup) commit(batch []*txJob) {
	ctx, cancel := commitContext(batch)
	defer cancel()
	if len(batch) == 1 {
		batch[0].err = g.db.W.WithContext(ctx).Transaction(withCounts(batch[0].run))
		return
	}
	err := g.db.W.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		// The committees' score counts moved by the writes that stand, in one statement
		// at the end: members of one activity mostly move between the same few.
		var counts []cpDelta
		for i, j := range batch {
			sp := "w" + strconv.Itoa(i)
			if err := tx.SavePoint(sp).Error; err != nil {
				return err
			}
			var ds []cpDelta
			if ds, j.err = collectCounts(tx, j.run); j.err != nil {
				if err := tx.RollbackTo(sp).Error; err != nil {
					return err
				}
			} else {
				counts = append(counts, ds...)
			}
			if err := tx.Exec("RELEASE SAVEPOINT " + sp).Error; err != nil {
				return err
			}
		}
		return addCommitteePoints(tx, counts)
	})
	if err == nil {
		return
	}
	if IsUnavailable(err) || ctx.Err() != nil {
		for _, j := range batch {
			j.err = err
		}
		return
	}
	for _, j := range batch {
		j.err = g.db.W.WithContext(ctx).Transaction(withCounts(j.run))
	}
}

// run runs the write in tx. A write that panics fails alone, as it would have failed its
// own request, instead of taking the writer's goroutine (and the server) with it.
func (j *txJob) run(tx *gorm.DB) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("a ledger write panicked: %v", r)
		}
	}()
	return j.fn(tx)
}
