// Command aggregate measures the read side at provincial scale: on a generated data set
// (ledgerctl gen: 1,000,000 members in 30,000 branches, 12 months of totals, this month as
// entries for the first 100,000 members) it times a branch's leaderboard page, the whole
// province's first page and a member's own rank through the running server, each beside
// the plain GROUP BY over raw entries that simple systems run, in the same run and with the
// same concurrency. Then the monthly xlsx report of the 3,000-member demo committee: time
// and the server's peak memory, and the same for a report ten times larger. Run it through
// bench/run.sh. Loopback only.
package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	_ "modernc.org/sqlite"

	"partyledger/app"
	"partyledger/bench/benchkit"
	"partyledger/models"
)

var (
	serverBin = flag.String("server", "bin/server", "the server binary")
	driver    = flag.String("driver", "sqlite", "sqlite or mysql")
	mysqlDSN  = flag.String("mysql", os.Getenv("LEDGER_TEST_MYSQL_DSN"), "MySQL server DSN without a database")
	members   = flag.Int("members", 1_000_000, "members to generate")
	branches  = flag.Int("branches", 30_000, "branches to generate")
	months    = flag.Int("months", 12, "months of totals")
	entryPart = flag.Int("entry-members", 100_000, "members whose month is ledger entries")
	keep      = flag.String("keep", "bin", "folder (SQLite) where the generated data set is kept and reused; MySQL keeps a database")
	duration  = flag.Duration("d", 5*time.Second, "length of each phase")
	conns     = flag.Int("c", 8, "concurrent clients")
	reports   = flag.Bool("report", false, "measure the monthly xlsx report instead")
	only      = flag.String("only", "", "run only the phases whose name contains this")
	cold      = flag.Bool("cold", false, "skip reading the month's working set into the database's cache first")
)

