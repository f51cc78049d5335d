package handlers_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"partyledger/app"
	"partyledger/models"
)

// concurrently runs n copies of f at once and returns the statuses they got.
func concurrently(n int, f func(i int) int) map[int]int {
	var mu sync.Mutex
	got := map[int]int{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			s := f(i)
			mu.Lock()
			got[s]++
			mu.Unlock()
		}(i)
	}
	close(start)
	wg.Wait()
	return got
}

func TestOneInviteManyBinds(t *testing.T) {
	e := newEnv(t, nil)
	tr := e.seedTree()
	var inv app.Invite
	e.post(fmt.Sprintf("/api/v1/members/%d/invite", tr.alice), e.adminT, nil).want(201).decode(&inv)
	binds := make([]string, 10)
	for i := range binds {
		var u struct {
			BindToken string `json:"bind_token"`
		}
		e.post("/api/v1/auth/wechat/login", "", map[string]string{"code": fmt.Sprintf("ok-openid-racer-%d", i)}).want(200).decode(&u)
		binds[i] = u.BindToken
	}
	got := concurrently(len(binds), func(i int) int {
		return e.post("/api/v1/auth/wechat/bind", "", map[string]string{"bind_token": binds[i], "invite_code": inv.InviteCode}).Status
	})
	// The others find the code spent (the compare-and-set on the invite), not the member
	// bound: the invite is what they presented.
	if got[200] != 1 || got[422] != len(binds)-1 {
		t.Fatalf("statuses %v: want exactly one bind, and 422 for the others", got)
	}
	var bound int64
	e.db.R.Model(&models.Member{}).Where("wechat_openid IS NOT NULL").Count(&bound)
	if bound != 1 {
		t.Fatalf("%d members bound", bound)
	}
}

func TestOneRefreshTokenManyRefreshes(t *testing.T) {
	e := newEnv(t, nil)
	tr := e.seedTree()
	liveTokens := func() int64 {
		var n int64
		e.db.R.Model(&models.RefreshToken{}).Where("member_id = ? AND revoked_at IS NULL AND used_at IS NULL", tr.bob).Count(&n)
		return n
	}
	others := liveTokens() // bob's other session, from seedTree
	pair, err := e.svc.Identity.Tokens().NewSession(t.Context(), tr.bob)
	if err != nil {
		t.Fatal(err)
	}
	got := concurrently(10, func(int) int {
		return e.post("/api/v1/auth/refresh", "", map[string]string{"refresh_token": pair.RefreshToken}).Status
	})
	// At most one rotation wins; every loser counts as reuse and revokes the family,
	// so even the winner's new token is dead afterwards unless it won alone.
	if got[200] > 1 || got[200]+got[401] != 10 {
		t.Fatalf("statuses %v", got)
	}
	if live := liveTokens() - others; got[401] > 0 && live != 0 {
		t.Fatalf("reuse was seen but %d tokens of the family still live", live)
	}
	if others != 1 || liveTokens() != 1 {
		t.Fatalf("bob's other session was touched: %d live before, %d after", others, liveTokens())
	}
}

func TestExpiredInvite(t *testing.T) {
	e := newEnv(t, map[string]string{"LEDGER_INVITE_TTL": "1ms"})
	tr := e.seedTree()
	var inv app.Invite
	e.post(fmt.Sprintf("/api/v1/members/%d/invite", tr.alice), e.adminT, nil).want(201).decode(&inv)
	time.Sleep(10 * time.Millisecond)
	var u struct {
		BindToken string `json:"bind_token"`
	}
	e.post("/api/v1/auth/wechat/login", "", map[string]string{"code": "ok-openid-late"}).want(200).decode(&u)
	e.post("/api/v1/auth/wechat/bind", "", map[string]string{"bind_token": u.BindToken, "invite_code": inv.InviteCode}).want(422)
	// A disabled member gets no invite.
	e.json("PATCH", fmt.Sprintf("/api/v1/members/%d", tr.bob), e.adminT, map[string]string{"status": "inactive"}).want(200)
	e.post(fmt.Sprintf("/api/v1/members/%d/invite", tr.bob), e.adminT, nil).want(409)
}

func TestExpiredRefreshToken(t *testing.T) {
	e := newEnv(t, map[string]string{"LEDGER_REFRESH_TTL": "1s"})
	tr := e.seedTree()
	fresh, err := e.svc.Identity.Tokens().NewSession(t.Context(), tr.alice)
	if err != nil {
		t.Fatal(err)
	}
	e.post("/api/v1/auth/refresh", "", map[string]string{"refresh_token": fresh.RefreshToken}).want(200)
	stale, err := e.svc.Identity.Tokens().NewSession(t.Context(), tr.alice)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	e.post("/api/v1/auth/refresh", "", map[string]string{"refresh_token": stale.RefreshToken}).want(401)
}

// TestTwoAdminsEditOneRuleAtOnce: edits of one rule racing each other each make a version
// or are told to try again (409); none fails, and no version is made twice. SQLite runs
// the edits one after another, so there every one succeeds; MariaDB lets them read the
// same version at once, and the losers get 409.
func TestTwoAdminsEditOneRuleAtOnce(t *testing.T) {
	e := newEnv(t, nil)
	tr := e.seedTree()
	var second models.Member
	e.post("/api/v1/members", e.adminT, map[string]any{"member_no": "ADM2", "name": "组织员", "branch_id": tr.b1}).want(201).decode(&second)
	e.json("PUT", fmt.Sprintf("/api/v1/members/%d/roles", second.ID), e.adminT, []map[string]any{{"role": "admin", "org_id": e.rootID}}).want(200)
	admins := []string{e.adminT, e.tokenFor(second.ID)}
	const n = 10
	var mu sync.Mutex
	var bodies []string
	got := concurrently(n, func(i int) int {
		r := e.json("PATCH", "/api/v1/rules/volunteer.hours", admins[i%2], map[string]any{"points": i + 1})
		if r.Status != 200 {
			mu.Lock()
			bodies = append(bodies, fmt.Sprintf("%d %s", r.Status, r.Body))
			mu.Unlock()
		}
		return r.Status
	})
	t.Logf("%d edits at once: %v", n, got)
	if got[200]+got[409] != n || got[200] == 0 {
		t.Fatalf("%d edits at once: %v %v", n, got, bodies)
	}
	for _, b := range bodies {
		if !strings.Contains(b, "changed meanwhile") {
			t.Fatalf("a lost edit was told %s", b)
		}
	}
	var versions []int
	if err := e.db.R.Model(&models.Rule{}).Where("code = ?", "volunteer.hours").Order("version").Pluck("version", &versions).Error; err != nil {
		t.Fatal(err)
	}
	if len(versions) != 1+got[200] || versions[len(versions)-1] != 1+got[200] {
		t.Fatalf("versions %v after %d edits took", versions, got[200])
	}
	var audits int64
	e.db.R.Model(&models.AuditRecord{}).Where("action = ? AND entity = ?", "rule.updated", "rule").Count(&audits)
	if audits != int64(got[200]) {
		t.Fatalf("%d audit records for %d edits", audits, got[200])
	}
}
