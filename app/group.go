package app

import (
	"context"
	"sync"
	"time"
)

// group is the queue of a group commit: callers hand it items, at most slots goroutines
// take them, each taking every item waiting (up to max) and passing the lot to commit,
// which answers each. While its goroutines are all busy, items wait and form the next
// lot; an idle group commits an item at once, alone. The claim writer and SQLite's
// transaction group (txGroup) are built on it.
type group[T grouped] struct {
	slots, max int
	commit     func(batch []T) // must set each item's err; group closes done after it
	// abandon lets a caller whose ctx ends leave at once even when a commit has taken its
	// item: for reads, whose outcome nobody needs once the caller has gone.
	abandon bool
	mu      sync.Mutex
	pending []T
	running int
}

// grouped is an item of a group: a pointer to a struct that embeds ticket.
type grouped interface{ ticketOf() *ticket }

// ticket is what a group keeps of an item.
type ticket struct {
	deadline time.Time // the caller's; zero if it has none
	done     chan struct{}
	taken    bool  // by a commit (guarded by the group's mu)
	err      error // the item's outcome
}

func (t *ticket) ticketOf() *ticket { return t }

const (
	// groupLimit bounds a commit whose items carry no deadline (tools, tests).
	groupLimit = 30 * time.Second
	// groupMargin is the least time an item must have left for a commit to take it: a
	// commit lives only as long as its least patient item.
	groupMargin = 50 * time.Millisecond
)

// do queues item and returns its outcome. If ctx ends before a commit took the item, it
// returns ctx's error and the item is dropped; once taken, the commit's outcome for it is
// the answer (unless the group abandons), so nobody is told "failed" about an item that
// then commits.
func (g *group[T]) do(ctx context.Context, item T) error {
	g.enqueue(ctx, item)
	return g.wait(ctx, item)
}

// doAll is do for items queued at once, in their order, and returns their outcomes.
func (g *group[T]) doAll(ctx context.Context, items []T) []error {
	g.enqueue(ctx, items...)
	errs := make([]error, len(items))
	for i, it := range items {
		errs[i] = g.wait(ctx, it)
	}
	return errs
}

// enqueue queues items, starting a goroutine to commit them if one is free.
func (g *group[T]) enqueue(ctx context.Context, items ...T) {
	deadline, _ := ctx.Deadline()
	for _, it := range items {
		t := it.ticketOf()
		t.deadline, t.done = deadline, make(chan struct{})
	}
	g.mu.Lock()
	g.pending = append(g.pending, items...)
	start := g.running < g.slots
	if start {
		g.running++
	}
	g.mu.Unlock()
	if start {
		go g.run()
	}
}

// wait returns the outcome of a queued item (see do).
func (g *group[T]) wait(ctx context.Context, item T) error {
	t := item.ticketOf()
	select {
	case <-t.done:
		return t.err
	case <-ctx.Done():
	}
	g.mu.Lock()
	if !t.taken {
		for i, p := range g.pending {
			if p.ticketOf() == t {
				g.pending = append(g.pending[:i:i], g.pending[i+1:]...)
				break
			}
		}
		g.mu.Unlock()
		return ctx.Err()
	}
	g.mu.Unlock()
	if g.abandon {
		return ctx.Err()
	}
	<-t.done // its commit is under way and ends by the deadline of its least patient item
	return t.err
}

// run commits the waiting items, a lot at a time, until none are left.
func (g *group[T]) run() {
	for {
		g.mu.Lock()
		n := min(len(g.pending), g.max)
		if n == 0 {
			g.running--
			g.mu.Unlock()
			return
		}
		batch := append([]T(nil), g.pending[:n]...)
		g.pending = append(g.pending[:0:0], g.pending[n:]...)
		for _, it := range batch {
			it.ticketOf().taken = true
		}
		g.mu.Unlock()
		g.take(batch)
	}
}

// take is one lot of run. An item with less than groupMargin left is answered at once
// with context.DeadlineExceeded, and the others are committed. The late item is not kept
// for the end of the commit: that lives as long as the least patient of the others, so
// as long as the full request timeout of one that has just arrived, and the late item's
// caller would wait up to that long past its own deadline.
func (g *group[T]) take(batch []T) {
	now := time.Now()
	live := batch[:0:0]
	for _, it := range batch {
		t := it.ticketOf()
		if !t.deadline.IsZero() && t.deadline.Sub(now) < groupMargin {
			t.err = context.DeadlineExceeded
			t.answer()
			continue
		}
		live = append(live, it)
	}
	if len(live) > 0 {
		g.commit(live)
	}
	for _, it := range live {
		it.ticketOf().answer()
	}
}

// answer wakes the item's caller; a ticket of a test that calls take directly has no one
// to wake.
func (t *ticket) answer() {
	if t.done != nil {
		close(t.done)
	}
}

// commitContext returns a context that ends at the deadline of the least patient item of
// batch, or after groupLimit when none has a deadline.
func commitContext[T grouped](batch []T) (context.Context, context.CancelFunc) {
	deadline := time.Now().Add(groupLimit)
	for _, it := range batch {
		if d := it.ticketOf().deadline; !d.IsZero() && d.Before(deadline) {
			deadline = d
		}
	}
	return context.WithDeadline(context.Background(), deadline)
}
