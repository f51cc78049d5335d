package handlers_test

import (
	"fmt"
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
