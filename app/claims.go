package app

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"

	"partyledger/models"
)

// Claims are members' requests for points and secretaries' decisions on them.
type Claims struct {
	db        *DB
	writer    *sharedWriter[*claimWrite]
	approvals *sharedWriter[*approval]
	loc       *time.Location
	now       func() time.Time
	limit     callerLimit // submissions; the zero value: unlimited
}

// NewClaims returns the claim use cases; months begin in loc. Submissions from outside
// (Allow) are unlimited until Limit is called.
func NewClaims(db *DB, loc *time.Location) *Claims {
	s := &Claims{db: db, writer: newClaimWriter(db), loc: loc, now: time.Now}
	s.approvals = newApprovalWriter(s)
	return s
}

// Limit caps submissions per member and per client IP (see Allow).
func (s *Claims) Limit(perMember, perIP RateLimit) *Claims {
	s.limit = newCallerLimit(perMember, perIP)
	return s
}

// Allow takes one submission from the allowances of member and of the client IP it
// comes from, before Submit. A retry with the same key counts too: a client that retries
// in a tight loop is slowed like any other. Returns ERateLimited, or nil (always, until
// Limit is called).
func (s *Claims) Allow(member int64, ip string) error { return s.limit.Allow(member, ip) }

// ClaimInput is what POST /claims takes.
type ClaimInput struct {
	RuleCode     string         `json:"rule_code" validate:"required,max=64"`
	OccurredOn   string         `json:"occurred_on" validate:"required"`
	Quantity     *models.Points `json:"quantity"`
	Note         string         `json:"note" validate:"max=500"`
	EvidenceIDs  []int64        `json:"evidence_ids" validate:"max=9,dive,gt=0"`
	AssignmentID *int64         `json:"assignment_id" validate:"omitempty,gt=0"`
}

