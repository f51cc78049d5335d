package handlers_test

import (
	"bufio"
	"context"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"partyledger/app"
	"partyledger/handlers"
	"partyledger/models"
)

func TestErrorEnvelope(t *testing.T) {
	e := newEnv(t, nil)
	cases := []struct {
		name   string
		req    request
		status int
		code   string
	}{
		{"unknown route", request{method: "GET", path: "/api/v1/nothing-here"}, 404, "not_found"},
		{"unknown method", request{method: "DELETE", path: "/api/v1/me", token: e.adminT}, 404, "not_found"},
		{"malformed JSON", request{method: "POST", path: "/api/v1/auth/password/login", ctype: "application/json", body: []byte(`{"username":`)}, 400, "malformed"},
		{"not an object", request{method: "POST", path: "/api/v1/auth/password/login", ctype: "application/json", body: []byte(`[1,2]`)}, 400, "malformed"},
		{"two values", request{method: "POST", path: "/api/v1/auth/password/login", ctype: "application/json", body: []byte(`{} {}`)}, 400, "malformed"},
		{"empty body", request{method: "POST", path: "/api/v1/auth/password/login", ctype: "application/json"}, 400, "malformed"},
		{"unknown field", request{method: "POST", path: "/api/v1/auth/password/login", ctype: "application/json", body: []byte(`{"username":"a","password":"b","admin":true}`)}, 422, "invalid"},
		{"wrong type", request{method: "POST", path: "/api/v1/auth/password/login", ctype: "application/json", body: []byte(`{"username":1,"password":"b"}`)}, 422, "invalid"},
		{"wrong media type", request{method: "POST", path: "/api/v1/auth/password/login", ctype: "text/plain", body: []byte(`{}`)}, 415, "unsupported_media_type"},
		{"too large", request{method: "POST", path: "/api/v1/auth/password/login", ctype: "application/json", body: []byte(`{"username":"` + strings.Repeat("a", 2<<20) + `"}`)}, 413, "too_large"},
		{"bad path id", request{method: "GET", path: "/api/v1/members/-3", token: e.adminT}, 404, "not_found"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.send(c.req)
			if r.Status != c.status || r.errCode() != c.code {
				t.Fatalf("got %d %q, want %d %q: %.300s", r.Status, r.errCode(), c.status, c.code, r.Body)
			}
		})
	}
	r := e.send(cases[7].req)
	if f := r.errFields(); f["username"] == "" {
		t.Fatalf("wrong type names no field: %s", r.Body)
	}
	r = e.send(cases[6].req)
	if f := r.errFields(); f["admin"] == "" {
		t.Fatalf("unknown field not named: %s", r.Body)
	}
	if r = e.send(cases[5].req); !strings.Contains(string(r.Body), "the body is empty") {
		t.Fatalf("an empty body is not told apart from bad JSON: %s", r.Body)
	}
	// Points sent as a string are told how to write points.
	r = e.post("/api/v1/entries", e.adminT, map[string]any{"member_id": 1, "rule_code": "adjust.bonus", "points": "3", "reason": "r", "occurred_on": "2026-01-02"}).want(422)
	if f := r.errFields(); f["points"] != models.ErrPointsFormat.Error() {
		t.Fatalf("points as a string: fields %v", f)
	}
}

func TestInternalErrorsShowNothing(t *testing.T) {
	e := newEnv(t, nil)
	e.f.Get("/test/fail", func(c *fiber.Ctx) error {
		return fmt.Errorf("query: %w", errors.New("dial tcp 10.0.0.5:3306: password=hunter2"))
	})
	e.f.Get("/test/panic", func(c *fiber.Ctx) error { panic("nil map in handler with password=hunter2") })
	// An error of the internal code, or of a code the server does not know, is answered
	// with the fixed message too, not its own.
	e.f.Get("/test/internal", func(c *fiber.Ctx) error {
		return models.Errorf(models.EInternal, "row 7 of table secrets: password=hunter2")
	})
	e.f.Get("/test/unknown-code", func(c *fiber.Ctx) error {
		return &models.Error{Code: "teapot", Message: "password=hunter2"}
	})
	for _, path := range []string{"/test/fail", "/test/panic", "/test/internal", "/test/unknown-code"} {
		resp, err := e.f.Test(httptest.NewRequest("GET", path, nil), -1)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		var env struct {
			Error models.Error `json:"error"`
		}
		if resp.StatusCode != 500 || json.Unmarshal(body, &env) != nil || env.Error.Code != "internal" || strings.Contains(string(body), "hunter2") {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, body)
		}
		rid := resp.Header.Get("X-Request-ID")
		if rid == "" || !strings.Contains(e.logs.String(), rid) {
			t.Fatalf("%s: the failure is not logged under request id %q", path, rid)
		}
	}
}

