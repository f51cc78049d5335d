package app_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"gorm.io/gorm"

	"partyledger/app"
	"partyledger/app/apptest"
)

// TestPoolHeldByTransactionsDoesNotDeadlock is the shape of GORM's prepared-statement
// deadlock (go-gorm/gorm#7465): every connection of the writer pool is in a transaction
// (SQLite has one writer; the MySQL pool is one connection here), a caller outside the
// transaction runs a statement, and the transaction then runs the same statement. With
// GORM's statement cache the outside caller prepares it and waits for a connection, the
// transaction waits for that prepare, and neither moves until their deadlines. Both
// must finish, well inside the deadline.
func TestPoolHeldByTransactionsDoesNotDeadlock(t *testing.T) {
	ctx := context.Background()
	dsn := filepath.Join(t.TempDir(), "ledger.db")
	if apptest.Driver() == "mysql" {
		dsn = apptest.CreateMySQLDatabase(t)
	}
	db, err := app.OpenDBPool(ctx, apptest.Driver(), dsn, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	// The deadline only ends a deadlock, so the test fails rather than hangs.
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	const q = "UPDATE orgs SET name = name WHERE id = ?"
	outside := make(chan error, 1)
	err = db.W.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		go func() { outside <- db.W.WithContext(ctx).Exec(q, 1).Error }()
		time.Sleep(200 * time.Millisecond) // the outside caller is waiting for the connection
		return tx.Exec(q, 1).Error
	})
	if err != nil {
		t.Fatalf("the transaction: %v", err)
	}
	if err := <-outside; err != nil {
		t.Fatalf("the statement outside the transaction: %v", err)
	}
}
