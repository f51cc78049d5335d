package handlers_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"partyledger/models"
)

// fuzzEnv is one service for a whole fuzz run, with the seed tree, an activity, a claim
// and an appeal to aim at. Each input runs as its own test (e.t is set per input).
func fuzzEnv(f *testing.F) (*testEnv, tree, map[string]int64) {
	e := newEnv(f, nil)
	tr := e.seedTree()
	ids := map[string]int64{}
	var c models.Claim
	e.claim(tr.aliceT, "", map[string]any{"rule_code": "four_ones.read_theory", "occurred_on": today(e), "quantity": 1, "evidence_ids": []int64{e.uploadID(tr.aliceT)}}).want(201).decode(&c)
	ids["claim"] = c.ID
	var act models.Activity
	now := time.Now().UTC()
	e.post("/api/v1/activities", tr.secT, map[string]any{"org_id": tr.b1, "title": "党员活动日", "rule_code": "activity.day",
		"starts_at": now.Add(-time.Hour).Format(time.RFC3339), "ends_at": now.Add(time.Hour).Format(time.RFC3339)}).want(201).decode(&act)
	ids["activity"] = act.ID
	return e, tr, ids
}

// FuzzJSONBodies sends any body to the endpoints that take JSON from members and
// secretaries: claims, decisions, entries, activities, check-ins, appeals. Whatever
// comes in, the answer is the error envelope or a documented success, never a 500.
func FuzzJSONBodies(f *testing.F) {
	e, tr, ids := fuzzEnv(f)
	type target struct{ path, token string }
	targets := []target{
		{"/api/v1/claims", tr.aliceT},
		{fmt.Sprintf("/api/v1/claims/%d/reject", ids["claim"]), tr.secT},
		{fmt.Sprintf("/api/v1/claims/%d/approve", ids["claim"]), tr.secT},
		{"/api/v1/approvals/batch", tr.secT},
		{"/api/v1/entries", tr.secT},
		{"/api/v1/activities", tr.secT},
		{fmt.Sprintf("/api/v1/activities/%d/checkin", ids["activity"]), tr.aliceT},
		{"/api/v1/appeals", tr.aliceT},
		{"/api/v1/appeals/1/uphold", tr.leadT},
	}
	seeds := []string{
		`{"rule_code":"four_ones.read_theory","occurred_on":"2026-11-01","quantity":1,"evidence_ids":[1]}`,
		`{"rule_code":"volunteer.hours","occurred_on":"2026-11-01","quantity":2.5,"note":"敬老院"}`,
		`{"reason":"照片不清楚"}`, `{"claim_ids":[1,2,3],"action":"approve"}`, `{"claim_ids":[],"action":"reject","reason":"x"}`,
		`{"member_id":2,"rule_code":"adjust.bonus","points":1.5,"reason":"r","occurred_on":"2026-11-01"}`,
		`{"org_id":3,"title":"t","rule_code":"meeting.attend","starts_at":"2026-11-01T08:00:00+08:00","ends_at":"2026-11-01T10:00:00+08:00","lat":30.5,"lng":114.3,"radius_m":200}`,
		`{"code":"abc","lat":91,"lng":0}`, `{"period":"2026-11","claim_id":1,"reason":"r"}`, `{"points":-2.55,"reason":"r"}`,
		`{"quantity":1e400}`, `{"quantity":"1"}`, `[]`, `null`, `{`, `{"a":1}{"b":2}`, "\xff\xfe", `{"occurred_on":"2026-02-30"}`,
	}
	for i, s := range seeds {
		f.Add(uint8(i), []byte(s))
	}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		e.t = t
		tg := targets[int(which)%len(targets)]
		res := e.send(request{method: "POST", path: tg.path, token: tg.token, ctype: "application/json", body: body})
		if res.Status >= 500 {
			t.Fatalf("POST %s %q: %d %s", tg.path, body, res.Status, res.Body)
		}
	})
}

// FuzzAuthorization sends any Authorization header to /me: the caller is let in only
// with a token this service signed, as the member it names, and never gets a 500.
func FuzzAuthorization(f *testing.F) {
	e, tr, _ := fuzzEnv(f)
	for _, s := range []string{"Bearer " + tr.aliceT, "Bearer", "Bearer ", "bearer " + tr.aliceT, "Basic YWxpY2U6cHc=", "Bearer a.b.c",
		"Bearer " + strings.Repeat(".", 5000), "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.", "Bearer " + tr.aliceT + "x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		for _, c := range []byte(h) {
			if (c < 0x20 && c != '\t') || c == 0x7f {
				return // not a header value HTTP can carry
			}
		}
		e.t = t
		res := e.send(request{method: "GET", path: "/api/v1/me", header: map[string]string{"Authorization": h}})
		switch {
		case h == "Bearer "+tr.aliceT:
			if res.Status != 200 {
				t.Fatalf("the real token: %d %s", res.Status, res.Body)
			}
		case res.Status == 401:
		case res.Status == 200:
			// Let in: the header must carry a token this service signed, for the member
			// who was answered (the fuzzer may bring back tokens of earlier runs).
			var me struct{ ID int64 }
			res.decode(&me)
			_, tok, _ := strings.Cut(strings.TrimSpace(h), " ")
			claims := jwt.RegisteredClaims{}
			_, err := jwt.ParseWithClaims(strings.TrimSpace(tok), &claims, func(*jwt.Token) (any, error) { return e.cfg.JWTSecret, nil },
				jwt.WithValidMethods([]string{"HS256"}), jwt.WithIssuer("partyledger"), jwt.WithAudience("partyledger-api"), jwt.WithExpirationRequired())
			if err != nil || claims.Subject != fmt.Sprint(me.ID) {
				t.Fatalf("Authorization %q let in member %d: %v", h, me.ID, err)
			}
		default:
			t.Fatalf("Authorization %q: %d %s", h, res.Status, res.Body)
		}
	})
}
