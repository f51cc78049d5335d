package app

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"gorm.io/gorm"

	"partyledger/models"
)

// writeAudit records one state change inside the transaction that makes it, so the log
// and the change commit or roll back together. before and after are marshalled to JSON.
func writeAudit(tx *gorm.DB, actorID, orgID *int64, action, entity string, entityID int64, before, after any) error {
	rec, err := auditRecord(actorID, orgID, action, entity, entityID, before, after)
	if err != nil {
		return err
	}
	return dbError("write audit", tx.Create(&rec).Error)
}

// writeAudits records many state changes in one INSERT, inside the transaction that
// makes them (the shared writers' batches).
func writeAudits(tx *gorm.DB, recs []models.AuditRecord) error {
	if len(recs) == 0 {
		return nil
	}
	return dbError("write audit", tx.Create(&recs).Error)
}

func auditRecord(actorID, orgID *int64, action, entity string, entityID int64, before, after any) (models.AuditRecord, error) {
	b, err := json.Marshal(before)
	if err != nil {
		return models.AuditRecord{}, fmt.Errorf("audit %s: %w", action, err)
	}
	a, err := json.Marshal(after)
	if err != nil {
		return models.AuditRecord{}, fmt.Errorf("audit %s: %w", action, err)
	}
	if actorID != nil && *actorID == 0 {
		actorID = nil // the command line (SystemActor)
	}
	return models.AuditRecord{ActorID: actorID, OrgID: orgID, Action: action, Entity: entity, EntityID: entityID,
		Before: string(b), After: string(a), CreatedAt: time.Now().UTC().Truncate(time.Microsecond)}, nil
}

// Audit reads the audit log.
type Audit struct{ db *DB }

// NewAudit returns the audit log reader.
func NewAudit(db *DB) *Audit { return &Audit{db: db} }

// List returns the audit records of an org subtree the actor administers, oldest first,
// optionally since a time. The root's are all of them, with those of no org: the rule
// catalogue's, which belongs to the whole tree (only the root's admins change it).
// Returns EForbidden, EInvalid or ENotFound.
func (s *Audit) List(ctx context.Context, a *Actor, orgID int64, since *time.Time, p Page) (List[models.AuditRecord], error) {
	if len(a.Scopes(models.RoleAdmin)) == 0 {
		return List[models.AuditRecord]{}, models.Errorf(models.EForbidden, "only admins read the audit log")
	}
	o, err := getOrg(ctx, s.db.R, orgID)
	if err := hidden(err, err == nil && a.Can(models.RoleAdmin, o.Path), errOrgNotFound); err != nil {
		return List[models.AuditRecord]{}, err
	}
	q := s.db.R.WithContext(ctx).Table("audit_log").Select("audit_log.*").Where("audit_log.id > ?", p.After)
	if o.ParentID != nil {
		cond, args := subtree("orgs.path", o.Path)
		q = q.Joins("JOIN orgs ON orgs.id = audit_log.org_id").Where(cond, args...)
	}
	if since != nil {
		q = q.Where("audit_log.created_at >= ?", since.UTC())
	}
	var rows []models.AuditRecord
	if err := q.Order("audit_log.id").Limit(p.Limit + 1).Find(&rows).Error; err != nil {
		return List[models.AuditRecord]{}, dbError("list audit", err)
	}
	return pageOf(rows, p.Limit, func(r models.AuditRecord) int64 { return r.ID }), nil
}
