package app

import (
	"context"
	"strings"
	"time"

	"gorm.io/gorm"

	"partyledger/models"
)

// Rules keeps the catalogue. Every edit adds a version.
type Rules struct{ db *DB }

// NewRules returns the catalogue use cases.
func NewRules(db *DB) *Rules { return &Rules{db: db} }

// List returns the newest version of every rule, by code.
func (s *Rules) List(ctx context.Context) ([]models.Rule, error) {
	var rules []models.Rule
	err := s.db.R.WithContext(ctx).Where("version = (SELECT MAX(r2.version) FROM rules r2 WHERE r2.code = rules.code)").Order("code").Find(&rules).Error
	return rules, dbError("list rules", err)
}

// RuleInput is what POST /rules and PATCH /rules/{code} take; PATCH leaves nil fields as they are.
type RuleInput struct {
	Code            string         `json:"code"`
	Name            *string        `json:"name" validate:"omitempty,notblank,max=100"`
	Category        *string        `json:"category" validate:"omitempty,oneof=four_ones volunteer pioneer activity adjustment"`
	How             *string        `json:"how" validate:"omitempty,oneof=claim checkin manual"`
	Points          *models.Points `json:"points"`
	Unit            *string        `json:"unit" validate:"omitempty,oneof=once hour any"`
	MonthlyCap      *models.Points `json:"monthly_cap"`
	NoCap           bool           `json:"-"`
	NeedsEvidence   *bool          `json:"needs_evidence"`
	NeedsAssignment *bool          `json:"needs_assignment"`
	Active          *bool          `json:"active"`
}

func catalogueAdmin(a *Actor) error {
	for _, g := range a.Grants {
		if g.Role == models.RoleAdmin && strings.Count(g.orgPath, "/") == 2 { // an admin of a root
			return nil
		}
	}
	return models.Errorf(models.EForbidden, "only admins of the whole tree edit the rule catalogue")
}

func (in RuleInput) apply(r *models.Rule) error {
	if err := Validate(in); err != nil {
		return err
	}
	if in.Name != nil {
		r.Name = strings.TrimSpace(*in.Name)
	}
	for _, set := range []struct {
		src *string
		dst *string
	}{{in.Category, &r.Category}, {in.How, &r.How}, {in.Unit, &r.Unit}} {
		if set.src != nil {
			*set.dst = *set.src
		}
	}
	if in.Points != nil {
		r.Points = *in.Points
	}
	if in.MonthlyCap != nil {
		r.MonthlyCap = in.MonthlyCap
	}
	if in.NoCap {
		r.MonthlyCap = nil
	}
	for _, set := range []struct {
		src *bool
		dst *bool
	}{{in.NeedsEvidence, &r.NeedsEvidence}, {in.NeedsAssignment, &r.NeedsAssignment}, {in.Active, &r.Active}} {
		if set.src != nil {
			*set.dst = *set.src
		}
	}
	fields := map[string]string{}
	if r.Name == "" {
		fields["name"] = "is required"
	}
	if r.Points < 0 || (r.Points == 0 && r.How != models.HowManual) {
		fields["points"] = "must be greater than 0 (0 only for manual rules)"
	}
	if r.MonthlyCap != nil && *r.MonthlyCap <= 0 {
		fields["monthly_cap"] = "must be greater than 0, or null for no cap"
	}
	if r.Unit == "any" && r.How != models.HowManual {
		fields["unit"] = "any is for manual rules"
	}
	if r.NeedsAssignment && r.How != models.HowClaim {
		fields["needs_assignment"] = "only claims can need a post assignment"
	}
	if len(fields) > 0 {
		return models.Invalid(fields)
	}
	return nil
}

// Create adds a new rule (version 1). Returns EInvalid, EForbidden or EConflict.
func (s *Rules) Create(ctx context.Context, a *Actor, in RuleInput) (models.Rule, error) {
	if err := catalogueAdmin(a); err != nil {
		return models.Rule{}, err
	}
	fields := map[string]string{}
	if len(in.Code) > maxRuleCode || !ruleCodeRe.MatchString(in.Code) {
		fields["code"] = "must be lower-case letters, digits, '_' and '.', such as volunteer.teaching (at most 64)"
	}
	for name, v := range map[string]any{"name": in.Name, "category": in.Category, "how": in.How, "points": in.Points, "unit": in.Unit} {
		if isNilPtr(v) {
			fields[name] = "is required"
		}
	}
	if len(fields) > 0 {
		return models.Rule{}, models.Invalid(fields)
	}
	r := models.Rule{Code: in.Code, Version: 1, Active: true, CreatedBy: &a.ID, CreatedAt: time.Now().UTC().Truncate(time.Microsecond)}
	if err := in.apply(&r); err != nil {
		return r, err
	}
	err := s.db.W.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(&r).Error; err != nil {
			if isDuplicate(err) {
				return models.Errorf(models.EConflict, "rule %s exists; change it with PATCH", r.Code)
			}
			return dbError("create rule", err)
		}
		return writeAudit(tx, &a.ID, nil, "rule.created", "rule", r.ID, nil, r)
	})
	return r, err
}

// Update adds a version of a rule with the given changes. Returns EInvalid, EForbidden,
// ENotFound or EConflict (a concurrent edit).
func (s *Rules) Update(ctx context.Context, a *Actor, code string, in RuleInput) (models.Rule, error) {
	if err := catalogueAdmin(a); err != nil {
		return models.Rule{}, err
	}
	var r models.Rule
	err := s.db.W.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		cur, err := currentRule(tx, code)
		if err != nil {
			return err
		}
		r = cur
		r.ID, r.Version, r.CreatedBy, r.CreatedAt = 0, cur.Version+1, &a.ID, time.Now().UTC().Truncate(time.Microsecond)
		if in.How != nil && *in.How != cur.How {
			return models.InvalidField("how", "cannot change; make a new rule")
		}
		if err := in.apply(&r); err != nil {
			return err
		}
		if err := tx.Create(&r).Error; err != nil {
			if isDuplicate(err) {
				return models.Errorf(models.EConflict, "rule %s was changed meanwhile; try again", code)
			}
			return dbError("update rule", err)
		}
		return writeAudit(tx, &a.ID, nil, "rule.updated", "rule", r.ID, cur, r)
	})
	return r, err
}

func isNilPtr(v any) bool {
	switch p := v.(type) {
	case *string:
		return p == nil
	case *models.Points:
		return p == nil
	}
	return v == nil
}
