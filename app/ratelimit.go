package app

import (
	"math"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"partyledger/models"
)

// Limiter is a set of token buckets keyed by a string (a username, a client IP). It lives
// in one process: with several replicas each enforces its own share, which still caps a
// guessing attack at a small multiple of the limit.
type Limiter struct {
	mu      sync.Mutex
	every   rate.Limit
	burst   int
	buckets map[string]*rate.Limiter
	max     int
}

// NewLimiter allows burst events at once per key and refills n events per period.
func NewLimiter(n int, period time.Duration, burst int) *Limiter {
	return &Limiter{every: rate.Limit(float64(n) / period.Seconds()), burst: burst, buckets: map[string]*rate.Limiter{}, max: 100_000}
}

// Allow takes one event for key, or returns ERateLimited with a Retry-After.
func (l *Limiter) Allow(key string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) >= l.max {
			l.sweep()
		}
		b = rate.NewLimiter(l.every, l.burst)
		l.buckets[key] = b
	}
	if b.Allow() {
		return nil
	}
	r := b.Reserve() // to learn the wait; cancelled at once, so it takes nothing
	wait := math.Ceil(r.Delay().Seconds())
	r.Cancel()
	if wait < 1 {
		wait = 1
	}
	return &models.Error{Code: models.ERateLimited, Message: "too many attempts, slow down", RetryAfter: int(wait)}
}

// callerLimit caps something a member does per member and per client IP (claims,
// uploads). Its zero value allows everything.
type callerLimit struct{ byMember, byIP *Limiter }

func newCallerLimit(perMember, perIP RateLimit) callerLimit {
	return callerLimit{NewLimiter(perMember.N, perMember.Per, perMember.N), NewLimiter(perIP.N, perIP.Per, perIP.N)}
}

// Allow takes one event from the allowances of member and of the client IP it comes from.
// Returns ERateLimited, or nil.
func (l callerLimit) Allow(member int64, ip string) error {
	if l.byMember == nil {
		return nil
	}
	if err := l.byMember.Allow(strconv.FormatInt(member, 10)); err != nil {
		return err
	}
	return l.byIP.Allow(ip)
}

// sweep forgets the buckets that are full again (their keys have been quiet), and if
// that is not enough, all of them: memory stays bounded whatever keys attackers send.
func (l *Limiter) sweep() {
	now := time.Now()
	for k, b := range l.buckets {
		if b.TokensAt(now) >= float64(l.burst) {
			delete(l.buckets, k)
		}
	}
	if len(l.buckets) >= l.max {
		clear(l.buckets)
	}
}
