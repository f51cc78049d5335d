package app

import (
	"context"
	"database/sql/driver"
	"errors"
	"testing"

	"gorm.io/gorm"

	"partyledger/models"
)

// A post assignment whose member cannot be read because the database stopped answering
// is 503 (try again), not 422 "must be an active member": the secretary's input was fine.
func TestAssignWhenTheMembersCannotBeRead(t *testing.T) {
	ctx := context.Background()
	db := migratedSQLite(t,
		insertBranch1,
		insertMember7,
		`INSERT INTO members (id, member_no, name, branch_id, status, created_at, updated_at) VALUES (8, 'A008', '李书记', 1, 'active', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)`,
		`INSERT INTO member_roles (member_id, role, org_id, created_at) VALUES (8, 'secretary', 1, CURRENT_TIMESTAMP)`,
		`INSERT INTO posts (id, branch_id, name, created_at) VALUES (1, 1, '教学先锋岗', CURRENT_TIMESTAMP)`)
	sec, err := newActorLoader(db.sqlR, false).LoadActor(ctx, 8)
	if err != nil {
		t.Fatal(err)
	}
	in := AssignmentInput{MemberID: 7, StartsOn: "2026-09-01", EndsOn: "2027-07-31", Commitment: "课堂育人"}
	posts := NewPosts(db)
	if _, err := posts.Assign(ctx, sec, 1, in); err != nil {
		t.Fatalf("with the database answering: %v", err)
	}

	if err := db.W.Callback().Query().Before("gorm:query").Register("test:members-unreadable", func(tx *gorm.DB) {
		if tx.Statement.Table == "members" {
			tx.AddError(driver.ErrBadConn)
		}
	}); err != nil {
		t.Fatal(err)
	}
	_, err = posts.Assign(ctx, sec, 1, in)
	var me *models.Error
	if !errors.As(err, &me) || me.Code != models.EUnavailable {
		t.Fatalf("with the members unreadable: %v, want %s", err, models.EUnavailable)
	}
	if !errors.Is(err, driver.ErrBadConn) {
		t.Fatalf("the cause is not kept for the log: %v", err)
	}
}