// hash identifies a request body for idempotency: the same key with another body is a conflict.
func (in ClaimInput) hash() string {
	b, _ := json.Marshal(in)
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

var errClaimNotFound = models.Errorf(models.ENotFound, "no such claim")

// validKey reports whether an Idempotency-Key is usable: 1 to 128 printable ASCII characters.
func validKey(k string) bool {
	if k == "" || len(k) > 128 {
		return false
	}
	for _, r := range k {
		if r <= ' ' || r > '~' {
			return false
		}
	}
	return true
}

// Submit files a claim for the actor. With an idempotency key, a retry with the same key
// and body returns the first claim (created false) and creates nothing; the same key with
// another body is EConflict. Returns EInvalid, EConflict (closed month, key reuse) or ENotFound.
func (s *Claims) Submit(ctx context.Context, a *Actor, key string, in ClaimInput) (models.Claim, bool, error) {
	cw, err := s.toWrite(a, key, in)
	if err != nil {
		return models.Claim{}, false, err
	}
	return s.written(ctx, cw, s.writer.q.do(ctx, cw))
}

// toWrite checks what of a submission needs no database and returns its claim write,
// whose check the writer reads and completes (claimFrom).
func (s *Claims) toWrite(a *Actor, key string, in ClaimInput) (*claimWrite, error) {
	if key != "" && !validKey(key) {
		return nil, models.InvalidField("Idempotency-Key", "must be 1 to 128 printable ASCII characters")
	}
	if err := Validate(in); err != nil {
		return nil, err
	}
	reqHash := in.hash()
	fields := map[string]string{}
	day, err := models.ParseDate(in.OccurredOn)
	if err != nil {
		fields["occurred_on"] = err.Error()
	} else if day > models.Today(s.now(), s.loc) {
		fields["occurred_on"] = "is in the future"
	}
	if utf8.RuneCountInString(in.Note) > 500 {
		fields["note"] = "must have at most 500 characters"
	}
	if a.BranchKind != models.KindBranch {
		return nil, models.Errorf(models.EForbidden, "only members of a branch claim points")
	}
	ids := distinct(in.EvidenceIDs) // sorted, as every later answer lists them, a replay's included
	var period models.Period
	if day != "" {
		period = day.Period()
	}
	// The rest is checked against the database in the writer's transaction, with the other
	// claims it writes (claimCheck): the rule's newest version, the photos' owner, the
	// month, the assignment.
	cw := &claimWrite{actor: a.ID, key: key, reqHash: reqHash, check: claimCheck{member: a.ID, ruleCode: in.RuleCode, photos: ids,
		period: period, orgs: ancestorIDs(a.BranchPath), assignment: in.AssignmentID, actor: a}}
	cw.prepare = func(found *claimCheck) (models.Claim, error) {
		return s.claimFrom(a, key, in, reqHash, day, maps.Clone(fields), found)
	}
	return cw, nil
}

// written answers a submission from its write's outcome err: the claim, created; or,
// for a submission that failed, what replay says.
func (s *Claims) written(ctx context.Context, cw *claimWrite, err error) (models.Claim, bool, error) {
	if errors.Is(err, ErrActorChanged) {
		return models.Claim{}, false, err // nothing to replay to a caller not checked yet
	}
	if err != nil {
		if me := (*models.Error)(nil); !errors.As(err, &me) {
			err = dbError("submit claim", err)
		}
		return s.replay(ctx, cw.actor, cw.key, cw.reqHash, err)
	}
	return cw.claim, true, nil
}

// claimFrom is the claim to write for a submission, given what the database holds
// (found), or why there is none: EInvalid with fields, the ones found before added, or
// EConflict for a closed month.
func (s *Claims) claimFrom(a *Actor, key string, in ClaimInput, reqHash string, day models.Date, fields map[string]string, found *claimCheck) (models.Claim, error) {
	rule := found.rule
	if rule.Code == "" || !rule.Active || rule.How != models.HowClaim {
		fields["rule_code"] = "is not a rule members claim"
		return models.Claim{}, models.Invalid(fields)
	}
	qty := models.Points(10)
	if in.Quantity != nil {
		qty = *in.Quantity
	}
	switch {
	case rule.Unit == "hour" && (qty <= 0 || qty%5 != 0 || qty > 240):
		fields["quantity"] = "must be hours in steps of 0.5, from 0.5 to 24"
	case rule.Unit == "once" && qty != 10:
		fields["quantity"] = "must be 1 for this rule"
	}
	if rule.NeedsEvidence && len(found.photos) == 0 {
		fields["evidence_ids"] = "this rule needs at least one photo"
	}
	if found.owned != len(found.photos) {
		fields["evidence_ids"] = "must be photos you uploaded"
	}
	if rule.NeedsAssignment {
		if in.AssignmentID == nil {
			fields["assignment_id"] = "this rule needs your pioneer-post assignment"
		} else if day != "" {
			if as := found.assigned; as == nil || day < as.StartsOn || day > as.EndsOn {
				fields["assignment_id"] = "must be your assignment to a post of your branch, active on occurred_on"
			}
		}
	} else if in.AssignmentID != nil {
		fields["assignment_id"] = "this rule takes no assignment"
	}
	if len(fields) > 0 {
		return models.Claim{}, models.Invalid(fields)
	}
	if found.closed {
		return models.Claim{}, models.Errorf(models.EConflict, "the month %s is closed", found.period)
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	c := models.Claim{MemberID: a.ID, BranchID: a.BranchID, RuleCode: rule.Code,
		RuleVersion: rule.Version, Period: day.Period(), OccurredOn: day, Quantity: qty,
		PointsRequested: models.Points((int64(qty)*int64(rule.Points) + 5) / 10), Status: models.ClaimPending,
		Note: strings.TrimSpace(in.Note), AssignmentID: in.AssignmentID, RequestHash: reqHash, CreatedAt: now, UpdatedAt: now}
	if key != "" {
		c.IdempotencyKey = &key
	}
	return c, nil
}

// replay answers a submission that failed: if it carried an idempotency key that an
// earlier request used (a retry whose key is taken, or whose request is no longer valid
// because the month closed since), the first answer stands; otherwise the failure does.
// The key is looked up only here, so a first request costs no extra read.
func (s *Claims) replay(ctx context.Context, memberID int64, key, reqHash string, failure error) (models.Claim, bool, error) {
	if key == "" {
		return models.Claim{}, false, failure
	}
	c, found, err := s.byKey(ctx, s.db.W, memberID, key, reqHash)
	if err != nil {
		return c, false, err
	}
	if found {
		return c, false, nil
	}
	return models.Claim{}, false, failure
}

// distinct returns the values of xs, each once, sorted; never nil.
func distinct[T interface{ ~int64 | ~string }](xs []T) []T {
	out := append(make([]T, 0, len(xs)), xs...)
	slices.Sort(out)
	return slices.Compact(out)
}

// byKey finds the claim a member filed with an idempotency key.
func (s *Claims) byKey(ctx context.Context, db *gorm.DB, memberID int64, key, reqHash string) (models.Claim, bool, error) {
	var c models.Claim
	err := db.WithContext(ctx).Where("member_id = ? AND idempotency_key = ?", memberID, key).Take(&c).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return c, false, nil
	}
	if err != nil {
		return c, false, dbError("submit claim", err)
	}
	if c.RequestHash != reqHash {
		return c, true, models.Errorf(models.EConflict, "this Idempotency-Key was used for another request")
	}
	return c, true, s.loadEvidence(ctx, db, []*models.Claim{&c})
}

func (s *Claims) loadEvidence(ctx context.Context, db *gorm.DB, cs []*models.Claim) error {
	if len(cs) == 0 {
		return nil
	}
	ids := make([]int64, len(cs))
	by := map[int64]*models.Claim{}
	for i, c := range cs {
		ids[i] = c.ID
		by[c.ID] = c
		c.EvidenceIDs = []int64{}
	}
	var ev []models.ClaimEvidence
	if err := db.WithContext(ctx).Where("claim_id IN ?", ids).Order("upload_id").Find(&ev).Error; err != nil {
		return dbError("claim evidence", err)
	}
	for _, e := range ev {
		by[e.ClaimID].EvidenceIDs = append(by[e.ClaimID].EvidenceIDs, e.UploadID)
	}
	return nil
}

// claimScope is a claim, with its photos, and the path of the branch it was filed in.
type claimScope struct {
	models.Claim
	BranchPath string
	Photos     sql.NullString // the photos' ids, comma-separated
}

// loadClaim reads a claim with its photos and its branch path, in one round trip.
// Returns ENotFound.
func loadClaim(ctx context.Context, db *gorm.DB, id int64) (claimScope, error) {
	cs, err := loadClaims(ctx, db, []int64{id})
	if err != nil {
		return claimScope{}, err
	}
	c, ok := cs[id]
	if !ok {
		return c, errClaimNotFound
	}
	return c, nil
}

// loadClaims reads claims with their photos and branch paths, in one round trip, by ID;
// the ones not found are missing.
func loadClaims(ctx context.Context, db *gorm.DB, ids []int64) (map[int64]claimScope, error) {
	var rows []claimScope
	err := db.WithContext(ctx).Table("claims").
		Select("claims.*, orgs.path AS branch_path, (SELECT GROUP_CONCAT(e.upload_id) FROM claim_evidence e WHERE e.claim_id = claims.id) AS photos").
		Joins("JOIN orgs ON orgs.id = claims.branch_id").Where("claims.id IN ?", ids).Find(&rows).Error
	if err != nil {
		return nil, dbError("get claim", err)
	}
	out := make(map[int64]claimScope, len(rows))
	for _, c := range rows {
		c.EvidenceIDs = []int64{}
		if c.Photos.String != "" {
			for _, f := range strings.Split(c.Photos.String, ",") {
				id, err := strconv.ParseInt(f, 10, 64)
				if err != nil {
					return nil, fmt.Errorf("get claim: photo id %q: %w", f, err)
				}
				c.EvidenceIDs = append(c.EvidenceIDs, id)
			}
			slices.Sort(c.EvidenceIDs)
		}
		out[c.ID] = c
	}
	return out, nil
}

// Get reads a claim: its member, secretaries over its branch and leaders above.
// Returns ENotFound.
func (s *Claims) Get(ctx context.Context, a *Actor, id int64) (models.Claim, error) {
	c, err := loadClaim(ctx, s.db.R, id)
	if err != nil {
		return models.Claim{}, err
	}
	if c.MemberID != a.ID && !a.CanAny(c.BranchPath, models.RoleSecretary, models.RoleLeader) {
		return models.Claim{}, errClaimNotFound
	}
	return c.Claim, nil
}

// ClaimFilter narrows GET /claims and GET /approvals.
type ClaimFilter struct {
	MemberID *int64
	Status   string
	Period   string
}

func (f ClaimFilter) apply(q *gorm.DB) (*gorm.DB, error) {
	switch f.Status {
	case "", models.ClaimPending, models.ClaimApproved, models.ClaimRejected, models.ClaimWithdrawn:
	default:
		return q, models.InvalidField("status", "must be pending, approved, rejected or withdrawn")
	}
	if f.Status != "" {
		q = q.Where("claims.status = ?", f.Status)
	}
	if f.Period != "" {
		p, err := models.ParsePeriod(f.Period)
		if err != nil {
			return q, models.InvalidField("period", err.Error())
		}
		q = q.Where("claims.period = ?", p)
	}
	return q, nil
}

// List returns the actor's own claims, or with MemberID those of a member the actor may
// read, by id. Returns EInvalid or ENotFound.
func (s *Claims) List(ctx context.Context, a *Actor, f ClaimFilter, p Page) (List[models.Claim], error) {
	member := a.ID
	if f.MemberID != nil && *f.MemberID != a.ID {
		m, err := loadMember(ctx, s.db.R, *f.MemberID)
		if err := hidden(err, err == nil && a.CanAny(m.BranchPath, models.RoleSecretary, models.RoleLeader), errMemberNotFound); err != nil {
			return List[models.Claim]{}, err
		}
		member = m.ID
	}
	q, err := f.apply(s.db.R.WithContext(ctx).Model(&models.Claim{}).Where("member_id = ? AND id > ?", member, p.After))
	if err != nil {
		return List[models.Claim]{}, err
	}
	return s.page(ctx, q, p)
}

func (s *Claims) page(ctx context.Context, q *gorm.DB, p Page) (List[models.Claim], error) {
	var rows []models.Claim
	if err := q.Order("claims.id").Limit(p.Limit + 1).Find(&rows).Error; err != nil {
		return List[models.Claim]{}, dbError("list claims", err)
	}
	list := pageOf(rows, p.Limit, func(c models.Claim) int64 { return c.ID })
	ptrs := make([]*models.Claim, len(list.Items))
	for i := range list.Items {
		ptrs[i] = &list.Items[i]
	}
	return list, s.loadEvidence(ctx, s.db.R, ptrs)
}

// Queue returns the claims of the branches the actor is secretary of (not their own),
// oldest first, pending unless another status is asked for. Returns EForbidden or EInvalid.
func (s *Claims) Queue(ctx context.Context, a *Actor, f ClaimFilter, p Page) (List[models.Claim], error) {
	scopes := a.Scopes(models.RoleSecretary)
	if len(scopes) == 0 {
		return List[models.Claim]{}, models.Errorf(models.EForbidden, "only secretaries have an approval queue")
	}
	if f.Status == "" {
		f.Status = models.ClaimPending
	}
	q := s.db.R.WithContext(ctx).Table("claims").Select("claims.*").Joins("JOIN orgs ON orgs.id = claims.branch_id").
		Where(scopeClause("orgs.path", scopes)).Where("claims.member_id <> ? AND claims.id > ?", a.ID, p.After)
	q, err := f.apply(q)
	if err != nil {
		return List[models.Claim]{}, err
	}
	return s.page(ctx, q, p)
}

// Withdraw takes back a pending claim of the actor's own. Returns ENotFound or EConflict.
func (s *Claims) Withdraw(ctx context.Context, a *Actor, id int64) (models.Claim, error) {
	var c models.Claim
	err := s.db.W.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		cur, err := loadClaim(ctx, tx, id)
		if err := hidden(err, err == nil && cur.MemberID == a.ID, errClaimNotFound); err != nil {
			return err
		}
		now := s.now().UTC().Truncate(time.Microsecond)
		res := tx.Model(&models.Claim{}).Where("id = ? AND status = ?", id, models.ClaimPending).
			Updates(map[string]any{"status": models.ClaimWithdrawn, "updated_at": now})
		if res.Error != nil {
			return dbError("withdraw", res.Error)
		}
		if res.RowsAffected == 0 {
			return models.Errorf(models.EConflict, "the claim is %s, not pending", cur.Status)
		}
		c = cur.Claim
		c.Status, c.UpdatedAt = models.ClaimWithdrawn, now
		return writeAudit(tx, &a.ID, &c.BranchID, "claim.withdrawn", "claim", c.ID, cur.Claim, c)
	})
	return c, err
}

