package main

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net"
	"net/http/httptrace"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"

	"partyledger/app/apptest"
	"partyledger/bench/benchkit"
)

// The fault tests run the real binaries, built once, against a demo committee, and drive
// them with the realistic mix of bench/soak from a few clients at once.

const faultKey = "fault-signing-key-0123456789abcdef0123"

var bins struct {
	once              sync.Once
	server, ctl, errs string
}

// binaries builds the server and ledgerctl (without -race: they are the processes under
// test, not the test).
func binaries(t *testing.T) (server, ctl string) {
	t.Helper()
	bins.once.Do(func() {
		dir, err := os.MkdirTemp("", "ledger-fault-bin-")
		if err != nil {
			bins.errs = err.Error()
			return
		}
		bins.server, bins.ctl = filepath.Join(dir, "server"), filepath.Join(dir, "ledgerctl")
		for _, b := range [][2]string{{bins.server, "."}, {bins.ctl, "../ledgerctl"}} {
			cmd := exec.Command("go", "build", "-o", b[0], b[1])
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				bins.errs = fmt.Sprintf("go build %s: %v\n%s", b[1], err, out)
			}
		}
	})
	if bins.errs != "" {
		t.Fatal(bins.errs)
	}
	return bins.server, bins.ctl
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bins.server != "" {
		os.RemoveAll(filepath.Dir(bins.server))
	}
	os.Exit(code)
}

// faultEnv is a demo server's environment on the suite's database, and a handle on that
// database for looking acknowledged writes up.
func faultEnv(t *testing.T, extra map[string]string) (map[string]string, *sql.DB) {
	t.Helper()
	env := map[string]string{"LEDGER_JWT_SECRET": faultKey, "LEDGER_DATA_DIR": t.TempDir(), "LEDGER_DEMO": "1", "LEDGER_DEMO_MONTHS": "1",
		"LEDGER_CLAIM_LIMIT_IP": "1000000/1m", "LEDGER_UPLOAD_LIMIT_IP": "1000000/1m", "LEDGER_UPLOAD_LIMIT_MEMBER": "1000000/1m"}
	for k, v := range extra {
		env[k] = v
	}
	driver, dsn := "sqlite", "file:"+filepath.Join(env["LEDGER_DATA_DIR"], "ledger.db")+"?_pragma=busy_timeout(10000)"
	if env["LEDGER_DB_DRIVER"] == "" && apptest.Driver() == "mysql" {
		env["LEDGER_DB_DRIVER"], env["LEDGER_DB_DSN"] = "mysql", apptest.CreateMySQLDatabase(t)
	}
	if env["LEDGER_DB_DRIVER"] == "mysql" {
		driver, dsn = "mysql", env["LEDGER_DB_DSN"]
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return env, db
}

// startFault starts the server binary and loads the demo roster.
func startFault(t *testing.T, env map[string]string) (*benchkit.Server, *benchkit.Mix, string) {
	t.Helper()
	server, _ := binaries(t)
	logPath := filepath.Join(t.TempDir(), "server.log")
	srv, _, err := benchkit.Start(server, env, logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// SIGTERM first, so that the log is flushed; SIGKILL if it does not stop.
		srv.Signal(syscall.SIGTERM)
		kill := time.AfterFunc(10*time.Second, func() { srv.Signal(syscall.SIGKILL) })
		srv.Wait()
		kill.Stop()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			var problems []string
			for _, l := range strings.Split(string(b), "\n") {
				if strings.Contains(l, `"level":"WARN"`) || strings.Contains(l, `"level":"ERROR"`) || slowRequest.MatchString(l) {
					problems = append(problems, l)
				}
			}
			t.Logf("server log: %d warnings, errors and requests slower than 1 s, the first:\n%s", len(problems), strings.Join(problems[:min(len(problems), 10)], "\n"))
		}
	})
	c := benchkit.NewClient(srv.Addr, 32)
	demo, err := benchkit.LoadDemo(c, faultKey)
	if err != nil {
		t.Fatal(err)
	}
	period, day := benchkit.ThisMonth()
	return srv, &benchkit.Mix{C: c, Demo: demo, Key: faultKey, Period: period, Day: day}, logPath
}

// slowRequest is an access-log line of a request that took a second or more.
var slowRequest = regexp.MustCompile(`"ms":[0-9]{4,}`)

// outcome is one request of the load.
type outcome struct {
	id       string
	op       string
	start    time.Time
	took     time.Duration
	status   int    // 0: no answer
	failure  string // "" when it succeeded
	answered time.Time
}

