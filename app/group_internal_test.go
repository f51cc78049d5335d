package app

import (
	"context"
	"errors"
	"testing"
	"time"
)

type groupJob struct {
	ticket
	name string
}

// wantAnswer waits up to 5 s for an answer on ch and requires it to be want; late says
// what it means when none comes.
func wantAnswer(t *testing.T, ch <-chan error, want error, late string) {
	t.Helper()
	select {
	case err := <-ch:
		if !errors.Is(err, want) {
			t.Fatalf("got %v, want %v", err, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatal(late)
	}
}

// waitPending waits until n items wait in g's queue.
func waitPending(g *group[*groupJob], n int) {
	for {
		g.mu.Lock()
		k := len(g.pending)
		g.mu.Unlock()
		if k == n {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// deadlineOnly has a deadline but is never done: it stands for a request whose deadline
// passes while a commit holds its item, so that the item's caller waits for the group's
// answer, never for its own context.
type deadlineOnly struct {
	context.Context
	at time.Time
}

func (c deadlineOnly) Deadline() (time.Time, bool) { return c.at, true }

// TestGroupAnswersALateItemAtOnce: an item taken with too little time left for a commit
// is answered with context.DeadlineExceeded at once, not when the commit of the items
// taken with it ends, which may be as late as their deadlines. On a database that is
// locked, that kept a write up to twice the request timeout (TestFaultDatabaseStopsUnderLoad).
func TestGroupAnswersALateItemAtOnce(t *testing.T) {
	commits := make(chan []*groupJob)
	release := make(chan struct{})
	g := &group[*groupJob]{slots: 1, max: 8, commit: func(batch []*groupJob) {
		commits <- batch
		<-release
		for _, j := range batch {
			j.err = nil
		}
	}}
	result := func(ctx context.Context, j *groupJob) chan error {
		out := make(chan error, 1)
		go func() { out <- g.do(ctx, j) }()
		return out
	}
	first := result(context.Background(), &groupJob{name: "first"})
	if b := <-commits; len(b) != 1 || b[0].name != "first" {
		t.Fatalf("first commit: %v", b)
	}
	// While the first commit runs, a late item and a patient one queue behind it.
	late := &groupJob{name: "late"}
	lateDone := result(deadlineOnly{context.Background(), time.Now().Add(10 * time.Millisecond)}, late)
	patient, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	patientDone := result(patient, &groupJob{name: "patient"})
	waitPending(g, 2)
	release <- struct{}{}
	if err := <-first; err != nil {
		t.Fatalf("first: %v", err)
	}
	b := <-commits
	if len(b) != 1 || b[0].name != "patient" {
		names := []string{}
		for _, j := range b {
			names = append(names, j.name)
		}
		t.Fatalf("the second commit took %v, want the patient item alone", names)
	}
	select { // the second commit is still running
	case err := <-lateDone:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("late item: %v, want the deadline", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the late item waited for the commit of the others")
	}
	release <- struct{}{}
	if err := <-patientDone; err != nil {
		t.Fatalf("patient item: %v", err)
	}
}

// TestGroupDropsAnItemCancelledBeforeItIsTaken: a caller whose context ends while its item
// still waits behind a running commit is answered at once with that error, and the item
// leaves the queue: no commit ever writes it.
func TestGroupDropsAnItemCancelledBeforeItIsTaken(t *testing.T) {
	commits := make(chan []*groupJob, 4)
	release := make(chan struct{})
	g := &group[*groupJob]{slots: 1, max: 8, commit: func(batch []*groupJob) {
		commits <- batch
		<-release
	}}
	first := make(chan error, 1)
	go func() { first <- g.do(context.Background(), &groupJob{name: "first"}) }()
	<-commits // the first commit holds the only slot
	ctx, cancel := context.WithCancel(context.Background())
	second := make(chan error, 1)
	go func() { second <- g.do(ctx, &groupJob{name: "cancelled"}) }()
	waitPending(g, 1)
	cancel()
	wantAnswer(t, second, context.Canceled, "the cancelled item waited for the commit ahead of it")
	close(release)
	if err := <-first; err != nil {
		t.Fatalf("first: %v", err)
	}
	select {
	case b := <-commits:
		t.Fatalf("a commit took %d items after the only other one was cancelled", len(b))
	case <-time.After(100 * time.Millisecond):
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.pending) != 0 || g.running != 0 {
		t.Fatalf("%d items pending and %d committers running after the queue emptied", len(g.pending), g.running)
	}
}

// TestCommitContextEndsWithTheLeastPatientItem: a commit lives as long as the item with
// the nearest deadline, and without deadlines for groupLimit.
func TestCommitContextEndsWithTheLeastPatientItem(t *testing.T) {
	now := time.Now()
	soon, later := now.Add(2*time.Second), now.Add(time.Hour)
	batch := []*groupJob{{name: "no deadline"}, {name: "later"}, {name: "soon"}}
	batch[1].deadline, batch[2].deadline = later, soon
	ctx, cancel := commitContext(batch)
	defer cancel()
	if d, ok := ctx.Deadline(); !ok || !d.Equal(soon) {
		t.Fatalf("the commit ends at %v, want the nearest item's deadline %v", d, soon)
	}
	ctx2, cancel2 := commitContext(batch[:1])
	defer cancel2()
	if d, ok := ctx2.Deadline(); !ok || d.Before(now.Add(groupLimit)) || d.After(time.Now().Add(groupLimit)) {
		t.Fatalf("with no deadlines the commit ends at %v, want %v from now", d, groupLimit)
	}
}

// TestAnAbandoningGroupAnswersAtTheCallersDeadline: in a group that abandons (the
// auth-revision reader's), a caller whose item a commit has taken is answered at its own
// deadline, not when that commit ends.
func TestAnAbandoningGroupAnswersAtTheCallersDeadline(t *testing.T) {
	taken := make(chan struct{})
	release := make(chan struct{})
	g := &group[*groupJob]{slots: 1, max: 8, abandon: true, commit: func(batch []*groupJob) {
		close(taken)
		<-release
	}}
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- g.do(ctx, &groupJob{name: "impatient"}) }()
	<-taken
	wantAnswer(t, done, context.DeadlineExceeded, "the caller waited for the commit past its own deadline")
}
