package app

import (
	"context"
	"sync"
	"time"

	"gorm.io/gorm"

	"partyledger/models"
)

// claimWriter writes submitted claims, and under load it writes many requests' claims in
// one transaction (group commit). While its transactions are all under way, new claims
// wait, and the next transaction takes every claim then waiting: each claim is one
// INSERT, their photos one INSERT and their audit records one more, and the commit is
// shared. An idle server writes each claim at once, alone.
//
// A claim whose INSERT fails on its idempotency key (a retry, or two requests with one
// key) fails alone: the database undoes just that statement, the others go on, and the
// caller answers it from the claim that holds the key (Claims.replay). If anything else
// fails, the transaction is rolled back whole and each of its claims is written again on
// its own, so that one bad claim cannot fail the others. A caller is answered only once
// its claim is committed or rolled back: nobody is told "failed" about a claim that then
// commits.
type claimWriter struct {
	db      *DB
	slots   int // transactions at once
	mu      sync.Mutex
	pending []*claimWrite
	running int
}

// claimWrite is one request's claim on its way to the database.
type claimWrite struct {
	claim    models.Claim // ID set once written
	evidence []int64
	actor    int64
	deadline time.Time // the request's; zero if it has none
	done     chan struct{}
	taken    bool  // by a transaction (guarded by mu)
	err      error // the claim's own failure, or its transaction's
}

const (
	// maxClaimBatch bounds the claims of one transaction.
	maxClaimBatch = 64
	// claimTxLimit bounds a transaction whose claims carry no deadline (tools, tests).
	claimTxLimit = 30 * time.Second
	// claimMargin is the least time a claim must have left for a transaction to take it:
	// a transaction lives only as long as its least patient claim.
	claimMargin = 50 * time.Millisecond
)

// newClaimWriter returns the writer of db. SQLite has one writer connection, so one
// transaction at a time, with the claims that arrive meanwhile forming the next; a MySQL
// pool runs a few at once.
func newClaimWriter(db *DB) *claimWriter {
	slots := 4
	if db.Driver == "sqlite" {
		slots = 1
	}
	return &claimWriter{db: db, slots: slots}
}

// write inserts the claim with its photos and audit record and sets its ID. A duplicate
// idempotency key comes back as the database's duplicate-key error. If ctx ends before a
// transaction took the claim, it returns ctx's error and nothing is written; once taken,
// the claim's outcome is the answer.
func (w *claimWriter) write(ctx context.Context, cw *claimWrite) error {
	cw.deadline, _ = ctx.Deadline()
	cw.done = make(chan struct{})
	w.mu.Lock()
	w.pending = append(w.pending, cw)
	start := w.running < w.slots
	if start {
		w.running++
	}
	w.mu.Unlock()
	if start {
		go w.run()
	}
	select {
	case <-cw.done:
		return cw.err
	case <-ctx.Done():
	}
	w.mu.Lock()
	if !cw.taken {
		for i, p := range w.pending {
			if p == cw {
				w.pending = append(w.pending[:i:i], w.pending[i+1:]...)
				break
			}
		}
		w.mu.Unlock()
		return ctx.Err()
	}
	w.mu.Unlock()
	<-cw.done // its transaction is under way and ends by the deadline of its least patient claim
	return cw.err
}

// run writes the waiting claims, a transaction at a time, until none are left.
func (w *claimWriter) run() {
	for {
		w.mu.Lock()
		n := min(len(w.pending), maxClaimBatch)
		if n == 0 {
			w.running--
			w.mu.Unlock()
			return
		}
		batch := append([]*claimWrite(nil), w.pending[:n]...)
		w.pending = append(w.pending[:0:0], w.pending[n:]...)
		for _, cw := range batch {
			cw.taken = true
		}
		w.mu.Unlock()
		w.commit(batch)
	}
}

// commit writes batch in one transaction and answers every claim in it.
func (w *claimWriter) commit(batch []*claimWrite) {
	defer func() {
		for _, cw := range batch {
			close(cw.done)
		}
	}()
	now := time.Now()
	deadline := now.Add(claimTxLimit)
	live := batch[:0:0]
	for _, cw := range batch {
		switch {
		case cw.deadline.IsZero():
		case cw.deadline.Sub(now) < claimMargin:
			cw.err = context.DeadlineExceeded
			continue
		case cw.deadline.Before(deadline):
			deadline = cw.deadline
		}
		live = append(live, cw)
	}
	if len(live) == 0 {
		return
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	err := w.db.writeTx(ctx, func(tx *gorm.DB) error { return insertClaims(tx, live) })
	if err == nil || len(live) == 1 || IsUnavailable(err) || ctx.Err() != nil {
		for _, cw := range live {
			if err != nil {
				cw.claim.ID, cw.err = 0, err
			}
		}
		return
	}
	// The database refused the batch for a reason of one claim's (a photo gone meanwhile,
	// say): each alone, so that the others are written and that one gets its own answer.
	for _, cw := range live {
		one := []*claimWrite{cw}
		if err := w.db.writeTx(ctx, func(tx *gorm.DB) error { return insertClaims(tx, one) }); err != nil {
			cw.claim.ID, cw.err = 0, err
		}
	}
}

// insertClaims writes the claims of batch in tx: each claim by itself (its ID comes back,
// and a duplicate idempotency key fails that claim alone), then all their photos and all
// their audit records in one statement each. It sets every claim's outcome afresh, since
// writeTx may run it again.
func insertClaims(tx *gorm.DB, batch []*claimWrite) error {
	var evidence []models.ClaimEvidence
	var audit []models.AuditRecord
	for _, cw := range batch {
		cw.claim.ID, cw.err = 0, nil
		cw.claim.EvidenceIDs = nil
		if err := tx.Create(&cw.claim).Error; err != nil {
			if isDuplicate(err) {
				cw.claim.ID, cw.err = 0, err
				continue
			}
			return err
		}
		for _, id := range cw.evidence {
			evidence = append(evidence, models.ClaimEvidence{ClaimID: cw.claim.ID, UploadID: id})
		}
		cw.claim.EvidenceIDs = cw.evidence
		rec, err := auditRecord(&cw.actor, &cw.claim.BranchID, "claim.submitted", "claim", cw.claim.ID, nil, cw.claim)
		if err != nil {
			return err
		}
		audit = append(audit, rec)
	}
	if len(evidence) > 0 {
		if err := tx.Create(&evidence).Error; err != nil {
			return err
		}
	}
	if len(audit) > 0 {
		if err := tx.Create(&audit).Error; err != nil {
			return err
		}
	}
	return nil
}
