package app

import (
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
