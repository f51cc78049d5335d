package app

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"
	"time"

	"partyledger/models"
)

// revReader answers the one question every authenticated request asks the database: is
// the member active, and what is their auth_rev? Concurrent requests share queries: while
// maxRevQueries queries are in flight, new lookups wait and the next query reads all of
// them at once (WHERE id IN (...)). A lookup is always answered by a query that began after
// it was asked, so a change committed before a request arrived is seen by that request,
// exactly as with one query per request; under load the database answers one query for
// many requests instead of one each. An idle server sends a lookup at once, unbatched.
//
// Only a database across a network gains: on SQLite a query is a function call, and the
// hand-off between goroutines costs more than it saves, so there each lookup is its own.
type revReader struct {
	read  func(ctx context.Context, ids []int64) (map[int64]revRow, error)
	alone bool // every lookup reads by itself, in the caller's goroutine, through one
	one   *lazyStmt
	q     group[*revLookup]
}

// revLookup is one request's question and, once its query is done, the answer.
type revLookup struct {
	ticket
	id     int64
	found  bool
	status models.MemberStatus
	rev    int64
}

const (
	// maxRevQueries is how many lookup queries run at once: few enough that the lookups
	// queuing behind them form batches, enough that a lookup seldom waits behind a query
	// slowed by a busy database (bench/identity and bench/soak: 4 made the mix's p99 worse
	// near capacity, 16 batched too little to matter).
	maxRevQueries = 8
	// maxRevBatch bounds the ids of one query.
	maxRevBatch = 256
	// revQueryLimit bounds a query whose lookups carry no deadline (tools, tests); a
	// request's lookup is bounded by the request's own deadline.
	revQueryLimit = 30 * time.Second
)

// revRow is what the database says of one member.
type revRow struct {
	status models.MemberStatus
	rev    int64
}

func newRevReader(db *sql.DB, batch bool) *revReader {
	one := &lazyStmt{db: db, query: "SELECT status, auth_rev FROM members WHERE id = ?"}
	r := batchingRevReader(func(ctx context.Context, ids []int64) (map[int64]revRow, error) {
		return readRevs(ctx, db, one, ids)
	})
	r.alone, r.one = !batch, one
	return r
}

// batchingRevReader returns a reader that batches the lookups of concurrent callers and
// reads them with read.
func batchingRevReader(read func(ctx context.Context, ids []int64) (map[int64]revRow, error)) *revReader {
	r := &revReader{read: read}
	r.q = group[*revLookup]{slots: maxRevQueries, max: maxRevBatch, commit: r.answer, abandon: true}
	return r
}

// get returns the status and auth_rev of member id, found false when there is no such
// member. It returns ctx's error if ctx ends first.
func (r *revReader) get(ctx context.Context, id int64) (found bool, status models.MemberStatus, rev int64, err error) {
	if r.alone {
		x, ok, err := readRev(ctx, r.one, id)
		return ok, x.status, x.rev, err
	}
	l := &revLookup{id: id}
	if err := r.q.do(ctx, l); err != nil {
		return false, "", 0, err
	}
	return l.found, l.status, l.rev, nil
}

// answer reads the members of batch in one query and answers every lookup in it.
func (r *revReader) answer(batch []*revLookup) {
	// The query lives as long as the most patient of its lookups.
	var deadline time.Time
	for _, l := range batch {
		if l.deadline.IsZero() {
			deadline = time.Now().Add(revQueryLimit)
			break
		}
		if l.deadline.After(deadline) {
			deadline = l.deadline
		}
	}
	// (A lookup with too little time left was answered before the batch came here: see
	// group.take.)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	ids := make([]int64, 0, len(batch))
	seen := make(map[int64]bool, len(batch))
	for _, l := range batch {
		if !seen[l.id] {
			seen[l.id] = true
			ids = append(ids, l.id)
		}
	}
	got, err := r.read(ctx, ids)
	for _, l := range batch {
		x, ok := got[l.id]
		l.found, l.status, l.rev, l.err = ok && err == nil, x.status, x.rev, err
	}
}

// readRev reads one member's status and auth_rev by the prepared statement one; ok is
// false when there is no such member or on error.
func readRev(ctx context.Context, one *lazyStmt, id int64) (x revRow, ok bool, err error) {
	stmt, err := one.get(ctx)
	if err != nil {
		return x, false, err
	}
	switch err := stmt.QueryRowContext(ctx, id).Scan(&x.status, &x.rev); {
	case errors.Is(err, sql.ErrNoRows):
		return x, false, nil
	case err != nil:
		return x, false, err
	}
	return x, true, nil
}

// readRevs reads the status and auth_rev of the members ids in one round trip: one id by
// the prepared statement one, several by a text query. Their ids are integers written by
// strconv, so the query text cannot carry anything else; a prepared statement of varying
// arity would need a round trip to prepare.
func readRevs(ctx context.Context, db *sql.DB, one *lazyStmt, ids []int64) (map[int64]revRow, error) {
	if len(ids) == 1 {
		x, ok, err := readRev(ctx, one, ids[0])
		if !ok {
			return nil, err
		}
		return map[int64]revRow{ids[0]: x}, nil
	}
	var q strings.Builder
	q.WriteString("SELECT id, status, auth_rev FROM members WHERE id IN (")
	for i, id := range ids {
		if i > 0 {
			q.WriteByte(',')
		}
		q.WriteString(strconv.FormatInt(id, 10))
	}
	q.WriteByte(')')
	rows, err := db.QueryContext(ctx, q.String())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	got := make(map[int64]revRow, len(ids))
	for rows.Next() {
		var id int64
		var x revRow
		if err := rows.Scan(&id, &x.status, &x.rev); err != nil {
			return nil, err
		}
		got[id] = x
	}
	return got, rows.Err()
}
