package handlers_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// BenchmarkBranchLeaderboardPage is a member reading their branch's board (32 members,
// 30 with points) through the real router. Its B/op and allocs/op, beside
// BenchmarkHealthz (what the router and the test client allocate for any request), show
// what the page allocates, which sets how often the collector runs under load:
//
//	go test ./handlers -run XXX -bench . -benchmem
func BenchmarkBranchLeaderboardPage(b *testing.B) {
	e := newEnv(b, nil)
	tr := e.seedTree()
	today := time.Now().In(e.cfg.Location).Format("2006-01-02")
	for i := 0; i < 30; i++ {
		var m struct{ ID int64 }
		e.post("/api/v1/members", e.adminT, map[string]any{"member_no": fmt.Sprintf("Z%03d", i), "name": "测试成员", "branch_id": tr.b1}).want(201).decode(&m)
		e.post("/api/v1/entries", e.adminT, map[string]any{"member_id": m.ID, "rule_code": "adjust.bonus", "points": float64(i%7) + 1, "reason": "测试", "occurred_on": today}).want(201)
	}
	benchGet(b, e, fmt.Sprintf("/api/v1/leaderboards/members?org_id=%d&limit=20", tr.b1), tr.aliceT)
}

func BenchmarkHealthz(b *testing.B) {
	benchGet(b, newEnv(b, nil), "/healthz", "")
}

// benchGet times GET path, without the contract checks of e.get.
func benchGet(b *testing.B, e *testEnv, path, token string) {
	get := func() {
		r := httptest.NewRequest("GET", path, nil)
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := e.f.Test(r, -1)
		if err != nil {
			b.Fatal(err)
		}
		if resp.StatusCode != 200 {
			b.Fatalf("GET %s: status %d", path, resp.StatusCode)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}
	get() // the caller's roles are cached from here on
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		get()
	}
}

// BenchmarkRefresh is a member's app rotating its refresh token through the real router,
// one refresh after another: the write of a log-in family (the spent mark, the new row
// and its indexes, expires_at's among them since the sweep purges by it).
func BenchmarkRefresh(b *testing.B) {
	e := newEnv(b, nil)
	tr := e.seedTree()
	pair, err := e.svc.Identity.Tokens().NewSession(b.Context(), tr.alice)
	if err != nil {
		b.Fatal(err)
	}
	rt := pair.RefreshToken
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := httptest.NewRequest("POST", "/api/v1/auth/refresh", strings.NewReader(`{"refresh_token":"`+rt+`"}`))
		r.Header.Set("Content-Type", "application/json")
		resp, err := e.f.Test(r, -1)
		if err != nil {
			b.Fatal(err)
		}
		var next struct {
			RefreshToken string `json:"refresh_token"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&next); err != nil || resp.StatusCode != 200 {
			b.Fatalf("refresh: %d %v", resp.StatusCode, err)
		}
		resp.Body.Close()
		rt = next.RefreshToken
	}
}
