package app_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"partyledger/app/apptest"
	"partyledger/models"
)

// TestActorSeesEveryChangeCommittedBeforeTheRequest: the status lookups of concurrent
// requests are read together, and still a member disabled (or enabled again) before a
// request begins is seen so by that request, every time, while 16 callers keep the
// lookups batching.
func TestActorSeesEveryChangeCommittedBeforeTheRequest(t *testing.T) {
	ctx := context.Background()
	db := apptest.OpenDB(t)
	_, _, members, _, _, _, _ := setupRandom(t, db, time.UTC)
	loader := identityOf(db)
	target := members[3].ID
	setStatus := func(s models.MemberStatus) {
		if err := db.W.Exec("UPDATE members SET status = ?, auth_rev = auth_rev + 1 WHERE id = ?", s, target).Error; err != nil {
			t.Error(err)
		}
	}
	// phase: 4k active, 4k+1 being disabled, 4k+2 disabled, 4k+3 being enabled.
	var phase atomic.Int64
	var stop atomic.Bool
	var checked [3]atomic.Int64 // active seen, disabled seen, others
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() && !t.Failed() {
				id := target
				if rand.IntN(2) == 0 {
					id = members[rand.IntN(len(members))].ID
				}
				p0 := phase.Load()
				a, err := loader.Actor(ctx, id)
				p1 := phase.Load()
				var me *models.Error
				refused := errors.As(err, &me) && me.Code == models.EUnauthorized
				switch {
				case err != nil && !refused:
					t.Errorf("member %d: %v", id, err)
				case id != target:
					if err != nil || a.ID != id {
						t.Errorf("member %d, active all along, refused: %v", id, err)
					}
					checked[2].Add(1)
				case p0 != p1 || p0%2 == 1:
					// The change was on its way during the request: either answer is right.
				case p0%4 == 0:
					if err != nil {
						t.Errorf("phase %d: the member, enabled before the request, was refused", p0)
					}
					checked[0].Add(1)
				case p0%4 == 2:
					if !refused {
						t.Errorf("phase %d: the member, disabled before the request, got through", p0)
					}
					checked[1].Add(1)
				}
			}
		}()
	}
	for k := 0; k < 40 && !t.Failed(); k++ {
		time.Sleep(3 * time.Millisecond)
		phase.Add(1)
		setStatus(models.StatusInactive)
		phase.Add(1)
		time.Sleep(3 * time.Millisecond)
		phase.Add(1)
		setStatus(models.StatusActive)
		phase.Add(1)
	}
	stop.Store(true)
	wg.Wait()
	t.Logf("checked: %d while active, %d while disabled, %d other members", checked[0].Load(), checked[1].Load(), checked[2].Load())
	if checked[0].Load() == 0 || checked[1].Load() == 0 {
		t.Fatal("the test never caught a request wholly inside a phase")
	}
}