// TestAnOutageIsTryAgainWhereverItComesFrom: a database that stopped answering is 503
// with a Retry-After even when its error reaches the handler unwrapped, not only when a
// use case has sorted it already.
func TestAnOutageIsTryAgainWhereverItComesFrom(t *testing.T) {
	e := newEnv(t, nil)
	e.f.Get("/test/deadline", func(c *fiber.Ctx) error {
		return fmt.Errorf("list claims: %w", context.DeadlineExceeded)
	})
	e.f.Get("/test/bad-conn", func(c *fiber.Ctx) error {
		return fmt.Errorf("approve: %w", driver.ErrBadConn)
	})
	for _, path := range []string{"/test/deadline", "/test/bad-conn"} {
		resp, err := e.f.Test(httptest.NewRequest("GET", path, nil), -1)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), `"code":"unavailable"`) {
			t.Fatalf("%s: %d Retry-After %q %s", path, resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
	}
}

func TestRequestIDsAndLogs(t *testing.T) {
	e := newEnv(t, nil)
	r := e.send(request{method: "GET", path: "/healthz", header: map[string]string{"X-Request-ID": "trace-abc-12345"}}).want(200)
	if r.Header.Get("X-Request-ID") != "trace-abc-12345" {
		t.Fatal("a well-formed incoming request id is kept")
	}
	r = e.send(request{method: "GET", path: "/healthz", header: map[string]string{"X-Request-ID": "bad\nid"}}).want(200)
	if rid := r.Header.Get("X-Request-ID"); rid == "" || strings.Contains(rid, "\n") {
		t.Fatalf("request id %q", rid)
	}
	// An id that is too short, too long or holds other characters is replaced by one of
	// ours, so that what a client sends cannot forge or break a log line.
	for _, bad := range []string{"short", strings.Repeat("a", 65), `trace "x" 12345`, "trace=abc;12345", "跟踪编号一二三四五"} {
		r = e.send(request{method: "GET", path: "/healthz", header: map[string]string{"X-Request-ID": bad}}).want(200)
		if rid := r.Header.Get("X-Request-ID"); rid == bad || !regexp.MustCompile(`^[A-Za-z0-9._-]{8,64}$`).MatchString(rid) {
			t.Fatalf("sent request id %q, got %q", bad, rid)
		}
	}
	// Every log line of a request carries its id, and the lines are JSON.
	for _, line := range strings.Split(strings.TrimSpace(e.logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("not JSON: %s", line)
		}
		if rec["msg"] == "request" && rec["request_id"] == nil {
			t.Fatalf("no request id: %s", line)
		}
	}
}

func metricSeries(t *testing.T, e *testEnv) []string {
	t.Helper()
	r := e.get("/metrics", "").want(200)
	var out []string
	for _, line := range strings.Split(string(r.Body), "\n") {
		if strings.HasPrefix(line, "http_") {
			out = append(out, line[:strings.LastIndexByte(line, ' ')])
		}
	}
	return out
}

