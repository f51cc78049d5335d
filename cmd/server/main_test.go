package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"partyledger/app/apptest"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startServer runs run() as main would and waits for /readyz.
func startServer(t *testing.T, vars map[string]string) (addr string, stop func() error, logs *apptest.Buffer) {
	t.Helper()
	addr = freeAddr(t)
	vars["LEDGER_ADDR"] = addr
	if vars["LEDGER_DATA_DIR"] == "" {
		vars["LEDGER_DATA_DIR"] = t.TempDir()
	}
	if apptest.Driver() == "mysql" {
		vars["LEDGER_DB_DRIVER"] = "mysql"
		vars["LEDGER_DB_DSN"] = apptest.CreateMySQLDatabase(t)
	}
	ctx, cancel := context.WithCancel(context.Background())
	logs = &apptest.Buffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, func(k string) string { return vars[k] }, logs) }()
	deadline := time.Now().Add(120 * time.Second) // the demo seed takes a while under -race
	for {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		select {
		case err := <-done:
			t.Fatalf("run returned early: %v\n%s", err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("not ready in 120 s:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(30 * time.Second):
				runErr = fmt.Errorf("run did not return 30 s after cancel")
			}
		})
		return runErr
	}
	t.Cleanup(func() { stop() })
	return addr, stop, logs
}

func TestRunDemoLoginAndGracefulShutdown(t *testing.T) {
	// With an admin configured too, the demo committee gets that admin beside its own.
	addr, stop, logs := startServer(t, map[string]string{"LEDGER_DEMO": "1", "LEDGER_DEMO_MONTHS": "1",
		"LEDGER_ADMIN_USERNAME": "root-admin", "LEDGER_ADMIN_PASSWORD": "root-password-1"})
	base := "http://" + addr
	// signIn posts a log-in over the socket and returns its access token; readMe reads
	// /me with a token into v.
	signIn := func(path, body string) string {
		t.Helper()
		resp, err := http.Post(base+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		json.NewDecoder(resp.Body).Decode(&tok)
		return tok.AccessToken
	}
	readMe := func(token string, v any) {
		t.Helper()
		req, _ := http.NewRequest("GET", base+"/api/v1/me", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("/me: %v %v", resp, err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatal(err)
		}
	}
	var adminMe struct {
		Roles []struct {
			Role  string `json:"role"`
			OrgID int64  `json:"org_id"`
		} `json:"roles"`
		Branch struct {
			ID   int64  `json:"id"`
			Kind string `json:"kind"`
		} `json:"branch"`
	}
	readMe(signIn("/api/v1/auth/password/login", `{"username":"root-admin","password":"root-password-1"}`), &adminMe)
	if len(adminMe.Roles) != 1 || adminMe.Roles[0].Role != "admin" || adminMe.Roles[0].OrgID != adminMe.Branch.ID || adminMe.Branch.Kind != "committee" {
		t.Fatalf("the configured admin in demo mode: %+v", adminMe)
	}
	if !strings.Contains(logs.String(), `"code":"demo:D00001"`) {
		t.Fatalf("demo log-ins are not printed:\n%.2000s", logs.String())
	}
	var memberMe struct {
		MemberNo string `json:"member_no"`
	}
	readMe(signIn("/api/v1/auth/wechat/login", `{"code":"demo:D00001"}`), &memberMe)
	if memberMe.MemberNo != "D00001" {
		t.Fatalf("the demo member's /me: %+v", memberMe)
	}

	// A body beyond the server's limit gets 413 in the envelope, over a real socket.
	resp, err := http.Post(base+"/api/v1/auth/password/login", "application/json", bytes.NewReader(bytes.Repeat([]byte(" "), 13<<20)))
	if err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 413 || !strings.Contains(string(body), `"too_large"`) {
			t.Fatalf("oversized body: %d %s", resp.StatusCode, body)
		}
	} // the server may also close the connection while the client is still sending

	// A request in flight when SIGTERM arrives is finished, not dropped: send half a
	// request, stop the server, send the rest, and read the answer.
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"username":"nobody","password":"password1"}`
	fmt.Fprintf(conn, "POST /api/v1/auth/password/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body[:10])
	time.Sleep(100 * time.Millisecond)
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	time.Sleep(200 * time.Millisecond)
	fmt.Fprint(conn, body[10:])
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	r, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("the in-flight request was dropped: %v", err)
	}
	if r.StatusCode != 401 {
		t.Fatalf("in-flight request: %d", r.StatusCode)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("run: %v", err)
	}
	// New connections are refused once it has stopped.
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Fatal("still serving after shutdown")
	}
	if !strings.Contains(logs.String(), `"msg":"stopped"`) {
		t.Fatal("no stop logged")
	}
}

func TestRunBootstrapsTheFirstAdmin(t *testing.T) {
	dir := t.TempDir()
	vars := map[string]string{"LEDGER_DATA_DIR": dir, "LEDGER_ADMIN_USERNAME": "zuzhi", "LEDGER_ADMIN_PASSWORD": "first-admin-pass"}
	addr, stop, logs := startServer(t, vars)
	resp, err := http.Post("http://"+addr+"/api/v1/auth/password/login", "application/json", strings.NewReader(`{"username":"zuzhi","password":"first-admin-pass"}`))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("admin login: %v %v", resp, err)
	}
	resp.Body.Close()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.String(), "first-admin-pass") {
		t.Fatal("the admin password was logged")
	}
	// The first start says what it did to the database.
	for _, said := range []string{`"msg":"migrated the database"`, `"msg":"created the root committee and the first admin"`} {
		if !strings.Contains(logs.String(), said) {
			t.Fatalf("the first start did not log %s:\n%s", said, logs.String())
		}
	}
	if apptest.Driver() == "sqlite" {
		// A restart on the same data keeps the key, so tokens survive restarts, and has
		// nothing to migrate.
		key1, _ := readKey(dir)
		_, _, again := startServer(t, map[string]string{"LEDGER_DATA_DIR": dir})
		key2, _ := readKey(dir)
		if key1 == "" || key1 != key2 {
			t.Fatal("the signing key changed across restarts")
		}
		if strings.Contains(again.String(), "migrated the database") {
			t.Fatalf("a restart migrated again:\n%s", again.String())
		}
	}
}

func readKey(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, "jwt.key"))
	return string(b), err
}

func TestRunRefusesBadConfig(t *testing.T) {
	err := run(context.Background(), func(k string) string {
		return map[string]string{"LEDGER_DB_DRIVER": "oracle", "LEDGER_DATA_DIR": t.TempDir()}[k]
	}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "LEDGER_DB_DRIVER") {
		t.Fatalf("err = %v", err)
	}
}