// Decision is the answer to an approval.
type Decision struct {
	Claim  models.Claim  `json:"claim"`
	Entry  *models.Entry `json:"entry"`
	Capped bool          `json:"capped"`
}

// decidable loads a claim the actor may decide: a secretary over the claim's branch,
// never on their own claim. Returns ENotFound, EForbidden or EConflict (not pending).
func (s *Claims) decidable(ctx context.Context, tx *gorm.DB, a *Actor, id int64) (claimScope, error) {
	c, err := loadClaim(ctx, tx, id)
	return c, decidableBy(a, c, err)
}

// decidableBy is whether a may decide c, as read with err (ENotFound: no such claim).
func decidableBy(a *Actor, c claimScope, err error) error {
	if err := hidden(err, err == nil && (a.Can(models.RoleSecretary, c.BranchPath) || c.MemberID == a.ID), errClaimNotFound); err != nil {
		return err
	}
	if c.MemberID == a.ID {
		return models.Errorf(models.EForbidden, "nobody decides their own claim")
	}
	if c.Status != models.ClaimPending {
		return models.Errorf(models.EConflict, "the claim is %s already", c.Status)
	}
	return nil
}

// decide moves a claim out of pending with a compare-and-set: of two decisions racing,
// one finds it pending and the other gets EConflict.
func decide(tx *gorm.DB, id int64, changes map[string]any) error {
	res := tx.Model(&models.Claim{}).Where("id = ? AND status = ?", id, models.ClaimPending).Updates(changes)
	if res.Error != nil {
		return dbError("decide claim", res.Error)
	}
	if res.RowsAffected == 0 {
		return models.Errorf(models.EConflict, "the claim was decided meanwhile")
	}
	return nil
}

