// Command ledger measures the ledger's write paths against this machine's limit: claim
// submission and approval throughput, each beside a plain loop of single-row INSERT
// transactions through the same database driver in the same run, and a check-in burst of
// all 3,000 demo members. Run it through bench/run.sh. Loopback only; every loop stops
// by itself.
package main

import (
	"bytes"

	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"mime/multipart"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	_ "modernc.org/sqlite"

	"partyledger/bench/benchkit"
)

var (
	serverBin = flag.String("server", "bin/server", "the server binary")
	driver    = flag.String("driver", "sqlite", "sqlite or mysql")
	mysqlDSN  = flag.String("mysql", os.Getenv("LEDGER_TEST_MYSQL_DSN"), "MySQL server DSN without a database")
	duration  = flag.Duration("d", 10*time.Second, "length of each throughput run")
	conns     = flag.Int("c", 64, "concurrent connections")
	months    = flag.Int("months", 6, "months of claims per claimant (5 each), so that the claim and approval runs last their -d and not run out of work first")
)

func main() {
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func token(memberID int64) string { return benchkit.Token(benchkit.Key, memberID) }

type result = benchkit.Result

// load runs job from *conns goroutines (benchkit.Load).
func load(n int, limit time.Duration, job func(i int) (bool, string)) result {
	return benchkit.Load(*conns, n, limit, job)
}

// insertLoop is the database's own limit: single-row INSERT transactions through the
// same driver from *conns goroutines (SQLite: one writer connection, as the server).
func insertLoop(db *sql.DB, writers int) (float64, error) {
	if _, err := db.Exec("CREATE TABLE bench_insert (id INTEGER PRIMARY KEY " + map[bool]string{true: "AUTO_INCREMENT", false: "AUTOINCREMENT"}[*driver == "mysql"] + ", member_id BIGINT NOT NULL, points BIGINT NOT NULL, note VARCHAR(100) NOT NULL)"); err != nil {
		return 0, err
	}
	db.SetMaxOpenConns(writers)
	db.SetMaxIdleConns(writers)
	res := load(1<<30, *duration, func(i int) (bool, string) {
		tx, err := db.Begin()
		if err != nil {
			return false, err.Error()
		}
		if _, err := tx.Exec("INSERT INTO bench_insert (member_id, points, note) VALUES (?, ?, ?)", i%3000, 20, "读书"); err != nil {
			tx.Rollback()
			return false, err.Error()
		}
		if err := tx.Commit(); err != nil {
			return false, err.Error()
		}
		return true, ""
	})
	if res.Failed > 0 {
		return 0, fmt.Errorf("insert loop: %s", res.FirstErr)
	}
	return res.Rate(), nil
}

func run() error {
	work, err := os.MkdirTemp("", "ledger-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	// One month of demo activity; the claims below are dated in the month before it, so
	// no cap is already used up and every approval writes its entry.
	env, rawDB, drop, err := benchkit.DemoEnv(*driver, *mysqlDSN, work, "ledger_bench", "&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate")
	if err != nil {
		return err
	}
	defer drop()
	defer rawDB.Close()
	srv, _, err := benchkit.Start(*serverBin, env, filepath.Join(work, "server.log"))
	if err != nil {
		return err
	}
	defer srv.Stop()
	c := benchkit.NewClient(srv.Addr, *conns)
	demo, err := benchkit.LoadDemo(c, benchkit.Key)
	if err != nil {
		return err
	}
	ids, claimants, secretaryOf, admin := demo.IDs, demo.Claimants, demo.SecretaryOf, token(demo.Admin)

	// Evidence: one photo per claimant.
	photo := append([]byte("\x89PNG\r\n\x1a\n"), make([]byte, 2048)...)
	photos := make([]int64, len(claimants))
	up := load(len(claimants), time.Minute, func(i int) (bool, string) {
		var buf bytes.Buffer
		w := multipart.NewWriter(&buf)
		fw, _ := w.CreateFormFile("file", "p.png")
		fw.Write(photo)
		w.Close()
		st, body, err := c.Do("POST", "/api/v1/uploads", token(claimants[i]), buf.Bytes(), w.FormDataContentType(), nil)
		if err != nil || st != 201 {
			return false, fmt.Sprintf("%d %s %v", st, body, err)
		}
		var u struct{ ID int64 }
		json.Unmarshal(body, &u)
		photos[i] = u.ID
		return true, ""
	})
	if up.Failed > 0 {
		return fmt.Errorf("uploads: %s", up.FirstErr)
	}

	// Claims: each claimant's four 四个一 duties, then volunteer hours, round-robin, month by
	// month back from the one before the demo's. Each month's caps are fresh, so every
	// approval writes its entry, and there is more work than a run gets through.
	rules := []string{"four_ones.listen_masses", "four_ones.guide_activists", "four_ones.read_theory", "four_ones.volunteer", "volunteer.hours"}
	cst := time.Now().In(time.FixedZone("CST", 8*3600))
	days := make([]string, max(*months, 1))
	for m := range days {
		days[m] = time.Date(cst.Year(), cst.Month()-1-time.Month(m), 15, 12, 0, 0, 0, cst.Location()).Format("2006-01-02")
	}
	perMonth := len(claimants) * len(rules)
	var claimIDs sync.Map
	submit := load(perMonth*len(days), *duration, func(i int) (bool, string) {
		k := i % len(claimants)
		rule := rules[i%perMonth/len(claimants)]
		day := days[i/perMonth]
		body := map[string]any{"rule_code": rule, "occurred_on": day, "evidence_ids": []int64{photos[k]}, "note": "学习笔记"}
		if rule == "volunteer.hours" {
			body["quantity"] = 2.5
		}
		st, resp, err := c.JSON("POST", "/api/v1/claims", token(claimants[k]), body, map[string]string{"Idempotency-Key": fmt.Sprintf("bench-%d", i)})
		if err != nil || st != 201 {
			return false, fmt.Sprintf("%d %s %v", st, resp, err)
		}
		var cl struct{ ID int64 }
		json.Unmarshal(resp, &cl)
		claimIDs.Store(i, [2]int64{cl.ID, claimants[k]})
		return true, ""
	})
	var pending [][2]int64
	claimIDs.Range(func(_, v any) bool { pending = append(pending, v.([2]int64)); return true })
	sort.Slice(pending, func(i, j int) bool { return pending[i][0] < pending[j][0] })

	approve := load(len(pending), *duration, func(i int) (bool, string) {
		st, resp, err := c.Do("POST", fmt.Sprintf("/api/v1/claims/%d/approve", pending[i][0]), token(secretaryOf(pending[i][1])), nil, "", nil)
		if err != nil || st != 200 {
			return false, fmt.Sprintf("%d %s %v", st, resp, err)
		}
		return true, ""
	})

	// Check-in burst: a committee-wide meeting, all 3,000 members at once (the demo month
	// has at most two meetings a member, so the cap of four has room).
	st, body, err := c.JSON("POST", "/api/v1/activities", admin, map[string]any{"org_id": demo.Committee, "title": "全体党员大会", "rule_code": "meeting.attend",
		"starts_at": time.Now().Add(-time.Minute).Format(time.RFC3339), "ends_at": time.Now().Add(time.Hour).Format(time.RFC3339)}, nil)
	if err != nil || st != 201 {
		return fmt.Errorf("activity: %d %s %v", st, body, err)
	}
	var act struct {
		ID   int64  `json:"id"`
		Code string `json:"checkin_code"`
	}
	json.Unmarshal(body, &act)
	burst := load(len(ids), 60*time.Second, func(i int) (bool, string) {
		st, resp, err := c.JSON("POST", fmt.Sprintf("/api/v1/activities/%d/checkin", act.ID), token(ids[i]), map[string]any{"code": act.Code}, nil)
		if err != nil || st != 201 {
			return false, fmt.Sprintf("%d %s %v", st, resp, err)
		}
		return true, ""
	})
	rss := srv.PeakRSS()
	srv.Stop()

	// The database's own limit, measured after the server has stopped.
	writers := *conns
	if *driver == "sqlite" {
		writers = 1
	}
	inserts, err := insertLoop(rawDB, writers)
	if err != nil {
		return err
	}

	fmt.Printf("## %s, %d connections, %s per throughput run, %s\n\n| measure | value |\n| --- | --- |\n", *driver, *conns, *duration, time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	line := func(name string, r result) {
		errs := ""
		if r.Failed > 0 {
			errs = fmt.Sprintf(", %d failed (first: %.120s)", r.Failed, r.FirstErr)
		}
		fmt.Printf("| %s | %d in %.1f s = %.0f/s (p50 %s, p99 %s)%s |\n", name, r.OK, r.Elapsed.Seconds(), r.Rate(), r.Pct(0.5).Round(100*time.Microsecond), r.Pct(0.99).Round(100*time.Microsecond), errs)
	}
	line("POST /claims (with Idempotency-Key and a photo)", submit)
	line("POST /claims/{id}/approve (cap check, hash-chained entry, totals)", approve)
	line("check-in burst: 3,000 members at one activity", burst)
	fmt.Printf("| plain single-row INSERT transactions, same driver, %d writer(s) | %.0f/s |\n", writers, inserts)
	fmt.Printf("| **claim submission / INSERT loop** (goal ≥ 50 %%) | **%.0f %%** |\n", 100*submit.Rate()/inserts)
	fmt.Printf("| **approval / INSERT loop** (goal ≥ 50 %%) | **%.0f %%** |\n", 100*approve.Rate()/inserts)
	fmt.Printf("| server peak RSS | %.0f MiB |\n\n", rss)
	return nil
}
