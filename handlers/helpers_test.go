package handlers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"partyledger/app"
	"partyledger/app/apptest"
	"partyledger/handlers"
	"partyledger/models"
)

// Secrets the fake WeChat knows; no response or log line may ever contain them.
const (
	wxAppID      = "wx-test-app"
	wxSecret     = "APPSECRET-must-never-leak-7f3a"
	wxSessionKey = "SESSIONKEY-must-never-leak-91c2"
	adminUser    = "root-admin"
	adminPass    = "correct horse battery"
)

// fakeWechat answers jscode2session by code: "ok-<openid>" succeeds, "err-<n>" returns
// errcode n, "textplain" returns a non-JSON text body, "http500" a server error,
// "http404" an openid under a status other than 200, "noopenid" and "longopenid" a
// success without an openid or with one longer than WeChat's, "slow" answers after the
// client's timeout.
type fakeWechat struct {
	*httptest.Server
	calls atomic.Int64
}

func newFakeWechat(t testing.TB) *fakeWechat {
	t.Helper()
	fw := &fakeWechat{}
	fw.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fw.calls.Add(1)
		q := r.URL.Query()
		if r.URL.Path != "/sns/jscode2session" || q.Get("appid") != wxAppID || q.Get("secret") != wxSecret || q.Get("grant_type") != "authorization_code" {
			w.Header().Set("Content-Type", "text/plain")
			fmt.Fprint(w, `{"errcode":40013,"errmsg":"invalid appid"}`)
			return
		}
		code := q.Get("js_code")
		w.Header().Set("Content-Type", "text/plain") // as WeChat labels its JSON
		switch {
		case strings.HasPrefix(code, "ok-"):
			fmt.Fprintf(w, `{"openid":%q,"session_key":%q}`, strings.TrimPrefix(code, "ok-"), wxSessionKey)
		case strings.HasPrefix(code, "err-"):
			fmt.Fprintf(w, `{"errcode":%s,"errmsg":"some error, session_key %s"}`, strings.TrimPrefix(code, "err-"), wxSessionKey)
		case code == "textplain":
			fmt.Fprint(w, "system error, please retry")
		case code == "http500":
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprint(w, "oops")
		case code == "http404":
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprintf(w, `{"openid":"lost","session_key":%q}`, wxSessionKey)
		case code == "noopenid":
			fmt.Fprintf(w, `{"session_key":%q}`, wxSessionKey)
		case code == "longopenid":
			fmt.Fprintf(w, `{"openid":%q,"session_key":%q}`, strings.Repeat("o", 129), wxSessionKey)
		case code == "slow":
			select {
			case <-time.After(2 * time.Second):
			case <-r.Context().Done():
			}
			fmt.Fprintf(w, `{"openid":"late","session_key":%q}`, wxSessionKey)
		default:
			fmt.Fprint(w, `{"errcode":40029,"errmsg":"invalid code"}`)
		}
	}))
	t.Cleanup(fw.Close)
	return fw
}

// testEnv is the real router over a real database with a fake WeChat.
type testEnv struct {
	t      testing.TB
	db     *app.DB
	cfg    app.Config
	svc    *app.Services
	f      *fiber.App
	wx     *fakeWechat
	logs   *apptest.Buffer
	router routers.Router
	ready  atomic.Pointer[error]
	// reports are the server's report slots, which a test may fill.
	reports chan struct{}
	rootID  int64
	adminT  string // the bootstrap admin's access token
}

var (
	docOnce sync.Once
	doc     *openapi3.T
	docErr  error
)

func openapiRouter(t testing.TB) routers.Router {
	t.Helper()
	docOnce.Do(func() {
		doc, docErr = openapi3.NewLoader().LoadFromData(handlers.OpenAPI())
		if docErr == nil {
			docErr = doc.Validate(context.Background())
		}
	})
	if docErr != nil {
		t.Fatalf("openapi.yaml: %v", docErr)
	}
	r, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatalf("openapi router: %v", err)
	}
	return r
}