// Approve awards a pending claim min(requested, cap − awarded this month under the
// rule) and says whether the cap cut it. Returns ENotFound, EForbidden or EConflict
// (decided already, closed month). Approvals that arrive together are written together
// (approvalWriter).
func (s *Claims) Approve(ctx context.Context, a *Actor, id int64) (Decision, error) {
	ap := &approval{actor: a, id: id}
	err := s.approvals.q.do(ctx, ap)
	return ap.d, err
}

// approveAlone approves one claim in a transaction of its own.
func (s *Claims) approveAlone(ctx context.Context, a *Actor, id int64) (Decision, error) {
	var d Decision
	err := s.db.writeTx(ctx, func(tx *gorm.DB) error {
		d = Decision{}
		if err := checkCurrent(tx, a); err != nil {
			return err
		}
		c, err := s.decidable(ctx, tx, a, id)
		if err != nil {
			return err
		}
		st, err := lockMember(tx, c.MemberID, c.BranchPath, c.Period, c.RuleCode)
		if err != nil {
			return err
		}
		rule, err := s.db.ruleVersion(tx, c.RuleCode, c.RuleVersion)
		if err != nil {
			return err
		}
		var award models.Points
		award, d.Capped = capAward(rule, c.PointsRequested, st.RuleTotal)
		now := s.now().UTC().Truncate(time.Microsecond)
		if err := decide(tx, id, map[string]any{"status": models.ClaimApproved, "points_awarded": award, "decided_by": a.ID, "decided_at": now, "updated_at": now}); err != nil {
			return err
		}
		d.Claim = c.Claim
		d.Claim.Status, d.Claim.PointsAwarded, d.Claim.DecidedBy, d.Claim.DecidedAt, d.Claim.UpdatedAt = models.ClaimApproved, &award, &a.ID, &now, now
		if award > 0 {
			e, err := appendEntry(tx, &st, c.entryFor(rule, award, a), s.now())
			if err != nil {
				return err
			}
			d.Entry = &e
		}
		return writeAudit(tx, &a.ID, &c.BranchID, "claim.approved", "claim", c.ID, c.Claim, d.Claim)
	})
	return d, err
}

