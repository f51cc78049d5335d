package app

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"gorm.io/gorm"

	"partyledger/models"
)

// claimWriter checks and writes submitted claims, and under load it writes many requests'
// claims in one transaction (group commit). While its transactions are all under way, new
// claims wait, and the next transaction takes every claim then waiting. It reads what
// they are all checked against in two statements (readChecks), writes the claims that
// pass in one INSERT, their photos in one more and their audit records in another, and
// the commit is shared. An idle server checks and writes each claim at once, alone.
//
// A claim that fails its check fails alone, with its own answer. A claim whose INSERT
// fails on its idempotency key (a retry, or two requests with one key) fails alone too:
// the database undoes just that statement, the claims are written one by one in the same
// transaction, and the caller answers it from the claim that holds the key
// (Claims.replay). If anything else fails, the transaction is rolled back whole and each
// of its claims is checked and written again on its own, so that one bad claim cannot
// fail the others. A caller is answered only once its claim is committed or rolled back:
// nobody is told "failed" about a claim that then commits.
type claimWriter struct {
	db *DB
	q  group[*claimWrite]
}

// claimWrite is one request's claim on its way to the database.
type claimWrite struct {
	ticket
	check   claimCheck
	prepare func(found *claimCheck) (models.Claim, error) // the claim to write, or why not
	claim   models.Claim                                  // ID set once written
	actor   int64
	key     string // the request's idempotency key, "" for none
	reqHash string
}

// maxClaimBatch bounds the claims of one transaction.
const maxClaimBatch = 64

// newClaimWriter returns the writer of db. SQLite has one writer connection, so one
// transaction at a time, with the claims that arrive meanwhile forming the next; a MySQL
// pool runs a few at once.
func newClaimWriter(db *DB) *claimWriter {
	w := &claimWriter{db: db}
	w.q = group[*claimWrite]{slots: 4, max: maxClaimBatch, commit: w.commit}
	if db.Driver == "sqlite" {
		w.q.slots = 1
	}
	return w
}

// write checks the claim (cw.prepare) and inserts it with its photos and audit record,
// and sets cw.claim. A failed check comes back as prepare's error, a duplicate
// idempotency key as the database's duplicate-key error. If ctx ends before a
// transaction took the claim, it returns ctx's error and nothing is written; once taken,
// the claim's outcome is the answer.
func (w *claimWriter) write(ctx context.Context, cw *claimWrite) error { return w.q.do(ctx, cw) }

// commit writes batch in one transaction and sets every claim's outcome.
func (w *claimWriter) commit(batch []*claimWrite) {
	batch, ctx, cancel := live(batch)
	defer cancel()
	if len(batch) == 0 {
		return
	}
	err := w.db.writeTx(ctx, func(tx *gorm.DB) error { return insertClaims(tx, batch) })
	if err == nil || len(batch) == 1 || (IsUnavailable(err) && !isRetryable(err)) || ctx.Err() != nil {
		for _, cw := range batch {
			if err != nil {
				cw.claim.ID, cw.err = 0, err
			}
		}
		return
	}
	// The database refused the batch for a reason of one claim's (a photo gone meanwhile,
	// say), or kept losing it to contention: each alone, so that the others are written and
	// that one gets its own answer.
	for _, cw := range batch {
		one := []*claimWrite{cw}
		if err := w.db.writeTx(ctx, func(tx *gorm.DB) error { return insertClaims(tx, one) }); err != nil {
			cw.claim.ID, cw.err = 0, err
		}
	}
}

// insertClaims checks the claims of batch and writes the ones that pass in tx: all the
// claims with an idempotency key in one statement, then any others one by one, then all
// their photos and all their audit records in one statement each. It sets every claim's
// outcome afresh, since writeTx may run it again.
//
// The claims go in in the order of their (member, idempotency key), so that two
// transactions that meet on keys meet in the same order: one waits for the other instead
// of each holding a key the other needs (a deadlock, which MySQL answers by rolling one
// back whole).
func insertClaims(tx *gorm.DB, batch []*claimWrite) error {
	checks := make([]*claimCheck, len(batch))
	for i, cw := range batch {
		checks[i] = &cw.check
	}
	if err := readChecks(tx, checks); err != nil {
		return err
	}
	var ordered []*claimWrite
	for _, cw := range batch {
		cw.claim, cw.err = cw.prepare(&cw.check)
		if cw.err == nil {
			ordered = append(ordered, cw)
		}
	}
	slices.SortStableFunc(ordered, func(a, b *claimWrite) int {
		if c := cmp.Compare(a.claim.MemberID, b.claim.MemberID); c != 0 {
			return c
		}
		return cmp.Compare(keyOf(a.claim), keyOf(b.claim))
	})
	// Those with a key together (their IDs are found by the key), the others alone.
	together := slices.DeleteFunc(slices.Clone(ordered), func(cw *claimWrite) bool { return cw.claim.IdempotencyKey == nil })
	if len(together) > 1 {
		// A key already taken, by an earlier claim or within the batch, undoes the
		// statement: then each is written alone, and that one fails by itself.
		if err := createKeyed(tx, together); err != nil && !isDuplicate(err) {
			return err
		}
	}
	var evidence []models.ClaimEvidence
	var audit []models.AuditRecord
	for _, cw := range ordered {
		if cw.claim.ID == 0 { // not written together
			if err := tx.Create(&cw.claim).Error; err != nil {
				if isDuplicate(err) {
					cw.claim.ID, cw.err = 0, err
					continue
				}
				return err
			}
		}
		for _, id := range cw.check.photos {
			evidence = append(evidence, models.ClaimEvidence{ClaimID: cw.claim.ID, UploadID: id})
		}
		cw.claim.EvidenceIDs = cw.check.photos
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

// createKeyed inserts claims that all carry an idempotency key in one statement and sets
// their IDs, read back by (member, key) (idsByKey).
func createKeyed(tx *gorm.DB, cws []*claimWrite) error {
	rows := make([]models.Claim, len(cws))
	members, keys := make([]int64, len(cws)), make([]string, len(cws))
	for i, cw := range cws {
		rows[i] = cw.claim
		members[i], keys[i] = cw.claim.MemberID, *cw.claim.IdempotencyKey
	}
	if err := tx.Create(&rows).Error; err != nil {
		return err
	}
	ids, err := idsByKey(tx, "claims", "member_id", "idempotency_key", members, keys)
	if err != nil {
		return err
	}
	for _, cw := range cws {
		if cw.claim.ID = ids[idKey[int64, string]{cw.claim.MemberID, *cw.claim.IdempotencyKey}]; cw.claim.ID == 0 {
			return fmt.Errorf("claim of member %d not found after writing it", cw.claim.MemberID)
		}
	}
	return nil
}

// keyOf is a claim's idempotency key, "" for none.
func keyOf(c models.Claim) string {
	if c.IdempotencyKey == nil {
		return ""
	}
	return *c.IdempotencyKey
}