// newEnv starts a fresh service. env overrides configuration variables.
func newEnv(t testing.TB, env map[string]string) *testEnv {
	t.Helper()
	e := &testEnv{t: t, wx: newFakeWechat(t), logs: &apptest.Buffer{}, router: openapiRouter(t), reports: make(chan struct{}, 2)}
	vars := map[string]string{
		"LEDGER_DATA_DIR":        t.TempDir(),
		"LEDGER_JWT_SECRET":      "test-signing-key-0123456789abcdef0123456789",
		"LEDGER_WECHAT_APPID":    wxAppID,
		"LEDGER_WECHAT_SECRET":   wxSecret,
		"LEDGER_WECHAT_BASE_URL": e.wx.URL,
		"LEDGER_WECHAT_TIMEOUT":  "300ms",
		"LEDGER_ADMIN_USERNAME":  adminUser,
		"LEDGER_ADMIN_PASSWORD":  adminPass,
	}
	for k, v := range env {
		vars[k] = v
	}
	cfg, err := app.LoadConfig(func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	e.cfg = cfg
	e.db = apptest.OpenDB(t)
	log := app.NewLogger(e.logs, "debug")
	if _, err := app.Bootstrap(context.Background(), e.db, cfg, log); err != nil {
		t.Fatal(err)
	}
	e.svc = app.NewServices(cfg, e.db, nil, log)
	e.f = handlers.New(handlers.Deps{DB: e.db, Services: e.svc, Log: log,
		Registry: prometheus.NewRegistry(), TrustedProxies: cfg.TrustedProxies, Reports: e.reports,
		Ready: func(ctx context.Context) error {
			if p := e.ready.Load(); p != nil {
				return *p
			}
			return e.db.Ping(ctx)
		}})
	var admin models.Member
	if err := e.db.R.Where("username = ?", adminUser).Take(&admin).Error; err == nil {
		e.rootID = admin.BranchID
		e.adminT = e.tokenFor(admin.ID)
	}
	t.Cleanup(func() {
		if t.Failed() {
			logs := e.logs.String()
			t.Logf("server log (last 3000 bytes):\n%s", logs[max(0, len(logs)-3000):])
		}
		for _, secret := range []string{wxSecret, wxSessionKey, adminPass} {
			if strings.Contains(e.logs.String(), secret) {
				t.Errorf("the logs contain the secret %q", secret)
			}
		}
	})
	return e
}

// tokenFor issues an access token for a member directly, for fixtures.
func (e *testEnv) tokenFor(memberID int64) string {
	e.t.Helper()
	pair, err := e.svc.Identity.Tokens().NewSession(context.Background(), memberID)
	if err != nil {
		e.t.Fatal(err)
	}
	return pair.AccessToken
}

type request struct {
	method, path, token string
	ctype               string
	body                []byte
	header              map[string]string
}

type result struct {
	t      testing.TB
	Status int
	Header http.Header
	Body   []byte
}

// send runs one request through the real router, then checks the response against
// openapi.yaml (status, content type and body) and that errors use the envelope.
func (e *testEnv) send(r request) *result {
	e.t.Helper()
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req := httptest.NewRequest(r.method, r.path, body)
	if r.ctype != "" {
		req.Header.Set("Content-Type", r.ctype)
	}
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	resp, err := e.f.Test(req, -1)
	if err != nil {
		e.t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	res := &result{t: e.t, Status: resp.StatusCode, Header: resp.Header, Body: raw}
	for _, secret := range []string{wxSecret, wxSessionKey} {
		if bytes.Contains(raw, []byte(secret)) {
			e.t.Errorf("%s %s: the response contains the secret %q", r.method, r.path, secret)
		}
	}
	if resp.StatusCode >= 400 {
		var env struct {
			Error *struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := json.Unmarshal(raw, &env); err != nil || env.Error == nil || env.Error.Code == "" || env.Error.Message == "" {
			e.t.Errorf("%s %s: status %d without the error envelope: %s", r.method, r.path, resp.StatusCode, raw)
		}
	}
	e.checkContract(r, res)
	return res
}

// checkContract validates a response against openapi.yaml when the path is documented.
func (e *testEnv) checkContract(r request, res *result) {
	e.t.Helper()
	hreq := httptest.NewRequest(r.method, r.path, nil)
	route, params, err := e.router.FindRoute(hreq)
	if err != nil {
		if res.Status != http.StatusNotFound {
			e.t.Errorf("%s %s is not in openapi.yaml but answered %d", r.method, r.path, res.Status)
		}
		return
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: hreq, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}},
		Status: res.Status, Header: res.Header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	in.SetBodyBytes(res.Body)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		e.t.Errorf("%s %s: response %d breaks openapi.yaml: %v\nbody: %.500s", r.method, r.path, res.Status, err, res.Body)
	}
}

func (e *testEnv) get(path, token string) *result {
	e.t.Helper()
	return e.send(request{method: "GET", path: path, token: token})
}

func (e *testEnv) json(method, path, token string, body any) *result {
	e.t.Helper()
	raw, ok := body.([]byte)
	if !ok {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			e.t.Fatal(err)
		}
	}
	return e.send(request{method: method, path: path, token: token, ctype: "application/json", body: raw})
}

