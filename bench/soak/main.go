// Command soak finds the throughput at which the realistic mix (benchkit.Mix: members
// reading, checking in and claiming, secretaries deciding, leaders reading leaderboards)
// keeps its p99 under 100 ms, then runs the mix at half of that for -soak (10 minutes)
// and reports the p99, the errors and the server's memory at the start and the end.
// Afterwards it checks the invariants: every acknowledged claim, decision and entry is
// in the database, and ledgerctl verify passes. Loopback only. Run it through
// bench/run.sh (… soak).
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"partyledger/bench/benchkit"
)

var (
	serverBin = flag.String("server", "bin/server", "the server binary")
	ctlBin    = flag.String("ledgerctl", "bin/ledgerctl", "the ledgerctl binary")
	driver    = flag.String("driver", "sqlite", "sqlite or mysql")
	mysqlDSN  = flag.String("mysql", os.Getenv("LEDGER_TEST_MYSQL_DSN"), "MySQL server DSN without a database")
	start     = flag.Float64("start", 50, "the first rate of the search, requests a second")
	step      = flag.Float64("step", 1.4, "each search stage's rate over the one before")
	stageLen  = flag.Duration("stage", 20*time.Second, "length of each search stage")
	soakLen   = flag.Duration("soak", 10*time.Minute, "length of the soak")
	workers   = flag.Int("workers", 512, "most requests in flight at once")
)

// goal is the p99 that the capacity search keeps under.
const goal = 100 * time.Millisecond