func main() {
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type target struct {
	Member, Branch, Committee int64
}

// dataset opens (and on first use generates) the data set of the flags, and returns it
// with the server environment that serves it.
func dataset(ctx context.Context, n, nb, nm, ne int) (*app.DB, map[string]string, error) {
	name := fmt.Sprintf("agg_%d_%d_%d_%d", n, nb, nm, ne)
	env := map[string]string{"LEDGER_JWT_SECRET": benchkit.Key, "LEDGER_LOG_LEVEL": "warn", "LEDGER_REPORT_MAX_ROWS": "1000000"}
	var dsn string
	if *driver == "mysql" {
		var err error
		if dsn, _, err = benchkit.MySQLDatabase(*mysqlDSN, name); err != nil { // kept for the next run
			return nil, nil, err
		}
		env["LEDGER_DB_DRIVER"], env["LEDGER_DB_DSN"] = "mysql", dsn
		env["LEDGER_DATA_DIR"] = filepath.Join(*keep, name+"-data")
	} else {
		dir := filepath.Join(*keep, name)
		dsn = filepath.Join(dir, "ledger.db")
		env["LEDGER_DATA_DIR"] = dir
	}
	db, err := app.OpenDB(ctx, *driver, dsn)
	if err != nil {
		return nil, nil, err
	}
	if _, err := db.Migrate(ctx); err != nil {
		return nil, nil, err
	}
	var orgs int64
	db.R.Model(&models.Org{}).Count(&orgs)
	if orgs == 0 {
		fmt.Fprintf(os.Stderr, "generating %d members (kept for the next run: %s)…\n", n, name)
		rep, err := app.Generate(ctx, db, app.GenOptions{Members: n, Branches: nb, Months: nm, EntryMembers: ne, Seed: 1}, shanghai(), time.Now())
		if err != nil {
			return nil, nil, err
		}
		fmt.Printf("Generated: %d orgs, %d members, %d member months, %d entries in %s (%s).\n\n", rep.Orgs, rep.Members, rep.MemberMonths, rep.Entries, rep.Took.Round(time.Second), *driver)
	}
	return db, env, nil
}

func shanghai() *time.Location {
	loc, _ := time.LoadLocation("Asia/Shanghai")
	return loc
}

func run() error {
	ctx := context.Background()
	if *reports {
		return reportBench(ctx)
	}
	db, env, err := dataset(ctx, *members, *branches, *months, *entryPart)
	if err != nil {
		return err
	}
	defer db.Close()
	loc := shanghai()
	period := models.PeriodOf(time.Now(), loc)
	var leader int64
	db.R.Raw("SELECT member_id FROM member_roles WHERE role = 'leader' ORDER BY id LIMIT 1").Scan(&leader)
	var root int64
	db.R.Raw("SELECT id FROM orgs WHERE parent_id IS NULL").Scan(&root)
	// Targets: members of the part with entries, their branches and committees.
	var targets []target
	if err := db.R.Raw(`SELECT m.id AS member, m.branch_id AS branch, c.id AS committee FROM members m
JOIN orgs b ON b.id = m.branch_id JOIN orgs g ON g.id = b.parent_id JOIN orgs c ON c.id = g.parent_id
WHERE m.id <= ? AND m.id % 37 = 0`, *entryPart).Scan(&targets).Error; err != nil || len(targets) == 0 {
		return fmt.Errorf("targets: %v (%d)", err, len(targets))
	}
	raw, err := db.R.DB()
	if err != nil {
		return err
	}
	raw.SetMaxOpenConns(*conns)
	raw.SetMaxIdleConns(*conns)
	if !*cold {
		took, err := warm(raw, period)
		if err != nil {
			return fmt.Errorf("warming the cache: %w", err)
		}
		fmt.Printf("Read the month's working set into the database's cache in %s.\n", took.Round(100*time.Millisecond))
	}

	srv, start, err := benchkit.Start(*serverBin, env, filepath.Join(os.TempDir(), "aggregate-bench-server.log"))
	if err != nil {
		return err
	}
	defer srv.Stop()
	fmt.Printf("Server ready in %s on the generated data set.\n\n", start.Round(time.Millisecond))
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: *conns, MaxConnsPerHost: *conns}}
	get := func(path string, member int64) (bool, string) {
		req, _ := http.NewRequest("GET", "http://"+srv.Addr+path, nil)
		req.Header.Set("Authorization", "Bearer "+benchkit.Token(benchkit.Key, member))
		resp, err := hc.Do(req)
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			return false, fmt.Sprintf("%d %s", resp.StatusCode, b)
		}
		return true, ""
	}
	query := func(q string, args ...any) (bool, string) {
		rows, err := raw.Query(q, args...)
		if err != nil {
			return false, err.Error()
		}
		defer rows.Close()
		for rows.Next() {
		}
		if err := rows.Err(); err != nil {
			return false, err.Error()
		}
		return true, ""
	}
	pick := func(i int) target { return targets[rand.IntN(len(targets))] }
	// Every target logs in once first, as members do, so that the phases time reads and
	// not first loads of a caller's roles.
	if r := benchkit.Load(*conns, len(targets), time.Minute, func(i int) (bool, string) { return get("/api/v1/me", targets[i].Member) }); r.Failed > 0 {
		return fmt.Errorf("warming: %s", r.FirstErr)
	}
	phase := func(name string, job func(i int) (bool, string)) {
		if !strings.Contains(name, *only) {
			return
		}
		time.Sleep(2 * time.Second) // let the phase before settle (the GROUP BY phases leave MariaDB busy)
		job(0)                      // warm
		// Latency with one client (the read's own time), then throughput with many.
		one := benchkit.Load(1, 1<<30, *duration, job)
		many := benchkit.Load(*conns, 1<<30, *duration, job)
		errs := ""
		if failed := one.Failed + many.Failed; failed > 0 {
			errs = fmt.Sprintf(", %d failed (first: %.150s%.150s)", failed, one.FirstErr, many.FirstErr)
		}
		fmt.Printf("| %s | %s | %s | %.0f/s, p99 %s%s |\n", name, ms(one.Pct(0.5)), ms(one.Pct(0.99)), many.Rate(), ms(many.Pct(0.99)), errs)
	}
	groupBranch := `SELECT member_id, SUM(points) AS p FROM entries WHERE branch_id = ? AND period = ? GROUP BY member_id ORDER BY p DESC, member_id DESC LIMIT 20`
	groupMonth := `SELECT member_id, SUM(points) AS p FROM entries WHERE period = ? GROUP BY member_id ORDER BY p DESC, member_id DESC LIMIT 20`
	groupRank := `SELECT COUNT(*) FROM (SELECT member_id FROM entries WHERE period = ? AND branch_id IN
  (SELECT b.id FROM orgs b JOIN orgs g ON g.id = b.parent_id WHERE g.parent_id = ?) GROUP BY member_id
  HAVING SUM(points) > (SELECT COALESCE(SUM(points), 0) FROM entries WHERE member_id = ? AND period = ?)) x`

	fmt.Printf("%s, %d members, %s, %d concurrent clients, %s a phase:\n\n", *driver, *members, period, *conns, *duration)
	fmt.Println("| read | p50 (1 client) | p99 (1 client) | throughput and p99 at " + strconv.Itoa(*conns) + " clients |")
	fmt.Println("| --- | --- | --- | --- |")
	phase("/healthz (HTTP alone)", func(i int) (bool, string) { return get("/healthz", 0) })
	phase("/me (HTTP, JWT and the caller's lookup)", func(i int) (bool, string) { return get("/api/v1/me", pick(i).Member) })
	phase("branch leaderboard page (API, with the caller's row)", func(i int) (bool, string) {
		t := pick(i)
		return get(fmt.Sprintf("/api/v1/leaderboards/members?org_id=%d&period=%s", t.Branch, period), t.Member)
	})
	phase("branch page by GROUP BY over entries (SQL only)", func(i int) (bool, string) {
		return query(groupBranch, pick(i).Branch, period)
	})
	phase("province first page (API, leader)", func(i int) (bool, string) {
		return get(fmt.Sprintf("/api/v1/leaderboards/members?org_id=%d&period=%s", root, period), leader)
	})
	phase("province page by GROUP BY over entries (SQL only, entries of the first "+strconv.Itoa(*entryPart)+" members)", func(i int) (bool, string) {
		return query(groupMonth, period)
	})
	phase("own rank: member summary with rank in branch and committee (API)", func(i int) (bool, string) {
		t := pick(i)
		return get(fmt.Sprintf("/api/v1/members/%d/summary?period=%s", t.Member, period), t.Member)
	})
	phase("own rank in committee by GROUP BY over entries (SQL only)", func(i int) (bool, string) {
		t := pick(i)
		return query(groupRank, period, t.Committee, t.Member, period)
	})
	phase("own rank in the whole province (API: the province board's own row, limit 1)", func(i int) (bool, string) {
		t := pick(i)
		return get(fmt.Sprintf("/api/v1/leaderboards/members?org_id=%d&period=%s&limit=1", root, period), t.Member)
	})
	phase("branch leaderboard of a committee's 100 branches (API)", func(i int) (bool, string) {
		t := pick(i)
		return get(fmt.Sprintf("/api/v1/leaderboards/branches?org_id=%d&period=%s", t.Committee, period), t.Member)
	})
	fmt.Printf("\nServer peak RSS: %.0f MiB.\n", srv.PeakRSS())
	return nil
}

