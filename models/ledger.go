package models

import "time"

// Rule sources: how points under a rule are earned.
const (
	HowClaim   = "claim"   // the member claims, a secretary decides
	HowCheckin = "checkin" // checking in at an activity, approved by itself
	HowManual  = "manual"  // a secretary enters it with a reason
)

// Rule is one version of a catalogue rule. Editing a rule adds a version; entries keep
// the version they were earned under.
type Rule struct {
	ID              int64     `gorm:"primaryKey" json:"-"`
	Code            string    `json:"code"`
	Version         int       `json:"version"`
	Name            string    `json:"name"`
	Category        string    `json:"category"`
	How             string    `json:"how"`
	Points          Points    `json:"points"`      // per unit
	Unit            string    `json:"unit"`        // once, hour or any
	MonthlyCap      *Points   `json:"monthly_cap"` // nil: no cap
	NeedsEvidence   bool      `json:"needs_evidence"`
	NeedsAssignment bool      `json:"needs_assignment"`
	Active          bool      `json:"active"`
	CreatedBy       *int64    `json:"-"`
	CreatedAt       time.Time `json:"created_at"`
}

// Entry sources.
const (
	SourceClaim    = "claim"
	SourceCheckin  = "checkin"
	SourceManual   = "manual"
	SourceReversal = "reversal"
	SourceAppeal   = "appeal"
)

// Entry is one line of the append-only ledger. Hash covers the entry's content and
// PrevHash, the hash of the member's previous entry (Seq-1).
type Entry struct {
	ID          int64     `gorm:"primaryKey" json:"id"`
	MemberID    int64     `json:"member_id"`
	BranchID    int64     `json:"branch_id"`
	RuleCode    string    `json:"rule_code"`
	RuleVersion int       `json:"rule_version"`
	Category    string    `json:"category"`
	Period      Period    `json:"period"`
	OccurredOn  Date      `json:"occurred_on"`
	Points      Points    `json:"points"`
	Source      string    `json:"source"`
	ClaimID     *int64    `json:"claim_id"`
	ReversesID  *int64    `json:"reverses_id"`
	Reason      string    `json:"reason"`
	ActorID     *int64    `json:"actor_id"`
	Seq         int64     `json:"seq"`
	PrevHash    string    `json:"prev_hash"`
	Hash        string    `json:"hash"`
	CreatedAt   time.Time `json:"created_at"`
}

// MemberChain is the head of a member's hash chain.
type MemberChain struct {
	MemberID int64 `gorm:"primaryKey;autoIncrement:false"`
	Seq      int64
	LastHash string
}

// MemberTotal is a member's running total for one period, branch and category.
type MemberTotal struct {
	MemberID int64
	Period   Period
	BranchID int64
	Category string
	Points   Points
}

// RuleTotal is a member's running total under one rule in one period, for caps.
type RuleTotal struct {
	MemberID int64
	Period   Period
	RuleCode string
	Points   Points
}

// ClosedPeriod closes a month for an org subtree until reopened.
type ClosedPeriod struct {
	ID           int64      `gorm:"primaryKey" json:"id"`
	OrgID        int64      `json:"org_id"`
	Period       Period     `json:"period"`
	ClosedBy     *int64     `json:"closed_by"`
	ClosedAt     time.Time  `json:"closed_at"`
	ReopenedBy   *int64     `json:"reopened_by"`
	ReopenedAt   *time.Time `json:"reopened_at"`
	ReopenReason *string    `json:"reopen_reason"`
}
