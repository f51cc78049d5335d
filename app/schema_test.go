package app_test

import (
	"context"
	"database/sql"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"

	"partyledger/app"
	"partyledger/app/apptest"
)

// schema is what both dialects must agree on: tables, their columns (with nullability)
// their primary keys and their unique keys (by name, with their columns in order).
type schema struct {
	Columns map[string][]string // table -> "name NULL|NOT NULL", sorted
	Primary map[string]string   // table -> "col,col"
	Uniques map[string]string   // index name -> "table(col,col)"
}

func rows(t *testing.T, db *sql.DB, q string, args ...any) [][]string {
	t.Helper()
	r, err := db.Query(q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer r.Close()
	cols, _ := r.Columns()
	var out [][]string
	for r.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := r.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		row := make([]string, len(cols))
		for i, v := range vals {
			row[i] = v.String
		}
		out = append(out, row)
	}
	return out
}

func sqliteSchema(t *testing.T, db *sql.DB) schema {
	s := schema{Columns: map[string][]string{}, Primary: map[string]string{}, Uniques: map[string]string{}}
	for _, tr := range rows(t, db, `SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' AND name <> 'goose_db_version'`) {
		table := tr[0]
		var pk []string
		for _, c := range rows(t, db, fmt.Sprintf(`SELECT name, "notnull", pk FROM pragma_table_info('%s') ORDER BY pk`, table)) {
			null := "NULL"
			if c[1] == "1" || c[2] != "0" {
				null = "NOT NULL"
			}
			s.Columns[table] = append(s.Columns[table], c[0]+" "+null)
			if c[2] != "0" {
				pk = append(pk, c[0])
			}
		}
		s.Primary[table] = strings.Join(pk, ",")
		for _, ix := range rows(t, db, fmt.Sprintf(`SELECT name, "unique", origin FROM pragma_index_list('%s')`, table)) {
			if ix[1] != "1" || ix[2] == "pk" {
				continue
			}
			var cols []string
			for _, c := range rows(t, db, fmt.Sprintf(`SELECT name FROM pragma_index_info('%s') ORDER BY seqno`, ix[0])) {
				cols = append(cols, c[0])
			}
			s.Uniques[ix[0]] = table + "(" + strings.Join(cols, ",") + ")"
		}
		sort.Strings(s.Columns[table])
	}
	return s
}

func mysqlSchema(t *testing.T, db *sql.DB) schema {
	s := schema{Columns: map[string][]string{}, Primary: map[string]string{}, Uniques: map[string]string{}}
	for _, c := range rows(t, db, `SELECT table_name, column_name, is_nullable FROM information_schema.columns
		WHERE table_schema = DATABASE() AND table_name NOT IN ('goose_db_version', 'goose_lock')`) {
		null := "NULL"
		if c[2] == "NO" {
			null = "NOT NULL"
		}
		s.Columns[c[0]] = append(s.Columns[c[0]], c[1]+" "+null)
	}
	for table := range s.Columns {
		sort.Strings(s.Columns[table])
		var pk []string
		for _, c := range rows(t, db, `SELECT column_name FROM information_schema.statistics
			WHERE table_schema = DATABASE() AND table_name = ? AND index_name = 'PRIMARY' ORDER BY seq_in_index`, table) {
			pk = append(pk, c[0])
		}
		s.Primary[table] = strings.Join(pk, ",")
	}
	cols := map[string][]string{}
	tables := map[string]string{}
	for _, ix := range rows(t, db, `SELECT table_name, index_name, column_name FROM information_schema.statistics
		WHERE table_schema = DATABASE() AND non_unique = 0 AND index_name <> 'PRIMARY' AND table_name NOT IN ('goose_db_version', 'goose_lock')
		ORDER BY table_name, index_name, seq_in_index`) {
		tables[ix[1]] = ix[0]
		cols[ix[1]] = append(cols[ix[1]], ix[2])
	}
	for name, c := range cols {
		s.Uniques[name] = tables[name] + "(" + strings.Join(c, ",") + ")"
	}
	return s
}

// TestDialectsHaveTheSameSchema compares the migrated SQLite and MySQL schemas. It needs
// both databases, so it runs in the MySQL suite (LEDGER_TEST_DB=mysql), which CI runs.
// goose's own tables are left out: its version table, and on MySQL its lock (goose_lock).
func TestDialectsHaveTheSameSchema(t *testing.T) {
	if apptest.Driver() != "mysql" {
		t.Skip("compares against MySQL: runs in the MySQL suite (LEDGER_TEST_DB=mysql), as CI does")
	}
	lite := sqliteSchema(t, apptest.OpenDriver(t, "sqlite").SQL())
	my := mysqlSchema(t, apptest.OpenDriver(t, "mysql").SQL())
	if len(lite.Columns) < 6 || len(lite.Uniques) < 7 || len(my.Uniques) < 7 {
		t.Fatalf("too little schema seen: %d tables, %d and %d unique keys", len(lite.Columns), len(lite.Uniques), len(my.Uniques))
	}
	if !reflect.DeepEqual(lite.Columns, my.Columns) {
		t.Errorf("columns differ:\nsqlite: %v\nmysql:  %v", lite.Columns, my.Columns)
	}
	if !reflect.DeepEqual(lite.Primary, my.Primary) || lite.Primary["member_months"] != "member_id,period,branch_id" {
		t.Errorf("primary keys differ:\nsqlite: %v\nmysql:  %v", lite.Primary, my.Primary)
	}
	if !reflect.DeepEqual(lite.Uniques, my.Uniques) {
		t.Errorf("unique keys differ:\nsqlite: %v\nmysql:  %v", lite.Uniques, my.Uniques)
	}
}

func TestMigrateIsIdempotent(t *testing.T) {
	db := apptest.OpenDB(t)
	applied, err := db.Migrate(context.Background())
	if err != nil || len(applied) != 0 {
		t.Fatalf("second migrate applied %v, %v", applied, err)
	}
	v, err := db.SchemaVersion(context.Background())
	if err != nil || v < 1 {
		t.Fatalf("version %d, %v", v, err)
	}
	_ = app.DefaultPageLimit
}

// TestMySQLSessionsReadCommitted holds what the ledger's caps rely on (see writeTx).
func TestMySQLSessionsReadCommitted(t *testing.T) {
	if apptest.Driver() != "mysql" {
		t.Skip("MySQL only: runs in the MySQL suite, as CI does")
	}
	db := apptest.OpenDB(t)
	var iso string
	if err := db.W.Raw("SELECT @@tx_isolation").Scan(&iso).Error; err != nil {
		if err := db.W.Raw("SELECT @@transaction_isolation").Scan(&iso).Error; err != nil {
			t.Fatal(err)
		}
	}
	if iso != "READ-COMMITTED" {
		t.Fatalf("sessions run at %s", iso)
	}
}