// warm reads what the timed reads of period touch (the month's two member_months
// indexes, every member's months, the members and the orgs) once, so that the phases
// time a server whose working set is in memory, as one that has been serving is; the
// 2 GB buffer pool holds the whole set. Without it the first phases measure the disk:
// right after MariaDB starts, each new branch page read its pages from the file.
func warm(db *sql.DB, period models.Period) (time.Duration, error) {
	start := time.Now()
	hint := func(index string) string {
		if *driver == "mysql" {
			return "FORCE INDEX (" + index + ")"
		}
		if index == "PRIMARY" {
			return ""
		}
		return "INDEXED BY " + index
	}
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{"SELECT COUNT(*) FROM member_months " + hint("idx_member_months_branch") + " WHERE period = ?", []any{period}},
		{"SELECT COUNT(*) FROM member_months " + hint("idx_member_months_rank") + " WHERE period = ?", []any{period}},
		{"SELECT COUNT(*), SUM(four_ones) FROM member_months " + hint("PRIMARY"), nil},
		{"SELECT COUNT(*), SUM(LENGTH(name)) FROM members " + hint("PRIMARY"), nil},
		{"SELECT COUNT(*), SUM(points) FROM member_totals WHERE period = ?", []any{period}},
		{"SELECT COUNT(*), SUM(LENGTH(path)) FROM orgs", nil},
	} {
		rows, err := db.Query(q.sql, q.args...)
		if err != nil {
			return 0, err
		}
		for rows.Next() {
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return 0, err
		}
	}
	return time.Since(start), nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

