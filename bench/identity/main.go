// Command identity measures the identity service against the limits of this machine:
// cold start to a ready /readyz, GET /me throughput beside /healthz of the same server
// and beside a plain loop of primary-key selects through the same database driver, and
// the server's peak memory. Run it through bench/run.sh, which builds the server and
// starts what it needs. Only loopback traffic; every loop is bounded in time.
package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"
	_ "modernc.org/sqlite"

	"partyledger/app"
	"partyledger/bench/benchkit"
)

var (
	serverBin = flag.String("server", "bin/server", "the server binary")
	pingBin   = flag.String("ping", "bin/ping", "a bare Fiber ping server, the HTTP ceiling")
	driver    = flag.String("driver", "sqlite", "sqlite or mysql")
	mysqlDSN  = flag.String("mysql", os.Getenv("LEDGER_TEST_MYSQL_DSN"), "MySQL server DSN without a database")
	duration  = flag.Duration("d", 10*time.Second, "length of each load run")
	conns     = flag.Int("c", 64, "connections")
	extraEnv  = flag.String("env", "", "extra server environment, KEY=VALUE,KEY=VALUE")
	rounds    = flag.Int("rounds", 3, "alternating rounds of /me and the select loop")
	callers   = flag.Int("members", 3000, "how many demo members call /me, each with their own token (1: one token for all)")
)