func TestMetricsUseRouteTemplates(t *testing.T) {
	e := newEnv(t, nil)
	e.get("/nope-0", "").want(404)
	e.get("/api/v1/members/1", e.adminT).want(200)
	e.get("/api/v1/members/2", e.adminT).want(404)
	before := metricSeries(t, e)
	for i := 0; i < 1000; i++ {
		path := fmt.Sprintf("/%x/%d", rand.Uint64(), i)
		method := []string{"GET", "POST", "BREW", "PROPFIND", "TRACE"}[i%5]
		resp, err := e.f.Test(httptest.NewRequest(method, path, nil), -1)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	e.get("/api/v1/members/3", e.adminT)
	after := metricSeries(t, e)
	grew := map[string]bool{}
	for _, s := range after {
		grew[s] = true
	}
	for _, s := range before {
		delete(grew, s)
	}
	// POST/OTHER on the unmatched label may appear once each; nothing per path.
	for s := range grew {
		if !strings.Contains(s, `route="unmatched"`) && !strings.Contains(s, `route="/metrics"`) {
			t.Errorf("new series: %s", s)
		}
	}
	joined := strings.Join(after, "\n")
	// Fiber refuses methods it does not know before any handler; one it knows but we
	// do not serve (TRACE) is labelled OTHER.
	if strings.Contains(joined, `method="TRACE"`) || !strings.Contains(joined, `method="OTHER"`) {
		t.Fatalf("a method outside the known set is not labelled OTHER:\n%s", joined)
	}
	if !strings.Contains(joined, `route="/api/v1/members/:id"`) || regexp.MustCompile(`route="/api/v1/members/\d`).MatchString(joined) {
		t.Fatalf("routes are not labelled by template:\n%s", joined)
	}
}

func TestReadiness(t *testing.T) {
	e := newEnv(t, nil)
	e.get("/healthz", "").want(200)
	e.get("/readyz", "").want(200)
	down := errors.New("connection refused")
	e.ready.Store(&down)
	r := e.get("/readyz", "").want(503)
	if r.errCode() != "unavailable" || strings.Contains(string(r.Body), "refused") || r.Header.Get("Retry-After") != "2" {
		t.Fatalf("readyz while down: Retry-After %q, %s", r.Header.Get("Retry-After"), r.Body)
	}
	e.get("/healthz", "").want(200) // the process is still up
	e.ready.Store(nil)
	e.get("/readyz", "").want(200) // and ready again once the database is back

	// With the real probe: a closed pool is not ready.
	e.db.Close()
	e.get("/readyz", "").want(503)
}

// TestOpenAPICoversEveryRoute keeps routes.go and openapi.yaml listing the same endpoints.
func TestOpenAPICoversEveryRoute(t *testing.T) {
	e := newEnv(t, nil)
	openapiRouter(t)
	served := map[string]bool{}
	param := regexp.MustCompile(`:(\w+)`)
	for _, r := range e.f.GetRoutes(true) {
		if r.Method == "HEAD" || strings.HasPrefix(r.Path, "/test/") {
			continue
		}
		served[r.Method+" "+param.ReplaceAllString(r.Path, "{$1}")] = true
	}
	documented := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented[method+" "+path] = true
		}
	}
	var missing, stale []string
	for k := range served {
		if !documented[k] {
			missing = append(missing, k)
		}
	}
	for k := range documented {
		if !served[k] {
			stale = append(stale, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(stale)
	if len(missing)+len(stale) > 0 {
		t.Fatalf("served but not documented: %v\ndocumented but not served: %v", missing, stale)
	}
	if string(e.get("/openapi.yaml", "").want(200).Body) != string(handlers.OpenAPI()) {
		t.Fatal("/openapi.yaml does not serve the document")
	}
}

// TestSlowRequestsGet408 reads from a real socket: a request that does not arrive within
// the read timeout, or a connection that never sends one, gets 408 in the envelope (which
// clients read as "the server closed this connection") and the connection is closed.
func TestSlowRequestsGet408(t *testing.T) {
	e := newEnv(t, nil)
	f := handlers.New(handlers.Deps{DB: e.db, Services: e.svc, Log: app.NewLogger(io.Discard, "error"),
		Registry: prometheus.NewRegistry(), ReadTimeout: 300 * time.Millisecond})
	addr := serveOnLoopback(t, f)
	for _, sent := range []string{"", "POST /api/v1/auth/password/login HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\n\r\n{\"user"} {
		resp, body := sendRaw(t, addr, sent)
		if resp.StatusCode != 408 || !strings.Contains(body, `"code":"timeout"`) || !resp.Close {
			t.Fatalf("sent %q: %d close=%v %s", sent, resp.StatusCode, resp.Close, body)
		}
	}
}

// serveOnLoopback serves f on a loopback socket until the test ends and returns its
// address.
func serveOnLoopback(t *testing.T, f *fiber.App) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go f.Listener(ln)
	t.Cleanup(func() { f.Shutdown() })
	return ln.Addr().String()
}

// sendRaw writes sent, as it is, on a new connection to addr and reads the answer.
func sendRaw(t *testing.T, addr, sent string) (*http.Response, string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprint(conn, sent)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("sent %.40q: %v", sent, err)
	}
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// TestUnreadableRequestsGetTheEnvelope reads from a real socket (the in-memory test
// connection returns the server's read error instead of its answer): headers past the
// read buffer and a request line that is not HTTP are answered 400 in the envelope, with
// a message that says which, and the connection is closed.
func TestUnreadableRequestsGetTheEnvelope(t *testing.T) {
	e := newEnv(t, nil)
	f := handlers.New(handlers.Deps{DB: e.db, Services: e.svc, Log: app.NewLogger(io.Discard, "error"), Registry: prometheus.NewRegistry()})
	addr := serveOnLoopback(t, f)
	for sent, msg := range map[string]string{
		"GET /api/v1/me HTTP/1.1\r\nHost: x\r\nX-Filler: " + strings.Repeat("a", 70<<10) + "\r\n\r\n": "the request headers are too large",
		"NONSENSE\r\n\r\n": "the request could not be read",
	} {
		resp, body := sendRaw(t, addr, sent)
		if resp.StatusCode != 400 || !strings.Contains(body, `"code":"malformed"`) || !strings.Contains(body, msg) || !resp.Close {
			t.Fatalf("sent %.40q: %d close=%v %s", sent, resp.StatusCode, resp.Close, body)
		}
	}
}

// A streamed body (the monthly report) that fails half-way is a download that did not
// finish, not a shorter file that looks whole; one that ends well is whole; and a client
// that goes away stops the writing.
func TestAStreamedBodyThatFailsIsCutShort(t *testing.T) {
	chunk := strings.Repeat("排名,党员编号,姓名\n", 1000) // many pipe writes, as a report's are
	stopped := make(chan error, 1)
	f := fiber.New()
	f.Get("/:how", func(c *fiber.Ctx) error {
		how := c.Params("how")
		handlers.StreamBody(c, func(w io.Writer) error {
			for i := 0; ; i++ {
				if how == "fails" && i == 3 {
					return errors.New("the database went away")
				}
				if how == "whole" && i == 3 {
					return nil
				}
				if _, err := io.WriteString(w, chunk); err != nil {
					stopped <- err
					return err
				}
			}
		})
		return nil
	})
	addr := serveOnLoopback(t, f)
	get := func(how string) (*http.Response, error) {
		return http.Get("http://" + addr + "/" + how)
	}

	res, err := get("whole")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil || res.StatusCode != 200 || string(body) != strings.Repeat(chunk, 3) {
		t.Fatalf("a whole body: %d, %d bytes, %v", res.StatusCode, len(body), err)
	}

	res, err = get("fails")
	if err != nil {
		t.Fatal(err)
	}
	body, err = io.ReadAll(res.Body)
	res.Body.Close()
	if !errors.Is(err, io.ErrUnexpectedEOF) || len(body) > 3*len(chunk) {
		t.Fatalf("a body that failed after %d bytes read as %d bytes with %v, want unexpected EOF", 3*len(chunk), len(body), err)
	}

	res, err = get("endless")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(res.Body, make([]byte, len(chunk))); err != nil {
		t.Fatal(err)
	}
	res.Body.Close() // the client goes away
	select {
	case err := <-stopped:
		if !errors.Is(err, io.ErrClosedPipe) {
			t.Fatalf("the writing stopped with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the writing went on after its client had gone")
	}
}
