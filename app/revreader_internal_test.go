package app

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"partyledger/models"
)

// fakeRevs stands in for the database: every query blocks until released, and answers
// each id it knows with rev = the query's sequence number, so that a test can tell which
// query answered a lookup.
type fakeRevs struct {
	mu      sync.Mutex
	calls   [][]int64
	started chan int // the sequence number of each query as it starts
	release chan struct{}
}

func newFakeRevs() *fakeRevs {
	return &fakeRevs{started: make(chan int, 1000), release: make(chan struct{})}
}

func (f *fakeRevs) read(ctx context.Context, ids []int64) (map[int64]revRow, error) {
	f.mu.Lock()
	f.calls = append(f.calls, append([]int64(nil), ids...))
	seq := len(f.calls)
	f.mu.Unlock()
	f.started <- seq
	select {
	case <-f.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	out := map[int64]revRow{}
	for _, id := range ids {
		if id < 1000 { // ids from 1000 up are not members
			out[id] = revRow{status: models.StatusActive, rev: int64(seq)}
		}
	}
	return out, nil
}

func (f *fakeRevs) queries() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

func (r *revReader) inFlight() int {
	r.q.mu.Lock()
	defer r.q.mu.Unlock()
	return r.q.running
}

func (r *revReader) waiting() int {
	r.q.mu.Lock()
	defer r.q.mu.Unlock()
	return len(r.q.pending)
}

type revAnswer struct {
	id, rev int64
	found   bool
	err     error
}

func ask(r *revReader, ctx context.Context, id int64, out chan<- revAnswer) {
	found, _, rev, err := r.get(ctx, id)
	out <- revAnswer{id, rev, found, err}
}

// TestRevReaderBatchesOnlyLookupsAskedBeforeTheQuery: with every query slot busy, the
// lookups that arrive wait and are answered together by one later query, never by a
// query that began before they were asked.
func TestRevReaderBatchesOnlyLookupsAskedBeforeTheQuery(t *testing.T) {
	f := newFakeRevs()
	r := batchingRevReader(f.read)
	out := make(chan revAnswer, 1000)
	ctx := context.Background()
	for id := int64(1); id <= maxRevQueries; id++ {
		go ask(r, ctx, id, out)
		<-f.started
	}
	// Every slot is busy: 100 more lookups (one id asked twice, one not a member) queue.
	second := map[int64]int{}
	for i := int64(0); i < 99; i++ {
		second[100+i]++
		go ask(r, ctx, 100+i, out)
	}
	second[100]++
	go ask(r, ctx, 100, out)
	second[5000]++
	go ask(r, ctx, 5000, out)
	for r.waiting() < 101 {
		time.Sleep(time.Millisecond)
	}
	if n := f.queries(); n != maxRevQueries {
		t.Fatalf("%d queries for %d lookups while the slots were busy", n, maxRevQueries)
	}
	close(f.release)
	for i := 0; i < maxRevQueries+101; i++ {
		a := <-out
		switch {
		case a.err != nil:
			t.Fatalf("lookup %d: %v", a.id, a.err)
		case a.id <= maxRevQueries:
			if !a.found || a.rev > maxRevQueries {
				t.Fatalf("first wave %d answered by query %d (found %v)", a.id, a.rev, a.found)
			}
		case a.id == 5000:
			if a.found {
				t.Fatal("a member that does not exist was found")
			}
			second[a.id]--
		default:
			if !a.found || a.rev != maxRevQueries+1 {
				t.Fatalf("lookup %d, asked after the first queries began, answered by query %d (found %v)", a.id, a.rev, a.found)
			}
			second[a.id]--
		}
	}
	if n := f.queries(); n != maxRevQueries+1 {
		t.Fatalf("%d queries, want %d", n, maxRevQueries+1)
	}
	if ids := f.calls[maxRevQueries]; len(ids) != 100 {
		t.Fatalf("the batch asked for %d ids, want the 100 distinct ones", len(ids))
	}
	for id, n := range second {
		if n != 0 {
			t.Fatalf("lookup %d answered %d times too few", id, n)
		}
	}
	for deadline := time.Now().Add(5 * time.Second); r.inFlight() != 0 || r.waiting() != 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("left %d running, %d waiting", r.inFlight(), r.waiting())
		}
	}
}

