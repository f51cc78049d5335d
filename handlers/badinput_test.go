package handlers_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// TestBadInputNeverFails sends malformed and mistyped bodies and query strings to every
// route, as a member and as an admin: every answer must be documented, in the envelope
// when it is an error, and never a 500.
func TestBadInputNeverFails(t *testing.T) {
	e := newEnv(t, nil)
	tr := e.seedTree()
	bodies := []string{
		``, `null`, `[]`, `{}`, `[1,2]`, `"text"`, `42`, `{"x":1}`, "\x00\xff\xfe", `{"a":` + strings.Repeat(`[`, 2000),
		`{"member_id":"a","points":"x","quantity":true,"rule_code":7,"occurred_on":12,"reason":[],"org_id":{},"claim_ids":"1","action":1,
		  "code":null,"lat":"north","starts_at":5,"name":false,"kind":9,"parent_id":"root","branch_id":-1,"evidence_ids":[-1]}`,
		`{"points":1e400,"quantity":-0.0000001,"member_id":99999999999999999999,"occurred_on":"2026-02-31","period":"13"}`,
		`{"points":0.05,"quantity":1.25,"member_id":0,"org_id":0,"claim_ids":[],"action":"approve","code":"` + strings.Repeat("x", 100) + `"}`,
	}
	queries := []string{"?limit=abc", "?limit=-1", "?cursor=%%%", "?cursor=aWQ6LTE", "?period=2026-13", "?status=lost", "?org_id=x", "?member_id=-4", "?since=soon", "?kind=planet"}
	param := regexp.MustCompile(`:(\w+)`)
	paths := map[string]string{"id": "1", "code": "volunteer.hours", "period": "2026-13"}
	for _, rt := range e.f.GetRoutes(true) {
		if rt.Method == "HEAD" || strings.HasPrefix(rt.Path, "/test/") || rt.Path == "/metrics" {
			continue
		}
		path := param.ReplaceAllStringFunc(rt.Path, func(m string) string { return paths[m[1:]] })
		for _, token := range []string{tr.aliceT, e.adminT} {
			if rt.Method == http.MethodGet {
				for _, q := range queries {
					if r := e.send(request{method: "GET", path: path + q, token: token}); r.Status >= 500 {
						t.Errorf("GET %s%s: %d %s", path, q, r.Status, r.Body)
					}
				}
				continue
			}
			for _, b := range bodies {
				for _, ct := range []string{"application/json", "text/plain", "multipart/form-data; boundary=x"} {
					r := e.send(request{method: rt.Method, path: path, token: token, ctype: ct, body: []byte(b)})
					if r.Status >= 500 {
						t.Errorf("%s %s (%s) %.60q: %d %s", rt.Method, path, ct, b, r.Status, r.Body)
					}
				}
			}
		}
	}
}
