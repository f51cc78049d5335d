package app

import (
	"container/list"
	"context"
	"database/sql/driver"
	"fmt"

	"modernc.org/sqlite"
)

// SQLite's connections keep the statements they have prepared. The driver parses and plans
// every Exec and Query that does not come through a *sql.Stmt anew, and the service sends
// all of them that way (GORM's own statement cache is off, see OpenDBPool). A profile of
// bench/ledger's approval phase put that parsing at a sixth of the writer's time.
//
// The cache is the connection's own: database/sql hands a connection to one goroutine at a
// time, so it needs no lock, and no connection ever waits for another (which is how GORM's
// shared cache deadlocks a busy pool). A statement is reused only when nothing reads from it:
// while a query's rows are open, the same text on the same connection (a query inside the
// loop over its own rows) is prepared afresh, as without the cache.

// stmtCacheSize bounds the statements one connection keeps, least recently used out first.
// Batched writes have a text for each batch size (IN lists, multi-row INSERTs), up to 64.
const stmtCacheSize = 256

// sqliteConn is what the driver's connections do that database/sql asks of them.
type sqliteConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
}

// cachingConnector opens the driver's connections and gives each its statement cache.
type cachingConnector struct{ driver.Connector }

// newCachingConnector is sqlite.NewConnector(dsn) with statement caches.
func newCachingConnector(dsn string) (driver.Connector, error) {
	c, err := sqlite.NewConnector(dsn)
	if err != nil {
		return nil, err
	}
	return cachingConnector{c}, nil
}

func (c cachingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	sc, ok := conn.(sqliteConn)
	if !ok {
		conn.Close()
		return nil, fmt.Errorf("sqlite: connection type %T lacks a method the statement cache needs", conn)
	}
	return &cachedConn{sqliteConn: sc, max: stmtCacheSize, byQuery: map[string]*list.Element{}, lru: list.New()}, nil
}

// cachedConn is a connection with its statement cache.
type cachedConn struct {
	sqliteConn
	max     int
	byQuery map[string]*list.Element // of *cachedStmt
	lru     *list.List               // most recently used first
}

// driverStmt is what the cache needs of a driver's prepared statement.
type driverStmt interface {
	driver.Stmt
	driver.StmtExecContext
	driver.StmtQueryContext
}

// cachedStmt is one prepared statement of a connection.
type cachedStmt struct {
	query   string
	stmt    driverStmt
	reading bool // rows read from it; it is not to be bound again until they close
	evicted bool // out of the cache while rows read from it: closed when they close
}

// stmt returns the cached statement for query, preparing it at its first use; nil if its
// rows are open, when the caller goes the uncached way.
func (c *cachedConn) stmt(ctx context.Context, query string) (*cachedStmt, error) {
	if el, ok := c.byQuery[query]; ok {
		c.lru.MoveToFront(el)
		cs := el.Value.(*cachedStmt)
		if cs.reading {
			return nil, nil
		}
		return cs, nil
	}
	ds, err := c.sqliteConn.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	cs := &cachedStmt{query: query}
	var ok bool
	if cs.stmt, ok = ds.(driverStmt); !ok {
		ds.Close()
		return nil, nil
	}
	c.byQuery[query] = c.lru.PushFront(cs)
	for c.lru.Len() > c.max {
		old := c.lru.Remove(c.lru.Back()).(*cachedStmt)
		delete(c.byQuery, old.query)
		if old.reading {
			old.evicted = true
		} else {
			old.stmt.Close()
		}
	}
	return cs, nil
}

func (c *cachedConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	cs, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	if cs == nil {
		return c.sqliteConn.ExecContext(ctx, query, args)
	}
	return cs.stmt.ExecContext(ctx, args)
}

func (c *cachedConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	cs, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	if cs == nil {
		return c.sqliteConn.QueryContext(ctx, query, args)
	}
	rows, err := cs.stmt.QueryContext(ctx, args)
	if err != nil {
		return nil, err // the driver has reset the statement
	}
	cs.reading = true
	if r, ok := rows.(sqliteRows); ok {
		return &cachedRows{sqliteRows: r, from: cs}, nil
	}
	return &plainCachedRows{Rows: rows, from: cs}, nil
}

// Close closes the connection's statements, then the connection.
func (c *cachedConn) Close() error {
	for el := c.lru.Front(); el != nil; el = el.Next() {
		el.Value.(*cachedStmt).stmt.Close()
	}
	c.byQuery, c.lru = nil, list.New()
	return c.sqliteConn.Close()
}

// sqliteRows is what the driver's rows tell of their columns (Rows.ColumnTypes).
type sqliteRows interface {
	driver.Rows
	driver.RowsColumnTypeDatabaseTypeName
	driver.RowsColumnTypeLength
	driver.RowsColumnTypeNullable
	driver.RowsColumnTypePrecisionScale
	driver.RowsColumnTypeScanType
}

// cachedRows are a cached statement's rows: closing them frees the statement.
type cachedRows struct {
	sqliteRows
	from *cachedStmt
}

func (r *cachedRows) Close() error { return r.from.release(r.sqliteRows.Close()) }

// plainCachedRows are cachedRows of a driver whose rows tell less of their columns.
type plainCachedRows struct {
	driver.Rows
	from *cachedStmt
}

func (r *plainCachedRows) Close() error { return r.from.release(r.Rows.Close()) }

// release marks the statement free once its rows have closed (and reset it).
func (s *cachedStmt) release(closeErr error) error {
	if !s.reading {
		return closeErr // closed twice
	}
	s.reading = false
	if s.evicted {
		if err := s.stmt.Close(); closeErr == nil {
			closeErr = err
		}
	}
	return closeErr
}
