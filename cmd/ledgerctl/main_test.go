package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"partyledger/app"
	"partyledger/app/apptest"
	"partyledger/models"
)

func testEnv(t *testing.T) map[string]string {
	t.Helper()
	vars := map[string]string{"LEDGER_DATA_DIR": t.TempDir(), "LEDGER_ADMIN_USERNAME": "zuzhi", "LEDGER_ADMIN_PASSWORD": "first-admin-pass"}
	if apptest.Driver() == "mysql" {
		vars["LEDGER_DB_DRIVER"], vars["LEDGER_DB_DSN"] = "mysql", apptest.CreateMySQLDatabase(t)
	}
	return vars
}

func ctl(t *testing.T, vars map[string]string, tty bool, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, func(k string) string { return vars[k] }, &out, &errOut, tty)
	return out.String(), errOut.String(), err
}

func TestMigrateSeedImport(t *testing.T) {
	vars := testEnv(t)
	out, _, err := ctl(t, vars, false, "migrate")
	if err != nil || !strings.Contains(out, "schema at version") {
		t.Fatalf("migrate: %q %v", out, err)
	}
	if _, _, err := ctl(t, vars, false, "seed"); err != nil {
		t.Fatal(err)
	}
	// The root committee exists now; give it a branch to import into.
	cfg, _ := app.LoadConfig(func(k string) string { return vars[k] })
	db, err := app.OpenDB(context.Background(), cfg.DBDriver, cfg.DBDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	sys, err := app.SystemActor(context.Background(), db)
	if err != nil || len(sys.Grants) != 1 {
		t.Fatalf("system actor: %+v %v", sys, err)
	}
	root := sys.Grants[0].OrgID
	branch, err := app.NewOrgs(db).Create(context.Background(), sys, app.OrgInput{ParentID: &root, Kind: models.KindBranch, Name: "教工第一党支部"})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.csv")
	os.WriteFile(bad, []byte("党员编号,姓名,支部\nP1,,教工第一党支部\nP2,某,无此支部\n"), 0o600)
	_, stderr, err := ctl(t, vars, false, "import", bad)
	if err == nil || !strings.Contains(stderr, "row 2: name") || !strings.Contains(stderr, "row 3: branch") {
		t.Fatalf("bad import: %v\n%s", err, stderr)
	}
	var rows strings.Builder
	rows.WriteString("党员编号,姓名,支部\n")
	for i := 0; i < 1200; i++ {
		fmt.Fprintf(&rows, "P%04d,党员%04d,教工第一党支部\n", i, i)
	}
	good := filepath.Join(dir, "good.csv")
	os.WriteFile(good, []byte(rows.String()), 0o600)
	out, stderr, err = ctl(t, vars, true, "import", good)
	if err != nil || !strings.Contains(out, "1200 created") {
		t.Fatalf("import: %q %v\n%s", out, err, stderr)
	}
	if !strings.Contains(stderr, "importing") {
		t.Fatalf("no progress bar on a terminal: %q", stderr)
	}
	var n int64
	db.R.Model(&models.Member{}).Where("branch_id = ?", branch.ID).Count(&n)
	if n != 1200 {
		t.Fatalf("%d members in the branch", n)
	}
	// The command line's writes are audited with no actor: no member made them.
	var imported, byNobody, orgs int64
	db.R.Model(&models.AuditRecord{}).Where("action = ?", "member.imported").Count(&imported)
	db.R.Model(&models.AuditRecord{}).Where("action = ? AND actor_id IS NULL AND org_id = ?", "member.imported", branch.ID).Count(&byNobody)
	db.R.Model(&models.AuditRecord{}).Where("action = ? AND actor_id IS NULL AND entity_id = ?", "org.created", branch.ID).Count(&orgs)
	if imported != 1200 || byNobody != 1200 || orgs != 1 {
		t.Fatalf("audit of the command line: %d imports, %d of them with no actor in the branch; %d org.created with no actor", imported, byNobody, orgs)
	}
	// The same roster again, with one name corrected.
	os.WriteFile(good, []byte(strings.Replace(rows.String(), "P0007,党员0007", "P0007,党员七", 1)), 0o600)
	out, stderr, err = ctl(t, vars, false, "import", good)
	if err != nil || !strings.Contains(out, "imported 1200 rows: 0 created, 1 updated, 1199 unchanged") {
		t.Fatalf("import again: %q %v\n%s", out, err, stderr)
	}
	if _, _, err := ctl(t, vars, false, "frobnicate"); err == nil {
		t.Fatal("an unknown command succeeded")
	}
}

func TestVerify(t *testing.T) {
	vars := testEnv(t)
	if _, _, err := ctl(t, vars, false, "seed"); err != nil {
		t.Fatal(err)
	}
	cfg, _ := app.LoadConfig(func(k string) string { return vars[k] })
	db, err := app.OpenDB(context.Background(), cfg.DBDriver, cfg.DBDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	sys, _ := app.SystemActor(ctx, db)
	root := sys.Grants[0].OrgID
	branch, err := app.NewOrgs(db).Create(ctx, sys, app.OrgInput{ParentID: &root, Kind: models.KindBranch, Name: "教工第一党支部"})
	if err != nil {
		t.Fatal(err)
	}
	m, err := app.NewMembers(db, time.Hour).Create(ctx, sys, app.MemberInput{MemberNo: "V1", Name: "王五", BranchID: branch.ID})
	if err != nil {
		t.Fatal(err)
	}
	ledger := app.NewLedger(db, cfg.Location, cfg.PublicityDays)
	day := time.Now().In(cfg.Location).Format("2006-01-02")
	for i := 0; i < 3; i++ {
		if _, err := ledger.Manual(ctx, sys, app.ManualInput{MemberID: m.ID, RuleCode: "adjust.bonus", Points: 10, Reason: "r", OccurredOn: day}); err != nil {
			t.Fatal(err)
		}
	}
	out, _, err := ctl(t, vars, false, "verify")
	if err != nil || !strings.Contains(out, "verified 3 entries of 1 members") {
		t.Fatalf("verify: %q %v", out, err)
	}
	// The monthly report, to a file and to standard output.
	file := filepath.Join(t.TempDir(), "r.xlsx")
	if _, errOut, err := ctl(t, vars, false, "report", "-o", file); err != nil || !strings.Contains(errOut, "wrote 1 member rows") {
		t.Fatalf("report: %q %v", errOut, err)
	}
	if x, err := excelize.OpenFile(file); err != nil {
		t.Fatal(err)
	} else if rows, err := x.GetRows("党员积分"); err != nil || len(rows) != 2 || rows[1][2] != "王五" || rows[1][4] != "3" {
		t.Fatalf("report rows %q %v", rows, err)
	}
	if out, _, err := ctl(t, vars, false, "report", "-format", "csv", "-o", "-"); err != nil || !strings.Contains(out, "王五,教工第一党支部,3,") {
		t.Fatalf("csv report: %q %v", out, err)
	}
	if _, _, err := ctl(t, vars, false, "report", "-format", "pdf", "-o", "-"); err == nil {
		t.Fatal("a pdf report was made")
	}
	db.W.Exec("UPDATE entries SET reason = 'tampered' WHERE seq = 2")
	if _, _, err := ctl(t, vars, false, "verify"); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("member %d", m.ID)) {
		t.Fatalf("a tampered ledger verified: %v", err)
	}
}

func TestGen(t *testing.T) {
	vars := testEnv(t)
	out, _, err := ctl(t, vars, false, "gen", "-members", "3000", "-branches", "90", "-months", "3", "-entry-members", "400", "-seed", "7")
	if err != nil || !strings.Contains(out, "generated 101 orgs, 3000 members") {
		t.Fatalf("gen: %q %v", out, err)
	}
	cfg, _ := app.LoadConfig(func(k string) string { return vars[k] })
	db, err := app.OpenDB(context.Background(), cfg.DBDriver, cfg.DBDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var c struct{ Committees, Branches, Members, Entries, Months, EntryMonths, Leaders, NotPositive int64 }
	db.R.Raw(`SELECT (SELECT COUNT(*) FROM orgs WHERE kind = 'committee') AS committees, (SELECT COUNT(*) FROM orgs WHERE kind = 'branch') AS branches,
  (SELECT COUNT(*) FROM members) AS members, (SELECT COUNT(*) FROM entries) AS entries, (SELECT COUNT(DISTINCT period) FROM member_months) AS months,
  (SELECT COUNT(DISTINCT member_id) FROM entries) AS entry_months, (SELECT COUNT(*) FROM member_roles WHERE role = 'leader') AS leaders,
  (SELECT COUNT(*) FROM entries WHERE points <= 0) AS not_positive`).Scan(&c)
	// A root and one committee per 100 branches; one more member leads the root. Every
	// entry awards something: a duty whose cap is used up writes none.
	if c.Committees != 2 || c.Branches != 90 || c.Members != 3001 || c.Entries == 0 || c.Months != 3 || c.EntryMonths > 400 || c.EntryMonths < 300 || c.Leaders != 1 || c.NotPositive != 0 {
		t.Fatalf("generated %+v", c)
	}
	// The entries chain and add up; the months written as totals alone are what verify
	// then names, as documented.
	if _, err := app.Verify(context.Background(), db); err == nil || !strings.Contains(err.Error(), "month total") {
		t.Fatalf("verify of a generated set: %v", err)
	}
	if _, _, err := ctl(t, vars, false, "gen", "-members", "10", "-entry-members", "0"); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Fatalf("gen into a full database: %v", err)
	}
	for _, args := range [][]string{
		{"-months", "13"}, {"-months", "0"}, {"-members", "0"}, {"-branches", "0"},
		{"-members", "10", "-entry-members", "11"}, {"-members", "10", "-entry-members", "-1"},
	} {
		if _, _, err := ctl(t, testEnv(t), false, append([]string{"gen"}, args...)...); err == nil || !strings.Contains(err.Error(), "months 1 to 12") {
			t.Fatalf("gen %v: %v, want it refused", args, err)
		}
	}
}

// TestCommandLineMistakes: each way of calling ledgerctl wrong fails, says how to call it
// right, and changes nothing; an unreadable roster says what is wrong with it, line by
// line, and the command's error is the problem alone, not its code.
func TestCommandLineMistakes(t *testing.T) {
	vars := testEnv(t)
	if _, _, err := ctl(t, vars, false, "seed"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args      []string
		err, help string
	}{
		{nil, "no command", "usage: ledgerctl COMMAND"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`, "usage: ledgerctl COMMAND"},
		{[]string{"import"}, "usage: ledgerctl import FILE", ""},
		{[]string{"import", "a.csv", "b.csv"}, "usage: ledgerctl import FILE", ""},
		{[]string{"report"}, "usage: ledgerctl report", ""},
		{[]string{"report", "-o", "-", "extra"}, "usage: ledgerctl report", ""},
	} {
		out, errOut, err := ctl(t, vars, false, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(errOut, c.help) || out != "" {
			t.Errorf("ledgerctl %q: err %v, stderr %q, stdout %q", c.args, err, errOut, out)
		}
	}

	dir := t.TempDir()
	noBranch := filepath.Join(dir, "no-branch.csv")
	empty := filepath.Join(dir, "empty.csv")
	os.WriteFile(noBranch, []byte("党员编号,姓名\nP1,张三\n"), 0o600)
	os.WriteFile(empty, nil, 0o600)
	_, errOut, err := ctl(t, vars, false, "import", noBranch)
	if err == nil || err.Error() != "the header row lacks required columns" || !strings.Contains(errOut, "row 1: branch missing column branch (支部)") {
		t.Fatalf("a roster without a branch column: %v\n%s", err, errOut)
	}
	_, errOut, err = ctl(t, vars, false, "import", empty)
	if err == nil || err.Error() != "the request has invalid fields" || !strings.Contains(errOut, "file: is empty") {
		t.Fatalf("an empty roster: %v\n%s", err, errOut)
	}

	// A report to standard output writes nothing else there or beside it.
	out, errOut, err := ctl(t, vars, false, "report", "-format", "csv", "-o", "-")
	if err != nil || !strings.HasPrefix(out, "\ufeff") || errOut != "" {
		t.Fatalf("csv report to stdout: %v, stderr %q, stdout %.80q", err, errOut, out)
	}
}

// TestSeedDemo: seeding the demo prints a log-in code for each kind of user.
func TestSeedDemo(t *testing.T) {
	vars := testEnv(t)
	vars["LEDGER_DEMO"] = "1"
	out, _, err := ctl(t, vars, false, "seed")
	if err != nil {
		t.Fatal(err)
	}
	for _, who := range []string{"member ", "secretary ", "leader ", "admin "} {
		found := false
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(line, who) && strings.Contains(line, " demo:") {
				found = true
			}
		}
		if !found {
			t.Errorf("no demo code for a %s:\n%s", who, out)
		}
	}
}

// A report is written whole or not at all: one that fails half-way leaves the previous
// file as it was and nothing beside it.
func TestReportFileIsWholeOrUntouched(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "r.csv")
	listing := func() []string { t.Helper(); return apptest.Files(t, dir) }
	write := func(text string) func(io.Writer) error {
		return func(w io.Writer) error { _, err := io.WriteString(w, text); return err }
	}
	// A new file gets the mode os.Create gives (0666 less the umask).
	if err := writeFile(file, write("first\n")); err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(t.TempDir(), "plain")
	if f, err := os.Create(plain); err != nil {
		t.Fatal(err)
	} else {
		f.Close()
	}
	got, _ := os.Stat(file)
	want, _ := os.Stat(plain)
	if b, _ := os.ReadFile(file); string(b) != "first\n" || got.Mode() != want.Mode() {
		t.Fatalf("new report: %q, mode %v (os.Create's %v)", b, got.Mode(), want.Mode())
	}
	// A report that fails after writing part of itself.
	if err := os.Chmod(file, 0o640); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("database gone")
	err := writeFile(file, func(w io.Writer) error { io.WriteString(w, "half of a sec"); return boom })
	if b, _ := os.ReadFile(file); !errors.Is(err, boom) || string(b) != "first\n" || fmt.Sprint(listing()) != "[r.csv]" {
		t.Fatalf("failed report: %v; file %q, directory %v", err, b, listing())
	}
	// A complete one replaces it and keeps its mode.
	if err := writeFile(file, write("second\n")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(file); string(b) != "second\n" || fmt.Sprint(listing()) != "[r.csv]" {
		t.Fatalf("second report: %q, directory %v", b, listing())
	}
	if st, _ := os.Stat(file); st.Mode().Perm() != 0o640 {
		t.Fatalf("the report's mode became %v", st.Mode())
	}
	// Through a link, the link stays and its target gets the report.
	link := filepath.Join(dir, "latest.csv")
	if err := os.Symlink("r.csv", link); err != nil {
		t.Fatal(err)
	}
	if err := writeFile(link, write("third\n")); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Lstat(link); err != nil || st.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the link was replaced: %v %v", st, err)
	}
	if b, _ := os.ReadFile(file); string(b) != "third\n" {
		t.Fatalf("through the link: %q", b)
	}
	// A pipe is written in place, not replaced by a file.
	fifo := filepath.Join(dir, "pipe")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	read := make(chan string)
	go func() {
		b, _ := os.ReadFile(fifo)
		read <- string(b)
	}()
	if err := writeFile(fifo, write("to a pipe\n")); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-read:
		if got != "to a pipe\n" {
			t.Fatalf("the pipe read %q", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("nothing was written to the pipe")
	}
	if st, err := os.Lstat(fifo); err != nil || st.Mode()&os.ModeNamedPipe == 0 {
		t.Fatalf("the pipe was replaced: %v %v", st, err)
	}
	// A directory that is not there is the error, and nothing is made.
	if err := writeFile(filepath.Join(dir, "no", "r.csv"), write("x")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("into a missing directory: %v", err)
	}
}

// ledgerctl sweep removes the photos nobody used within LEDGER_UPLOAD_KEEP, the files no
// upload names and the expired refresh tokens, and says how many.
func TestSweep(t *testing.T) {
	vars := testEnv(t)
	vars["LEDGER_UPLOAD_KEEP"] = "2h"
	if _, _, err := ctl(t, vars, false, "seed"); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cfg, _ := app.LoadConfig(func(k string) string { return vars[k] })
	db, err := app.OpenDB(ctx, cfg.DBDriver, cfg.DBDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var admin models.Member
	if err := db.R.Where("username = ?", "zuzhi").Take(&admin).Error; err != nil {
		t.Fatal(err)
	}
	uploads := app.NewUploads(db, app.FSStore{Dir: cfg.DataDir})
	photo := "\x89PNG\r\n\x1a\n" + strings.Repeat("x", 100)
	var files []string
	for range 2 {
		u, err := uploads.Create(ctx, &app.Actor{ID: admin.ID, BranchID: admin.BranchID}, strings.NewReader(photo))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, filepath.Join(cfg.DataDir, filepath.FromSlash(u.StorageKey)))
	}
	// The first is three hours old, the second new; a file of no upload, three hours old.
	stray := filepath.Join(filepath.Dir(files[0]), "1-lost")
	os.WriteFile(stray, []byte(photo), 0o600)
	old := time.Now().Add(-3 * time.Hour)
	os.Chtimes(files[0], old, old)
	os.Chtimes(stray, old, old)
	key := strings.TrimPrefix(filepath.ToSlash(files[0]), filepath.ToSlash(cfg.DataDir)+"/")
	if res := db.W.Model(&models.Upload{}).Where("storage_key = ?", key).Update("created_at", old.UTC()); res.Error != nil || res.RowsAffected != 1 {
		t.Fatalf("age the first upload: %v, %d rows", res.Error, res.RowsAffected)
	}

	// Two sessions of the admin's, one of them expired.
	tokens := app.NewTokens(db, []byte("k"), time.Minute, time.Hour)
	for range 2 {
		if _, err := tokens.NewSession(ctx, admin.ID); err != nil {
			t.Fatal(err)
		}
	}
	var first models.RefreshToken
	if err := db.R.Order("id").Take(&first).Error; err != nil {
		t.Fatal(err)
	}
	if err := db.W.Model(&first).Update("expires_at", old.UTC()).Error; err != nil {
		t.Fatal(err)
	}

	out, _, err := ctl(t, vars, false, "sweep")
	if err != nil || out != "removed 1 unused photos (108 bytes), 1 files that no upload names and 1 expired refresh tokens\n" {
		t.Fatalf("sweep: %q %v", out, err)
	}
	for f, gone := range map[string]bool{files[0]: true, stray: true, files[1]: false} {
		if _, err := os.Stat(f); gone != errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s: %v, want gone %v", f, err, gone)
		}
	}
	if out, _, err := ctl(t, vars, false, "sweep"); err != nil || !strings.HasPrefix(out, "removed 0 unused photos (0 bytes), 0 files that no upload names and 0 expired") {
		t.Fatalf("sweep again: %q %v", out, err)
	}
}
