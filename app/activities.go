package app

import (
	"context"
	"crypto/subtle"
	"errors"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"

	"partyledger/models"
)

// Activities are events with a QR check-in code; checking in earns points at once.
type Activities struct {
	db     *DB
	writer *sharedWriter[*checkinWrite]
	loc    *time.Location
	now    func() time.Time
}

// NewActivities returns the activity use cases; months begin in loc.
func NewActivities(db *DB, loc *time.Location) *Activities {
	s := &Activities{db: db, loc: loc, now: time.Now}
	s.writer = newCheckinWriter(s)
	return s
}

// checkinCodeLen characters of a 32-letter alphabet: 80 bits, unguessable.
const checkinCodeLen = 16

func newCheckinCode() string {
	b := randomBytes(checkinCodeLen)
	for i := range b {
		b[i] = inviteAlphabet[int(b[i])%len(inviteAlphabet)]
	}
	return string(b)
}

// ActivityInput is what POST /activities takes.
type ActivityInput struct {
	OrgID    int64    `json:"org_id" validate:"required,gt=0"`
	Title    string   `json:"title" validate:"notblank,max=200"`
	RuleCode string   `json:"rule_code" validate:"required"`
	StartsAt string   `json:"starts_at" validate:"required"`
	EndsAt   string   `json:"ends_at" validate:"required"`
	Lat      *float64 `json:"lat" validate:"omitempty,gte=-90,lte=90"`
	Lng      *float64 `json:"lng" validate:"omitempty,gte=-180,lte=180"`
	RadiusM  *int     `json:"radius_m" validate:"omitempty,gte=10,lte=100000"`
}

var errActivityNotFound = models.Errorf(models.ENotFound, "no such activity")

// Create adds an activity for an org the actor is secretary over, with a fresh check-in
// code. Returns EInvalid or ENotFound.
func (s *Activities) Create(ctx context.Context, a *Actor, in ActivityInput) (models.Activity, error) {
	if err := Validate(in); err != nil {
		return models.Activity{}, err
	}
	fields := map[string]string{}
	// An activity outside the ledger's years could never be checked in at, and MySQL's
	// DATETIME does not promise years before 1000.
	starts, err := time.Parse(time.RFC3339, in.StartsAt)
	if err != nil || !models.LedgerYear(starts.UTC().Year()) {
		fields["starts_at"] = "must be a time such as 2026-05-28T14:00:00+08:00, in the years 2000 to 2100"
	}
	ends, err := time.Parse(time.RFC3339, in.EndsAt)
	switch {
	case err != nil || !models.LedgerYear(ends.UTC().Year()):
		fields["ends_at"] = "must be a time such as 2026-05-28T16:00:00+08:00, in the years 2000 to 2100"
	case fields["starts_at"] == "" && !ends.After(starts):
		fields["ends_at"] = "must be after starts_at"
	case fields["starts_at"] == "" && ends.Sub(starts) > 7*24*time.Hour:
		fields["ends_at"] = "an activity lasts at most 7 days"
	}
	if (in.Lat == nil) != (in.Lng == nil) || (in.RadiusM != nil && in.Lat == nil) {
		fields["radius_m"] = "a radius needs lat and lng, and lat and lng go together"
	}
	var act models.Activity
	err = s.db.W.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		rule, err := currentRule(tx, in.RuleCode)
		if err != nil && !isNotFound(err) {
			return err
		}
		if err != nil || rule.How != models.HowCheckin || !rule.Active {
			fields["rule_code"] = "must be a check-in rule (activity.day, meeting.attend)"
		}
		if len(fields) > 0 {
			return models.Invalid(fields)
		}
		o, err := getOrg(ctx, tx, in.OrgID)
		if err := hidden(err, err == nil && a.Can(models.RoleSecretary, o.Path), errOrgNotFound); err != nil {
			return err
		}
		now := s.now().UTC().Truncate(time.Microsecond)
		act = models.Activity{OrgID: o.ID, Title: strings.TrimSpace(in.Title), RuleCode: rule.Code, StartsAt: starts.UTC().Truncate(time.Microsecond),
			EndsAt: ends.UTC().Truncate(time.Microsecond), CheckinCode: newCheckinCode(), Lat: in.Lat, Lng: in.Lng, RadiusM: in.RadiusM,
			CreatedBy: &a.ID, CreatedAt: now}
		if err := tx.Create(&act).Error; err != nil {
			return dbError("create activity", err)
		}
		audited := act
		audited.CheckinCode = ""
		return writeAudit(tx, &a.ID, &o.ID, "activity.created", "activity", act.ID, nil, audited)
	})
	return act, err
}