// reportBench times the monthly xlsx report and the server's peak memory: for the demo
// committee (3,000 members, months of real activity), and for a generated committee of
// about 3,300 and roots of 33,000 and 100,000 members, each in a fresh server process, so
// that the peak is the report's.
func reportBench(ctx context.Context) error {
	fmt.Println("| report | rows | time | server peak RSS before → after |")
	fmt.Println("| --- | --- | --- | --- |")
	one := func(label string, env map[string]string, org, leader int64, rows int) error {
		srv, _, err := benchkit.Start(*serverBin, env, filepath.Join(os.TempDir(), "aggregate-report-server.log"))
		if err != nil {
			return err
		}
		defer srv.Stop()
		before := srv.PeakRSS()
		req, _ := http.NewRequest("GET", fmt.Sprintf("http://%s/api/v1/reports/monthly?org_id=%d&format=xlsx", srv.Addr, org), nil)
		req.Header.Set("Authorization", "Bearer "+benchkit.Token(benchkit.Key, leader))
		t0 := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		took := time.Since(t0)
		if resp.StatusCode != 200 {
			return fmt.Errorf("%s: status %d", label, resp.StatusCode)
		}
		fmt.Printf("| %s | %d | %s (%d KiB) | %.0f → %.0f MiB |\n", label, rows, took.Round(time.Millisecond), n/1024, before, srv.PeakRSS())
		return nil
	}
	// The demo committee, in a fresh SQLite or MySQL database.
	work, err := os.MkdirTemp("", "report-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	env := map[string]string{"LEDGER_JWT_SECRET": benchkit.Key, "LEDGER_LOG_LEVEL": "warn", "LEDGER_DEMO": "1", "LEDGER_DATA_DIR": work}
	dsn := filepath.Join(work, "ledger.db")
	if *driver == "mysql" {
		var drop func()
		if dsn, drop, err = benchkit.MySQLDatabase(*mysqlDSN, fmt.Sprintf("report_bench_%d", time.Now().UnixNano())); err != nil {
			return err
		}
		defer drop()
		env["LEDGER_DB_DRIVER"], env["LEDGER_DB_DSN"] = "mysql", dsn
	}
	srv, _, err := benchkit.Start(*serverBin, env, filepath.Join(work, "seed.log")) // seeds the demo
	if err != nil {
		return err
	}
	srv.Stop()
	demo, err := app.OpenDB(ctx, *driver, dsn)
	if err != nil {
		return err
	}
	var root, leader, rows int64
	demo.R.Raw("SELECT id FROM orgs WHERE parent_id IS NULL").Scan(&root)
	demo.R.Raw("SELECT member_id FROM member_roles WHERE role = 'leader' LIMIT 1").Scan(&leader)
	demo.R.Raw("SELECT COUNT(*) FROM members WHERE status = 'active'").Scan(&rows)
	demo.Close()
	delete(env, "LEDGER_DEMO")
	if err := one("demo committee", env, root, leader, int(rows)); err != nil {
		return err
	}
	// Generated: a committee of ~3,300 members and the root of 33,000.
	db, genv, err := dataset(ctx, 33_000, 1000, 12, 33_000)
	if err != nil {
		return err
	}
	var committee int64
	db.R.Raw("SELECT id FROM orgs WHERE kind = 'committee' AND parent_id IS NOT NULL ORDER BY id LIMIT 1").Scan(&committee)
	db.R.Raw("SELECT member_id FROM member_roles WHERE role = 'leader' LIMIT 1").Scan(&leader)
	db.R.Raw("SELECT id FROM orgs WHERE parent_id IS NULL").Scan(&root)
	db.Close()
	if err := one("generated committee", genv, committee, leader, 3300); err != nil {
		return err
	}
	if err := one("generated root", genv, root, leader, 33_000); err != nil {
		return err
	}
	big, benv, err := dataset(ctx, 100_000, 3000, 12, 10_000)
	if err != nil {
		return err
	}
	big.R.Raw("SELECT member_id FROM member_roles WHERE role = 'leader' LIMIT 1").Scan(&leader)
	big.R.Raw("SELECT id FROM orgs WHERE parent_id IS NULL").Scan(&root)
	big.Close()
	return one("generated root", benv, root, leader, 100_000)
}
