package app

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestSQLiteWALCheckpointedBesideTheWriter writes about 2,000 pages in eight transactions
// and checks that the WAL is checkpointed beside the writer: the writer's own threshold is
// the backstop (8,000 pages), yet each transaction's pages reach the database file within
// moments, and the WAL starts again from its beginning instead of growing to hold all
// 2,000. SQLite only, whatever LEDGER_TEST_DB says.
func TestSQLiteWALCheckpointedBesideTheWriter(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ledger.db")
	db, err := OpenDB(ctx, "sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var backstop int
	if err := db.W.Raw("PRAGMA wal_autocheckpoint").Scan(&backstop).Error; err != nil {
		t.Fatal(err)
	}
	if backstop != walBackstopPages {
		t.Fatalf("the writer checkpoints past %d pages, want %d", backstop, walBackstopPages)
	}
	if err := db.W.Exec("CREATE TABLE scratch (b BLOB NOT NULL)").Error; err != nil {
		t.Fatal(err)
	}
	size := func(p string) int64 {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return st.Size()
	}
	const rounds, rowsPerRound, page = 8, 250, 4096 // a 3,000-byte row fills most of a page
	base := size(path)
	for i := range rounds {
		if err := db.W.Exec(`INSERT INTO scratch (b) SELECT randomblob(3000) FROM
			(WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < ?) SELECT x FROM n)`, rowsPerRound).Error; err != nil {
			t.Fatal(err)
		}
		// Only a checkpoint writes the database file; the writer's own waits for 8,000 pages.
		want := base + int64((i+1)*rowsPerRound*page)
		deadline := time.Now().Add(5 * time.Second)
		for size(path) < want {
			if time.Now().After(deadline) {
				_, failed := db.Checkpoints()
				t.Fatalf("round %d: the database file holds %d bytes, want %d (%d checkpoints failed)", i, size(path), want, failed)
			}
			time.Sleep(10 * time.Millisecond)
		}
		// Once a checkpoint has begun and ended after that, the whole WAL is in the file,
		// and the next round's transaction starts the WAL again.
		for runs := db.ckpt.runs.Load(); db.ckpt.runs.Load() < runs+2; {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: no checkpoint ran after the pages reached the file", i)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	const frame = page + 24
	if frames := size(path+"-wal") / frame; frames > 2*rowsPerRound {
		t.Fatalf("the WAL grew to %d frames; it should start again after each checkpoint (about %d)", frames, rowsPerRound)
	}
	// The last round's pages stay in the WAL (in the file too) until the next write
	// starts it again: the gauge shows them.
	if pages, failed := db.Checkpoints(); failed != 0 || pages < rowsPerRound/2 || pages > 2*rowsPerRound {
		t.Fatalf("last checkpoint saw %d WAL pages (want about %d), %d checkpoints failed", pages, rowsPerRound, failed)
	}
	var n int
	if err := db.R.Raw("SELECT COUNT(*) FROM scratch").Scan(&n).Error; err != nil || n != rounds*rowsPerRound {
		t.Fatalf("read %d rows (%v), want %d", n, err, rounds*rowsPerRound)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db.Close() // again, as tests' cleanups do: no panic
}

// TestCheckpointFailuresAreCounted: a checkpoint that fails is counted (the metric
// ledger_sqlite_checkpoint_failures_total), and the checkpointer goes on trying.
func TestCheckpointFailuresAreCounted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	db, err := OpenDB(context.Background(), "sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, failed := db.Checkpoints(); failed != 0 {
		t.Fatalf("%d failures before any", failed)
	}
	db.ckpt.db.Close() // its connection gone, every checkpoint fails
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, failed := db.Checkpoints(); failed >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no failed checkpoint counted in 5 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// MySQL has no checkpointer: zeros.
	if pages, failed := (&DB{Driver: "mysql"}).Checkpoints(); pages != 0 || failed != 0 {
		t.Fatalf("MySQL's checkpoints: %d pages, %d failed", pages, failed)
	}
}
