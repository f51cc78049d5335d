package app

import (
	"strings"
	"testing"
	"time"
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