// drive runs the mix from workers clients until stop is closed or, with stopOnError,
// a client's request gets no answer (the server is gone). Every request carries its own
// X-Request-ID.
func drive(m *benchkit.Mix, workers int, stop <-chan struct{}, stopOnError bool) []outcome {
	var mu sync.Mutex
	var out []outcome
	var seq atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				o := outcome{id: fmt.Sprintf("fault-%08d", seq.Add(1)), start: time.Now()}
				var f *benchkit.Failure
				o.op, f = m.Op(map[string]string{"X-Request-ID": o.id})
				o.status, o.failure = 200, f.String()
				if f != nil {
					o.status = f.Status
				}
				o.answered = time.Now()
				o.took = o.answered.Sub(o.start)
				mu.Lock()
				out = append(out, o)
				mu.Unlock()
				if stopOnError && o.failure != "" && o.status == 0 {
					return
				}
			}
		}()
	}
	wg.Wait()
	return out
}

// driveFor is drive for d.
func driveFor(m *benchkit.Mix, workers int, d time.Duration) []outcome {
	stop := make(chan struct{})
	time.AfterFunc(d, func() { close(stop) })
	return drive(m, workers, stop, false)
}

// stopAndCheck stops the server with SIGTERM, which it must survive cleanly, then
// looks up every write the mix saw acknowledged and runs ledgerctl verify.
func stopAndCheck(t *testing.T, srv *benchkit.Server, m *benchkit.Mix, db *sql.DB, env map[string]string) {
	t.Helper()
	srv.Signal(syscall.SIGTERM)
	if err := srv.Wait(); err != nil {
		t.Fatalf("the server did not stop cleanly after SIGTERM: %v", err)
	}
	if err := m.Acks.Check(db); err != nil {
		t.Fatal(err)
	}
	verify(t, env)
}

func verify(t *testing.T, env map[string]string) {
	t.Helper()
	_, ctl := binaries(t)
	cmd := exec.Command(ctl, "verify")
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ledgerctl verify: %v\n%s", err, out)
	}
	t.Logf("ledgerctl verify: %s", strings.TrimSpace(string(out)))
}

// TestFaultSIGKILLDuringWrites kills the server with SIGKILL while members claim and
// check in and secretaries decide: after it, every claim, decision and entry the server
// acknowledged is in the database, ledgerctl verify passes, and a restarted server takes
// writes again.
func TestFaultSIGKILLDuringWrites(t *testing.T) {
	env, db := faultEnv(t, nil)
	srv, m, _ := startFault(t, env)
	m.Weights = map[string]int{"claim": 40, "decide": 35, "checkin": 25}
	if err := m.Prepare(); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var killed atomic.Int64 // when, in Unix nanoseconds
	go func() {
		time.Sleep(2 * time.Second)
		killed.Store(time.Now().UnixNano())
		srv.Signal(syscall.SIGKILL)
	}()
	out := drive(m, 16, stop, true)
	srv.Wait()
	close(stop)
	killedAt := time.Unix(0, killed.Load())
	for _, o := range out {
		if o.failure != "" && o.answered.Before(killedAt) {
			t.Fatalf("%s failed before the kill: %s", o.op, o.failure)
		}
	}
	claims, entries := m.Acks.Counts()
	if claims < 50 || entries < 20 {
		t.Fatalf("too little was written before the kill to prove anything: %d claims, %d entries", claims, entries)
	}
	if err := m.Acks.Check(db); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d requests; after SIGKILL every one of %d acknowledged claims and %d entries is there", len(out), claims, entries)
	verify(t, env)

	// A new server on the same database carries on.
	srv2, m2, _ := startFault(t, env)
	m2.Weights = m.Weights
	if err := m2.Prepare(); err != nil {
		t.Fatal(err)
	}
	for _, o := range driveFor(m2, 8, time.Second) {
		if o.failure != "" {
			t.Fatalf("after the restart %s failed: %s", o.op, o.failure)
		}
	}
	stopAndCheck(t, srv2, m2, db, env)
}

