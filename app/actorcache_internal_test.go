package app

import (
	"context"
	"path/filepath"
	"testing"

	"partyledger/models"
)

// The cache of callers keeps at most maxCachedActors; a full one starts again rather than
// grow with every member who ever called.
func TestActorCacheStaysBounded(t *testing.T) {
	ctx := context.Background()
	db := migratedSQLite(t,
		insertBranch1,
		insertMember7)
	l := newActorLoader(db.sqlR, false)
	for id := range int64(maxCachedActors) {
		l.cache[1_000_000+id] = cachedActor{rev: 1, actor: &Actor{}}
	}
	a, err := l.LoadActor(ctx, 7)
	if err != nil || a.ID != 7 {
		t.Fatalf("load at the bound: %+v %v", a, err)
	}
	if len(l.cache) != 1 || l.cache[7].actor != a {
		t.Fatalf("the cache holds %d callers after reaching its bound of %d", len(l.cache), maxCachedActors)
	}
	// The implicit member role of a branch's member comes with the actor.
	if !a.holds(models.RoleMember, 1) {
		t.Fatalf("grants %+v: no member role over the branch", a.Grants)
	}
}

// newSQLite opens a new, empty SQLite database in a temporary directory; the test closes
// it.
func newSQLite(t *testing.T) *DB {
	t.Helper()
	db, err := OpenDB(context.Background(), "sqlite", filepath.Join(t.TempDir(), "ledger.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// Rows the internal tests start from: branch 1 (the root of its tree) and its member 7.
const (
	insertBranch1 = `INSERT INTO orgs (id, kind, name, path, depth, created_at, updated_at) VALUES (1, 'branch', '教工第一党支部', '/1/', 0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)`
	insertMember7 = `INSERT INTO members (id, member_no, name, branch_id, status, created_at, updated_at) VALUES (7, 'A007', '王小丽', 1, 'active', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)`
)

// migratedSQLite opens a migrated SQLite database in a temporary directory and runs the
// statements in it; the test closes it.
func migratedSQLite(t *testing.T, statements ...string) *DB {
	t.Helper()
	ctx := context.Background()
	db := newSQLite(t)
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	for _, q := range statements {
		if err := db.W.Exec(q).Error; err != nil {
			t.Fatal(err)
		}
	}
	return db
}
