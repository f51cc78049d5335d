package app

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
)

// TestSQLiteConnectionsKeepTheirStatements checks the SQLite statement cache on one
// connection: a statement is prepared once and reused; the same text run while its own
// rows are open (by Query or by Exec) goes uncached and both read right; a statement
// evicted while its rows are open reads on and is closed with them, once; the cache never
// grows past its bound and evicts the statement least recently used.
// SQLite only, whatever LEDGER_TEST_DB says: MySQL connections have no such cache.
func TestSQLiteConnectionsKeepTheirStatements(t *testing.T) {
	ctx := context.Background()
	connector, err := newCachingConnector("file:" + filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(connector)
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	const insert = "INSERT INTO t (id, v) VALUES (?, ?)"
	for i, v := range []string{"一", "二", "三"} {
		if _, err := db.ExecContext(ctx, insert, i+1, v); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var cc *cachedConn
	if err := conn.Raw(func(dc any) error { cc = dc.(*cachedConn); return nil }); err != nil {
		t.Fatal(err)
	}
	cached := func(q string) *cachedStmt {
		if el, ok := cc.byQuery[q]; ok {
			return el.Value.(*cachedStmt)
		}
		return nil
	}
	first := cached(insert)
	if first == nil {
		t.Fatal("the INSERT was not kept")
	}
	if _, err := conn.ExecContext(ctx, insert, 4, "四"); err != nil {
		t.Fatal(err)
	}
	if cached(insert) != first {
		t.Fatal("the INSERT was prepared again")
	}

	// The same query inside the loop over its own rows.
	const byID = "SELECT v FROM t WHERE id >= ? ORDER BY id"
	rows, err := conn.QueryContext(ctx, byID, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close() // on failure: an open Rows would hold db.Close
	// The cached statement's rows tell their columns as the driver's own do.
	if ct, err := rows.ColumnTypes(); err != nil || len(ct) != 1 || ct[0].DatabaseTypeName() != "TEXT" {
		t.Fatalf("column types of a cached statement's rows: %v, %v", ct, err)
	}
	var outer, inner []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		outer = append(outer, v)
		if len(outer) == 2 {
			if !cached(byID).reading {
				t.Fatal("the open rows' statement is not marked as read from")
			}
			if err := conn.QueryRowContext(ctx, byID, 3).Scan(&v); err != nil {
				t.Fatal(err)
			}
			inner = append(inner, v)
			// An Exec of the same text goes the uncached way too.
			if _, err := conn.ExecContext(ctx, byID, 4); err != nil {
				t.Fatalf("the open rows' text run by Exec: %v", err)
			}
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	if got := strings.Join(outer, "") + "|" + strings.Join(inner, ""); got != "一二三四|三" {
		t.Fatalf("read %q, want 一二三四|三", got)
	}
	if cached(byID).reading {
		t.Fatal("the closed rows' statement is still marked as read from")
	}

	// Evicted while read from: the rows read on; the statement closes with them.
	cc.max = 2
	rows2, err := conn.QueryContext(ctx, byID, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer rows2.Close()
	rows = rows2
	open := cached(byID)
	closes := 0
	open.stmt = &countingStmt{driverStmt: open.stmt, closes: &closes}
	for _, q := range []string{"SELECT 1", "SELECT 2", "SELECT 3"} {
		var n int
		if err := conn.QueryRowContext(ctx, q).Scan(&n); err != nil {
			t.Fatal(err)
		}
	}
	if len(cc.byQuery) != 2 || cc.lru.Len() != 2 {
		t.Fatalf("cache holds %d (%d), want 2", len(cc.byQuery), cc.lru.Len())
	}
	if cached(byID) != nil || !open.evicted {
		t.Fatal("the least recently used statement was not evicted")
	}
	if closes != 0 {
		t.Fatal("the evicted statement was closed while its rows were open")
	}
	outer = nil
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		outer = append(outer, v)
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	if closes != 1 {
		t.Fatalf("the evicted statement was closed %d times with its rows, want once", closes)
	}
	if strings.Join(outer, "") != "二三四" {
		t.Fatalf("evicted statement's rows read %q, want 二三四", strings.Join(outer, ""))
	}
	var v string
	if err := conn.QueryRowContext(ctx, byID, 4).Scan(&v); err != nil || v != "四" {
		t.Fatalf("after eviction: %q, %v", v, err)
	}

	// Least recently used, not first prepared: a statement used again stays, and the one
	// not used since goes.
	if cached(byID) == nil || cached("SELECT 3") == nil {
		t.Fatal("the cache does not hold the two statements last used")
	}
	var n int
	if err := conn.QueryRowContext(ctx, "SELECT 3").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRowContext(ctx, "SELECT 4").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if cached("SELECT 3") == nil || cached(byID) != nil {
		t.Fatal("a statement used again was evicted before one that was not")
	}

	// A statement that fails to prepare is not kept, and its error is the caller's.
	if _, err := conn.ExecContext(ctx, "INSERT INTO nowhere VALUES (1)"); err == nil {
		t.Fatal("an INSERT into no table succeeded")
	}
	if cached("INSERT INTO nowhere VALUES (1)") != nil {
		t.Fatal("a statement that failed to prepare was kept")
	}
}

// countingStmt counts the closes of the statement it wraps.
type countingStmt struct {
	driverStmt
	closes *int
}

func (s *countingStmt) Close() error { *s.closes++; return s.driverStmt.Close() }
