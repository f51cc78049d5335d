package handlers_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"image/png"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"partyledger/app"
	"partyledger/models"
)

func TestWechatLoginBindRefreshLogout(t *testing.T) {
	e := newEnv(t, nil)
	tr := e.seedTree()

	// An unknown openid gets a bind token, not tokens.
	var unbound struct {
		Status    string `json:"status"`
		BindToken string `json:"bind_token"`
	}
	e.post("/api/v1/auth/wechat/login", "", map[string]string{"code": "ok-openid-alice"}).want(200).decode(&unbound)
	if unbound.Status != "unbound" || unbound.BindToken == "" {
		t.Fatalf("unbound login: %+v", unbound)
	}
	// A bind token is not an access token.
	e.get("/api/v1/me", unbound.BindToken).want(401)

	// Alice's secretary issues her an invite code.
	var inv app.Invite
	e.post(fmt.Sprintf("/api/v1/members/%d/invite", tr.alice), tr.secT, nil).want(201).decode(&inv)
	if len(inv.InviteCode) != 10 || !inv.ExpiresAt.After(time.Now()) {
		t.Fatalf("invite: %+v", inv)
	}
	if got := e.post("/api/v1/auth/wechat/bind", "", map[string]string{"bind_token": unbound.BindToken, "invite_code": "ZZZZZZZZZZ"}).want(422); got.errFields()["invite_code"] == "" {
		t.Fatalf("wrong invite code: %s", got.Body)
	}
	// Codes are accepted as people type them: lower case, with a dash.
	typed := strings.ToLower(inv.InviteCode[:5] + "-" + inv.InviteCode[5:])
	var pair app.TokenPair
	e.post("/api/v1/auth/wechat/bind", "", map[string]string{"bind_token": unbound.BindToken, "invite_code": typed}).want(200).decode(&pair)
	if pair.Status != "bound" || pair.TokenType != "Bearer" || pair.ExpiresIn != 900 || pair.AccessToken == "" || pair.RefreshToken == "" {
		t.Fatalf("bind: %+v", pair)
	}
	var me struct {
		ID       int64 `json:"id"`
		MemberNo string
	}
	e.get("/api/v1/me", pair.AccessToken).want(200).decode(&me)
	if me.ID != tr.alice {
		t.Fatalf("bound to member %d, want alice %d", me.ID, tr.alice)
	}
	// The bind is in the audit log of alice's branch, for the admins over it.
	var audit app.List[models.AuditRecord]
	e.get(fmt.Sprintf("/api/v1/audit?org_id=%d&limit=100", tr.b1), e.adminT).want(200).decode(&audit)
	bound := 0
	for _, r := range audit.Items {
		if r.Action == "member.wechat_bound" && r.EntityID == tr.alice && r.ActorID != nil && *r.ActorID == tr.alice {
			bound++
		}
	}
	if bound != 1 {
		t.Fatalf("%d audit records of alice's bind in her branch's log", bound)
	}

	// The invite code was single use.
	e.post("/api/v1/auth/wechat/login", "", map[string]string{"code": "ok-openid-mallory"}).want(200).decode(&unbound)
	e.post("/api/v1/auth/wechat/bind", "", map[string]string{"bind_token": unbound.BindToken, "invite_code": inv.InviteCode}).want(422)
	// A fresh code for alice cannot bind a second WeChat account to her.
	e.post(fmt.Sprintf("/api/v1/members/%d/invite", tr.alice), e.adminT, nil).want(201).decode(&inv)
	if r := e.post("/api/v1/auth/wechat/bind", "", map[string]string{"bind_token": unbound.BindToken, "invite_code": inv.InviteCode}); r.Status != 409 {
		t.Fatalf("second WeChat account for alice: %d %s", r.Status, r.Body)
	}
	// A new invite revokes the earlier unused one.
	var inv2 app.Invite
	e.post(fmt.Sprintf("/api/v1/members/%d/invite", tr.bob), e.adminT, nil).want(201).decode(&inv)
	e.post(fmt.Sprintf("/api/v1/members/%d/invite", tr.bob), e.adminT, nil).want(201).decode(&inv2)
	e.post("/api/v1/auth/wechat/bind", "", map[string]string{"bind_token": unbound.BindToken, "invite_code": inv.InviteCode}).want(422)

	// Alice logs in again with WeChat and gets tokens directly.
	var again app.TokenPair
	e.post("/api/v1/auth/wechat/login", "", map[string]string{"code": "ok-openid-alice"}).want(200).decode(&again)
	if again.Status != "bound" || again.AccessToken == "" {
		t.Fatalf("bound login: %+v", again)
	}

	// Refresh rotates; the spent token's reuse revokes the whole family.
	var next app.TokenPair
	e.post("/api/v1/auth/refresh", "", map[string]string{"refresh_token": pair.RefreshToken}).want(200).decode(&next)
	if next.RefreshToken == pair.RefreshToken || next.AccessToken == "" {
		t.Fatal("refresh did not rotate")
	}
	e.post("/api/v1/auth/refresh", "", map[string]string{"refresh_token": pair.RefreshToken}).want(401)
	e.post("/api/v1/auth/refresh", "", map[string]string{"refresh_token": next.RefreshToken}).want(401)
	// The other login family of alice is untouched.
	var other app.TokenPair
	e.post("/api/v1/auth/refresh", "", map[string]string{"refresh_token": again.RefreshToken}).want(200).decode(&other)

	// Log-out revokes the family; only the owner may log a token out.
	e.post("/api/v1/auth/logout", tr.bobT, map[string]string{"refresh_token": other.RefreshToken}).want(404)
	e.send(request{method: "POST", path: "/api/v1/auth/logout", token: other.AccessToken, ctype: "application/json",
		body: []byte(fmt.Sprintf(`{"refresh_token":%q}`, other.RefreshToken))}).want(204)
	e.post("/api/v1/auth/refresh", "", map[string]string{"refresh_token": other.RefreshToken}).want(401)
	e.post("/api/v1/auth/logout", "", map[string]string{"refresh_token": other.RefreshToken}).want(401)
	e.post("/api/v1/auth/refresh", "", map[string]string{"refresh_token": "rt_not-a-real-token-at-all"}).want(401)
	e.post("/api/v1/auth/refresh", "", map[string]string{}).want(422)

	// Mallory's WeChat account binds to bob with his newest code, typed with spaces.
	spaced := inv2.InviteCode[:3] + " " + inv2.InviteCode[3:6] + " " + inv2.InviteCode[6:]
	e.post("/api/v1/auth/wechat/bind", "", map[string]string{"bind_token": unbound.BindToken, "invite_code": spaced}).want(200).decode(&pair)
	e.get("/api/v1/me", pair.AccessToken).want(200).decode(&me)
	if me.ID != tr.bob {
		t.Fatalf("bound to member %d, want bob %d", me.ID, tr.bob)
	}
	// Its bind token, still unexpired, cannot bind the same account to carol too.
	var carols app.Invite
	e.post(fmt.Sprintf("/api/v1/members/%d/invite", tr.carol), e.adminT, nil).want(201).decode(&carols)
	r := e.post("/api/v1/auth/wechat/bind", "", map[string]string{"bind_token": unbound.BindToken, "invite_code": carols.InviteCode}).want(409)
	if !strings.Contains(string(r.Body), "already bound to another member") {
		t.Fatalf("one WeChat account for two members: %s", r.Body)
	}
	var carol models.Member
	if err := e.db.R.Take(&carol, tr.carol).Error; err != nil || carol.WechatOpenID != nil {
		t.Fatalf("carol after the refused bind: openid %v, %v", carol.WechatOpenID, err)
	}
	// Nothing of the refused bind was kept: carol's code is still good for her own account.
	e.post("/api/v1/auth/wechat/login", "", map[string]string{"code": "ok-openid-carol"}).want(200).decode(&unbound)
	e.post("/api/v1/auth/wechat/bind", "", map[string]string{"bind_token": unbound.BindToken, "invite_code": carols.InviteCode}).want(200)

	// Alice's log-in, the reuse of her spent token and her log-out are in her branch's
	// audit log: who, how, from where, and how many tokens each revoked; never a token.
	e.get(fmt.Sprintf("/api/v1/audit?org_id=%d&limit=100", tr.b1), e.adminT).want(200).decode(&audit)
	var sessions []string
	for _, r := range audit.Items {
		if !strings.HasPrefix(r.Action, "auth.") && r.Action != "member.wechat_bound" {
			continue
		}
		if r.EntityID != tr.alice || strings.Contains(r.After, "rt_") || strings.Contains(r.After, pair.AccessToken[:20]) || !strings.Contains(r.After, `"ip":"0.0.0.0"`) {
			t.Fatalf("an audit record of alice's sessions: %+v", r)
		}
		by := "nobody"
		if r.ActorID != nil && *r.ActorID == tr.alice {
			by = "alice"
		}
		sessions = append(sessions, fmt.Sprintf("%s by %s: %s", r.Action, by, r.After))
	}
	want := []string{
		`member.wechat_bound by alice: {"invite_id":1,"ip":"0.0.0.0"}`,
		`auth.login by alice: {"ip":"0.0.0.0","method":"wechat"}`,
		`auth.token_reused by nobody: {"ip":"0.0.0.0","revoked":2}`,
		`auth.logout by alice: {"ip":"0.0.0.0","revoked":2}`,
	}
	if !slices.Equal(sessions, want) {
		t.Fatalf("alice's sessions in the audit log:\n%s\nwant\n%s", strings.Join(sessions, "\n"), strings.Join(want, "\n"))
	}
}

