package app

import (
	"log/slog"
)

// Services are the use cases, wired from a configuration and an open database.
type Services struct {
	Identity   *Identity
	Orgs       *Orgs
	Members    *Members
	Ledger     *Ledger
	Rules      *Rules
	Audit      *Audit
	Claims     *Claims
	Uploads    *Uploads
	Posts      *Posts
	Activities *Activities
	Aggregates *Aggregates
	Appeals    *Appeals
}

// NewServices wires the use cases. wechat may be nil, in which case the WeChat client
// configured in cfg is used.
func NewServices(cfg Config, db *DB, wechat Code2Sessioner, log *slog.Logger) *Services {
	if wechat == nil {
		wechat = NewWechat(cfg.WechatBaseURL, cfg.WechatAppID, cfg.WechatSecret, cfg.WechatTimeout)
	}
	tokens := NewTokens(db, cfg.JWTSecret, cfg.AccessTTL, cfg.RefreshTTL)
	return &Services{
		Identity:   NewIdentity(db, tokens, wechat, cfg.Demo, cfg.LoginPerUser, cfg.LoginPerIP, log),
		Orgs:       NewOrgs(db),
		Members:    NewMembers(db, cfg.InviteTTL),
		Ledger:     NewLedger(db, cfg.Location, cfg.PublicityDays),
		Rules:      NewRules(db),
		Audit:      NewAudit(db),
		Claims:     NewClaims(db, cfg.Location).Limit(cfg.ClaimPerMember, cfg.ClaimPerIP),
		Uploads:    NewUploads(db, FSStore{Dir: cfg.DataDir}).Limit(cfg.UploadPerMember, cfg.UploadPerIP),
		Posts:      NewPosts(db),
		Activities: NewActivities(db, cfg.Location),
		Appeals:    NewAppeals(db),
		Aggregates: NewAggregates(db, cfg.Location, cfg.StarThresholds, cfg.ReportMaxRows),
	}
}
