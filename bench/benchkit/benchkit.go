// Package benchkit starts the server binary for benchmarks and reads what they need of
// it. Only loopback addresses are used.
package benchkit

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"time"
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

// PeakRSS is the process's high-water resident memory (VmHWM), in MiB.
func (s *Server) PeakRSS() float64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	m := regexp.MustCompile(`VmHWM:\s+(\d+) kB`).FindSubmatch(b)
	if m == nil {
		return 0
	}
	kb, _ := strconv.ParseFloat(string(m[1]), 64)
	return kb / 1024
}
