package models

import "time"

// MemberStatus says whether a member may use the service.
type MemberStatus string

// Member statuses.
const (
	StatusActive   MemberStatus = "active"
	StatusInactive MemberStatus = "inactive"
)

// Member is a party member on the roster, and also the account that logs in: members log
// in with WeChat, staff (secretaries, leaders, admins) may also have a username and password.
type Member struct {
	ID           int64        `gorm:"primaryKey" json:"id"`
	MemberNo     string       `json:"member_no"`
	Name         string       `json:"name"`
	BranchID     int64        `json:"branch_id"`
	GroupID      *int64       `json:"group_id"`
	Status       MemberStatus `json:"status"`
	Username     *string      `json:"username,omitempty"`
	PasswordHash *string      `json:"-"`
	WechatOpenID *string      `gorm:"column:wechat_openid" json:"-"`
	AuthRev      int64        `json:"-"`
	CreatedAt    time.Time    `json:"created_at"`
	UpdatedAt    time.Time    `json:"updated_at"`
}

// Role names. Every member implicitly holds RoleMember in their own branch.
type Role string

// The roles.
const (
	RoleMember    Role = "member"
	RoleSecretary Role = "secretary"
	RoleLeader    Role = "leader"
	RoleAdmin     Role = "admin"
)

// AllowedOn reports whether role r may be scoped to an org of kind k.
func (r Role) AllowedOn(k OrgKind) bool {
	switch r {
	case RoleMember:
		return k == KindBranch
	case RoleSecretary:
		return k == KindBranch || k == KindGeneralBranch || k == KindCommittee
	case RoleLeader, RoleAdmin:
		return k == KindCommittee || k == KindGeneralBranch
	}
	return false
}

// MemberRole grants a role over an org subtree.
type MemberRole struct {
	ID        int64     `gorm:"primaryKey" json:"-"`
	MemberID  int64     `json:"-"`
	Role      Role      `json:"role"`
	OrgID     int64     `json:"org_id"`
	CreatedAt time.Time `json:"-"`
}

// InviteCode is a one-time code that binds a WeChat account to a member. Only its hash is stored.
type InviteCode struct {
	ID        int64 `gorm:"primaryKey"`
	MemberID  int64
	CodeHash  string
	ExpiresAt time.Time
	UsedAt    *time.Time
	RevokedAt *time.Time
	CreatedBy int64
	CreatedAt time.Time
}

// RefreshToken is one opaque refresh token of a login family. Only its hash is stored.
// A token is spent once (UsedAt); presenting a spent one revokes the whole family.
type RefreshToken struct {
	ID        int64 `gorm:"primaryKey"`
	FamilyID  string
	MemberID  int64
	TokenHash string
	ExpiresAt time.Time
	UsedAt    *time.Time
	RevokedAt *time.Time
	CreatedAt time.Time
}

// AuditRecord is one state change: who did what to which thing, before and after (JSON).
type AuditRecord struct {
	ID        int64     `gorm:"primaryKey" json:"id"`
	ActorID   *int64    `json:"actor_id"`
	OrgID     *int64    `json:"org_id"`
	Action    string    `json:"action"`
	Entity    string    `json:"entity"`
	EntityID  int64     `json:"entity_id"`
	Before    string    `gorm:"column:before_state" json:"before"`
	After     string    `gorm:"column:after_state" json:"after"`
	CreatedAt time.Time `json:"created_at"`
}

// TableName keeps the audit table's name short and explicit.
func (AuditRecord) TableName() string { return "audit_log" }