// TestFaultSIGTERMUnderLoad sends SIGTERM while the mix runs and two committee reports are
// being written: the server exits 0, every request it began was answered (each request
// in its log reached its client, the reports whole), and a request that got no answer
// never reached it (its id is not in the log): nothing is done without its answer.
func TestFaultSIGTERMUnderLoad(t *testing.T) {
	env, db := faultEnv(t, nil)
	srv, m, logPath := startFault(t, env)
	if err := m.Prepare(); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var term atomic.Int64 // when, in Unix nanoseconds
	reports := make(chan outcome, 2)
	go func() {
		time.Sleep(1500 * time.Millisecond)
		// SIGTERM goes once both reports are being written: the server has sent their
		// headers and streams their bodies (or a report has already failed). A fixed sleep
		// here let SIGTERM overtake a report's connection on a slow machine.
		var writing sync.WaitGroup
		writing.Add(2)
		for i := 0; i < 2; i++ {
			go func() {
				o := outcome{id: fmt.Sprintf("report-%d-xxxx", i), start: time.Now()}
				var once sync.Once
				started := func() { once.Do(writing.Done) }
				defer started()
				ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{GotFirstResponseByte: started})
				st, body, err := m.C.DoContext(ctx, "GET", fmt.Sprintf("/api/v1/reports/monthly?org_id=%d&period=%s&format=xlsx", m.Demo.Committee, m.Period),
					benchkit.Token(faultKey, m.Demo.Admin), nil, "", map[string]string{"X-Request-ID": o.id})
				o.status, o.answered = st, time.Now()
				if err != nil || st != 200 || len(body) < 50_000 || string(body[:2]) != "PK" {
					o.failure = fmt.Sprintf("%d, %d bytes, %v", st, len(body), err)
				}
				reports <- o
			}()
		}
		writing.Wait()
		term.Store(time.Now().UnixNano())
		srv.Signal(syscall.SIGTERM)
	}()
	out := drive(m, 16, stop, true)
	if err := srv.Wait(); err != nil {
		t.Fatalf("the server did not exit cleanly after SIGTERM: %v", err)
	}
	close(stop)
	termAt := time.Unix(0, term.Load())
	for i := 0; i < 2; i++ {
		o := <-reports
		if o.failure != "" {
			t.Fatalf("a report being written at SIGTERM was cut: %s", o.failure)
		}
		out = append(out, o)
	}

	logged := map[string]int{}
	f, err := os.Open(logPath)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l struct {
			Msg    string `json:"msg"`
			ID     string `json:"request_id"`
			Status int    `json:"status"`
		}
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "request" && l.ID != "" {
			logged[l.ID] = l.Status
		}
	}
	f.Close()
	sent := map[string]outcome{}
	var afterTerm, refused int
	for _, o := range out {
		sent[o.id] = o
		switch {
		case o.status == 0 && o.answered.Before(termAt):
			t.Fatalf("%s got no answer before SIGTERM: %s", o.op, o.failure)
		case o.status == 0:
			refused++
			if _, ok := logged[o.id]; ok {
				t.Fatalf("%s %s was done by the server, but its answer never arrived: %s", o.op, o.id, o.failure)
			}
		case o.failure != "":
			t.Fatalf("%s failed: %s", o.op, o.failure)
		case o.answered.After(termAt):
			afterTerm++
		}
	}
	for id, st := range logged {
		if strings.HasPrefix(id, "fault-") || strings.HasPrefix(id, "report-") {
			if o, ok := sent[id]; !ok || (o.status != st && !(o.failure == "" && st/100 == 2)) {
				t.Fatalf("the server answered %s with %d, but the client got %+v", id, st, o)
			}
		}
	}
	if afterTerm == 0 {
		t.Fatal("no request was in flight at SIGTERM: the test proved nothing")
	}
	if err := m.Acks.Check(db); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d requests, %d answered after SIGTERM (2 reports among them), %d refused once the server had stopped taking requests", len(out), afterTerm, refused)
	verify(t, env)
}

