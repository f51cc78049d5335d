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
	for {
		g.mu.Lock()
		n := len(g.pending)
		g.mu.Unlock()
		if n == 2 {
			break
		}
		time.Sleep(time.Millisecond)
	}
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
