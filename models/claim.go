package models

import "time"

// Claim states. Only a pending claim changes; the others are final.
const (
	ClaimPending   = "pending"
	ClaimApproved  = "approved"
	ClaimRejected  = "rejected"
	ClaimWithdrawn = "withdrawn"
)

// Claim is a member's request for points under a claim rule.
type Claim struct {
	ID              int64      `gorm:"primaryKey" json:"id"`
	MemberID        int64      `json:"member_id"`
	BranchID        int64      `json:"branch_id"`
	RuleCode        string     `json:"rule_code"`
	RuleVersion     int        `json:"rule_version"`
	Period          Period     `json:"period"`
	OccurredOn      Date       `json:"occurred_on"`
	Quantity        Points     `json:"quantity"`
	PointsRequested Points     `json:"points_requested"`
	Status          string     `json:"status"`
	Note            string     `json:"note"`
	AssignmentID    *int64     `json:"assignment_id"`
	EvidenceIDs     []int64    `gorm:"-" json:"evidence_ids"`
	PointsAwarded   *Points    `json:"points_awarded"`
	DecidedBy       *int64     `json:"decided_by"`
	DecidedAt       *time.Time `json:"decided_at"`
	Reason          *string    `json:"reason"`
	IdempotencyKey  *string    `json:"-"`
	RequestHash     string     `json:"-"`
	CreatedAt       time.Time  `json:"created_at"`
	UpdatedAt       time.Time  `json:"updated_at"`
}

// ClaimEvidence links a claim to an uploaded photo.
type ClaimEvidence struct {
	ClaimID  int64
	UploadID int64
}

// TableName is claim_evidence, not claim_evidences.
func (ClaimEvidence) TableName() string { return "claim_evidence" }

// Upload is an evidence photo. The bytes live in the blob store under StorageKey.
type Upload struct {
	ID          int64     `gorm:"primaryKey" json:"id"`
	OwnerID     int64     `json:"owner_id"`
	ContentType string    `json:"content_type"`
	Size        int64     `json:"size"`
	SHA256      string    `gorm:"column:sha256" json:"sha256"`
	StorageKey  string    `json:"-"`
	CreatedAt   time.Time `json:"created_at"`
}

// Post is a pioneer post (党员先锋岗) of a branch.
type Post struct {
	ID        int64     `gorm:"primaryKey" json:"id"`
	BranchID  int64     `json:"branch_id"`
	Name      string    `json:"name"`
	Duties    string    `json:"duties"`
	CreatedBy *int64    `json:"-"`
	CreatedAt time.Time `json:"created_at"`
}

// PostAssignment puts a member on a post for a term, with their written commitment (承诺).
type PostAssignment struct {
	ID         int64     `gorm:"primaryKey" json:"id"`
	PostID     int64     `json:"post_id"`
	MemberID   int64     `json:"member_id"`
	StartsOn   Date      `json:"starts_on"`
	EndsOn     Date      `json:"ends_on"`
	Commitment string    `json:"commitment"`
	CreatedBy  *int64    `json:"-"`
	CreatedAt  time.Time `json:"created_at"`
}

// Activity is an event members check in at, with a code shown as a QR, an optional
// place and radius, and a rule that check-ins earn under.
type Activity struct {
	ID          int64     `gorm:"primaryKey" json:"id"`
	OrgID       int64     `json:"org_id"`
	Title       string    `json:"title"`
	RuleCode    string    `json:"rule_code"`
	StartsAt    time.Time `json:"starts_at"`
	EndsAt      time.Time `json:"ends_at"`
	CheckinCode string    `json:"checkin_code,omitempty"`
	Lat         *float64  `json:"lat"`
	Lng         *float64  `json:"lng"`
	RadiusM     *int      `json:"radius_m"`
	CreatedBy   *int64    `json:"-"`
	CreatedAt   time.Time `json:"created_at"`
}

// Checkin is one member at one activity.
type Checkin struct {
	ID         int64     `gorm:"primaryKey" json:"id"`
	ActivityID int64     `json:"activity_id"`
	MemberID   int64     `json:"member_id"`
	EntryID    *int64    `json:"entry_id"`
	Lat        *float64  `json:"lat"`
	Lng        *float64  `json:"lng"`
	CreatedAt  time.Time `json:"created_at"`
}
