package app

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"partyledger/models"
)

// TestLimiterRefusesAndTellsTheWait: a key gets its burst, then a rate-limited error with
// a Retry-After of the whole seconds until its next event; other keys are apart.
func TestLimiterRefusesAndTellsTheWait(t *testing.T) {
	l := NewLimiter(2, time.Minute, 2)
	for i := 0; i < 2; i++ {
		if err := l.Allow("a"); err != nil {
			t.Fatalf("event %d: %v", i+1, err)
		}
	}
	var me *models.Error
	if err := l.Allow("a"); !errors.As(err, &me) || me.Code != models.ERateLimited || me.RetryAfter < 29 || me.RetryAfter > 30 {
		t.Fatalf("the third event in a minute at 2 a minute: %v (%+v)", err, me)
	}
	if err := l.Allow("b"); err != nil {
		t.Fatalf("another key: %v", err)
	}
}

// TestLimiterMemoryStaysBounded: however many keys are sent, the limiter holds at most its
// maximum. When it is full it forgets the keys that have been quiet (their buckets full
// again) and keeps those still being limited; only when that is not enough does it
// forget them all.
func TestLimiterMemoryStaysBounded(t *testing.T) {
	l := NewLimiter(1, time.Hour, 1)
	l.max = 4
	if err := l.Allow("limited"); err != nil {
		t.Fatal(err)
	}
	// Three quiet keys: buckets that are full, as after a long pause.
	for _, k := range []string{"q1", "q2", "q3"} {
		l.buckets[k] = rate.NewLimiter(l.every, l.burst)
	}
	if err := l.Allow("new"); err != nil {
		t.Fatal(err)
	}
	if _, ok := l.buckets["limited"]; !ok || len(l.buckets) != 2 {
		t.Fatalf("after the sweep: %d buckets (limited kept: %v), want limited and new", len(l.buckets), ok)
	}
	if err := l.Allow("limited"); err == nil {
		t.Fatal("the sweep let a limited key start over")
	}
	// A flood of keys, each limited at once: never more than the maximum.
	for i := 0; i < 1000; i++ {
		l.Allow(fmt.Sprint("flood-", i))
		if len(l.buckets) > l.max {
			t.Fatalf("%d buckets after %d keys, max %d", len(l.buckets), i+1, l.max)
		}
	}
}