type activityScope struct {
	models.Activity
	OrgPath string
}

func (s *Activities) load(ctx context.Context, db *gorm.DB, id int64) (activityScope, error) {
	var act activityScope
	err := db.WithContext(ctx).Table("activities").Select("activities.*, orgs.path AS org_path").
		Joins("JOIN orgs ON orgs.id = activities.org_id").Where("activities.id = ?", id).Take(&act).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return act, errActivityNotFound
	}
	return act, dbError("get activity", err)
}

// RotateCode gives an activity a new check-in code; the old one stops working.
// Returns ENotFound.
func (s *Activities) RotateCode(ctx context.Context, a *Actor, id int64) (models.Activity, error) {
	var act activityScope
	err := s.db.W.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var err error
		act, err = s.load(ctx, tx, id)
		if err := hidden(err, err == nil && a.Can(models.RoleSecretary, act.OrgPath), errActivityNotFound); err != nil {
			return err
		}
		act.CheckinCode = newCheckinCode()
		if err := tx.Model(&models.Activity{}).Where("id = ?", id).Update("checkin_code", act.CheckinCode).Error; err != nil {
			return dbError("rotate code", err)
		}
		return writeAudit(tx, &a.ID, &act.OrgID, "activity.code_rotated", "activity", id, nil, nil)
	})
	return act.Activity, err
}

// List returns the activities a member may check in at (those of their branch, the orgs
// above it and their party group) and those of the orgs the actor is secretary over;
// codes only to the secretaries.
func (s *Activities) List(ctx context.Context, a *Actor, p Page) (List[models.Activity], error) {
	scopes := a.Scopes(models.RoleSecretary)
	q := s.db.R.WithContext(ctx).Table("activities").Select("activities.*, orgs.path AS org_path").Joins("JOIN orgs ON orgs.id = activities.org_id").
		Where("activities.id > ?", p.After)
	ancestors := ancestorIDs(a.BranchPath)
	if a.GroupID != nil { // and their party group's meetings (党小组会)
		ancestors = append(ancestors, *a.GroupID)
	}
	if len(scopes) > 0 {
		q = q.Where(s.db.R.Where("activities.org_id IN ?", ancestors).Or(scopeClause("orgs.path", scopes)))
	} else {
		q = q.Where("activities.org_id IN ?", ancestors)
	}
	var rows []activityScope
	if err := q.Order("activities.id").Limit(p.Limit + 1).Find(&rows).Error; err != nil {
		return List[models.Activity]{}, dbError("list activities", err)
	}
	out := make([]models.Activity, len(rows))
	for i, r := range rows {
		out[i] = r.Activity
		if !a.Can(models.RoleSecretary, r.OrgPath) {
			out[i].CheckinCode = ""
		}
	}
	return pageOf(out, p.Limit, func(x models.Activity) int64 { return x.ID }), nil
}

// CheckinInput is what POST /activities/{id}/checkin takes.
type CheckinInput struct {
	Code string   `json:"code" validate:"required,max=64"`
	Lat  *float64 `json:"lat" validate:"omitempty,gte=-90,lte=90"`
	Lng  *float64 `json:"lng" validate:"omitempty,gte=-180,lte=180"`
}

// CheckinResult is a check-in and the entry it earned.
type CheckinResult struct {
	Checkin models.Checkin `json:"checkin"`
	Entry   *models.Entry  `json:"entry"`
	Capped  bool           `json:"capped"`
}