func main() {
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type wrkResult struct {
	rps      float64
	p50, p99 string
	errors   string
}

// wrk runs wrk against url and parses requests/s and latency percentiles. extra are
// more arguments: a header (-H) or a script (-s).
func wrk(url string, extra ...string) (wrkResult, error) {
	args := append([]string{"-t2", fmt.Sprintf("-c%d", *conns), fmt.Sprintf("-d%ds", int(duration.Seconds())), "--latency"}, extra...)
	out, err := exec.Command("wrk", append(args, url)...).CombinedOutput()
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk: %v\n%s", err, out)
	}
	var r wrkResult
	if m := regexp.MustCompile(`Requests/sec:\s+([\d.]+)`).FindSubmatch(out); m != nil {
		r.rps, _ = strconv.ParseFloat(string(m[1]), 64)
	}
	if m := regexp.MustCompile(`\s50%\s+(\S+)`).FindSubmatch(out); m != nil {
		r.p50 = string(m[1])
	}
	if m := regexp.MustCompile(`\s99%\s+(\S+)`).FindSubmatch(out); m != nil {
		r.p99 = string(m[1])
	}
	if m := regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`).FindSubmatch(out); m != nil {
		r.errors = string(m[1])
	}
	if m := regexp.MustCompile(`Socket errors: .*`).Find(out); m != nil {
		r.errors += " " + string(m)
	}
	return r, nil
}

// selectLoop runs primary-key selects of random members from *conns goroutines for
// *duration through database/sql and the given driver, and returns selects per second.
func selectLoop(db *sql.DB, maxID int64) (float64, error) {
	db.SetMaxOpenConns(*conns)
	db.SetMaxIdleConns(*conns)
	stmt, err := db.Prepare("SELECT id, member_no, name, branch_id, status FROM members WHERE id = ?")
	if err != nil {
		return 0, err
	}
	defer stmt.Close()
	var n atomic.Int64
	var firstErr atomic.Value
	ctx, cancel := context.WithTimeout(context.Background(), *duration)
	defer cancel()
	var wg sync.WaitGroup
	t0 := time.Now()
	for i := 0; i < *conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var id, branch int64
			var no, name, status string
			for ctx.Err() == nil {
				if err := stmt.QueryRow(rand.Int64N(maxID)+1).Scan(&id, &no, &name, &branch, &status); err != nil && err != sql.ErrNoRows {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	if err, ok := firstErr.Load().(error); ok {
		return 0, err
	}
	return float64(n.Load()) / time.Since(t0).Seconds(), nil
}

func run() error {
	work, err := os.MkdirTemp("", "ledger-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	env := map[string]string{"LEDGER_JWT_SECRET": benchkit.Key}
	for _, kv := range strings.Split(*extraEnv, ",") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	var dsn, dbName string
	if *driver == "mysql" {
		if *mysqlDSN == "" {
			return fmt.Errorf("-mysql (or LEDGER_TEST_MYSQL_DSN) is required")
		}
		cfg, err := mysql.ParseDSN(*mysqlDSN)
		if err != nil {
			return err
		}
		admin, err := sql.Open("mysql", cfg.FormatDSN())
		if err != nil {
			return err
		}
		defer admin.Close()
		dbName = fmt.Sprintf("ledger_bench_%d", time.Now().UnixNano())
		if _, err := admin.Exec("CREATE DATABASE " + dbName + " CHARACTER SET utf8mb4"); err != nil {
			return err
		}
		defer admin.Exec("DROP DATABASE " + dbName)
		cfg.DBName = dbName
		dsn = cfg.FormatDSN()
		env["LEDGER_DB_DRIVER"], env["LEDGER_DB_DSN"] = "mysql", dsn
	}

	fmt.Printf("## %s, %d connections, %s per run, %s\n\n", *driver, *conns, *duration, time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	// Cold start: an empty database (migrations, the first admin), then a restart.
	if *driver == "sqlite" {
		cold := map[string]string{"LEDGER_DATA_DIR": filepath.Join(work, "cold"), "LEDGER_ADMIN_USERNAME": "admin", "LEDGER_ADMIN_PASSWORD": "bench-admin-pass"}
		for k, v := range env {
			cold[k] = v
		}
		var times []string
		for i := 0; i < 3; i++ {
			s, d, err := benchkit.Start(*serverBin, cold, filepath.Join(work, "cold.log"))
			if err != nil {
				return err
			}
			s.Stop()
			what := "restart on existing data"
			if i == 0 {
				what = "empty database (migrate, first admin)"
			}
			times = append(times, fmt.Sprintf("| cold start to ready /readyz, %s | %.0f ms |", what, float64(d.Microseconds())/1000))
		}
		fmt.Println("| measure | value |\n| --- | --- |")
		fmt.Println(strings.Join(times, "\n"))
	}
	// One month of demo activity: the peak memory then measures serving, not the seed.
	demo := map[string]string{"LEDGER_DATA_DIR": filepath.Join(work, "demo"), "LEDGER_DEMO": "1", "LEDGER_DEMO_MONTHS": "1"}
	for k, v := range env {
		demo[k] = v
	}
	s, d, err := benchkit.Start(*serverBin, demo, filepath.Join(work, "demo.log"))
	if err != nil {
		return err
	}
	defer s.Stop()
	if *driver == "mysql" {
		fmt.Println("| measure | value |\n| --- | --- |")
	}
	fmt.Printf("| cold start with the demo seed (3,000 members, one month of activity) | %.0f ms |\n", float64(d.Microseconds())/1000)
	rssIdle := s.PeakRSS()

	resp, err := http.Post("http://"+s.Addr+"/api/v1/auth/wechat/login", "application/json", bytes.NewReader([]byte(`{"code":"demo:D00001"}`)))
	if err != nil {
		return err
	}
	var tok app.TokenPair
	json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if tok.AccessToken == "" {
		return fmt.Errorf("demo login failed")
	}

	pingAddr := benchkit.FreeAddr()
	ping := exec.Command(*pingBin, pingAddr)
	if err := ping.Start(); err != nil {
		return err
	}
	for i := 0; i < 200; i++ {
		if c, err := net.Dial("tcp", pingAddr); err == nil {
			c.Close()
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	bare, err := wrk("http://" + pingAddr + "/ping")
	ping.Process.Kill()
	ping.Wait()
	if err != nil {
		return err
	}
	health, err := wrk("http://" + s.Addr + "/healthz")
	if err != nil {
		return err
	}
	var db *sql.DB
	if *driver == "mysql" {
		db, err = sql.Open("mysql", dsn)
	} else {
		db, err = sql.Open("sqlite", "file:"+filepath.Join(work, "demo", "ledger.db")+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=query_only(1)")
	}
	if err != nil {
		return err
	}
	defer db.Close()
	// Each /me names a random one of *callers members, as a crowd of members would (with
	// one token for all, every request would ask after the same row).
	script, err := meScript(db, filepath.Join(work, "me.lua"), tok.AccessToken)
	if err != nil {
		return err
	}
	// /me and the select loop take turns, *rounds times: this machine drifts by ±10 % from
	// minute to minute, and a ratio of two runs far apart mostly measures the drift.
	var mes []wrkResult
	var shares, loops []float64
	for r := 0; r < *rounds; r++ {
		m, err := wrk("http://"+s.Addr+"/api/v1/me", "-s", script)
		if err != nil {
			return err
		}
		l, err := selectLoop(db, 3000)
		if err != nil {
			return err
		}
		mes = append(mes, m)
		loops = append(loops, l)
		shares = append(shares, m.rps/l)
	}
	rssPeak := s.PeakRSS()
	sort.Float64s(shares)
	sort.Float64s(loops)
	sort.Slice(mes, func(i, j int) bool { return mes[i].rps < mes[j].rps })
	loop, me := loops[len(loops)/2], mes[len(mes)/2]

	fmt.Printf("| bare Fiber JSON ping (the HTTP ceiling today) | %.0f req/s (p50 %s, p99 %s)%s |\n", bare.rps, bare.p50, bare.p99, errs(bare))
	fmt.Printf("| GET /healthz (all middleware: request id, access log, metrics) | %.0f req/s (p50 %s, p99 %s)%s |\n", health.rps, health.p50, health.p99, errs(health))
	fmt.Printf("| GET /me (JWT, one primary-key query, cached roles) from %d members, median round | %.0f req/s (p50 %s, p99 %s)%s |\n", *callers, me.rps, me.p50, me.p99, errs(me))
	fmt.Printf("| plain primary-key select loop, same driver, %d goroutines, median round | %.0f selects/s |\n", *conns, loop)
	fmt.Printf("| /me as a share of /healthz | %.0f%% |\n", 100*me.rps/health.rps)
	fmt.Printf("| /me as a share of the select loop, median of %d alternating rounds (range) | %.0f%% (%.0f–%.0f%%) |\n", len(shares), 100*shares[len(shares)/2], 100*shares[0], 100*shares[len(shares)-1])
	fmt.Printf("| server peak RSS: after start / after the load | %.0f MiB / %.0f MiB |\n\n", rssIdle, rssPeak)
	return nil
}

// meScript writes a wrk script that sends each /me with the token of a random one of
// *callers active members (minted with the server's key), or with tok when *callers is 1.
func meScript(db *sql.DB, path, tok string) (string, error) {
	tokens := []string{tok}
	if *callers > 1 {
		rows, err := db.Query("SELECT id FROM members WHERE status = 'active' ORDER BY id LIMIT ?", *callers)
		if err != nil {
			return "", err
		}
		defer rows.Close()
		tokens = tokens[:0]
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				return "", err
			}
			tokens = append(tokens, benchkit.Token(benchkit.Key, id))
		}
		if err := rows.Err(); err != nil {
			return "", err
		}
	}
	var b strings.Builder
	b.WriteString("local tokens = {\n")
	for _, t := range tokens {
		fmt.Fprintf(&b, "  %q,\n", "Bearer "+t)
	}
	b.WriteString("}\nrequest = function()\n  return wrk.format(\"GET\", nil, {Authorization = tokens[math.random(#tokens)]})\nend\n")
	return path, os.WriteFile(path, []byte(b.String()), 0o600)
}

func errs(r wrkResult) string {
	if strings.TrimSpace(r.errors) == "" {
		return ""
	}
	return ", errors: " + strings.TrimSpace(r.errors)
}
