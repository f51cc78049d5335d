package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"partyledger/app"
	"partyledger/app/apptest"
)

// TestHealthcheck: `server healthcheck`, the container's health check, asks /readyz on
// loopback at LEDGER_ADDR's port and exits 0 only for a 200; 1 for any other answer or
// none; 2 for an address it cannot read.
func TestHealthcheck(t *testing.T) {
	var notReady atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
			return
		}
		if notReady.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	_, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	env := func(addr string) func(string) string {
		return func(k string) string {
			if k == "LEDGER_ADDR" {
				return addr
			}
			return ""
		}
	}
	for _, addr := range []string{":" + port, "0.0.0.0:" + port, "localhost:" + port} {
		if got := healthcheck(env(addr)); got != 0 {
			t.Errorf("ready, LEDGER_ADDR %q: exit %d, want 0", addr, got)
		}
	}
	notReady.Store(true)
	if got := healthcheck(env(":" + port)); got != 1 {
		t.Errorf("not ready: exit %d, want 1", got)
	}
	closed := freeAddr(t)
	if got := healthcheck(env(closed)); got != 1 {
		t.Errorf("nothing listening at %s: exit %d, want 1", closed, got)
	}
	if got := healthcheck(env("no-port-here")); got != 2 {
		t.Errorf("an address without a port: exit %d, want 2", got)
	}
}

// TestStartWaitsForTheDatabase: the server waits up to LEDGER_DB_WAIT for its database,
// trying each second and saying so in the log, and gives up at once when told to stop.
// The database here cannot be opened while a file sits where its directory must go.
func TestStartWaitsForTheDatabase(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "data")
	if err := os.WriteFile(blocker, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := app.Config{DBDriver: "sqlite", DBDSN: filepath.Join(blocker, "ledger.db"), DBWait: 30 * time.Second}

	t.Run("comes up", func(t *testing.T) {
		logs := &apptest.Buffer{}
		go func() {
			time.Sleep(300 * time.Millisecond)
			os.Remove(blocker)
		}()
		db, err := openWithRetry(context.Background(), cfg, app.NewLogger(logs, "info"))
		if err != nil {
			t.Fatalf("the database came up, but: %v", err)
		}
		db.Close()
		if n := strings.Count(logs.String(), "database not reachable yet, retrying"); n != 1 {
			t.Fatalf("%d retries logged, want 1:\n%s", n, logs.String())
		}
	})
	if err := os.RemoveAll(blocker); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(blocker, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("never comes up", func(t *testing.T) {
		short := cfg
		short.DBWait = 1500 * time.Millisecond
		logs := &apptest.Buffer{}
		start := time.Now()
		done := make(chan error, 1)
		go func() {
			_, err := openWithRetry(context.Background(), short, app.NewLogger(logs, "info"))
			done <- err
		}()
		var err error
		select {
		case err = <-done:
		case <-time.After(short.DBWait + 10*time.Second):
			t.Fatalf("still trying %s after LEDGER_DB_WAIT ran out", 10*time.Second)
		}
		if err == nil || !strings.Contains(err.Error(), "open db") {
			t.Fatalf("err %v, want the open's error", err)
		}
		if took := time.Since(start); took < short.DBWait || took > short.DBWait+5*time.Second {
			t.Fatalf("gave up after %s, want about %s", took, short.DBWait)
		}
		if n := strings.Count(logs.String(), "database not reachable yet, retrying"); n < 1 {
			t.Fatalf("no retry logged:\n%s", logs.String())
		}
	})

	t.Run("no wait", func(t *testing.T) {
		none := cfg
		none.DBWait = 0
		logs := &apptest.Buffer{}
		if _, err := openWithRetry(context.Background(), none, app.NewLogger(logs, "info")); err == nil {
			t.Fatal("opened a database that cannot be opened")
		}
		if strings.Contains(logs.String(), "retrying") {
			t.Fatalf("retried with no wait:\n%s", logs.String())
		}
	})

	t.Run("stopped while waiting", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			time.Sleep(200 * time.Millisecond)
			cancel()
		}()
		start := time.Now()
		_, err := openWithRetry(ctx, cfg, app.NewLogger(&apptest.Buffer{}, "info"))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err %v, want the cancellation", err)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Fatalf("took %s to stop", took)
		}
	})
}