// distanceM is the great-circle distance in metres.
func distanceM(lat1, lng1, lat2, lng2 float64) float64 {
	const r = 6371000.0
	rad := math.Pi / 180
	dLat, dLng := (lat2-lat1)*rad, (lng2-lng1)*rad
	h := math.Sin(dLat/2)*math.Sin(dLat/2) + math.Cos(lat1*rad)*math.Cos(lat2*rad)*math.Sin(dLng/2)*math.Sin(dLng/2)
	return 2 * r * math.Asin(math.Min(1, math.Sqrt(h)))
}

// Checkin records the actor at an activity of their branch or an org above it, once,
// inside its time window and radius, and awards the rule's points at once (up to the
// monthly cap). Returns EInvalid (code, place), ENotFound or EConflict (outside the
// window, checked in already, closed month).
func (s *Activities) Checkin(ctx context.Context, a *Actor, id int64, in CheckinInput) (CheckinResult, error) {
	cw, err := s.toWrite(ctx, a, id, in)
	if err != nil {
		return CheckinResult{}, err
	}
	if err := s.writer.q.do(ctx, cw); err != nil {
		return CheckinResult{}, err
	}
	return cw.res, nil
}

// toWrite checks a check-in against its activity and returns it on its way to the
// writer, which checks the rest (checked in already, closed month, cap).
func (s *Activities) toWrite(ctx context.Context, a *Actor, id int64, in CheckinInput) (*checkinWrite, error) {
	if err := Validate(in); err != nil {
		return nil, err
	}
	act, err := s.load(ctx, s.db.R, id)
	if err := hidden(err, err == nil && takesPart(a, act), errActivityNotFound); err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare([]byte(strings.ToUpper(strings.TrimSpace(in.Code))), []byte(act.CheckinCode)) != 1 {
		return nil, models.InvalidField("code", "is not this activity's current check-in code")
	}
	now := s.now()
	if now.Before(act.StartsAt) || now.After(act.EndsAt) {
		return nil, models.Errorf(models.EConflict, "check-in is open from %s to %s", act.StartsAt.In(s.loc).Format("01-02 15:04"), act.EndsAt.In(s.loc).Format("01-02 15:04"))
	}
	if act.RadiusM != nil {
		if in.Lat == nil || in.Lng == nil {
			return nil, models.InvalidField("lat", "this activity needs your location")
		}
		if d := distanceM(*act.Lat, *act.Lng, *in.Lat, *in.Lng); d > float64(*act.RadiusM) {
			return nil, models.InvalidField("lat", "you are too far from the activity")
		}
	}
	return &checkinWrite{actor: a, act: act, in: in, now: now, day: models.Today(now, s.loc)}, nil
}

// takesPart reports whether an activity is one of a member's: one of their branch or an
// org above it, or of their party group (a 党小组会).
func takesPart(a *Actor, act activityScope) bool {
	return models.PathContains(act.OrgPath, a.BranchPath) || (a.GroupID != nil && act.OrgID == *a.GroupID)
}

func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n])
}

// AttendanceRow is one member at an activity.
type AttendanceRow struct {
	models.Checkin
	MemberNo string `json:"member_no"`
	Name     string `json:"name"`
}

// Attendance lists who checked in, for secretaries over the activity's org.
// Returns ENotFound.
func (s *Activities) Attendance(ctx context.Context, a *Actor, id int64, p Page) (List[AttendanceRow], error) {
	act, err := s.load(ctx, s.db.R, id)
	if err := hidden(err, err == nil && a.CanAny(act.OrgPath, models.RoleSecretary, models.RoleLeader), errActivityNotFound); err != nil {
		return List[AttendanceRow]{}, err
	}
	var rows []AttendanceRow
	err = s.db.R.WithContext(ctx).Table("checkins").Select("checkins.*, members.member_no, members.name").
		Joins("JOIN members ON members.id = checkins.member_id").Where("checkins.activity_id = ? AND checkins.id > ?", id, p.After).
		Order("checkins.id").Limit(p.Limit + 1).Find(&rows).Error
	if err != nil {
		return List[AttendanceRow]{}, dbError("attendance", err)
	}
	return pageOf(rows, p.Limit, func(r AttendanceRow) int64 { return r.ID }), nil
}