func (e *testEnv) post(path, token string, body any) *result {
	e.t.Helper()
	return e.json("POST", path, token, body)
}

// want fails the test unless the status is one of codes.
func (r *result) want(status int) *result {
	r.t.Helper()
	if r.Status != status {
		r.t.Fatalf("status %d, want %d: %s", r.Status, status, r.Body)
	}
	return r
}

func (r *result) decode(v any) {
	r.t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		r.t.Fatalf("decode %s: %v", r.Body, err)
	}
}

// errCode returns the error code of an error answer.
func (r *result) errCode() string {
	var env struct {
		Error models.Error `json:"error"`
	}
	_ = json.Unmarshal(r.Body, &env)
	return env.Error.Code
}

func (r *result) errFields() map[string]string {
	var env struct {
		Error models.Error `json:"error"`
	}
	_ = json.Unmarshal(r.Body, &env)
	return env.Error.Fields
}

// tree is the org tree and members most tests use:
//
//	root (committee)
//	├── gb1 (general branch) ── b1 (branch, with group g1), b2 (branch)
//	└── b3 (branch)
//
// alice is in b1/g1, bob in b2, carol in b3; sec is b1's secretary; lead is the
// committee's leader.
type tree struct {
	gb1, b1, g1, b2, b3             int64
	alice, bob, carol, sec, lead    int64
	aliceT, bobT, secT, leadT, carT string
}

func (e *testEnv) seedTree() tree {
	e.t.Helper()
	var tr tree
	org := func(parent int64, kind, name string) int64 {
		var o models.Org
		e.post("/api/v1/orgs", e.adminT, map[string]any{"parent_id": parent, "kind": kind, "name": name}).want(201).decode(&o)
		return o.ID
	}
	tr.gb1 = org(e.rootID, "general_branch", "文学院党总支")
	tr.b1 = org(tr.gb1, "branch", "教工第一党支部")
	tr.g1 = org(tr.b1, "group", "第一党小组")
	tr.b2 = org(tr.gb1, "branch", "研究生第一党支部")
	tr.b3 = org(e.rootID, "branch", "机关第一党支部")
	member := func(no, name string, branch int64, group *int64) int64 {
		var m models.Member
		e.post("/api/v1/members", e.adminT, map[string]any{"member_no": no, "name": name, "branch_id": branch, "group_id": group}).want(201).decode(&m)
		return m.ID
	}
	tr.alice = member("A001", "王小丽", tr.b1, &tr.g1)
	tr.bob = member("B001", "李明", tr.b2, nil)
	tr.carol = member("C001", "张伟", tr.b3, nil)
	tr.sec = member("S001", "陈书记", tr.b1, nil)
	tr.lead = member("L001", "刘领导", tr.b3, nil)
	e.json("PUT", fmt.Sprintf("/api/v1/members/%d/roles", tr.sec), e.adminT, []map[string]any{{"role": "secretary", "org_id": tr.b1}}).want(200)
	e.json("PUT", fmt.Sprintf("/api/v1/members/%d/roles", tr.lead), e.adminT, []map[string]any{{"role": "leader", "org_id": e.rootID}}).want(200)
	tr.aliceT, tr.bobT, tr.secT, tr.leadT, tr.carT = e.tokenFor(tr.alice), e.tokenFor(tr.bob), e.tokenFor(tr.sec), e.tokenFor(tr.lead), e.tokenFor(tr.carol)
	return tr
}

// newAdmin adds a member (number memberNo) to a branch, makes them an admin over org, and
// returns their id and a token of theirs.
func (e *testEnv) newAdmin(memberNo string, branch, org int64) (int64, string) {
	e.t.Helper()
	var m models.Member
	e.post("/api/v1/members", e.adminT, map[string]any{"member_no": memberNo, "name": "组织员", "branch_id": branch}).want(201).decode(&m)
	e.json("PUT", fmt.Sprintf("/api/v1/members/%d/roles", m.ID), e.adminT, []map[string]any{{"role": "admin", "org_id": org}}).want(200)
	return m.ID, e.tokenFor(m.ID)
}

func (e *testEnv) countMembers() int64 {
	e.t.Helper()
	var n int64
	if err := e.db.R.Model(&models.Member{}).Count(&n).Error; err != nil {
		e.t.Fatal(err)
	}
	return n
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

// listIDs reads one page of a list endpoint and returns the ids of its items, in order.
func listIDs[T any](e *testEnv, path, token string, id func(T) int64) []int64 {
	e.t.Helper()
	var l app.List[T]
	e.get(path, token).want(200).decode(&l)
	var ids []int64
	for _, it := range l.Items {
		ids = append(ids, id(it))
	}
	return ids
}
