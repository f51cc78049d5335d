package app

import (
	"context"
	"errors"
	"strconv"
	"time"

	"gorm.io/gorm"

	"partyledger/models"
)

// Appeals are 申诉: a member contests their result of a closed month, or a rejected claim
// of it, while the month is published; a leader or an admin above the branch (never the
// secretary who decided, never the member) upholds, which records a correcting entry in
// the closed month, or dismisses with a reason.
type Appeals struct {
	db  *DB
	now func() time.Time
}

// NewAppeals returns the appeal use cases.
func NewAppeals(db *DB) *Appeals { return &Appeals{db: db, now: time.Now} }

// AppealInput is what POST /appeals takes.
type AppealInput struct {
	Period  string `json:"period" validate:"required"`
	ClaimID *int64 `json:"claim_id" validate:"omitempty,gt=0"`
	Reason  string `json:"reason" validate:"notblank,max=500"`
}

var errAppealNotFound = models.Errorf(models.ENotFound, "no such appeal")

// File files an appeal of the actor's own. Returns EInvalid, ENotFound (the claim is not
// theirs) or EConflict (the month is not published now, the claim was not rejected, or
// the same thing was appealed already).
func (s *Appeals) File(ctx context.Context, a *Actor, in AppealInput) (models.Appeal, error) {
	if err := Validate(in); err != nil {
		return models.Appeal{}, err
	}
	per, err := parsePeriodField(in.Period)
	if err != nil {
		return models.Appeal{}, err
	}
	ap := models.Appeal{MemberID: a.ID, BranchID: a.BranchID, Period: per, ClaimID: in.ClaimID, Subject: "month",
		Status: models.AppealOpen, CreatedAt: s.now().UTC().Truncate(time.Microsecond)}
	if ap.Reason, err = checkReason(in.Reason); err != nil {
		return ap, err
	}
	err = s.db.writeTx(ctx, func(tx *gorm.DB) error {
		path := a.BranchPath
		if in.ClaimID != nil {
			c, err := loadClaim(ctx, tx, *in.ClaimID)
			if err := hidden(err, err == nil && c.MemberID == a.ID, errClaimNotFound); err != nil {
				return err
			}
			if c.Period != per {
				return models.InvalidField("claim_id", "is a claim of "+string(c.Period)+", not of "+string(per))
			}
			if c.Status != models.ClaimRejected {
				return models.Errorf(models.EConflict, "only a rejected claim can be appealed; this one is %s", c.Status)
			}
			ap.BranchID, ap.Subject, path = c.BranchID, "claim:"+strconv.FormatInt(c.ID, 10), c.BranchPath
		}
		pub, err := publicityOf(ctx, tx, path, per, s.now())
		if err != nil {
			return err
		}
		switch {
		case !pub.Closed:
			return models.Errorf(models.EConflict, "%s has not been closed and published yet", per)
		case !pub.Open:
			return models.Errorf(models.EConflict, "the publicity window of %s is over; the month is final", per)
		}
		if err := tx.Create(&ap).Error; err != nil {
			if isDuplicate(err) {
				return models.Errorf(models.EConflict, "you have appealed this already")
			}
			return dbError("file appeal", err)
		}
		return writeAudit(tx, &a.ID, &ap.BranchID, "appeal.filed", "appeal", ap.ID, nil, ap)
	})
	return ap, err
}

// AppealFilter narrows GET /appeals.
type AppealFilter struct {
	Status string
}

// List returns the actor's own appeals and those they may decide, newest first. Returns
// EInvalid.
func (s *Appeals) List(ctx context.Context, a *Actor, f AppealFilter, p Page) (List[models.Appeal], error) {
	q := s.db.R.WithContext(ctx).Model(&models.Appeal{})
	if f.Status != "" {
		if f.Status != models.AppealOpen && f.Status != models.AppealUpheld && f.Status != models.AppealDismissed {
			return List[models.Appeal]{}, models.InvalidField("status", "must be open, upheld or dismissed")
		}
		q = q.Where("status = ?", f.Status)
	}
	who := s.db.R.Where("member_id = ?", a.ID)
	for _, path := range a.Scopes(models.RoleLeader, models.RoleAdmin) {
		cond, args := subtree("o.path", path)
		who = who.Or("branch_id IN (SELECT o.id FROM orgs o WHERE "+cond+")", args...)
	}
	q = q.Where(who)
	if p.After > 0 {
		q = q.Where("id < ?", p.After)
	}
	var rows []models.Appeal
	if err := q.Order("id DESC").Limit(p.Limit + 1).Find(&rows).Error; err != nil {
		return List[models.Appeal]{}, dbError("list appeals", err)
	}
	return pageOf(rows, p.Limit, func(ap models.Appeal) int64 { return ap.ID }), nil
}

// UpholdInput is what POST /appeals/{id}/uphold takes: the correction, in points (a
// deduction negative), and the reason.
type UpholdInput struct {
	Points models.Points `json:"points"`
	Reason string        `json:"reason" validate:"notblank,max=500"`
}

// AppealDecision is an appeal after its decision, and the correcting entry of an upheld one.
type AppealDecision struct {
	Appeal models.Appeal `json:"appeal"`
	Entry  *models.Entry `json:"entry"`
}

// maxCorrection bounds one correcting entry: 100 points either way.
const maxCorrection models.Points = 1000

