package app

import (
	"context"
	"sync/atomic"

	"gorm.io/gorm"
)

// sharedWriter is a group commit for writes (claims, approvals, check-ins) that are
// written together in one transaction when they can be and alone otherwise. While its
// transactions are busy, new writes wait, and the next transaction takes them all:
// together writes them in tx but those it hands back, which are then written alone after
// it commits, as is every write of a transaction that failed for any reason but an
// unavailable database. An idle server writes each at once, alone. A caller is answered
// only once its write is committed or rolled back: nobody is told "failed" about a write
// that then commits.
//
// A MySQL pool runs a few transactions at once (each writer's own measured number);
// SQLite's one writer connection takes one at a time, with the writes that arrive
// meanwhile forming the next.
type sharedWriter[T grouped] struct {
	db       *DB
	q        group[T]
	together func(ctx context.Context, tx *gorm.DB, batch []T) (alone []T, err error)
	alone    func(ctx context.Context, it T) // writes it in a transaction of its own and sets its outcome
	fail     func(it T, err error)           // sets its outcome to err
	// Writes answered from a transaction shared with others, and from one of their own.
	shared, own atomic.Uint64
}

// maxSharedBatch bounds the writes of one transaction.
const maxSharedBatch = 64

// newSharedWriter returns a writer that runs mysqlSlots transactions at once on MySQL.
func newSharedWriter[T grouped](db *DB, mysqlSlots int, together func(ctx context.Context, tx *gorm.DB, batch []T) ([]T, error),
	alone func(ctx context.Context, it T), fail func(it T, err error)) *sharedWriter[T] {
	w := &sharedWriter[T]{db: db, together: together, alone: alone, fail: fail}
	w.q = group[T]{slots: mysqlSlots, max: maxSharedBatch, commit: w.commit}
	if db.Driver == "sqlite" {
		w.q.slots = 1
	}
	return w
}

// commit writes batch, together if it can, and sets every write's outcome.
func (w *sharedWriter[T]) commit(batch []T) {
	ctx, cancel := commitContext(batch)
	defer cancel()
	if len(batch) > 1 {
		var alone []T
		err := w.db.writeTx(ctx, func(tx *gorm.DB) (err error) {
			alone, err = w.together(ctx, tx, batch)
			return err
		})
		switch {
		case err == nil:
			w.shared.Add(uint64(len(batch) - len(alone)))
			batch = alone
		case (IsUnavailable(err) && !isRetryable(err)) || ctx.Err() != nil:
			for _, it := range batch {
				w.fail(it, err)
			}
			return
		}
	}
	for _, it := range batch {
		w.alone(ctx, it)
		w.own.Add(1)
	}
}

// written counts the writes answered so far from a transaction shared with others, and
// from one of their own.
func (w *sharedWriter[T]) written() (together, alone uint64) {
	return w.shared.Load(), w.own.Load()
}
