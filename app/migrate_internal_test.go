package app

import (
	"context"
	"strings"
	"testing"
)

// TestUsernameCaseMigration: SQLite's migration 00008 makes usernames unique without
// regard to case. A database that already holds two usernames differing only in case
// stops there with a UNIQUE error, as the migration's comment tells its operator, and
// one that does not migrates and then refuses such a pair.
func TestUsernameCaseMigration(t *testing.T) {
	ctx := context.Background()
	open := func(t *testing.T) *DB { return migratedTo(t, 7) }
	staff := func(db *DB, no, username string) error {
		return db.W.Exec(`INSERT INTO members (member_no, name, branch_id, status, username, created_at, updated_at) VALUES (?, '某', 1, 'active', ?, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)`, no, username).Error
	}

	t.Run("two usernames in different case stop it", func(t *testing.T) {
		db := open(t)
		for i, u := range []string{"chen.sj", "Chen.SJ"} {
			if err := staff(db, "S"+itoa(i), u); err != nil {
				t.Fatalf("before 00008, %s: %v", u, err)
			}
		}
		_, err := db.Migrate(ctx)
		if err == nil || !strings.Contains(err.Error(), "UNIQUE") {
			t.Fatalf("migrate over two usernames in different case: %v", err)
		}
		if v, _ := db.SchemaVersion(ctx); v != 7 {
			t.Fatalf("schema at version %d after the failed migration, want 7", v)
		}
		// Rolled back whole: the old index still keeps exact duplicates out.
		if err := staff(db, "S9", "chen.sj"); !isDuplicate(err) {
			t.Fatalf("a duplicate username after the failed migration: %v", err)
		}
	})
	t.Run("otherwise it migrates, then refuses such a pair", func(t *testing.T) {
		db := open(t)
		if err := staff(db, "S1", "chen.sj"); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		if err := staff(db, "S2", "CHEN.sj"); !isDuplicate(err) {
			t.Fatalf("a second username in other case after 00008: %v", err)
		}
	})
}

// TestMemberNoCaseMigration: SQLite's migration 00009 makes member numbers unique
// without regard to case, as MySQL's collation always did; over two numbers that differ
// only in case it stops, rolled back, as its comment says.
func TestMemberNoCaseMigration(t *testing.T) {
	ctx := context.Background()
	member := func(db *DB, no string) error {
		return db.W.Exec(`INSERT INTO members (member_no, name, branch_id, status, created_at, updated_at) VALUES (?, '某', 1, 'active', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)`, no).Error
	}
	t.Run("two numbers in different case stop it", func(t *testing.T) {
		db := migratedTo(t, 8)
		for _, no := range []string{"d00017", "D00017"} {
			if err := member(db, no); err != nil {
				t.Fatalf("before 00009, %s: %v", no, err)
			}
		}
		if _, err := db.Migrate(ctx); err == nil || !strings.Contains(err.Error(), "UNIQUE") {
			t.Fatalf("migrate over two numbers in different case: %v", err)
		}
		if v, _ := db.SchemaVersion(ctx); v != 8 {
			t.Fatalf("schema at version %d after the failed migration, want 8", v)
		}
		if err := member(db, "D00017"); !isDuplicate(err) {
			t.Fatalf("a duplicate number after the failed migration: %v", err)
		}
	})
	t.Run("otherwise it migrates, then refuses such a pair", func(t *testing.T) {
		db := migratedTo(t, 8)
		if err := member(db, "D00017"); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		if err := member(db, "d00017"); !isDuplicate(err) {
			t.Fatalf("a second number in other case after 00009: %v", err)
		}
	})
}

// migratedTo is a new SQLite database at schema version v, with a root org.
func migratedTo(t *testing.T, v int64) *DB {
	t.Helper()
	ctx := context.Background()
	db := newSQLite(t)
	p, err := db.gooseProvider()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, v); err != nil {
		t.Fatal(err)
	}
	if err := db.W.Exec(`INSERT INTO orgs (kind, name, path, depth, created_at, updated_at) VALUES ('committee', '党委', '/1/', 0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)`).Error; err != nil {
		t.Fatal(err)
	}
	return db
}