// Reject turns a pending claim down with a reason. Returns EInvalid, ENotFound,
// EForbidden or EConflict.
func (s *Claims) Reject(ctx context.Context, a *Actor, id int64, reason string) (models.Claim, error) {
	reason, err := checkReason(reason)
	if err != nil {
		return models.Claim{}, err
	}
	var c models.Claim
	err = s.db.W.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		cur, err := s.decidable(ctx, tx, a, id)
		if err != nil {
			return err
		}
		now := s.now().UTC().Truncate(time.Microsecond)
		if err := decide(tx, id, map[string]any{"status": models.ClaimRejected, "reason": reason, "decided_by": a.ID, "decided_at": now, "updated_at": now}); err != nil {
			return err
		}
		c = cur.Claim
		c.Status, c.Reason, c.DecidedBy, c.DecidedAt, c.UpdatedAt = models.ClaimRejected, &reason, &a.ID, &now, now
		return writeAudit(tx, &a.ID, &c.BranchID, "claim.rejected", "claim", c.ID, cur.Claim, c)
	})
	return c, err
}

// entryFor is the entry that approving c by a with award writes.
func (c *claimScope) entryFor(rule models.Rule, award models.Points, a *Actor) entryInput {
	return entryInput{MemberID: c.MemberID, BranchID: c.BranchID, Rule: rule, OccurredOn: c.OccurredOn,
		Points: award, Source: models.SourceClaim, ClaimID: &c.ID, Reason: c.Note, ActorID: &a.ID}
}