// TestRevReaderBoundsBatchesAndDeadlines: a batch holds at most maxRevBatch ids, and a
// lookup whose request runs out of time leaves with the deadline error while the query
// goes on for the others.
func TestRevReaderBoundsBatchesAndDeadlines(t *testing.T) {
	f := newFakeRevs()
	r := batchingRevReader(f.read)
	out := make(chan revAnswer, 2000)
	for id := int64(1); id <= maxRevQueries; id++ {
		go ask(r, context.Background(), id, out)
		<-f.started
	}
	n := 3*maxRevBatch + 10
	for i := 0; i < n; i++ {
		go ask(r, context.Background(), int64(100+i), out)
	}
	for r.waiting() < n {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, _, _, err := r.get(ctx, 7); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a lookup past its deadline: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("the lookup left %v after its deadline", d)
	}
	close(f.release)
	for i := 0; i < n+maxRevQueries; i++ {
		if a := <-out; a.err != nil || !a.found {
			t.Fatalf("lookup %d: %+v", a.id, a)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	total := 0
	for _, ids := range f.calls {
		if len(ids) > maxRevBatch {
			t.Fatalf("a query of %d ids", len(ids))
		}
		total += len(ids)
	}
	// The lookup that gave up may or may not have been read: its id 7 is the only extra.
	if total != n+maxRevQueries && total != n+maxRevQueries+1 {
		t.Fatalf("%d ids read for %d lookups", total, n+maxRevQueries)
	}
}

// TestRevReaderStopsAQueryNobodyWaitsFor: the query's deadline is that of the most patient
// lookup in it, so a database that never answers does not hold a query slot for good.
func TestRevReaderStopsAQueryNobodyWaitsFor(t *testing.T) {
	f := newFakeRevs()
	r := batchingRevReader(f.read)
	for i := 0; i < maxRevQueries; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		if _, _, _, err := r.get(ctx, int64(i+1)); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("lookup %d: %v", i, err)
		}
		cancel()
	}
	for deadline := time.Now().Add(5 * time.Second); r.inFlight() != 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d queries still hold their slots after every lookup left", r.inFlight())
		}
	}
	close(f.release)
	if found, _, _, err := r.get(context.Background(), 9); err != nil || !found {
		t.Fatalf("a lookup after the outage: %v %v", found, err)
	}
}

// TestReadRevsReadsEveryIDAsked: the reader's query of several ids answers each member
// asked for with its own status and auth_rev, and leaves out ids that are not members;
// one id goes by the prepared statement.
func TestReadRevsReadsEveryIDAsked(t *testing.T) {
	const member = `INSERT INTO members (id, member_no, name, branch_id, status, auth_rev, created_at, updated_at) VALUES (%d, 'M%d', '党员', 1, '%s', %d, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)`
	db := migratedSQLite(t,
		insertBranch1,
		fmt.Sprintf(member, 7, 7, "active", 3), fmt.Sprintf(member, 12, 12, "inactive", 5), fmt.Sprintf(member, 30, 30, "active", 1))
	r := newRevReader(db.sqlR, true)
	want := map[int64]revRow{7: {models.StatusActive, 3}, 12: {models.StatusInactive, 5}, 30: {models.StatusActive, 1}}
	for _, ids := range [][]int64{{7, 12, 30, 1000}, {30, 7}, {12}, {1000}} {
		got, err := readRevs(context.Background(), db.sqlR, r.one, ids)
		if err != nil {
			t.Fatalf("%v: %v", ids, err)
		}
		var n int
		for _, id := range ids {
			if w, ok := want[id]; ok {
				n++
				if got[id] != w {
					t.Errorf("%v: member %d read as %+v, want %+v", ids, id, got[id], w)
				}
			}
		}
		if len(got) != n {
			t.Errorf("%v: %d rows, want %d: %+v", ids, len(got), n, got)
		}
	}
}

// TestRevQueryLivesAsLongAsItsMostPatientLookup: a batch's query ends at the latest
// deadline of its lookups, and after revQueryLimit when one has no deadline.
func TestRevQueryLivesAsLongAsItsMostPatientLookup(t *testing.T) {
	var got time.Time
	r := batchingRevReader(func(ctx context.Context, ids []int64) (map[int64]revRow, error) {
		got, _ = ctx.Deadline()
		return map[int64]revRow{}, nil
	})
	now := time.Now()
	soon, later := now.Add(2*time.Second), now.Add(time.Hour)
	lookup := func(id int64, deadline time.Time) *revLookup {
		l := &revLookup{id: id}
		l.deadline = deadline
		return l
	}
	r.answer([]*revLookup{lookup(1, soon), lookup(2, later), lookup(3, soon)})
	if !got.Equal(later) {
		t.Fatalf("the query ends at %v, want the most patient lookup's %v", got, later)
	}
	r.answer([]*revLookup{lookup(1, soon), lookup(2, time.Time{})})
	if got.Before(now.Add(revQueryLimit)) || got.After(time.Now().Add(revQueryLimit)) {
		t.Fatalf("with a lookup without a deadline the query ends at %v, want %v from now", got, revQueryLimit)
	}
}
