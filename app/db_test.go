package app_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"partyledger/app"
	"partyledger/app/apptest"
)

// TestABadMySQLDSNNeverShowsItsPassword: the driver's parse errors may quote a part of
// the DSN. A password with a slash, in a DSN without its database name, is read as the
// database name, and the driver's error quotes it from there to the end (and its first
// colon is the port's); a parameter's bad value is quoted too. The service's error shows
// none of the credentials, and keeps the driver's message where it quotes none of them.
func TestABadMySQLDSNNeverShowsItsPassword(t *testing.T) {
	for _, c := range []struct{ dsn, want string }{
		{"ledger:pa/ss%w0rd@tcp(127.0.0.1:3306)", "bad mysql DSN: invalid dbname (the rest is not shown"},
		{"ledger:pa/ss%w0rd@tcp(127.0.0.1:3306", "bad mysql DSN: invalid dbname (the rest is not shown"},
		{"ledger:s3cret/xy%@tcp(127.0.0.1:3306)", "bad mysql DSN: invalid dbname (the rest is not shown"},
		{"ledger:s3cret@tcp(127.0.0.1:3306)/db?parseTime=s3cret", "bad mysql DSN: invalid bool value (the rest is not shown"},
		{"ledger:s3cret@tcp(127.0.0.1:3306)/db?parseTime=maybe", "bad mysql DSN: invalid bool value: maybe"},
		{"ledger:s3cret@tcp(127.0.0.1:3306)/db?x=%", `bad mysql DSN: invalid URL escape "%"`},
	} {
		_, err := app.OpenDB(context.Background(), "mysql", c.dsn)
		if err == nil {
			t.Fatalf("%s: opened", c.dsn)
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.dsn, err, c.want)
		}
		for _, secret := range []string{"w0rd", "s3cret", "xy%"} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("%s: the error shows %q: %v", c.dsn, secret, err)
			}
		}
	}
}

// TestSQLiteReadyOnlyWhileWritable: the SQLite file is always there; what stops is
// writing to it when another process holds its write lock. Ping (readiness) fails then,
// even with no request of the server's own waiting for the writer, and passes again
// once the lock is let go. The readers' pool cannot write.
func TestSQLiteReadyOnlyWhileWritable(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ledger.db")
	db, err := app.OpenDB(ctx, "sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.W.Exec("CREATE TABLE t (v INTEGER)").Error; err != nil {
		t.Fatal(err)
	}
	if err := db.R.Exec("INSERT INTO t (v) VALUES (1)").Error; err == nil {
		t.Fatal("the readers' pool wrote")
	}

	other, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	lock, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	for _, q := range []string{"BEGIN IMMEDIATE", "INSERT INTO t (v) VALUES (2)"} {
		if _, err := lock.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	err = db.Ping(pctx)
	cancel()
	if err == nil {
		t.Fatal("ready while another process holds the write lock")
	}
	if _, err := lock.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if err := db.Ping(ctx); err != nil {
		t.Fatalf("not ready once the lock is let go: %v", err)
	}
}

// TestPoolSizes: SQLite writes through one connection (writers queue in Go, not on the
// file's lock); MySQL's pool is DefaultMaxConns unless configured, and the configured size
// when it is.
func TestPoolSizes(t *testing.T) {
	ctx := context.Background()
	if apptest.Driver() != "mysql" {
		db := apptest.OpenDB(t)
		if n := db.SQL().Stats().MaxOpenConnections; n != 1 {
			t.Fatalf("SQLite's writer pool: %d connections, want 1", n)
		}
		return
	}
	dsn := apptest.CreateMySQLDatabase(t)
	for _, c := range []struct{ asked, want int }{{0, app.DefaultMaxConns}, {-1, app.DefaultMaxConns}, {5, 5}} {
		db, err := app.OpenDBPool(ctx, "mysql", dsn, c.asked)
		if err != nil {
			t.Fatal(err)
		}
		n := db.SQL().Stats().MaxOpenConnections
		db.Close()
		if n != c.want {
			t.Errorf("a pool of %d asked: %d connections, want %d", c.asked, n, c.want)
		}
	}
}

// TestScanReportsAQueryThatFailsInItsRow: the summaries' and leaderboards' one-row read
// returns the error of a row that cannot be computed, never an empty answer (which would
// read as zero points). MySQL sends such an error in place of the first row, after the
// columns, so it surfaces only from the rows; SQLite computes the first row before the
// query returns.
func TestScanReportsAQueryThatFailsInItsRow(t *testing.T) {
	db := apptest.OpenDB(t)
	q := "SELECT abs(-9223372036854775808) AS n FROM rules" // SQLite: integer overflow
	if apptest.Driver() == "mysql" {
		q = "SELECT points + 9223372036854775807 AS n FROM rules" // BIGINT value is out of range
	}
	var dest struct{ N int64 }
	if err := app.Scan(db.R.Raw(q), &dest); err == nil {
		t.Fatalf("a row that cannot be computed scanned as %+v", dest)
	}
	if err := app.Scan(db.R.Raw("SELECT COUNT(*) AS n FROM rules"), &dest); err != nil || dest.N == 0 {
		t.Fatalf("a row that can: %+v, %v", dest, err)
	}
}
