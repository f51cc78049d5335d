package handlers_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/prometheus/client_golang/prometheus"

	"partyledger/app"
	"partyledger/app/apptest"
	"partyledger/handlers"
)

// TestReadinessFollowsARealOutage locks the server's own database account and kills its
// connections: /readyz answers 503 and requests get 503 (never 500); unlocked, the pool
// reconnects by itself and everything answers 200 again, also where the outage met a
// statement's first preparing. MySQL only: an open SQLite file
// cannot be taken away from a process.
func TestReadinessFollowsARealOutage(t *testing.T) {
	if apptest.Driver() != "mysql" {
		t.Skip("needs a database server to take away: runs in the MySQL suite, as CI does")
	}
	ctx := context.Background()
	dsn := apptest.CreateMySQLDatabase(t)
	cfg, _ := mysql.ParseDSN(dsn)
	admin, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	b := make([]byte, 4)
	rand.Read(b)
	user, pass := "ledger_outage_"+hex.EncodeToString(b), "outage-pass-1"
	for _, q := range []string{
		"CREATE USER '" + user + "'@'127.0.0.1' IDENTIFIED BY '" + pass + "'",
		"GRANT ALL PRIVILEGES ON " + cfg.DBName + ".* TO '" + user + "'@'127.0.0.1'",
	} {
		if _, err := admin.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { admin.Exec("DROP USER IF EXISTS '" + user + "'@'127.0.0.1'") })
	own := *cfg
	own.User, own.Passwd = user, pass
	db, err := app.OpenDB(ctx, "mysql", own.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"LEDGER_DATA_DIR": t.TempDir(), "LEDGER_JWT_SECRET": "test-signing-key-0123456789abcdef0123456789",
		"LEDGER_ADMIN_USERNAME": adminUser, "LEDGER_ADMIN_PASSWORD": adminPass}
	conf, err := app.LoadConfig(func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	logs := &apptest.Buffer{}
	log := app.NewLogger(logs, "info")
	if _, err := app.Bootstrap(ctx, db, conf, log); err != nil {
		t.Fatal(err)
	}
	svc := app.NewServices(conf, db, nil, log)
	e := &testEnv{t: t, db: db, cfg: conf, svc: svc, logs: logs, router: openapiRouter(t)}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	e.f = handlers.New(handlers.Deps{DB: db, Services: svc, Log: log, Registry: prometheus.NewRegistry()})
	var adminID int64
	db.R.Raw("SELECT id FROM members WHERE username = ?", adminUser).Scan(&adminID)
	token := e.tokenFor(adminID)
	e.get("/readyz", "").want(200)
	// No authenticated request before the outage: the first one meets it, and the
	// statements it would prepare must be prepared again afterwards, not failed for good.

	kill := func() {
		rows, err := admin.Query("SELECT id FROM information_schema.processlist WHERE user = ?", user)
		if err != nil {
			t.Fatal(err)
		}
		var ids []int64
		for rows.Next() {
			var id int64
			rows.Scan(&id)
			ids = append(ids, id)
		}
		rows.Close()
		for _, id := range ids {
			admin.Exec("KILL ?", id)
		}
	}
	if _, err := admin.Exec("ALTER USER '" + user + "'@'127.0.0.1' ACCOUNT LOCK"); err != nil {
		t.Fatal(err)
	}
	kill()
	start := time.Now()
	r := e.get("/readyz", "")
	if r.Status != 503 {
		t.Fatalf("/readyz during the outage: %d %s", r.Status, r.Body)
	}
	if r := e.get("/api/v1/me", token); r.Status != 503 || r.Header.Get("Retry-After") == "" {
		t.Fatalf("/me during the outage: %d %v %s", r.Status, r.Header, r.Body)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatalf("answers during the outage took %v", time.Since(start))
	}
	e.get("/healthz", "").want(200)

	if _, err := admin.Exec("ALTER USER '" + user + "'@'127.0.0.1' ACCOUNT UNLOCK"); err != nil {
		t.Fatal(err)
	}
	e.get("/readyz", "").want(200)
	e.get("/api/v1/me", token).want(200)
}
