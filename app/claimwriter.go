package app

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"gorm.io/gorm"

	"partyledger/models"
)

// The claim writer (Claims.writer) checks and writes submitted claims, and under load it
// writes many requests' claims in one transaction (a sharedWriter). It reads what they
// are all checked against in two statements (readChecks), writes the claims that pass in
// one INSERT, their photos in one more and their audit records in another, and the commit
// is shared.
//
// A claim that fails its check fails alone, with its own answer. A claim whose INSERT
// fails on its idempotency key (a retry, or two requests with one key) fails alone too:
// the database undoes just that statement, the claims are written one by one in the same
// transaction, and the caller answers it from the claim that holds the key
// (Claims.replay). If anything else fails (a photo gone meanwhile, say, or a transaction
// that kept losing to contention), the transaction is rolled back whole and each of its
// claims is checked and written again on its own, so that one bad claim cannot fail the
// others.

// claimWrite is one request's claim on its way to the database. The writer answers a
// failed check with prepare's error and a duplicate idempotency key with the database's
// duplicate-key error.
type claimWrite struct {
	ticket
	check   claimCheck
	prepare func(found *claimCheck) (models.Claim, error) // the claim to write, or why not
	claim   models.Claim                                  // ID set once written
	actor   int64
	key     string // the request's idempotency key, "" for none
	reqHash string
}

// newClaimWriter returns the claim writer of db: four transactions at once on MySQL (two
// measured no different in bench/ledger).
func newClaimWriter(db *DB) *sharedWriter[*claimWrite] {
	return newSharedWriter(db, 4,
		func(_ context.Context, tx *gorm.DB, batch []*claimWrite) ([]*claimWrite, error) {
			return nil, insertClaims(tx, batch)
		},
		func(ctx context.Context, cw *claimWrite) {
			one := []*claimWrite{cw}
			write := func(tx *gorm.DB) error { return insertClaims(tx, one) }
			err := db.writeTx(ctx, write)
			if isForeignKey(err) {
				// A photo swept (Uploads.Sweep) between its check and the claim's insert:
				// checked again, the claim is refused for it.
				err = db.writeTx(ctx, write)
			}
			if err != nil {
				cw.claim.ID, cw.err = 0, err
			}
		},
		func(cw *claimWrite, err error) { cw.claim.ID, cw.err = 0, err })
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
		if cw.check.actorChanged {
			cw.claim, cw.err = models.Claim{}, ErrActorChanged
			continue
		}
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
