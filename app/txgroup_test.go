package app_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"partyledger/app"
	"partyledger/app/apptest"
)

// TestWritesTogetherFailAlone: writes that share a transaction of the group commit are
// each all or nothing. A write that fails (by returning an error, by a duplicate key, by
// panicking) leaves none of its rows and none of the committee score counts it moved
// (those are applied once, at the commit), a write whose request ran out of time does
// not run, and the others commit, seeing what the writes before them in the lot wrote.
func TestWritesTogetherFailAlone(t *testing.T) {
	db := apptest.OpenDB(t)
	_, _, members, _, _, _, _ := setupRandom(t, db, time.UTC)
	mark := func(tx *gorm.DB, action string) error {
		return tx.Exec("INSERT INTO audit_log (action, entity, entity_id, before_state, after_state, created_at) VALUES (?, 'test', 0, 'null', 'null', ?)",
			action, time.Now().UTC()).Error
	}
	chain := func(tx *gorm.DB, member int64) error {
		return tx.Exec("INSERT INTO member_chains (member_id, seq, last_hash) VALUES (?, 0, 'x')", member).Error
	}
	// Each write moves a different number of members to one committee score, so the
	// count that stands tells whose moves were applied.
	move := func(tx *gorm.DB, n int64) error { return app.AddCommitteePointsLater(tx, "2099-01", 999001, 25, n) }
	var seen int64
	soon, past := time.Now().Add(time.Minute), time.Now().Add(-time.Second)
	errs := db.WriteTogether([]func(tx *gorm.DB) error{
		func(tx *gorm.DB) error { // 0: commits
			if err := mark(tx, "t0"); err != nil {
				return err
			}
			if err := move(tx, 1); err != nil {
				return err
			}
			return chain(tx, members[0].ID)
		},
		func(tx *gorm.DB) error { // 1: fails after a write
			if err := mark(tx, "t1"); err != nil {
				return err
			}
			if err := move(tx, 100); err != nil {
				return err
			}
			return errors.New("refused")
		},
		func(tx *gorm.DB) error { // 2: a duplicate key after a write
			if err := mark(tx, "t2"); err != nil {
				return err
			}
			if err := move(tx, 1000); err != nil {
				return err
			}
			return chain(tx, members[0].ID)
		},
		func(tx *gorm.DB) error { // 3: panics after a write
			if err := mark(tx, "t3"); err != nil {
				return err
			}
			if err := move(tx, 10000); err != nil {
				return err
			}
			panic("boom")
		},
		func(tx *gorm.DB) error { // 4: sees 0's write, and commits
			if err := tx.Raw("SELECT COUNT(*) FROM audit_log WHERE action = 't0'").Scan(&seen).Error; err != nil {
				return err
			}
			if err := move(tx, 10); err != nil {
				return err
			}
			return mark(tx, "t4")
		},
		func(tx *gorm.DB) error { return mark(tx, "t5") }, // 5: too late to run
	}, []time.Time{soon, {}, soon, soon, soon, past})
	if errs[0] != nil || errs[4] != nil {
		t.Fatalf("the good writes failed: %v, %v", errs[0], errs[4])
	}
	if errs[1] == nil || errs[1].Error() != "refused" || errs[2] == nil || errs[3] == nil || !strings.Contains(errs[3].Error(), "boom") {
		t.Fatalf("the failing writes: %v, %v, %v", errs[1], errs[2], errs[3])
	}
	if !errors.Is(errs[5], context.DeadlineExceeded) {
		t.Fatalf("the late write: %v, want the deadline", errs[5])
	}
	if seen != 1 {
		t.Fatalf("write 4 saw %d rows of write 0, want 1", seen)
	}
	var actions []string
	if err := db.R.Raw("SELECT action FROM audit_log WHERE entity = 'test' ORDER BY id").Scan(&actions).Error; err != nil {
		t.Fatal(err)
	}
	if strings.Join(actions, ",") != "t0,t4" {
		t.Fatalf("committed: %v, want t0 and t4 only", actions)
	}
	var moved []int64
	if err := db.R.Raw("SELECT members FROM committee_points WHERE committee_id = 999001").Scan(&moved).Error; err != nil {
		t.Fatal(err)
	}
	if len(moved) != 1 || moved[0] != 11 {
		t.Fatalf("committee score counts %v, want [11]: the moves of writes 0 and 4 only", moved)
	}
}

// TestWritesTogetherRunAloneWhenTheTransactionFails: when the shared transaction itself
// fails (here a write ends it behind the group's back and fails, so that its savepoint is
// gone), every write runs again alone, so the others commit exactly once and only the
// culprit fails.
func TestWritesTogetherRunAloneWhenTheTransactionFails(t *testing.T) {
	db := apptest.OpenDB(t)
	setupRandom(t, db, time.UTC)
	mark := func(action string) func(tx *gorm.DB) error {
		return func(tx *gorm.DB) error {
			return tx.Exec("INSERT INTO audit_log (action, entity, entity_id, before_state, after_state, created_at) VALUES (?, 'test', 0, 'null', 'null', ?)",
				action, time.Now().UTC()).Error
		}
	}
	soon := time.Now().Add(time.Minute)
	errs := db.WriteTogether([]func(tx *gorm.DB) error{
		mark("t0"),
		func(tx *gorm.DB) error {
			if err := mark("t1")(tx); err != nil {
				return err
			}
			if err := tx.Exec("ROLLBACK").Error; err != nil { // ends the transaction it shares
				return err
			}
			return errors.New("ended its transaction")
		},
		mark("t2"),
	}, []time.Time{soon, soon, soon})
	if errs[0] != nil || errs[2] != nil || errs[1] == nil {
		t.Fatalf("outcomes %v, want only the second to fail", errs)
	}
	var actions []string
	if err := db.R.Raw("SELECT action FROM audit_log WHERE entity = 'test' ORDER BY id").Scan(&actions).Error; err != nil {
		t.Fatal(err)
	}
	if strings.Join(actions, ",") != "t0,t2" {
		t.Fatalf("committed: %v, want t0 and t2, once each", actions)
	}
}
