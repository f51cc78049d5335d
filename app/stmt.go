package app

import (
	"context"
	"database/sql"
	"sync"
)

// lazyStmt is a statement prepared at its first use that succeeds, not once at start: a
// database that is down when the first request comes must not fail the statement for good.
type lazyStmt struct {
	db    *sql.DB
	query string
	mu    sync.Mutex
	stmt  *sql.Stmt
}

func (l *lazyStmt) get(ctx context.Context) (*sql.Stmt, error) {
	l.mu.Lock()
	s := l.stmt
	l.mu.Unlock()
	if s != nil {
		return s, nil
	}
	// Prepared outside the lock, so that callers wait on their own deadlines, not on
	// another's prepare; of two that race, one statement is kept.
	s, err := l.db.PrepareContext(ctx, l.query)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stmt != nil {
		s.Close()
		return l.stmt, nil
	}
	l.stmt = s
	return s, nil
}