func TestWechatFailuresCreateNothing(t *testing.T) {
	e := newEnv(t, nil)
	tr := e.seedTree()
	before := e.countMembers()
	cases := []struct {
		code   string
		status int
	}{
		{"err-40029", 401}, // invalid code
		{"err-40163", 401}, // code already used
		{"err-40226", 403}, // high-risk user
		{"err-45011", 429}, // frequency limit
		{"err--1", 503},    // WeChat busy
		{"err-99999", 502}, // an error code we do not know
		{"textplain", 502}, // a text/plain error body
		{"http500", 503},
		{"http404", 502},    // an openid, but not under 200
		{"noopenid", 502},   // success without an openid
		{"longopenid", 502}, // an openid longer than WeChat's
		{"slow", 503},       // timeout
	}
	for _, c := range cases {
		t.Run(c.code, func(t *testing.T) {
			calls := e.wx.calls.Load()
			start := time.Now()
			r := e.post("/api/v1/auth/wechat/login", "", map[string]string{"code": c.code})
			if r.Status != c.status {
				t.Fatalf("status %d, want %d: %s", r.Status, c.status, r.Body)
			}
			if e.wx.calls.Load() != calls+1 {
				t.Fatal("the fake WeChat was not called")
			}
			if c.code == "slow" && time.Since(start) > 1500*time.Millisecond {
				t.Fatalf("the timeout did not cut the call short: %v", time.Since(start))
			}
			if c.status == 429 || c.status == 503 {
				if r.Header.Get("Retry-After") == "" {
					t.Error("no Retry-After")
				}
			}
		})
	}
	if got := e.countMembers(); got != before {
		t.Fatalf("members %d, want %d", got, before)
	}
	var bound int64
	e.db.R.Model(&models.Member{}).Where("wechat_openid IS NOT NULL").Count(&bound)
	if bound != 0 {
		t.Fatalf("%d members got bound", bound)
	}
	_ = tr
	// Invalid input never reaches WeChat.
	calls := e.wx.calls.Load()
	e.post("/api/v1/auth/wechat/login", "", map[string]string{"code": ""}).want(422)
	e.post("/api/v1/auth/wechat/login", "", map[string]string{"code": strings.Repeat("x", 129)}).want(422)
	e.post("/api/v1/auth/wechat/login", "", map[string]string{"code": "has space"}).want(422)
	e.post("/api/v1/auth/wechat/login", "", map[string]string{"code": "微信登录码"}).want(422)
	e.post("/api/v1/auth/wechat/login", "", map[string]string{"code": "tab\there"}).want(422)
	e.post("/api/v1/auth/wechat/login", "", map[string]any{"code": 12}).want(422)
	if e.wx.calls.Load() != calls {
		t.Fatal("invalid codes reached WeChat")
	}

	// A server without WeChat's credentials (staff log in with passwords) says so, and
	// never calls WeChat. Half of them is refused at start (TestConfigRefusesBadValues).
	h := newEnv(t, map[string]string{"LEDGER_WECHAT_APPID": "", "LEDGER_WECHAT_SECRET": ""})
	r := h.post("/api/v1/auth/wechat/login", "", map[string]string{"code": "ok-openid-alice"}).want(503)
	if !strings.Contains(string(r.Body), "not configured") || h.wx.calls.Load() != 0 {
		t.Fatalf("without WeChat: %s, %d calls to WeChat", r.Body, h.wx.calls.Load())
	}
}