func main() {
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

func run() error {
	work, err := os.MkdirTemp("", "ledger-soak-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	env, db, drop, err := benchkit.DemoEnv(*driver, *mysqlDSN, work, "ledger_soak", "")
	if err != nil {
		return err
	}
	defer drop()
	defer db.Close()
	env["LEDGER_DEMO_MONTHS"], env["LEDGER_LOG_LEVEL"] = "2", "warn"
	srv, _, err := benchkit.Start(*serverBin, env, filepath.Join(work, "server.log"))
	if err != nil {
		return err
	}
	defer srv.Stop()
	c := benchkit.NewClient(srv.Addr, *workers)
	demo, err := benchkit.LoadDemo(c, benchkit.Key)
	if err != nil {
		return err
	}
	period, day := benchkit.ThisMonth()
	mix := &benchkit.Mix{C: c, Demo: demo, Key: benchkit.Key, Period: period, Day: day}
	if err := mix.Prepare(); err != nil {
		return err
	}
	op := func() (string, string) {
		name, f := mix.Op(nil)
		return name, f.String()
	}

	fmt.Printf("## %s: the realistic mix, %s\n\n", *driver, time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Printf("Search: open-loop stages of %s, latency from each request's scheduled start.\n\n", *stageLen)
	fmt.Println("| rate asked | done/s | p50 | p99 | errors |")
	fmt.Println("| --- | --- | --- | --- | --- |")
	capacity := 0.0
	for rate := *start; ; rate *= *step {
		st := benchkit.RunAt(rate, *stageLen, *workers, op)
		p99 := benchkit.Pct(st.Lat, 0.99)
		fmt.Printf("| %.0f/s | %.0f/s | %s | %s | %d%s |\n", rate, st.Rate(), ms(benchkit.Pct(st.Lat, 0.5)), ms(p99), st.Failed, firstErr(st))
		if st.Failed > 0 || p99 >= goal {
			break
		}
		capacity = rate
	}
	if capacity == 0 {
		return fmt.Errorf("even %.0f requests a second miss the goal", *start)
	}
	fmt.Printf("\n**Throughput with p99 under 100 ms: %.0f requests a second.**\n\n", capacity)

	// The soak, at half of it, in slices of 30 s so that memory and latency can be
	// followed over time.
	rate := capacity / 2
	fmt.Printf("Soak: %.0f requests a second for %s.\n\n", rate, *soakLen)
	fmt.Println("| minute | done | errors | p99 | server RSS | Go heap in use |")
	fmt.Println("| --- | --- | --- | --- | --- | --- |")
	var all benchkit.Stage
	all.ByOp = map[string][]time.Duration{}
	t0 := time.Now()
	var rssStart, rssEnd, heapStart, heapEnd float64
	for time.Since(t0) < *soakLen {
		st := benchkit.RunAt(rate, 30*time.Second, *workers, op)
		all.Done += st.Done
		all.Failed += st.Failed
		if all.FirstErr == "" {
			all.FirstErr = st.FirstErr
		}
		all.Lat = append(all.Lat, st.Lat...)
		for k, v := range st.ByOp {
			all.ByOp[k] = append(all.ByOp[k], v...)
		}
		rss, heap := srv.RSS(), heapInUse(c)
		if rssStart == 0 {
			rssStart, heapStart = rss, heap
		}
		rssEnd, heapEnd = rss, heap
		fmt.Printf("| %.1f | %d | %d | %s | %.0f MiB | %.0f MiB |\n", time.Since(t0).Minutes(), st.Done, st.Failed, ms(benchkit.Pct(st.Lat, 0.99)), rss, heap)
	}
	all.Elapsed = time.Since(t0)
	fmt.Printf("\n| operation | share | p50 | p99 |\n| --- | --- | --- | --- |\n")
	names := make([]string, 0, len(all.ByOp))
	for k := range all.ByOp {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		fmt.Printf("| %s | %.1f %% | %s | %s |\n", k, 100*float64(len(all.ByOp[k]))/float64(len(all.Lat)), ms(benchkit.Pct(all.ByOp[k], 0.5)), ms(benchkit.Pct(all.ByOp[k], 0.99)))
	}
	claims, entries := mix.Acks.Counts()
	fmt.Printf("\n| soak | value |\n| --- | --- |\n")
	fmt.Printf("| requests | %d in %s = %.0f/s |\n", all.Done+all.Failed, all.Elapsed.Round(time.Second), float64(all.Done)/all.Elapsed.Seconds())
	fmt.Printf("| errors | %d%s |\n", all.Failed, firstErr(all))
	fmt.Printf("| p50 / p99 | %s / %s |\n", ms(benchkit.Pct(all.Lat, 0.5)), ms(benchkit.Pct(all.Lat, 0.99)))
	fmt.Printf("| server RSS, first and last 30 s | %.0f MiB → %.0f MiB (peak %.0f MiB) |\n", rssStart, rssEnd, srv.PeakRSS())
	fmt.Printf("| Go heap in use, first and last 30 s | %.0f MiB → %.0f MiB |\n", heapStart, heapEnd)
	fmt.Printf("| acknowledged claims and entries | %d claims, %d entries |\n", claims, entries)

	// Invariants: stop the server, then every acknowledged write must be there and
	// verify must pass.
	srv.Stop()
	if err := mix.Acks.Check(db); err != nil {
		fmt.Printf("| acknowledged writes present | **no: %v** |\n", err)
		return err
	}
	fmt.Printf("| acknowledged writes present | yes, every one |\n")
	out, err := verify(env)
	fmt.Printf("| ledgerctl verify | %s |\n\n", strings.ReplaceAll(strings.TrimSpace(out), "\n", "; "))
	if err != nil {
		return fmt.Errorf("verify: %v", err)
	}
	if all.Failed > 0 {
		return fmt.Errorf("%d requests failed during the soak", all.Failed)
	}
	return nil
}

func verify(env map[string]string) (string, error) {
	cmd := exec.Command(*ctlBin, "verify")
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

var heapRe = regexp.MustCompile(`(?m)^go_memstats_heap_inuse_bytes ([0-9.e+]+)$`)

// heapInUse reads the server's Go heap in use from /metrics, in MiB.
func heapInUse(c *benchkit.Client) float64 {
	resp, err := c.HTTP.Get(c.Base + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(bufio.NewReader(resp.Body))
	m := heapRe.FindSubmatch(b)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v / (1 << 20)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

func firstErr(s benchkit.Stage) string {
	if s.FirstErr == "" {
		return ""
	}
	return fmt.Sprintf(" (first: %.100s)", s.FirstErr)
}
