package app

import (
	"time"

	"partyledger/models"
)

// WriteClaimsTogether runs one transaction of the claim writer over claims, as if they had
// queued together (each filed by its MemberID, with its photos and its request's deadline,
// zero for none), and returns each claim as written (ID 0 if not) and its error.
func (s *Claims) WriteClaimsTogether(claims []models.Claim, evidence [][]int64, deadlines []time.Time) ([]models.Claim, []error) {
	batch := make([]*claimWrite, len(claims))
	for i, c := range claims {
		batch[i] = &claimWrite{claim: c, evidence: evidence[i], actor: c.MemberID, ticket: ticket{deadline: deadlines[i]}}
	}
	s.writer.commit(batch)
	out, errs := make([]models.Claim, len(batch)), make([]error, len(batch))
	for i, cw := range batch {
		out[i], errs[i] = cw.claim, cw.err
	}
	return out, errs
}