func TestDemoCodes(t *testing.T) {
	// Off by default: a demo code is just a code, which WeChat rejects.
	e := newEnv(t, nil)
	e.post("/api/v1/auth/wechat/login", "", map[string]string{"code": "demo:D00001"}).want(401)
	if e.wx.calls.Load() != 1 {
		t.Fatal("without demo mode the code must go to WeChat")
	}

	// One month of activity keeps the test quick under -race; the code is the same for four.
	d := newEnv(t, map[string]string{"LEDGER_DEMO": "1", "LEDGER_DEMO_MONTHS": "1", "LEDGER_ADMIN_USERNAME": "", "LEDGER_ADMIN_PASSWORD": ""})
	var pair app.TokenPair
	d.post("/api/v1/auth/wechat/login", "", map[string]string{"code": "demo:D00001"}).want(200).decode(&pair)
	var me struct {
		MemberNo string `json:"member_no"`
		Roles    []app.Grant
	}
	d.get("/api/v1/me", pair.AccessToken).want(200).decode(&me)
	if me.MemberNo != "D00001" || len(me.Roles) == 0 {
		t.Fatalf("demo member: %+v", me)
	}
	// D00001 is a branch's secretary: the claims in the queue show their photos, which
	// the secretary may open, and every demo claim whose rule needs evidence has one.
	var pending app.List[models.Claim]
	d.get("/api/v1/claims?status=pending&limit=100", pair.AccessToken).want(200).decode(&pending)
	shown := 0
	for _, c := range pending.Items {
		if strings.HasPrefix(c.RuleCode, "four_ones.") && len(c.EvidenceIDs) == 1 {
			r := d.get(fmt.Sprintf("/api/v1/uploads/%d", c.EvidenceIDs[0]), pair.AccessToken).want(200)
			if img, err := png.Decode(bytes.NewReader(r.Body)); err != nil || r.Header.Get("Content-Type") != "image/png" || img.Bounds().Dx() < 100 {
				t.Fatalf("claim %d's photo: %s, %v", c.ID, r.Header.Get("Content-Type"), err)
			}
			shown++
		}
	}
	var bare int64
	d.db.R.Raw(`SELECT COUNT(*) FROM claims c JOIN rules r ON r.code = c.rule_code AND r.version = c.rule_version
		WHERE r.needs_evidence AND NOT EXISTS (SELECT 1 FROM claim_evidence e JOIN uploads u ON u.id = e.upload_id WHERE e.claim_id = c.id AND u.owner_id = c.member_id)`).Scan(&bare)
	if len(pending.Items) == 0 || shown == 0 || bare != 0 {
		t.Fatalf("the demo secretary's queue: %d claims, %d 四个一 photos shown; %d claims needing evidence have no photo of their claimant's", len(pending.Items), shown, bare)
	}
	// Its party groups' meetings (党小组会) are the groups', checked in at by their members only.
	var groupMeetings, atGroups, strangers, branchGroupMeetings int64
	d.db.R.Raw(`SELECT COUNT(*) FROM activities a JOIN orgs o ON o.id = a.org_id WHERE o.kind = 'group'`).Scan(&groupMeetings)
	d.db.R.Raw(`SELECT COUNT(*) FROM checkins c JOIN activities a ON a.id = c.activity_id JOIN orgs o ON o.id = a.org_id WHERE o.kind = 'group'`).Scan(&atGroups)
	d.db.R.Raw(`SELECT COUNT(*) FROM checkins c JOIN activities a ON a.id = c.activity_id JOIN orgs o ON o.id = a.org_id JOIN members m ON m.id = c.member_id
		WHERE o.kind = 'group' AND (m.group_id IS NULL OR m.group_id <> a.org_id)`).Scan(&strangers)
	d.db.R.Raw(`SELECT COUNT(*) FROM activities a JOIN orgs o ON o.id = a.org_id WHERE o.kind <> 'group' AND a.title = '党小组会'`).Scan(&branchGroupMeetings)
	if groupMeetings == 0 || atGroups == 0 || strangers != 0 || branchGroupMeetings != 0 {
		t.Fatalf("the demo's 党小组会: %d of groups (%d check-ins, %d by members of no such group), %d of other orgs", groupMeetings, atGroups, strangers, branchGroupMeetings)
	}
	d.post("/api/v1/auth/wechat/login", "", map[string]string{"code": "demo:NOPE"}).want(401)
	// A member number typed in lower case is the same member's, on both databases.
	d.post("/api/v1/auth/wechat/login", "", map[string]string{"code": "demo:d00001"}).want(200).decode(&pair)
	if d.get("/api/v1/me", pair.AccessToken).want(200).decode(&me); me.MemberNo != "D00001" {
		t.Fatalf("demo:d00001 logged in as %+v", me)
	}
	// A disabled demo member has no way in either.
	if err := d.db.W.Model(&models.Member{}).Where("member_no = ?", "D00002").Update("status", models.StatusInactive).Error; err != nil {
		t.Fatal(err)
	}
	d.post("/api/v1/auth/wechat/login", "", map[string]string{"code": "demo:D00002"}).want(401)
	if d.wx.calls.Load() != 0 {
		t.Fatal("demo codes must not call WeChat")
	}
	var n int64
	d.db.R.Model(&models.Member{}).Count(&n)
	var orgs []models.Org
	d.db.R.Find(&orgs)
	kinds := map[models.OrgKind]int{}
	for _, o := range orgs {
		kinds[o.Kind]++
	}
	if n != 3000 || kinds[models.KindGeneralBranch] != 8 || kinds[models.KindBranch] != 130 || kinds[models.KindCommittee] != 1 {
		t.Fatalf("demo shape: %d members, %v", n, kinds)
	}
	// Months of activity: the secretary has a queue, members have ledgers, and it verifies.
	var queue app.List[models.Claim]
	d.get("/api/v1/approvals", pair.AccessToken).want(200).decode(&queue)
	if len(queue.Items) == 0 {
		t.Fatal("the demo secretary's queue is empty")
	}
	var entries app.List[models.Entry]
	d.get(fmt.Sprintf("/api/v1/members/%d/entries?limit=100", queue.Items[0].MemberID), pair.AccessToken).want(200).decode(&entries)
	periods := map[models.Period]bool{}
	for _, e := range entries.Items {
		periods[e.Period] = true
	}
	if len(entries.Items) == 0 || len(periods) != 1 {
		t.Fatalf("a demo member's entries: %d in %d months", len(entries.Items), len(periods))
	}
	demoKeepsTheLedgersRules(t, d.db, d.cfg.Location)
	rep, err := app.Verify(t.Context(), d.db)
	if err != nil || rep.Entries < 5_000 {
		t.Fatalf("demo ledger: %+v %v", rep, err)
	}
}

