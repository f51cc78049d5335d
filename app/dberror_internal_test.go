package app

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/go-sql-driver/mysql"
	"gorm.io/gorm"

	"partyledger/models"
)

// sqliteCode is an error with an SQLite result code, as modernc's errors have.
type sqliteCode int

func (c sqliteCode) Error() string { return fmt.Sprintf("sqlite: code %d", int(c)) }
func (c sqliteCode) Code() int     { return int(c) }

// TestDatabaseErrorsSortedIntoOutagesConflictsAndFaults: what dbError makes of the
// databases' errors, wrapped as callers wrap them. An outage ("try again": 503 with a
// Retry-After) is a database that cannot answer now: MySQL's and MariaDB's answers that
// mean "not now" (too many connections, access denied while connecting, shutting down,
// the account locked, the query or connection killed, a deadlock, a lock wait timed out,
// MariaDB's "record changed"), a broken or closed connection, a network error, a deadline
// passed, SQLite's file busy or locked. A unique key's clash is a conflict (409). A wrong
// statement, a missing table, a cancelled request or any other error is none of these: it
// stays internal (500, logged).
func TestDatabaseErrorsSortedIntoOutagesConflictsAndFaults(t *testing.T) {
	outage := map[string]error{
		"too many connections":        &mysql.MySQLError{Number: 1040},
		"too many user connections":   &mysql.MySQLError{Number: 1203},
		"access denied":               &mysql.MySQLError{Number: 1045},
		"shutdown in progress":        &mysql.MySQLError{Number: 1053},
		"account locked (MySQL)":      &mysql.MySQLError{Number: 3118},
		"account locked (MariaDB)":    &mysql.MySQLError{Number: 4151},
		"query killed":                &mysql.MySQLError{Number: 1317},
		"connection killed":           &mysql.MySQLError{Number: 1927},
		"deadlock":                    &mysql.MySQLError{Number: 1213},
		"lock wait timeout":           &mysql.MySQLError{Number: 1205},
		"record changed (MariaDB)":    &mysql.MySQLError{Number: 1020},
		"bad connection":              driver.ErrBadConn,
		"invalid connection":          mysql.ErrInvalidConn,
		"connection done":             sql.ErrConnDone,
		"deadline":                    context.DeadlineExceeded,
		"network":                     &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")},
		"SQLite busy":                 sqliteCode(5),
		"SQLite busy (snapshot)":      sqliteCode(5 | 2<<8),
		"SQLite locked":               sqliteCode(6),
		"SQLite locked (shared lock)": sqliteCode(6 | 1<<8),
	}
	conflict := map[string]error{
		"MySQL duplicate":    &mysql.MySQLError{Number: 1062},
		"GORM's duplicate":   gorm.ErrDuplicatedKey,
		"SQLite unique":      sqliteCode(2067),
		"SQLite primary key": sqliteCode(1555),
	}
	fault := map[string]error{
		"syntax error":          &mysql.MySQLError{Number: 1064},
		"no such table (MySQL)": &mysql.MySQLError{Number: 1146},
		"foreign key (MySQL)":   &mysql.MySQLError{Number: 1452},
		"SQLite error":          sqliteCode(1),
		"SQLite foreign key":    sqliteCode(787),
		"SQLite not null":       sqliteCode(1299),
		"cancelled":             context.Canceled,
		"anything else":         errors.New("disk on fire"),
	}
	for name, err := range outage {
		got := dbError("write", fmt.Errorf("step: %w", err))
		var me *models.Error
		if !errors.As(got, &me) || me.Code != models.EUnavailable || me.RetryAfter == 0 || !errors.Is(got, err) {
			t.Errorf("%s: %v (%#v), want unavailable with a Retry-After and the cause kept", name, got, me)
		}
	}
	for name, err := range conflict {
		got := dbError("write", fmt.Errorf("step: %w", err))
		var me *models.Error
		if !errors.As(got, &me) || me.Code != models.EConflict || !errors.Is(got, err) {
			t.Errorf("%s: %v, want a conflict with the cause kept", name, got)
		}
		if IsUnavailable(err) {
			t.Errorf("%s: taken for an outage", name)
		}
	}
	for name, err := range fault {
		got := dbError("write", fmt.Errorf("step: %w", err))
		var me *models.Error
		if errors.As(got, &me) || !errors.Is(got, err) || got.Error() != "write: step: "+err.Error() {
			t.Errorf("%s: %v, want it wrapped with the operation's name and nothing more", name, got)
		}
	}
	if dbError("write", nil) != nil {
		t.Error("no error made one")
	}
}
