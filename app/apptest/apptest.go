// Package apptest gives tests a fresh, migrated database on the driver under test:
// SQLite by default, MySQL/MariaDB when LEDGER_TEST_DB=mysql (with LEDGER_TEST_MYSQL_DSN,
// e.g. "ledger:ledger@tcp(127.0.0.1:3307)/"). A MySQL run whose server is unreachable
// fails; it never skips.
package apptest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/go-sql-driver/mysql"

	"partyledger/app"
)

// Driver is the database driver the tests run on: "sqlite" or "mysql".
func Driver() string {
	if os.Getenv("LEDGER_TEST_DB") == "mysql" {
		return "mysql"
	}
	return "sqlite"
}

// MySQLDSN returns the server DSN for MySQL tests, failing the test when it is unset.
func MySQLDSN(tb testing.TB) string {
	tb.Helper()
	dsn := os.Getenv("LEDGER_TEST_MYSQL_DSN")
	if dsn == "" {
		tb.Fatal("LEDGER_TEST_MYSQL_DSN is unset; start MariaDB with scripts/mariadb-up.sh")
	}
	return dsn
}

// OpenDB returns an empty, migrated database of the driver under test, closed (and, on
// MySQL, dropped) when the test ends.
func OpenDB(tb testing.TB) *app.DB {
	tb.Helper()
	return OpenDriver(tb, Driver())
}

// OpenDriver is OpenDB for a given driver.
func OpenDriver(tb testing.TB, driver string) *app.DB {
	tb.Helper()
	ctx := context.Background()
	dsn := filepath.Join(tb.TempDir(), "ledger.db")
	if driver == "mysql" {
		dsn = CreateMySQLDatabase(tb)
	}
	db, err := app.OpenDB(ctx, driver, dsn)
	if err != nil {
		tb.Fatalf("open %s: %v", driver, err)
	}
	tb.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		tb.Fatalf("migrate %s: %v", driver, err)
	}
	return db
}

// CreateMySQLDatabase creates an empty database with a random name and returns its DSN;
// the database is dropped when the test ends.
func CreateMySQLDatabase(tb testing.TB) string {
	tb.Helper()
	cfg, err := mysql.ParseDSN(MySQLDSN(tb))
	if err != nil {
		tb.Fatalf("LEDGER_TEST_MYSQL_DSN: %v", err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "ledger_t_" + hex.EncodeToString(b)
	cfg.DBName = ""
	admin, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		tb.Fatalf("mysql: %v", err)
	}
	if _, err := admin.Exec("CREATE DATABASE " + name + " CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"); err != nil {
		admin.Close()
		tb.Fatalf("mysql: create database (is MariaDB running? scripts/mariadb-up.sh): %v", err)
	}
	tb.Cleanup(func() {
		_, _ = admin.Exec("DROP DATABASE IF EXISTS " + name)
		admin.Close()
	})
	cfg.DBName = name
	return cfg.FormatDSN()
}