// decidable reads an open appeal the actor may decide: a leader or an admin over its
// branch, not the member, not the secretary who decided the claim. Returns ENotFound,
// EForbidden or EConflict.
func (s *Appeals) decidable(ctx context.Context, tx *gorm.DB, a *Actor, id int64) (models.Appeal, models.Org, *models.Claim, error) {
	var ap models.Appeal
	if err := tx.WithContext(ctx).Take(&ap, id).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return ap, models.Org{}, nil, errAppealNotFound
		}
		return ap, models.Org{}, nil, dbError("get appeal", err)
	}
	branch, err := getOrg(ctx, tx, ap.BranchID)
	if err != nil {
		return ap, branch, nil, err
	}
	if ap.MemberID == a.ID {
		return ap, branch, nil, models.Errorf(models.EForbidden, "nobody decides their own appeal")
	}
	if !a.CanAny(branch.Path, models.RoleLeader, models.RoleAdmin) {
		return ap, branch, nil, errAppealNotFound
	}
	var claim *models.Claim
	if ap.ClaimID != nil {
		c, err := loadClaim(ctx, tx, *ap.ClaimID)
		if err != nil {
			return ap, branch, nil, err
		}
		if c.DecidedBy != nil && *c.DecidedBy == a.ID {
			return ap, branch, nil, models.Errorf(models.EForbidden, "the appeal is against your own decision; another leader or admin decides it")
		}
		claim = &c.Claim
	}
	if ap.Status != models.AppealOpen {
		return ap, branch, claim, models.Errorf(models.EConflict, "the appeal has been %s already", ap.Status)
	}
	return ap, branch, claim, nil
}

// closeAppeal moves an open appeal to its decision, compare-and-set.
func closeAppeal(tx *gorm.DB, ap *models.Appeal, a *Actor, status, reason string, entryID *int64, now time.Time) error {
	res := tx.Model(&models.Appeal{}).Where("id = ? AND status = ?", ap.ID, models.AppealOpen).
		Updates(map[string]any{"status": status, "decided_by": a.ID, "decided_at": now, "decision_reason": reason, "entry_id": entryID})
	if res.Error != nil {
		return dbError("decide appeal", res.Error)
	}
	if res.RowsAffected == 0 {
		return models.Errorf(models.EConflict, "the appeal was decided meanwhile")
	}
	ap.Status, ap.DecidedBy, ap.DecidedAt, ap.DecisionReason, ap.EntryID = status, &a.ID, &now, &reason, entryID
	return nil
}

// Uphold upholds an appeal: a correcting entry in the appealed month (closed or not: the
// one exception to the lock), under the appealed claim's rule, or as a bonus or deduction
// for a month's result. Returns EInvalid, ENotFound, EForbidden or EConflict.
func (s *Appeals) Uphold(ctx context.Context, a *Actor, id int64, in UpholdInput) (AppealDecision, error) {
	if err := Validate(in); err != nil {
		return AppealDecision{}, err
	}
	reason, err := checkReason(in.Reason)
	if err != nil {
		return AppealDecision{}, err
	}
	if in.Points == 0 || in.Points > maxCorrection || in.Points < -maxCorrection {
		return AppealDecision{}, models.InvalidField("points", "must be a correction from -100 to 100, not 0")
	}
	var d AppealDecision
	err = s.db.writeTx(ctx, func(tx *gorm.DB) error {
		d = AppealDecision{}
		ap, branch, claim, err := s.decidable(ctx, tx, a, id)
		if err != nil {
			return err
		}
		var rule models.Rule
		day := models.Date(string(ap.Period) + "-01")
		switch {
		case claim != nil:
			if in.Points < 0 {
				return models.InvalidField("points", "an upheld claim is awarded points, not deducted")
			}
			if rule, err = s.db.ruleVersion(tx, claim.RuleCode, claim.RuleVersion); err != nil {
				return err
			}
			day = claim.OccurredOn
		case in.Points > 0:
			rule, err = currentRule(tx, "adjust.bonus")
		default:
			rule, err = currentRule(tx, "adjust.deduct")
		}
		if err != nil {
			return err
		}
		st, err := lockMemberIn(tx, ap.MemberID, branch.Path, ap.Period, rule.Code, true)
		if err != nil {
			return err
		}
		e, err := appendEntry(tx, &st, entryInput{MemberID: ap.MemberID, BranchID: ap.BranchID, Rule: rule, OccurredOn: day,
			Points: in.Points, Source: models.SourceAppeal, Reason: reason, ActorID: &a.ID}, s.now())
		if err != nil {
			return err
		}
		d.Entry = &e
		before := ap
		if err := closeAppeal(tx, &ap, a, models.AppealUpheld, reason, &e.ID, s.now().UTC().Truncate(time.Microsecond)); err != nil {
			return err
		}
		d.Appeal = ap
		return writeAudit(tx, &a.ID, &ap.BranchID, "appeal.upheld", "appeal", ap.ID, before, ap)
	})
	return d, err
}

// Dismiss dismisses an appeal with a reason. Returns EInvalid, ENotFound, EForbidden or
// EConflict.
func (s *Appeals) Dismiss(ctx context.Context, a *Actor, id int64, reason string) (AppealDecision, error) {
	reason, err := checkReason(reason)
	if err != nil {
		return AppealDecision{}, err
	}
	var d AppealDecision
	err = s.db.writeTx(ctx, func(tx *gorm.DB) error {
		ap, _, _, err := s.decidable(ctx, tx, a, id)
		if err != nil {
			return err
		}
		before := ap
		if err := closeAppeal(tx, &ap, a, models.AppealDismissed, reason, nil, s.now().UTC().Truncate(time.Microsecond)); err != nil {
			return err
		}
		d = AppealDecision{Appeal: ap}
		return writeAudit(tx, &a.ID, &ap.BranchID, "appeal.dismissed", "appeal", ap.ID, before, ap)
	})
	return d, err
}
