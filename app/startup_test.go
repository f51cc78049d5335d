package app_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"partyledger/app"
	"partyledger/app/apptest"
	"partyledger/models"
)

// Four processes start on one new database at once (replicas behind a load balancer,
// or the server beside `ledgerctl migrate`): each opens it, migrates it and bootstraps
// it, and every one starts. The schema is migrated once and there is one root committee
// and one admin. Before, most of them stopped at "table orgs already exists" (or, on
// SQLite, at SQLITE_BUSY while the new file turned to WAL).
func TestProcessesStartingAtOnceOnANewDatabase(t *testing.T) {
	ctx := context.Background()
	cfg := adminConfig(t)
	for round := 0; round < 5; round++ {
		driver, dsn := "sqlite", filepath.Join(t.TempDir(), "ledger.db")
		if apptest.Driver() == "mysql" {
			driver, dsn = "mysql", apptest.CreateMySQLDatabase(t)
		}
		errs := make([]error, 4)
		var wg sync.WaitGroup
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				db, err := app.OpenDB(ctx, driver, dsn)
				if err != nil {
					errs[i] = err
					return
				}
				defer db.Close()
				if _, err := db.Migrate(ctx); err != nil {
					errs[i] = err
					return
				}
				_, errs[i] = app.Bootstrap(ctx, db, cfg, app.NewLogger(&apptest.Buffer{}, "info"))
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d, process %d of 4 did not start: %v", round, i, err)
			}
		}
		db, err := app.OpenDB(ctx, driver, dsn)
		if err != nil {
			t.Fatal(err)
		}
		var roots, members, migrations int64
		db.R.Model(&models.Org{}).Where("parent_id IS NULL").Count(&roots)
		db.R.Model(&models.Member{}).Count(&members)
		db.R.Table("goose_db_version").Where("version_id > 0").Count(&migrations)
		v, verr := db.SchemaVersion(ctx)
		db.Close()
		if roots != 1 || members != 1 || verr != nil || migrations != v {
			t.Fatalf("round %d: %d roots, %d members, schema %d (%v) from %d applied migrations", round, roots, members, v, verr, migrations)
		}
	}
}

// Bootstraps of one migrated, empty database at once: one prepares it, and the others
// find it prepared (their transactions meet its admin's unique username and roll back)
// and start as well.
func TestBootstrapsAtOnce(t *testing.T) {
	ctx := context.Background()
	cfg := adminConfig(t)
	for round := 0; round < 5; round++ {
		db := apptest.OpenDB(t)
		logs := make([]*apptest.Buffer, 6)
		errs := make([]error, len(logs))
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range errs {
			wg.Add(1)
			logs[i] = &apptest.Buffer{}
			go func() {
				defer wg.Done()
				<-start
				_, errs[i] = app.Bootstrap(ctx, db, cfg, app.NewLogger(logs[i], "info"))
			}()
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d, bootstrap %d: %v", round, i, err)
			}
		}
		var roots, members int64
		db.R.Model(&models.Org{}).Where("parent_id IS NULL").Count(&roots)
		db.R.Model(&models.Member{}).Count(&members)
		if roots != 1 || members != 1 {
			t.Fatalf("round %d: %d roots and %d members after six bootstraps", round, roots, members)
		}
	}
}

// adminConfig is the configuration of a first start that creates the root and its admin.
func adminConfig(t *testing.T) app.Config {
	t.Helper()
	vars := map[string]string{"LEDGER_DATA_DIR": t.TempDir(), "LEDGER_ADMIN_USERNAME": "root-admin", "LEDGER_ADMIN_PASSWORD": "first-admin-pass",
		"LEDGER_JWT_SECRET": "0123456789abcdef0123456789abcdef"}
	cfg, err := app.LoadConfig(func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
