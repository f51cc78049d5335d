package app

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestVerifiedTokenCacheKeepsExpiryAndSignature(t *testing.T) {
	now := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	tk := NewTokens(nil, []byte(strings.Repeat("k", 32)), 15*time.Minute, time.Hour)
	tk.now = func() time.Time { return now }
	tok, err := tk.sign("42", audienceAccess, 15*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ { // the second parse is a cache hit
		if id, err := tk.ParseAccess(tok); err != nil || id != 42 {
			t.Fatalf("parse %d: %d %v", i, id, err)
		}
	}
	if len(tk.verified.m) != 1 {
		t.Fatalf("cache holds %d tokens", len(tk.verified.m))
	}
	// A different string, even one byte off, is verified afresh and fails.
	if _, err := tk.ParseAccess(tok[:len(tok)-1] + "A"); err == nil {
		t.Fatal("a tampered token passed")
	}
	// Past its expiry (and the parser's leeway), a cached token is refused.
	now = now.Add(16 * time.Minute)
	if _, err := tk.ParseAccess(tok); err == nil {
		t.Fatal("an expired token passed from the cache")
	}
	// A bind token never passes as an access token, cached or not.
	bind, _ := tk.issueBind("openid")
	if _, err := tk.ParseAccess(bind); err == nil {
		t.Fatal("a bind token passed")
	}
}

func TestVerifiedTokenCacheStaysBounded(t *testing.T) {
	tk := NewTokens(nil, []byte(strings.Repeat("k", 32)), 15*time.Minute, time.Hour)
	tk.verified.m = make(map[string]verifiedToken, maxVerifiedTokens)
	for i := range maxVerifiedTokens {
		tk.verified.m[strconv.Itoa(i)] = verifiedToken{memberID: 1, exp: time.Now().Add(time.Hour)}
	}
	tok, _ := tk.sign("42", audienceAccess, 15*time.Minute)
	if id, err := tk.ParseAccess(tok); err != nil || id != 42 {
		t.Fatalf("parse at the bound: %d %v", id, err)
	}
	// A full cache starts again rather than grow past its bound.
	if len(tk.verified.m) != 1 || tk.verified.m[tok].memberID != 42 {
		t.Fatalf("the cache holds %d tokens after reaching its bound of %d", len(tk.verified.m), maxVerifiedTokens)
	}
}

// Tokens signed with the server's key, but not as the server issues them, are refused.
func TestTokensTheServerNeverIssues(t *testing.T) {
	tk := NewTokens(nil, []byte(strings.Repeat("k", 32)), 15*time.Minute, time.Hour)
	signed := func(audience, subject, id string) string {
		now := time.Now()
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{Issuer: tokenIssuer, Subject: subject, ID: id,
			Audience: jwt.ClaimStrings{audience}, IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Minute))}).SignedString(tk.key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	// The controls: made like these, but within bounds, they pass.
	if id, err := tk.ParseAccess(signed(audienceAccess, "7", "short")); err != nil || id != 7 {
		t.Fatalf("control access token: %d %v", id, err)
	}
	if openid, err := tk.parseBind(signed(audienceBind, "openid-7", "short")); err != nil || openid != "openid-7" {
		t.Fatalf("control bind token: %q %v", openid, err)
	}
	long := strings.Repeat("x", maxTokenLen)
	for name, tok := range map[string]string{"member 0": signed(audienceAccess, "0", ""), "member -3": signed(audienceAccess, "-3", ""),
		"over 4 KB": signed(audienceAccess, "7", long)} {
		if _, err := tk.ParseAccess(tok); err == nil {
			t.Errorf("access token %s passed", name)
		}
	}
	for name, tok := range map[string]string{"no openid": signed(audienceBind, "", ""), "over 4 KB": signed(audienceBind, "openid-7", long)} {
		if _, err := tk.parseBind(tok); err == nil {
			t.Errorf("bind token %s passed", name)
		}
	}
}