func TestPasswordLoginAndLimits(t *testing.T) {
	// Hourly windows: no token comes back while the test runs, however slow bcrypt is
	// under -race.
	limits := map[string]string{"LEDGER_LOGIN_LIMIT_USER": "5/1h", "LEDGER_LOGIN_LIMIT_IP": "10/1h"}
	e := newEnv(t, limits)
	var pair app.TokenPair
	e.post("/api/v1/auth/password/login", "", map[string]string{"username": adminUser, "password": adminPass}).want(200).decode(&pair)
	e.get("/api/v1/me", pair.AccessToken).want(200)
	e.post("/api/v1/auth/password/login", "", map[string]string{"username": adminUser, "password": "wrong password"}).want(401)
	e.post("/api/v1/auth/password/login", "", map[string]string{"username": "nobody", "password": "whatever1"}).want(401)
	// A username matches however it is cased, as a phone's keyboard may capitalise it.
	e.post("/api/v1/auth/password/login", "", map[string]string{"username": "Root-Admin", "password": adminPass}).want(200)
	// The two log-ins are audited; the refused ones are not (the log keeps those).
	var logins []models.AuditRecord
	var admin models.Member
	e.db.R.Where("action = ?", "auth.login").Find(&logins)
	e.db.R.Where("username = ?", adminUser).Take(&admin)
	if len(logins) != 2 || logins[0].ActorID == nil || *logins[0].ActorID != admin.ID || logins[1].After != `{"ip":"0.0.0.0","method":"password"}` {
		t.Fatalf("audited log-ins: %+v", logins)
	}
	// Each field is checked on its own, before any attempt is counted.
	for _, c := range []struct{ username, password, field string }{
		{"", adminPass, "username"},
		{"   ", adminPass, "username"},
		{strings.Repeat("u", 65), adminPass, "username"},
		{adminUser, "", "password"},
		{adminUser, strings.Repeat("p", 73), "password"},
	} {
		r := e.post("/api/v1/auth/password/login", "", map[string]string{"username": c.username, "password": c.password}).want(422)
		if f := r.errFields(); len(f) != 1 || f[c.field] == "" {
			t.Fatalf("username %q, password of %d bytes: fields %v, want only %s", c.username, len(c.password), f, c.field)
		}
	}
	e.post("/api/v1/auth/password/login", "", map[string]string{"username": "", "password": ""}).want(422)

	// Per username: 5 attempts in the window, whichever IP they come from, and however the
	// username is cased: it matches without regard to case.
	for _, who := range []string{strings.ToUpper(adminUser), " " + adminUser + " "} {
		e.post("/api/v1/auth/password/login", "", map[string]string{"username": who, "password": "wrong again"}).want(401)
	}
	r := e.post("/api/v1/auth/password/login", "", map[string]string{"username": adminUser, "password": adminPass}).want(429)
	if r.Header.Get("Retry-After") == "" {
		t.Fatal("429 without Retry-After")
	}

	// Per client IP: a spoofed X-Forwarded-For from an untrusted peer changes nothing.
	limited := false
	for i := 0; i < 12 && !limited; i++ {
		r := e.send(request{method: "POST", path: "/api/v1/auth/password/login", ctype: "application/json",
			header: map[string]string{"X-Forwarded-For": fmt.Sprintf("203.0.113.%d", i)},
			body:   []byte(fmt.Sprintf(`{"username":"user%d","password":"password1"}`, i))})
		limited = r.Status == 429
	}
	if !limited {
		t.Fatal("12 log-ins from one IP were never limited by a limit of 10")
	}

	// Behind a trusted proxy, X-Forwarded-For names the client, so clients are apart.
	limits["LEDGER_TRUSTED_PROXIES"] = "0.0.0.0/32"
	p := newEnv(t, limits)
	for i := 0; i < 12; i++ {
		r := p.send(request{method: "POST", path: "/api/v1/auth/password/login", ctype: "application/json",
			header: map[string]string{"X-Forwarded-For": fmt.Sprintf("198.51.100.7, 203.0.113.%d", i)},
			body:   []byte(fmt.Sprintf(`{"username":"user%d","password":"password1"}`, i))})
		if r.Status != 401 {
			t.Fatalf("client %d behind the proxy: %d %s", i, r.Status, r.Body)
		}
	}
	// Through two proxies: the rightmost address is the trusted proxy's own, so the client
	// is the one before it.
	for i := 0; i < 12; i++ {
		r := p.send(request{method: "POST", path: "/api/v1/auth/password/login", ctype: "application/json",
			header: map[string]string{"X-Forwarded-For": fmt.Sprintf("203.0.113.%d, 0.0.0.0", 100+i)},
			body:   []byte(fmt.Sprintf(`{"username":"user%d","password":"password1"}`, i))})
		if r.Status != 401 {
			t.Fatalf("client %d behind two proxies: %d %s", i, r.Status, r.Body)
		}
	}
}