// TestFaultDatabaseStopsUnderLoad takes the database away while the mix runs: requests
// that need it get 503 within the request timeout (never 500, never a hang), /readyz says
// 503, and when the database is back the server serves again by itself. MariaDB is a
// server of its own, started for this test: it is frozen (SIGSTOP: the network reaches
// it, nothing answers), then killed (SIGKILL: refused) and started again. SQLite cannot
// stop apart from the process: what can stop is writing, when another process holds
// the file's write lock; writes then get 503 and reads go on.
func TestFaultDatabaseStopsUnderLoad(t *testing.T) {
	timeout := 2 * time.Second
	extra := map[string]string{"LEDGER_REQUEST_TIMEOUT": timeout.String(), "LEDGER_LOG_LEVEL": "warn"}
	var outages []outage
	if apptest.Driver() == "mysql" {
		maria := startMariaDB(t)
		extra["LEDGER_DB_DRIVER"], extra["LEDGER_DB_DSN"] = "mysql", maria.dsn
		outages = []outage{
			{"frozen (SIGSTOP)", func() { maria.signal(syscall.SIGSTOP) }, func() { maria.signal(syscall.SIGCONT) }, true},
			{"killed (SIGKILL), then started again", func() { maria.signal(syscall.SIGKILL); maria.wait() }, maria.start, true},
		}
	}
	env, db := faultEnv(t, extra)
	if apptest.Driver() != "mysql" {
		var lock *sql.Conn
		outages = []outage{{"write-locked by another process", func() {
			var err error
			if lock, err = db.Conn(context.Background()); err != nil {
				t.Fatal(err)
			}
			for _, q := range []string{"BEGIN IMMEDIATE", "UPDATE orgs SET name = name WHERE id = 1"} {
				if _, err := lock.ExecContext(context.Background(), q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
		}, func() {
			lock.ExecContext(context.Background(), "ROLLBACK")
			lock.Close()
		}, false}}
	}
	srv, m, _ := startFault(t, env)
	if err := m.Prepare(); err != nil {
		t.Fatal(err)
	}
	ready := func() int {
		st, _, err := m.C.Do("GET", "/readyz", "", nil, "", nil)
		if err != nil {
			t.Fatalf("/readyz: %v", err)
		}
		return st
	}
	var slowest time.Duration
	check := func(phase string, out []outcome, allowed ...int) map[int]int {
		seen := map[int]int{}
		slowest = 0
		for _, o := range out {
			seen[o.status]++
			slowest = max(slowest, o.took)
			if o.took > timeout+2*time.Second {
				t.Fatalf("%s: %s took %v, past the %v timeout", phase, o.op, o.took, timeout)
			}
			ok := o.failure == ""
			for _, a := range allowed {
				ok = ok || o.status == a
			}
			if !ok {
				t.Fatalf("%s: %s: %s", phase, o.op, o.failure)
			}
		}
		return seen
	}
	check("before", driveFor(m, 8, time.Second))
	for _, o := range outages {
		o.begin()
		began := time.Now()
		stop := make(chan struct{})
		var during []outcome
		done := make(chan struct{})
		go func() { during = drive(m, 8, stop, false); close(done) }()
		time.Sleep(timeout + time.Second)
		if st := ready(); st != 503 {
			t.Fatalf("database %s: /readyz says %d", o.name, st)
		}
		time.Sleep(time.Second)
		close(stop)
		<-done
		seen := check("database "+o.name, during, 503)
		if seen[503] == 0 {
			t.Fatalf("database %s: no request got 503: %v", o.name, seen)
		}
		for _, r := range during {
			// Requests that began before the outage may finish in it; with the server
			// gone, none that began in it may succeed.
			if o.all && r.failure == "" && r.start.After(began.Add(200*time.Millisecond)) {
				t.Fatalf("database %s: %s succeeded with the database away", o.name, r.op)
			}
		}
		o.end()
		back := time.Now()
		for ready() != 200 {
			if time.Since(back) > 30*time.Second {
				t.Fatalf("database %s, then back: /readyz is not 200 after 30 s", o.name)
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("database %s: %d requests answered %v, the slowest in %v (timeout %v); ready again %v after it came back", o.name, len(during), seen, slowest.Round(time.Millisecond), timeout, time.Since(back).Round(time.Millisecond))
		check("after "+o.name, driveFor(m, 8, 2*time.Second))
	}
	stopAndCheck(t, srv, m, db, env)
}

type outage struct {
	name       string
	begin, end func()
	all        bool // nothing can succeed during it (else reads go on)
}

// mariaDB is a MariaDB server of the test's own, started by scripts/mariadb-up.sh.
type mariaDB struct {
	t        *testing.T
	dir, dsn string
	port     int
	cmdEnv   []string
}

func startMariaDB(t *testing.T) *mariaDB {
	t.Helper()
	if _, err := exec.LookPath("mariadbd"); err != nil {
		t.Skip("needs mariadbd to stop and start: CI installs it")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	m := &mariaDB{t: t, dir: t.TempDir(), port: port}
	m.cmdEnv = append(os.Environ(), "MARIADB_DIR="+m.dir, fmt.Sprintf("MARIADB_PORT=%d", port), "MARIADB_BUFFER_POOL=64M")
	m.start()
	m.dsn = fmt.Sprintf("ledger:ledger@tcp(127.0.0.1:%d)/ledger", port)
	t.Cleanup(func() {
		m.signal(syscall.SIGCONT)
		m.signal(syscall.SIGKILL)
		m.wait()
	})
	return m
}

func (m *mariaDB) start() {
	cmd := exec.Command("bash", "../../scripts/mariadb-up.sh")
	cmd.Env = m.cmdEnv
	if out, err := cmd.CombinedOutput(); err != nil {
		m.t.Fatalf("mariadb-up.sh: %v\n%s", err, out)
	}
}

func (m *mariaDB) pid() int {
	b, err := os.ReadFile(filepath.Join(m.dir, "mysqld.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

func (m *mariaDB) signal(sig syscall.Signal) {
	if pid := m.pid(); pid > 0 {
		syscall.Kill(pid, sig)
	}
}

// wait waits for the server to be gone after a kill (or a zombie, where nothing reaps).
func (m *mariaDB) wait() {
	pid := m.pid()
	for i := 0; pid > 0 && i < 200; i++ {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil || strings.Contains(string(b), ") Z ") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	os.Remove(filepath.Join(m.dir, "mysqld.pid"))
}
