// Package benchkit starts the server binary for benchmarks and reads what they need of
// it. Only loopback addresses are used.
package benchkit

import (
	"database/sql"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/golang-jwt/jwt/v5"
	_ "modernc.org/sqlite"
)

// Server is a running server process.
type Server struct {
	Addr string
	cmd  *exec.Cmd
	logf *os.File
}

// FreeAddr returns a free loopback address.
func FreeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Start runs bin with env (plus LEDGER_ADDR) and returns once /readyz answers 200, with
// the time that took.
func Start(bin string, env map[string]string, logPath string) (*Server, time.Duration, error) {
	s := &Server{Addr: FreeAddr()}
	var err error
	if s.logf, err = os.Create(logPath); err != nil {
		return nil, 0, err
	}
	s.cmd = exec.Command(bin)
	s.cmd.Env = append(os.Environ(), "LEDGER_ADDR="+s.Addr)
	for k, v := range env {
		s.cmd.Env = append(s.cmd.Env, k+"="+v)
	}
	s.cmd.Stdout, s.cmd.Stderr = s.logf, s.logf
	t0 := time.Now()
	if err := s.cmd.Start(); err != nil {
		return nil, 0, err
	}
	client := http.Client{Timeout: time.Second}
	for time.Since(t0) < 60*time.Second {
		resp, err := client.Get("http://" + s.Addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return s, time.Since(t0), nil
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	s.Stop()
	return nil, 0, fmt.Errorf("server not ready in 60 s; see %s", logPath)
}

// Stop sends SIGINT and waits for the process.
func (s *Server) Stop() {
	s.cmd.Process.Signal(os.Interrupt)
	s.cmd.Wait()
	s.logf.Close()
}

// Signal sends sig to the server.
func (s *Server) Signal(sig os.Signal) error { return s.cmd.Process.Signal(sig) }

// Wait waits for the server to exit and closes its log.
func (s *Server) Wait() error {
	err := s.cmd.Wait()
	s.logf.Close()
	return err
}

// PeakRSS is the process's high-water resident memory (VmHWM), in MiB.
func (s *Server) PeakRSS() float64 { return s.status("VmHWM") }

// RSS is the process's resident memory now (VmRSS), in MiB.
func (s *Server) RSS() float64 { return s.status("VmRSS") }

func (s *Server) status(field string) float64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	m := regexp.MustCompile(field + `:\s+(\d+) kB`).FindSubmatch(b)
	if m == nil {
		return 0
	}
	kb, _ := strconv.ParseFloat(string(m[1]), 64)
	return kb / 1024
}

// Key is the JWT signing key the benchmarks give the server, so that they can mint its
// tokens (Token).
const Key = "bench-signing-key-0123456789abcdef0123"

// Token mints an access token as the server does, with the server's key; benchmarks
// measure what they measure, not log-ins.
func Token(key string, memberID int64) string {
	now := time.Now()
	s, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{Issuer: "partyledger", Subject: strconv.FormatInt(memberID, 10),
		Audience: jwt.ClaimStrings{"partyledger-api"}, IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour))}).SignedString([]byte(key))
	return s
}

// Result is what a load phase did.
type Result struct {
	OK, Failed int64
	Elapsed    time.Duration
	Lat        []time.Duration
	FirstErr   string
}

// Rate is successful jobs per second.
func (r Result) Rate() float64 { return float64(r.OK) / r.Elapsed.Seconds() }

// Pct is the p-th quantile (0..1) of the latencies.
func (r Result) Pct(p float64) time.Duration {
	if len(r.Lat) == 0 {
		return 0
	}
	sort.Slice(r.Lat, func(i, j int) bool { return r.Lat[i] < r.Lat[j] })
	return r.Lat[min(len(r.Lat)-1, int(float64(len(r.Lat))*p))]
}

// Load runs job(i) for i = 0, 1, 2 … from conns goroutines until n jobs are done or the
// time is up; a job answers whether it succeeded and, if not, why.
func Load(conns, n int, limit time.Duration, job func(i int) (bool, string)) Result {
	var next, ok, failed atomic.Int64
	var mu sync.Mutex
	var res Result
	deadline := time.Now().Add(limit)
	var wg sync.WaitGroup
	t0 := time.Now()
	for w := 0; w < conns; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat []time.Duration
			for time.Now().Before(deadline) {
				i := int(next.Add(1) - 1)
				if i >= n {
					break
				}
				s := time.Now()
				good, msg := job(i)
				lat = append(lat, time.Since(s))
				if good {
					ok.Add(1)
				} else if failed.Add(1) == 1 {
					mu.Lock()
					res.FirstErr = msg
					mu.Unlock()
				}
			}
			mu.Lock()
			res.Lat = append(res.Lat, lat...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.Elapsed, res.OK, res.Failed = time.Since(t0), ok.Load(), failed.Load()
	return res
}

// MySQLDatabase makes sure a database called name exists on the MySQL server of
// serverDSN (a DSN without a database) and returns a DSN for it, and a function that
// drops it.
func MySQLDatabase(serverDSN, name string) (string, func(), error) {
	cfg, err := mysql.ParseDSN(serverDSN)
	if err != nil || serverDSN == "" {
		return "", nil, fmt.Errorf("-mysql (or LEDGER_TEST_MYSQL_DSN) is required")
	}
	exec := func(q string) error {
		admin, err := sql.Open("mysql", cfg.FormatDSN())
		if err != nil {
			return err
		}
		defer admin.Close()
		_, err = admin.Exec(q)
		return err
	}
	if err := exec("CREATE DATABASE IF NOT EXISTS " + name + " CHARACTER SET utf8mb4"); err != nil {
		return "", nil, err
	}
	drop := func() { exec("DROP DATABASE " + name) }
	cfg.DBName, cfg.ParseTime = name, true
	return cfg.FormatDSN(), drop, nil
}

// DemoEnv is the environment of a demo server signing with Key (one month of demo activity, the per-IP
// claim and upload limits lifted, as every simulated member sends from loopback, and the
// per-member upload limit too, as the mix has members file claims for hours) with its data under
// dir, on driver; on MySQL in a fresh database named name, which drop removes. db is a
// handle on the same database, opened with sqliteParams on SQLite.
func DemoEnv(driver, mysqlDSN, dir, name, sqliteParams string) (env map[string]string, db *sql.DB, drop func(), err error) {
	env = map[string]string{"LEDGER_JWT_SECRET": Key, "LEDGER_DATA_DIR": filepath.Join(dir, "data"), "LEDGER_DEMO": "1",
		"LEDGER_DEMO_MONTHS": "1", "LEDGER_CLAIM_LIMIT_IP": "1000000/1m", "LEDGER_UPLOAD_LIMIT_IP": "1000000/1m", "LEDGER_UPLOAD_LIMIT_MEMBER": "1000000/1m"}
	drop = func() {}
	if driver == "mysql" {
		var dsn string
		if dsn, drop, err = MySQLDatabase(mysqlDSN, fmt.Sprintf("%s_%d", name, time.Now().UnixNano())); err != nil {
			return nil, nil, nil, err
		}
		env["LEDGER_DB_DRIVER"], env["LEDGER_DB_DSN"] = "mysql", dsn
		db, err = sql.Open("mysql", dsn)
	} else {
		db, err = sql.Open("sqlite", "file:"+filepath.Join(dir, "data", "ledger.db")+"?_pragma=busy_timeout(10000)"+sqliteParams)
	}
	if err != nil {
		drop()
		return nil, nil, nil, err
	}
	return env, db, drop, nil
}