// BatchResult is the outcome for one claim of a batch.
type BatchResult struct {
	ClaimID int64         `json:"claim_id"`
	Status  string        `json:"status"`
	Error   *models.Error `json:"error"`
}

// MaxBatch is the most claims one batch decides.
const MaxBatch = 100

// Batch approves or rejects up to MaxBatch claims, each on its own (approvals are handed
// to the approval writer at once, so that they share its transactions), and reports each.
// Returns EInvalid for a malformed batch; per-claim failures are in the results.
func (s *Claims) Batch(ctx context.Context, a *Actor, ids []int64, action, reason string) ([]BatchResult, error) {
	fields := map[string]string{}
	if len(ids) == 0 || len(ids) > MaxBatch {
		fields["claim_ids"] = "must list 1 to 100 claims"
	}
	if len(distinct(ids)) != len(ids) {
		fields["claim_ids"] = "lists a claim twice"
	}
	switch action {
	case "approve":
	case "reject":
		if _, err := checkReason(reason); err != nil {
			fields["reason"] = "is required to reject, at most 500 characters"
		}
	default:
		fields["action"] = "must be approve or reject"
	}
	if len(fields) > 0 {
		return nil, models.Invalid(fields)
	}
	claims, errs := make([]models.Claim, len(ids)), make([]error, len(ids))
	if action == "approve" {
		// All at once, so that the approval writer takes them together.
		aps := make([]*approval, len(ids))
		for i, id := range ids {
			aps[i] = &approval{actor: a, id: id}
		}
		errs = s.approvals.q.doAll(ctx, aps)
		for i, ap := range aps {
			claims[i] = ap.d.Claim
		}
	} else {
		for i, id := range ids {
			claims[i], errs[i] = s.Reject(ctx, a, id, reason)
		}
	}
	out := make([]BatchResult, 0, len(ids))
	for i, id := range ids {
		c, err := claims[i], errs[i]
		r := BatchResult{ClaimID: id, Status: c.Status}
		if err != nil {
			var me *models.Error
			if !errors.As(err, &me) || me.Code == models.EUnavailable {
				return nil, err // the database is gone: stop, the rest would fail too
			}
			r.Status, r.Error = "error", &models.Error{Code: me.Code, Message: me.Message, Fields: me.Fields}
		}
		out = append(out, r)
	}
	return out, nil
}