func TestForgedTokensAreRejected(t *testing.T) {
	e := newEnv(t, nil)
	key := []byte(e.cfg.JWTSecret)
	now := time.Now()
	sign := func(method jwt.SigningMethod, k any, c jwt.RegisteredClaims) string {
		s, err := jwt.NewWithClaims(method, c).SignedString(k)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	good := jwt.RegisteredClaims{Issuer: "partyledger", Subject: "1", Audience: jwt.ClaimStrings{"partyledger-api"},
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Minute))}
	valid := sign(jwt.SigningMethodHS256, key, good)
	e.get("/api/v1/me", valid).want(200) // the control: a correctly made token works

	with := func(f func(*jwt.RegisteredClaims)) jwt.RegisteredClaims { c := good; f(&c); return c }
	parts := strings.Split(valid, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(payload), `"sub":"1"`, `"sub":"2"`, 1))) + "." + parts[2]
	none := sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, good)

	cases := map[string]string{
		"alg none":       none,
		"tampered":       tampered,
		"expired":        sign(jwt.SigningMethodHS256, key, with(func(c *jwt.RegisteredClaims) { c.ExpiresAt = jwt.NewNumericDate(now.Add(-time.Hour)) })),
		"no expiry":      sign(jwt.SigningMethodHS256, key, with(func(c *jwt.RegisteredClaims) { c.ExpiresAt = nil })),
		"wrong issuer":   sign(jwt.SigningMethodHS256, key, with(func(c *jwt.RegisteredClaims) { c.Issuer = "someone-else" })),
		"wrong audience": sign(jwt.SigningMethodHS256, key, with(func(c *jwt.RegisteredClaims) { c.Audience = jwt.ClaimStrings{"partyledger-bind"} })),
		"other key":      sign(jwt.SigningMethodHS256, []byte("another-key-another-key-another-key!"), good),
		"HS512":          sign(jwt.SigningMethodHS512, key, good),
		"unknown member": sign(jwt.SigningMethodHS256, key, with(func(c *jwt.RegisteredClaims) { c.Subject = "999999" })),
		"bad subject":    sign(jwt.SigningMethodHS256, key, with(func(c *jwt.RegisteredClaims) { c.Subject = "admin" })),
		"50,000 dots":    strings.Repeat(".", 50_000),
		"garbage":        "not-a-token",
		"three garbage":  "a.b.c",
		"empty payload":  parts[0] + ".." + parts[2],
	}
	for name, tok := range cases {
		t.Run(name, func(t *testing.T) {
			e.get("/api/v1/me", tok).want(401)
		})
	}
	// A valid token under another scheme is no bearer token; the scheme's case does not
	// matter (RFC 7235).
	e.send(request{method: "GET", path: "/api/v1/me", header: map[string]string{"Authorization": "bearer " + e.adminT}}).want(200)
	for name, h := range map[string]string{"none": "", "basic": "Basic YWRtaW46YWRtaW4=", "bearer only": "Bearer", "bearer empty": "Bearer ",
		"token under Basic": "Basic " + e.adminT, "token under Token": "Token " + e.adminT} {
		t.Run("header "+name, func(t *testing.T) {
			r := e.send(request{method: "GET", path: "/api/v1/me", header: map[string]string{"Authorization": h}}).want(401)
			if r.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
}

func TestRolesAndStatusTakeEffectAtOnce(t *testing.T) {
	e := newEnv(t, nil)
	tr := e.seedTree()
	e.get("/api/v1/members", tr.secT).want(200)
	e.get("/api/v1/members", tr.secT).want(200) // now the server has the roles cached
	// Removing the secretary's role stops the very same token at once.
	e.json("PUT", fmt.Sprintf("/api/v1/members/%d/roles", tr.sec), e.adminT, []any{}).want(200)
	e.get("/api/v1/members", tr.secT).want(403)
	e.get("/api/v1/me", tr.secT).want(200)
	// Granting it back works at once too, and so does an import that moves a member.
	e.json("PUT", fmt.Sprintf("/api/v1/members/%d/roles", tr.sec), e.adminT, []map[string]any{{"role": "secretary", "org_id": tr.b1}}).want(200)
	e.get(fmt.Sprintf("/api/v1/members/%d", tr.alice), tr.secT).want(200)
	e.importFile(e.adminT, "move.csv", []byte(fmt.Sprintf("member_no,name,branch\nS001,陈书记,%d\n", tr.b2))).want(200)
	var moved struct {
		BranchID int64 `json:"branch_id"`
	}
	e.get("/api/v1/me", tr.secT).want(200).decode(&moved)
	if moved.BranchID != tr.b2 {
		t.Fatalf("after the import the secretary is in branch %d, want %d", moved.BranchID, tr.b2)
	}

	// Disabling a member ends their access and their refresh tokens.
	var pair app.TokenPair
	pair, err := e.svc.Identity.Tokens().NewSession(t.Context(), tr.alice)
	if err != nil {
		t.Fatal(err)
	}
	e.json("PATCH", fmt.Sprintf("/api/v1/members/%d", tr.alice), e.adminT, map[string]string{"status": "inactive"}).want(200)
	e.get("/api/v1/me", tr.aliceT).want(401)
	e.post("/api/v1/auth/refresh", "", map[string]string{"refresh_token": pair.RefreshToken}).want(401)
	// Enabled again, she logs in afresh: the sessions from before stay ended.
	e.json("PATCH", fmt.Sprintf("/api/v1/members/%d", tr.alice), e.adminT, map[string]string{"status": "active"}).want(200)
	e.post("/api/v1/auth/refresh", "", map[string]string{"refresh_token": pair.RefreshToken}).want(401)
	e.get("/api/v1/me", e.tokenFor(tr.alice)).want(200)
	// The roles sent are a set: one named twice is granted once, and there are at most 50.
	var grants struct{ Items []app.Grant }
	twice := []map[string]any{{"role": "secretary", "org_id": tr.b1}, {"role": "secretary", "org_id": tr.b1}}
	e.json("PUT", fmt.Sprintf("/api/v1/members/%d/roles", tr.sec), e.adminT, twice).want(200).decode(&grants)
	if len(grants.Items) != 1 || grants.Items[0].Role != models.RoleSecretary || grants.Items[0].OrgID != tr.b1 {
		t.Fatalf("a role named twice: %+v", grants.Items)
	}
	many := make([]map[string]any, 51)
	for i := range many {
		many[i] = map[string]any{"role": "secretary", "org_id": tr.b1}
	}
	if f := e.json("PUT", fmt.Sprintf("/api/v1/members/%d/roles", tr.sec), e.adminT, many).want(422).errFields(); f["roles"] == "" {
		t.Fatalf("51 roles: fields %v", f)
	}
	// An admin cannot disable themself or change their own roles.
	var me struct{ ID int64 }
	e.get("/api/v1/me", e.adminT).want(200).decode(&me)
	e.json("PATCH", fmt.Sprintf("/api/v1/members/%d", me.ID), e.adminT, map[string]string{"status": "inactive"}).want(409)
	e.json("PUT", fmt.Sprintf("/api/v1/members/%d/roles", me.ID), e.adminT, []any{}).want(403)
	_ = http.StatusOK
}

// TestAMemberDisabledByTheRosterIsLockedOut: a roster import that marks members 停用 ends
// every way they had in, as disabling them one by one does, and marking them 正常 again
// does not bring their old sessions back.
func TestAMemberDisabledByTheRosterIsLockedOut(t *testing.T) {
	e := newEnv(t, nil)
	tr := e.seedTree()
	if err := e.db.W.Model(&models.Member{}).Where("id = ?", tr.alice).Update("wechat_openid", "wx-alice").Error; err != nil {
		t.Fatal(err)
	}
	e.json("PATCH", fmt.Sprintf("/api/v1/members/%d", tr.sec), e.adminT, map[string]string{"username": "chen.shuji", "password": "党建工作2026"}).want(200)
	passwordLogin := func() *result {
		return e.post("/api/v1/auth/password/login", "", map[string]string{"username": "chen.shuji", "password": "党建工作2026"})
	}
	wechatLogin := func() *result {
		return e.post("/api/v1/auth/wechat/login", "", map[string]string{"code": "ok-wx-alice"})
	}
	var alice, sec app.TokenPair
	wechatLogin().want(200).decode(&alice)
	passwordLogin().want(200).decode(&sec)
	if alice.Status != "bound" || alice.RefreshToken == "" || sec.RefreshToken == "" {
		t.Fatalf("sessions before: %+v %+v", alice, sec)
	}
	roster := func(status string) {
		t.Helper()
		e.importFile(e.adminT, "roster.csv", []byte(fmt.Sprintf("member_no,name,branch,group,status\nA001,王小丽,%d,%d,%s\nS001,陈书记,%d,,%s\n",
			tr.b1, tr.g1, status, tr.b1, status))).want(200)
	}

	roster("停用")
	for name, r := range map[string]*result{
		"alice's access token":  e.get("/api/v1/me", alice.AccessToken),
		"alice's refresh token": e.post("/api/v1/auth/refresh", "", map[string]string{"refresh_token": alice.RefreshToken}),
		"alice's WeChat log-in": wechatLogin(),
		"sec's refresh token":   e.post("/api/v1/auth/refresh", "", map[string]string{"refresh_token": sec.RefreshToken}),
		"sec's password log-in": passwordLogin(),
	} {
		if r.Status != 401 {
			t.Errorf("%s after 停用: %d %s", name, r.Status, r.Body)
		}
	}

	roster("正常")
	e.post("/api/v1/auth/refresh", "", map[string]string{"refresh_token": alice.RefreshToken}).want(401)
	e.post("/api/v1/auth/refresh", "", map[string]string{"refresh_token": sec.RefreshToken}).want(401)
	wechatLogin().want(200).decode(&alice)
	passwordLogin().want(200).decode(&sec)
	e.get("/api/v1/me", alice.AccessToken).want(200)
	e.get("/api/v1/me", sec.AccessToken).want(200)

	// Refresh reads the member's status itself, so a member disabled by any other way
	// (here, straight in the database) cannot refresh either.
	if err := e.db.W.Model(&models.Member{}).Where("id = ?", tr.alice).Update("status", models.StatusInactive).Error; err != nil {
		t.Fatal(err)
	}
	e.post("/api/v1/auth/refresh", "", map[string]string{"refresh_token": alice.RefreshToken}).want(401)
}
